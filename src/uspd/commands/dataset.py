"""`uspd dataset eval|train ...`: build datasets from the simulator.

One function pair per sub-subcommand: ``register_<name>(dsub)`` adds its parser and sets ``func``;
``run_<name>(args) -> int`` does the work. Add a new one to ``SUBCOMMANDS``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _seed(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"seeds are non-negative integers, got {n}")
    return n


def _scale(text: str) -> float:
    x = float(text)
    if not (x > 0 and x < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return x


def register_eval(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser(
        "eval", help="render the balanced evaluation set with the simulator",
        description="Render a balanced evaluation set from the simulator's random scene sampler: 48 walk-ins "
                    "(closest approach 0.5-6 m), 48 seated clips (reach, page, typing, cup), 2.2 h of negatives "
                    "(fans, curtains, HVAC, pets, keys, music, combinations; 2-4 mics), 24 music-plus-motion clips, "
                    "every 4th clip at 48 kHz -- all multiplied by --scale. Writes WAV + sidecar + reference + "
                    "labels per clip and OUT/manifest.json (seeds, counts, hours). Resumable: complete clips are "
                    "skipped. Seeds: training 0-999 (refused), tuning 1000-1999, evaluation >= 9000.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seed", type=_seed, required=True, default=argparse.SUPPRESS, help="dataset seed (evaluation sets: >= 9000)")
    p.add_argument("--out", type=Path, required=True, default=argparse.SUPPRESS, metavar="DIR", help="output folder (new, or a partial run)")
    p.add_argument("--scale", type=_scale, default=1.0,
                   help="multiply clip counts and negative hours (0.05 = tiny set for a quick check)")
    p.add_argument("--workers", type=positive_int, default=max(1, os.cpu_count() or 1),
                   help="parallel render processes")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from uspd.evaluate.dataset import build_eval_set

    man = build_eval_set(args.out, args.seed, scale=args.scale, workers=args.workers,
                         progress=not getattr(args, "quiet", False))
    counts = ", ".join(f"{k} {n} ({man['hours'][k]:.2f} h)" for k, n in man["counts"].items())
    rates = ", ".join(f"{n} at {r} Hz" for r, n in sorted(man["sample_rates"].items()))
    print(f"{args.out}: seed {args.seed} ({man['role']}), {len(man['clips'])} clips, "
          f"{man['rendered_now']} rendered now: {counts}; {rates}")
    return 0


#: sub-subcommands of `uspd dataset`, in --help order.
SUBCOMMANDS = [register_eval]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="build evaluation / training sets from the simulator",
                       description="Build datasets from the simulator. See `uspd dataset SET --help`.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    dsub = p.add_subparsers(dest="dataset_command", metavar="SET")
    for reg in SUBCOMMANDS:
        reg(dsub)
    p.set_defaults(func=run, _dataset_parser=p)


def run(args: argparse.Namespace) -> int:
    """`uspd dataset` without a set: print its help."""
    args._dataset_parser.print_help()
    return 0
