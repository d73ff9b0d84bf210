"""How much faster the operating-point sweep of ``uspd evaluate --matched-fa`` runs in worker processes.

The sweep re-runs the presence tracker on stored per-hop scores over (threshold x debounce); it took most of
``detector_comparison.py``'s 43 minutes on a 399-clip evaluation set. ``sweep(..., workers=N)`` searches the debounce
lengths in N processes. This runs it on the per-hop scores that ``hybrid_tuning.py --cache`` keeps (real recordings
of the tuning sets), once in this process and once with ``--workers``, checks that both give the same points, and
prints the two wall-clock times and their ratio (a ratio holds on a busy machine; the times do not)::

    python benchmarks/sweep_speed.py CACHE.pkl [--detector nn] [--workers 2]
"""
from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cache", type=Path, help="per-hop scores (pickle) as hybrid_tuning.py --cache keeps them")
    ap.add_argument("--detector", default="nn", help="whose scores to sweep: classic or nn (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=2, help="processes for the parallel run (default: %(default)s)")
    ap.add_argument("--matched-fa", default="1,0.1", help="target FA/h, as uspd evaluate (default: %(default)s)")
    args = ap.parse_args()
    if not args.cache.is_file():
        ap.error(f"{args.cache}: no such file")
    if args.workers < 2:
        ap.error(f"--workers {args.workers}: the comparison needs at least 2")
    from uspd.evaluate.runner import RECALL_LEVELS, sweep
    from uspd.presence.tracker import PresenceConfig

    try:
        clips = pickle.loads(args.cache.read_bytes())[args.detector]
        targets = [float(v) for v in args.matched_fa.split(",")]
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
        print(f"error: {args.cache} / --detector {args.detector} / --matched-fa: {exc!r}", file=sys.stderr)
        return 2
    hours = sum(c.audio_s for c in clips) / 3600.0
    print(f"{len(clips)} recordings, {hours:.2f} h of {args.detector} scores; targets {targets} FA/h, recall levels "
          f"{list(RECALL_LEVELS)}")
    times, results = {}, {}
    for workers in (1, args.workers):
        t0 = time.perf_counter()
        results[workers] = sweep(clips, PresenceConfig(), targets, RECALL_LEVELS, workers=workers, progress=True,
                                 desc=f"sweep, {workers} process{'es' if workers > 1 else ''}")
        times[workers] = time.perf_counter() - t0
    same = results[1] == results[args.workers]
    print(f"one process: {times[1]:.1f} s; {args.workers} processes: {times[args.workers]:.1f} s; "
          f"{times[1] / times[args.workers]:.2f}x faster; same operating points: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
