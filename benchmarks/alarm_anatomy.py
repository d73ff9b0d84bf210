"""Where the hybrid detector's false alarms come from, and what its sensitive window costs and buys.

At one operating point (the config's ``[detector.hybrid]`` table and ``[presence]`` thresholds, e.g. a
``hybrid_tuning.py --write-config`` pick) on tuning sets, every counted false alarm (:mod:`uspd.evaluate.metrics`) is
put in two classes: the threshold in force at its first hop (the strict one, or the sensitive one, which the presence
tracker uses for ``sensitive_window_s`` after a major movement while the room is occupied, often after a false
major alarm of its own), and whether it follows an earlier alarm of the same clip within ``--burst-s`` (one confuser
episode counted again after the cooldown). Then the alarms that turned presence on (the tracker held the room empty
at the hop before: the costly "lights on" event, and what opens the sensitive window) and how many of those fall in a
recording's first ``settled_s`` (the detector's cold start, which a device that has been running is past), and the
alarms, negative time and cold-start alarms by the set's clip kind (20 s walk-ins are all cold start). The clips that
hold the most alarms follow. Then the same scores re-run
with the sensitive window shortened and with no sensitive threshold at all (the strict one throughout): false alarms
per hour, major recall, major recall in late walk-ins and typing found, the row "as configured" first.

    python benchmarks/alarm_anatomy.py /tmp/tune1021 /tmp/tune1022 --cache C.pkl --config PICK.toml
        [--windows 300,120,60] [--burst-s 60] [--top 5]

The cache is the same pickle as ``hybrid_tuning.py --cache`` (per-hop scores of the classic and neural detector).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
from pathlib import Path


def parse_seconds_list(text: str) -> list[float]:
    """"300,120,60" -> [300.0, 120.0, 60.0]; each a finite number of seconds > 0 (ValueError otherwise)."""
    import math

    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{text!r}: give seconds > 0, comma-separated")
    return values


def alarm_classes(clips: list, presence, mcfg, burst_s: float) -> tuple[list, dict]:
    """Re-run the presence tracker on ``clips`` (ClipResult with scores) under ``presence``; returns the re-scored
    clips and {"alarms", "sensitive", "after_person", "minor", "burst", "presence_on", "cold_on", "by_clip": Counter,
    "by_kind": {set_kind: [alarms, negative h, alarms in the first settled_s]}} over their counted false alarms:
    ``sensitive`` = the threshold in force at the alarm's hop was below the strict one, of those ``after_person`` = a
    person's movement or stay (``major``, ``minor``, ``presence`` label) of the same clip ended before it, ``minor`` =
    the tracker called the motion minor; ``burst`` = an earlier alarm of the same clip lies at most ``burst_s`` before
    it; ``presence_on`` = presence was off at the hop before the alarm (a recording's first hop counts as off), of
    those ``cold_on`` = the alarm's hop ends before ``mcfg.settled_s``; ``by_kind`` keys on the labels' ``set_kind``
    ("-" when missing)."""
    import numpy as np

    from uspd.evaluate.metrics import POSITIVE_KINDS, false_alarm_indices, negative_mask
    from uspd.evaluate.runner import _Scores
    from uspd.presence.tracker import PresenceTracker, decisions_to_arrays

    out = []
    counts = {"alarms": 0, "sensitive": 0, "after_person": 0, "minor": 0, "burst": 0, "presence_on": 0, "cold_on": 0,
              "by_clip": Counter(), "by_kind": {}}
    for c in clips:
        decisions = PresenceTracker(presence).update(c.t_s, _Scores(c.score, np.nan_to_num(c.major, nan=1.0)))
        cols = decisions_to_arrays(decisions)
        r = dataclasses.replace(c, motion=cols["motion"], presence=cols["presence"])
        out.append(r)
        negative = negative_mask(r, mcfg)
        idx = false_alarm_indices(r.t_s, r.motion, negative, mcfg.cooldown_s)
        kind = counts["by_kind"].setdefault(c.labels.extra.get("set_kind") or "-", [0, 0.0, 0])
        kind[0] += len(idx)
        kind[1] += float(np.sum(negative)) * c.hop_s / 3600.0
        kind[2] += int(np.sum(r.t_s[idx] < mcfg.settled_s))
        person_ends = [iv.end_s for iv in c.labels.intervals if iv.kind in POSITIVE_KINDS]
        counts["alarms"] += len(idx)
        for i in idx:
            if i == 0 or not decisions[i - 1].presence:
                counts["presence_on"] += 1
                counts["cold_on"] += r.t_s[i] < mcfg.settled_s
            if decisions[i].threshold < presence.threshold:
                counts["sensitive"] += 1
                counts["after_person"] += any(end < r.t_s[i] for end in person_ends)
                counts["minor"] += decisions[i].kind == "minor"
        counts["burst"] += int(np.sum(np.diff(r.t_s[idx]) <= burst_s)) if len(idx) > 1 else 0
        if len(idx):
            counts["by_clip"][c.name] += len(idx)
    return out, counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", type=Path, help="tuning sets (uspd dataset eval --seed 1000-1999)")
    ap.add_argument("--cache", type=Path, default=None, help="per-hop scores (pickle), as hybrid_tuning.py keeps")
    ap.add_argument("--config", default=None, help="uspd config (TOML): model, [detector.hybrid], [presence]")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes (default: %(default)s)")
    ap.add_argument("--windows", default="300,120,60",
                    help="shorter sensitive windows to try (s of audio, comma-separated) (default: %(default)s)")
    ap.add_argument("--burst-s", type=float, default=60.0,
                    help="an alarm this soon after an earlier one of the same clip is a burst (s) (default: "
                         "%(default)s)")
    ap.add_argument("--top", type=int, default=5, help="clips with the most alarms to list (default: %(default)s)")
    args = ap.parse_args()
    try:
        windows = parse_seconds_list(args.windows)
    except ValueError as exc:
        ap.error(f"--windows {exc}")
    if not args.burst_s > 0:
        ap.error("--burst-s must be a number of seconds > 0")
    if args.workers < 1 or args.top < 0:
        ap.error("--workers must be at least 1 and --top at least 0")
    if args.cache is not None and not args.cache.exists() and not all(d.is_dir() for d in args.dirs):
        ap.error(f"no cache at {args.cache} and not every set is a folder")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hybrid_tuning import detector_clips, fused_clips, summarize

    from uspd.config import load_config
    from uspd.errors import UspdError
    from uspd.evaluate.metrics import MetricsConfig
    from uspd.evaluate.runner import rescore

    try:
        cfg = load_config(args.config)
        hybrid = fused_clips(detector_clips(args.dirs, args.workers, args.cache, args.config), cfg.detector.hybrid)
    except UspdError as exc:
        print(f"alarm_anatomy.py: error: {exc}", file=sys.stderr)
        return 2
    mcfg, presence = MetricsConfig(), cfg.presence
    rescored, counts = alarm_classes(hybrid, presence, mcfg, args.burst_s)
    base = summarize(rescored)
    n = counts["alarms"]
    sets = ", ".join(map(str, args.dirs))
    print(f"hybrid (nn_weight {cfg.detector.hybrid.nn_weight:g}) at thresholds {presence.threshold:g} / sensitive "
          f"{presence.sensitive_threshold:g} for {presence.sensitive_window_s:g} s, on {sets}: "
          f"{n} false alarms in {base['negative_h']:.2f} h of negative time")
    if n:
        print(f"  at the sensitive threshold: {counts['sensitive']} ({100 * counts['sensitive'] / n:.0f} %; "
              f"{counts['after_person']} after a person's movement in the same clip, the others after an alarm; "
              f"{counts['minor']} minor motion); "
              f"within {args.burst_s:g} s of an earlier alarm of the same clip: {counts['burst']} "
              f"({100 * counts['burst'] / n:.0f} %); in {len(counts['by_clip'])} clips")
        print(f"  turned presence on (an empty room to the tracker): {counts['presence_on']} "
              f"({100 * counts['presence_on'] / n:.0f} %; {counts['cold_on']} of them in a recording's first "
              f"{mcfg.settled_s:g} s, the detector's cold start)")
        print("  by clip kind (alarms / h of negative time, of them in the first "
              f"{mcfg.settled_s:g} s): " + ", ".join(f"{k} {a} / {h:.2f} h ({f})" for k, (a, h, f) in
                                                      sorted(counts["by_kind"].items())))
        for name, k in counts["by_clip"].most_common(args.top):
            print(f"  {k:4d}  {name}")
    pct = lambda v: "    -" if v is None else f"{100 * v:5.1f}"  # noqa: E731
    print(f"{'sensitive threshold':36s} {'FA/h':>6s} {'alarms':>6s} {'major':>6s} {'late':>6s} {'typing':>6s}")
    rows = [("as configured", base)]
    variants = [(f"window {w:g} s", dataclasses.replace(presence, sensitive_window_s=w)) for w in windows]
    variants.append(("none (strict throughout)", dataclasses.replace(presence, sensitive_threshold=presence.threshold)))
    rows += [(name, summarize([rescore(c, p) for c in hybrid])) for name, p in variants]
    for name, p in rows:
        print(f"{name:36s} {p['fa_per_h']:6.2f} {p['alarms']:6d} {pct(p['major'])}% {pct(p['late_walk'])}% "
              f"{pct(p['typing'])}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
