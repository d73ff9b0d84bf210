"""Where in a clip the neural detector errs: false alarms by time since the clip's start, and movements found by
when they start and whether a confuser is active, as live, with the GRU state zeroed every ``--reset-s``, and with
the whole detector started ``--lead-s`` before each movement.

Every clip of an evaluation or tuning set starts with the detector cold (the front end's background and the GRU
state); a device that has been running is past that. This script shows how much of a model's figures come from that
start, and whether the GRU's memory is the cause: with ``--reset-s`` the front end runs on as live but the GRU
restarts from zero state every so often (a diagnostic only; nothing runs like that live). With ``--lead-s`` each
movement is scored by a detector started cold (background streams and GRU) ``--lead-s`` before it, as if the device
had just been switched on: if that finds the late movements that the live run misses, the cause is the state built
up over the clip, and the GRU-zeroed run tells whether it is the GRU's or the background's.

Usage: ``python benchmarks/cold_start.py --neg-pool DIR --pos-pool DIR [--model M.onnx] [--threshold 0.6]
[--reset-s 30] [--lead-s 10]``. Pools are training-format shards (``uspd dataset train``), e.g. 5-minute negatives
(``--kinds negative=1 --clip-s 300``) and walk-ins late in long clips (``--kinds walk=1,walk+confusers=1 --clip-s
150``).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

NEG_BINS_S = (5, 10, 20, 30, 60, 120, 1e9)
START_BINS_S = (0, 10, 30, 1e9)


def clip_scores(detector, clip: dict, reset_hops: int | None = None):
    """Scores of one clip as live, fed in chunks of ``reset_hops`` (None: one chunk) with the GRU state zeroed before
    each; the front end's streams carry across chunks as they do live."""
    from uspd.detector.base import Scores

    detector.reset()
    x = clip["x"].astype(np.float32)
    e = clip["e"].astype(np.float32) if "e" in clip else None
    step = reset_hops or len(x)
    parts = []
    for a in range(0, len(x), step):
        detector._h = np.zeros_like(detector._h)  # the GRU state only (reset() would restart the streams too)
        parts.append(detector.process_bands(x[a:a + step], None if e is None else e[a:a + step]))
    return Scores(score=np.concatenate([p.score for p in parts]), major=np.concatenate([p.major for p in parts]))


