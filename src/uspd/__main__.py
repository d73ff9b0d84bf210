from uspd.cli import main

raise SystemExit(main())
