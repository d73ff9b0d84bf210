"""One module per ``uspd`` subcommand; each defines ``register(subparsers)`` and ``run(args) -> int``."""
