"""Which late walk-ins do the detectors miss? Major movements in the ``late_walk`` clips of tuning sets, split by what
came just before them and whether a confuser ran nearby (``major.by_context`` of :mod:`uspd.evaluate.metrics`:
a person still in the room, a person beyond 5 m, another movement or an empty room; a confuser active from
``--confuser-window-s`` before the movement to its end), with the share found by the classic, the neural and the
hybrid detector (each at the ``[presence]`` thresholds; the hybrid with the config's ``[detector.hybrid]`` table).

    python benchmarks/late_walk_context.py /tmp/tune1021 /tmp/tune1022 [--cache C.pkl] [--config C.toml]

The cache is the same pickle as ``hybrid_tuning.py --cache`` (per-hop scores of the classic and neural detector).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def context_parser(description: str) -> argparse.ArgumentParser:
    """The arguments of the benchmarks that look at movements in context on tuning sets: the sets, the score cache,
    the config, the worker count and the confuser window (checked by :func:`parse_context_args`)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", type=Path, help="tuning sets (uspd dataset eval --seed 1000-1999)")
    ap.add_argument("--cache", type=Path, default=None, help="per-hop scores (pickle), as hybrid_tuning.py keeps")
    ap.add_argument("--config", default=None, help="uspd config (TOML): model, [detector.hybrid], [presence]")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes (default: %(default)s)")
    ap.add_argument("--confuser-window-s", type=float, default=60.0,
                    help="a confuser active this long before a movement counts (s of audio) (default: %(default)s)")
    return ap


def parse_context_args(ap: argparse.ArgumentParser) -> argparse.Namespace:
    args = ap.parse_args()
    if not args.confuser_window_s >= 0:
        ap.error("--confuser-window-s must be a number of seconds >= 0")
    if args.workers < 1:
        ap.error("--workers must be at least 1")
    return args


def main() -> int:
    args = parse_context_args(context_parser(__doc__))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hybrid_tuning import detector_clips, fused_clips

    from uspd.config import load_config
    from uspd.errors import UspdError
    from uspd.evaluate.metrics import MetricsConfig, major_metrics
    from uspd.evaluate.runner import rescore

    try:
        cfg = load_config(args.config)
        clips = detector_clips(args.dirs, args.workers, args.cache, args.config)
        runs = {"classic": clips["classic"], "nn": clips["nn"], "hybrid": fused_clips(clips, cfg.detector.hybrid)}
    except UspdError as exc:
        print(f"late_walk_context.py: error: {exc}", file=sys.stderr)
        return 2
    mcfg = MetricsConfig(context_confuser_s=args.confuser_window_s)
    late = {name: major_metrics([rescore(c, cfg.presence) for c in run
                                 if c.labels.extra.get("set_kind") == "late_walk"], mcfg)
            for name, run in runs.items()}  # the same movements (labels) for every detector
    if not late["nn"]["n"]:
        print("no major movements in late_walk clips in these sets")
        return 0
    print(f"major movements in late_walk clips of {', '.join(map(str, args.dirs))}, found at the [presence] "
          f"thresholds (hybrid: nn_weight {cfg.detector.hybrid.nn_weight:g})")
    print(f"{'before the movement, confuser within ' + format(args.confuser_window_s, 'g') + ' s':44s} {'n':>4s} "
          + " ".join(f"{name:>8s}" for name in runs))
    contexts = sorted(late["nn"]["by_context"].items(), key=lambda kv: -kv[1]["n"])
    for key, entry in contexts + [("all", late["nn"])]:
        cells = [late[name] if key == "all" else late[name]["by_context"][key] for name in runs]
        print(f"{key:44s} {entry['n']:4d} " + " ".join(f"{100 * e['recall']:7.1f}%" for e in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
