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
                    "(20 s, closest approach 0.5-6 m), 48 seated clips (30 s: reach, page, typing, cup), 2.2 h of "
                    "negatives (5-min clips, 2-4 mics: fans, curtains, HVAC, pets, keys, music, vacuum, doors, "
                    "combinations), 24 music-plus-motion clips, 8 clips of a person beyond 5 m, 4 fourteen-minute visits "
                    "(sit up to 8 min, then leave: presence off after the timeout); every 4th clip at "
                    "48 kHz -- counts and negative hours multiplied by --scale. Writes WAV + sidecar + reference + "
                    "labels per clip and OUT/manifest.json (seeds, counts, hours, distances, actions). Resumable: "
                    "complete clips are skipped. Seeds: training 0-999 (refused), tuning 1000-1999, "
                    "evaluation >= 9000.",
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


def register_train(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser(
        "train", help="render training features for the neural detector (in memory, sharded .npz)",
        description="Render random simulated scenes in memory (walk-ins, seated minor motion, still/far people, "
                    "pets, fans, curtains, HVAC, keys, vacuums, doors, music with and without a reference; 48 and "
                    "96 kHz; 2-8 mics except the held-out 5-mic family), run them through the streaming front "
                    "end and save velocity-band features with per-hop labels as shards of about --shard-s of "
                    "audio in OUT. Resumable: complete shards are skipped. Seeds: training 0-999 only.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--hours", type=_scale, required=True, default=argparse.SUPPRESS, help="hours of audio to render")
    p.add_argument("--seed", type=_seed, required=True, default=argparse.SUPPRESS, help="dataset seed (training: 0-999)")
    p.add_argument("--out", type=Path, required=True, default=argparse.SUPPRESS, metavar="DIR", help="output folder")
    p.add_argument("--workers", type=positive_int, default=max(1, os.cpu_count() or 1),
                   help="parallel render processes")
    p.add_argument("--shard-s", type=_scale, default=300.0, help="seconds of audio per shard")
    p.add_argument("--kinds", default="", metavar="KIND=W,...",
                   help="scene kinds of the random sampler and their shares, e.g. music_motion=1,music=1 "
                        "(default: the built-in mix of walk, seated, still, far, negative, music_motion, empty)")
    p.add_argument("--clip-s", type=_scale, default=None,
                   help="length of every clip in seconds (default: the sampler's, 20-40 s by kind); long clips "
                        "teach the model what hours of a confuser look like after its background has settled")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from uspd.train.data import build_training_set, parse_kind_weights

    build_training_set(args.hours, args.seed, args.out, workers=args.workers, shard_s=args.shard_s,
                       progress=not getattr(args, "quiet", False), kind_weights=parse_kind_weights(args.kinds),
                       clip_s=args.clip_s)
    print(f"{args.out}: training features for {args.hours:g} h of audio (seed {args.seed})")
    return 0


#: sub-subcommands of `uspd dataset`, in --help order.
SUBCOMMANDS = [register_eval, register_train]


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
