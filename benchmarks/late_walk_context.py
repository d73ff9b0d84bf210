"""Which late walk-ins do the detectors miss? Major movements in the ``late_walk`` clips of tuning sets, split by what
came just before them and whether a confuser ran nearby, with the share found by the classic, the neural and the
hybrid detector (each at the ``[presence]`` thresholds; the hybrid with the config's ``[detector.hybrid]`` table).

"Before": the labelled state that ends where the movement starts: a person already in the room and still
(``presence``: seated, standing, breathing), a person moving beyond 5 m (``far``), another major movement, or an
empty room. "Confuser": any labelled confuser (fan, curtain, HVAC, pet, vacuum, door, keys, music) active from
``--confuser-window-s`` before the movement to its end.

    python benchmarks/late_walk_context.py /tmp/tune1021 /tmp/tune1022 [--cache C.pkl] [--config C.toml]

The cache is the same pickle as ``hybrid_tuning.py --cache`` (per-hop scores of the classic and neural detector).
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

#: Label kinds that describe people rather than confusers.
PEOPLE_KINDS = ("major", "minor", "presence", "far")


def context(labels, start_s: float, window_s: float) -> tuple[str, str]:
    """(what came before, "confuser" | "no confuser") of a major movement starting at ``start_s``."""
    before = [iv for iv in labels.intervals if iv.kind in ("presence", "far", "major")
              and start_s - 1.0 < iv.end_s <= start_s + 0.01]
    prev = max(before, key=lambda iv: iv.end_s).kind if before else "empty room"
    prev = {"presence": "person still in the room", "far": "person beyond 5 m", "major": "another movement"}.get(
        prev, prev)
    end_s = max(iv.end_s for iv in labels.of_kind("major") if iv.start_s == start_s)
    near = any(iv.kind not in PEOPLE_KINDS and iv.start_s < end_s and iv.end_s > start_s - window_s
               for iv in labels.intervals)
    return prev, "confuser" if near else "no confuser"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", type=Path, help="tuning sets (uspd dataset eval --seed 1000-1999)")
    ap.add_argument("--cache", type=Path, default=None, help="per-hop scores (pickle), as hybrid_tuning.py keeps")
    ap.add_argument("--config", default=None, help="uspd config (TOML): model, [detector.hybrid], [presence]")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes (default: %(default)s)")
    ap.add_argument("--confuser-window-s", type=float, default=60.0,
                    help="a confuser active this long before a movement counts (s of audio) (default: %(default)s)")
    args = ap.parse_args()
    if not args.confuser_window_s >= 0:
        ap.error("--confuser-window-s must be a number of seconds >= 0")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hybrid_tuning import detector_clips, fused_clips

    from uspd.config import load_config
    from uspd.errors import UspdError
    from uspd.evaluate.metrics import MetricsConfig, interval_recall
    from uspd.evaluate.runner import rescore

    try:
        cfg = load_config(args.config)
        clips = detector_clips(args.dirs, args.workers, args.cache, args.config)
        runs = {"classic": clips["classic"], "nn": clips["nn"], "hybrid": fused_clips(clips, cfg.detector.hybrid)}
    except UspdError as exc:
        print(f"late_walk_context.py: error: {exc}", file=sys.stderr)
        return 2
    mcfg = MetricsConfig()
    found: dict[tuple[str, str], dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for name, detector_clips_ in runs.items():
        for clip in detector_clips_:
            if clip.labels.extra.get("set_kind") != "late_walk":
                continue
            result = rescore(clip, cfg.presence)
            for iv, delay in interval_recall([result], mcfg, "major"):
                found[context(clip.labels, iv.start_s, args.confuser_window_s)][name].append(delay is not None)
    if not found:
        print("no late_walk clips in these sets")
        return 0
    print(f"major movements in late_walk clips of {', '.join(map(str, args.dirs))}, found at the [presence] "
          f"thresholds (hybrid: nn_weight {cfg.detector.hybrid.nn_weight:g})")
    print(f"{'before the movement':26s} {'confuser (' + format(args.confuser_window_s, 'g') + ' s)':16s} "
          f"{'n':>4s} {'classic':>8s} {'nn':>8s} {'hybrid':>8s}")
    total: dict[str, list[bool]] = defaultdict(list)
    for (prev, conf), per in sorted(found.items(), key=lambda kv: -len(kv[1]["nn"])):
        cells = []
        for name in runs:
            total[name] += per[name]
            cells.append(f"{100 * sum(per[name]) / len(per[name]):7.1f}%")
        print(f"{prev:26s} {conf:16s} {len(per['nn']):4d} " + " ".join(cells))
    print(f"{'all':26s} {'':16s} {len(total['nn']):4d} "
          + " ".join(f"{100 * sum(total[n]) / len(total[n]):7.1f}%" for n in runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