def run(model: str | None, neg: list[dict], pos: list[dict], threshold: float, reset_hops: int | None,
        lead_hops: int | None = None) -> dict:
    """{"alarms_by_time": counts per NEG_BINS_S bin, "found": {(start bin, beside a confuser): [found, total]}}.
    ``lead_hops``: score each movement of ``pos`` with the detector started that many hops before it (the hops up to
    its end plus the grace; no false alarms are counted then)."""
    from uspd.detector.neural import NeuralDetector
    from uspd.evaluate.metrics import MetricsConfig, interval_delay
    from uspd.evaluate.runner import with_threshold
    from uspd.presence.tracker import PresenceConfig, PresenceTracker, decisions_to_arrays
    from uspd.train.mining import HOP_S, clip_false_alarms, major_runs, missed_majors

    detector = NeuralDetector(model)
    cfg = with_threshold(PresenceConfig(), threshold, sensitive="follow")
    alarm_t: list[float] = []
    found: dict[tuple[int, bool], list[int]] = {}
    mcfg = MetricsConfig()
    grace_hops = int(round(mcfg.grace_s / HOP_S)) + 1
    for k, clip in enumerate(neg + pos):
        t_s = np.asarray(clip["t"], np.float64)
        if k < len(neg) or lead_hops is None:
            s = clip_scores(detector, clip, reset_hops)
            motion = np.asarray(decisions_to_arrays(PresenceTracker(cfg).update(t_s, s))["motion"], bool)
        if k < len(neg):
            if lead_hops is None:
                alarm_t += list(t_s[clip_false_alarms(motion, clip)[0]])
            continue
        if lead_hops is None:
            lost = set(missed_majors(motion, clip))
        else:
            lost = set()
            for a, b in major_runs(clip["motion"]):
                lo, hi = max(0, a - lead_hops), b + grace_hops
                part = {key: clip[key][lo:hi] for key in ("x", "e", "t") if key in clip}
                s = clip_scores(detector, part, reset_hops)
                motion = np.asarray(decisions_to_arrays(PresenceTracker(cfg).update(t_s[lo:hi], s))["motion"], bool)
                if interval_delay(t_s[lo:hi], motion, float(t_s[a]), float(t_s[b]), mcfg.grace_s) is None:
                    lost.add((a, b))
        for a, b in major_runs(clip["motion"]):
            key = (int(np.searchsorted(START_BINS_S, t_s[a], side="right")) - 1, bool(clip["confusers"][a:b + 1].any()))
            cell = found.setdefault(key, [0, 0])
            cell[0] += (a, b) not in lost
            cell[1] += 1
    counts = None if lead_hops is not None else np.histogram(alarm_t, bins=NEG_BINS_S)[0].tolist()
    return {"alarms_by_time": counts, "found": found}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--neg-pool", required=True, help="shards without people moving (false alarms)")
    p.add_argument("--pos-pool", required=True, help="shards with labelled major movements")
    p.add_argument("--model", default=None, help="model file (.onnx, manifest beside); default: the shipped model")
    p.add_argument("--threshold", type=float, default=0.6, help="strict [presence] threshold (0..1)")
    p.add_argument("--reset-s", type=float, default=30.0, help="zero the GRU state this often in the second run (s)")
    p.add_argument("--lead-s", type=float, default=10.0,
                   help="third run: start the detector cold this long before each movement (s; 0 = skip that run)")
    args = p.parse_args(argv)
    from uspd.errors import UspdError
    from uspd.train.data import load_shards
    from uspd.train.mining import HOP_S

    if not 0.0 < args.threshold < 1.0 or not 0.05 <= args.reset_s < float("inf") \
            or not 0.0 <= args.lead_s < float("inf"):
        print("error: --threshold must be in (0, 1), --reset-s a finite number >= 0.05 s and --lead-s a finite "
              "number >= 0 s", file=sys.stderr)
        return 2
    try:
        neg, pos = load_shards(args.neg_pool), load_shards(args.pos_pool)
        res = {"live": run(args.model, neg, pos, args.threshold, None),
               f"GRU zeroed every {args.reset_s:g} s": run(args.model, neg, pos, args.threshold,
                                                          max(1, round(args.reset_s / HOP_S)))}
        if args.lead_s > 0:
            res[f"started {args.lead_s:g} s before"] = run(args.model, [], pos, args.threshold, None,
                                                           round(args.lead_s / HOP_S))
    except UspdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"model {args.model or 'shipped'}, threshold {args.threshold:g}")
    edges = NEG_BINS_S  # no alarm is counted in the first 5 s (the metrics' warm-up)
    print(f"false alarms in {args.neg_pool} ({len(neg)} clips) by time since the clip's start: "
          + ", ".join(f"{a:g}-{b:g} s" if b < 1e9 else f">= {a:g} s" for a, b in zip(edges, edges[1:])))
    for name, r in res.items():
        if r["alarms_by_time"] is not None:
            print(f"  {name:<28} {r['alarms_by_time']} (total {sum(r['alarms_by_time'])})")
    print(f"major movements found in {args.pos_pool} ({len(pos)} clips), by start and beside a confuser")
    for name, r in res.items():
        cells = []
        for i, (a, b) in enumerate(zip(START_BINS_S, START_BINS_S[1:])):
            for conf in (False, True):
                f, n = r["found"].get((i, conf), [0, 0])
                span = f"{a:g}-{b:g} s" if b < 1e9 else f">= {a:g} s"
                share = f"{100 * f / n:.0f} % of {n}" if n else "-"
                cells.append(f"{span} {'confuser' if conf else 'none'}: {share}")
        f_all = sum(v[0] for v in r["found"].values())
        n_all = sum(v[1] for v in r["found"].values())
        print(f"  {name:<28} all {100 * f_all / max(n_all, 1):.1f} % of {n_all}; " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
