"""The same walkers with feet that plant and swing: the detectors, and any candidate model, on both gaits.

uspd's walkers have always swung their feet sinusoidally about the torso (0-2x walking speed, never still). Measured
feet do otherwise: each is planted for about 60 % of the gait cycle and swings through the rest at up to 3-4x
walking speed, so a real walker's Doppler has brief broad bursts at every step. The second simulator's walkers move
that way. This script renders the clips of ``--kinds`` of the evaluation set for ``--seed`` twice, once as drawn
(``sinusoid``) and once with every person given a stance/swing gait whose swing share is drawn in ``--swing-share``
(``uspd dataset eval --swing-share``: every other detail of every clip is the same), and scores both with ``uspd
evaluate DIR --detector all`` for the shipped model (or ``--config``) and every ``--model``. One table: per gait and
model, major recall (<= 5 m) and false alarms per hour of classic, nn and hybrid.

Usage: ``python benchmarks/gait.py [--seed 1021] [--scale 1] [--kinds walk,late_walk] [--swing-share 0.36,0.44]
[--root /tmp/gait1021] [--config C.toml] [--model NAME=CONFIG.toml ...] [--workers 2] [--json OUT.json]``.
Rendering is resumable (complete clips are kept).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clock_offset import evaluate, print_table, row  # noqa: E402  (the same uspd evaluate call and table)

from uspd.commands.dataset import _swing_share  # noqa: E402  (the LO,HI parser of uspd dataset eval --swing-share)


def _named(text: str) -> tuple[str, Path]:
    name, sep, value = text.partition("=")
    if not sep or not name or not Path(value).is_file():
        raise argparse.ArgumentTypeError(f"give NAME=CONFIG.toml (an existing file), got {text!r}")
    return name, Path(value)


def render(root: Path, seed: int, scale: float, kinds: list[str], swing_share, workers: int) -> int:
    """Render the plan's clips of ``kinds`` into ``root`` (resumable); returns how many clips there are."""
    from uspd.evaluate.dataset import eval_set_plan, render_jobs

    jobs = [j for j in eval_set_plan(seed, scale, swing_share=swing_share) if j.kind in kinds]
    render_jobs(root, jobs, workers=workers)
    return len(jobs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--seed", type=int, default=1021, help="evaluation set seed (tuning 1000-1999 or >= 9000)")
    ap.add_argument("--scale", type=float, default=1.0, help="evaluation set scale (uspd dataset eval --scale)")
    ap.add_argument("--kinds", default="walk,late_walk", help="the set's kinds of clip to render (comma-separated)")
    ap.add_argument("--swing-share", type=_swing_share, default=(0.36, 0.44), metavar="LO,HI",
                    help="share of the gait cycle a foot is in the air (walking: about 0.4)")
    ap.add_argument("--root", type=Path, default=None, help="where the two sets go (default /tmp/gait<SEED>)")
    ap.add_argument("--config", type=Path, default=None, help="uspd config TOML for the first model row")
    ap.add_argument("--model", type=_named, action="append", default=[], metavar="NAME=CONFIG.toml",
                    help="another config (e.g. a candidate model and its hybrid pick) scored beside it")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes")
    ap.add_argument("--json", type=Path, default=None, help="also write every run's metrics here")
    args = ap.parse_args(argv)
    from uspd.evaluate.dataset import EVAL_SET
    from uspd.evaluate.seeds import check_not_training

    kinds = [k for k in args.kinds.split(",") if k]
    bad = [k for k in kinds if k not in EVAL_SET]
    if bad or not kinds:
        ap.error(f"--kinds {args.kinds}: use some of {', '.join(EVAL_SET)}")
    if args.config is not None and not args.config.is_file():
        ap.error(f"--config {args.config}: no such file")
    from uspd.errors import UspdError

    try:
        check_not_training(args.seed, "--seed")
    except UspdError as exc:
        ap.error(str(exc))
    root = args.root or Path(f"/tmp/gait{args.seed}")
    what = {"seed": args.seed, "scale": args.scale, "kinds": kinds, "swing_share": list(args.swing_share)}
    marker = root / "gait.json"  # resuming into a folder rendered otherwise would mix two sets
    if marker.exists() and json.loads(marker.read_text()) != what:
        ap.error(f"{root}: holds sets rendered with {marker.read_text().strip()}; use another --root")
    if not marker.exists() and root.exists() and any(root.iterdir()):
        ap.error(f"{root}: not empty and not made by gait.py ({marker.name} missing); use another --root")
    root.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(what))
    gaits = {"sinusoid": None, "stance": args.swing_share}
    n = 0
    for name, share in gaits.items():
        n = render(root / name, args.seed, args.scale, kinds, share, args.workers)
    first = "shipped" if args.config is None else f"{args.config.parent.name}/{args.config.name}"
    configs = [(first, args.config), *args.model]
    head = ["gait", "model", "classic major", "FA/h", "nn major", "FA/h", "hybrid major", "FA/h"]
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (model, config) in enumerate(configs):
            for name in gaits:
                res = evaluate(root / name, config, args.workers, Path(tmp) / f"{i}_{name}.json")
                results[f"{model}/{name}"] = res
                rows.append([name, model, *row(res)])
    lo, hi = args.swing_share
    print(f"seed {args.seed} scale {args.scale:g}, {n} clips of {', '.join(kinds)}; stance: swing share {lo:g}-{hi:g}")
    print_table(head, rows, results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
