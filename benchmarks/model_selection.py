"""Candidate neural models side by side on tuning pools, over a sweep of the presence threshold (model selection).

Each model runs as live (``NeuralDetector.process_bands`` + ``PresenceTracker``, via ``uspd.train.mining``) over two
pools of training-format shards (``uspd dataset train``) that no model was trained on: false alarms per hour of
negative time in NEG_POOL (counted as ``uspd evaluate`` counts them) and the share of labelled major movements found
in POS_POOL, and the share of negative time (in both pools) that motion is on, at each strict threshold (the
sensitive threshold keeps its logit gap to it, as ``uspd evaluate --sweep-sensitive follow``: the shared defaults'
1.02, or ``--sensitive-gap``, as ``benchmarks/sensitive_threshold.py`` tunes it). The last figure
catches a model whose scores hover near the sensitive threshold: it keeps motion on, so an occupied room never goes
vacant (a calibrated candidate did this: 7.3 % against the shipped model's 0.4 %, and presence went off in time in
none of 9 visits). False alarms are also counted from ``--settled-s`` (30 s) after each negative clip's start: a
clip starts with the front end's background and the GRU cold, and most of the shipped model's alarms on
evaluation-style negatives fall in that first half minute, which a device that has been running does not see again.
Scores are computed once per model. A model is better when its row finds more at no more false
alarms. It reads precomputed features, so it takes about a minute per model for 5 h of pools, against ten for ``uspd
evaluate`` on rendered audio; the final figures still come from ``detector_comparison.py``.

An ensemble ``A+B+C`` (logits averaged) shows what a distilled student (``uspd train --teachers``) aims at.

Usage: ``python benchmarks/model_selection.py --neg-pool DIR --pos-pool DIR [--models shipped A/nn.onnx ...]
[--thresholds 0.5,0.6,...] [--sensitive-gap 1.02]``.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np


def ensemble_scores(members: list):
    """Scores of an ensemble: each output's logits averaged over ``members`` (Scores of one clip each); one member is
    returned as is."""
    from uspd.detector.base import Scores
    from uspd.detector.neural import logit_mean

    if len(members) == 1:
        return members[0]
    return Scores(score=logit_mean([m.score for m in members]), major=logit_mean([m.major for m in members]))


def sweep(model: str | None, neg: list[dict], pos: list[dict], thresholds: list[float],
          gap: float | None = None, *, settled_s: float) -> list[dict]:
    """[{threshold, alarms, clips_alarmed, fa_per_h, settled_fa_per_h, early_alarms, motion_on_share, found, majors}]
    for one model (None: the shipped one; "A+B+C": the ensemble of those models, their logits averaged); the
    sensitive threshold sits ``gap`` below each strict one on the logit scale (None: the defaults' gap).
    ``settled_fa_per_h`` counts only alarms and negative time from ``settled_s`` after each negative clip's start
    (the detector has run that long, as a device that was already on); ``early_alarms`` are the ones before;
    ``settled_found`` of ``settled_majors``: the major movements that start from ``settled_s`` on."""
    from tqdm import tqdm

    from uspd.detector.neural import NeuralDetector, shift_logit
    from uspd.evaluate.runner import with_threshold
    from uspd.presence.tracker import PresenceConfig, PresenceTracker, decisions_to_arrays
    from uspd.train.mining import HOP_S, clip_false_alarms, major_runs, missed_majors, negative_hops

    parts = [None if m == "shipped" else m for m in (model.split("+") if model else [None])]
    detectors = [NeuralDetector(part) for part in parts]  # a missing member fails before any scoring
    per_model = []
    for detector in detectors:
        per_model.append([])
        for clip in tqdm(neg + pos, desc=f"scoring {detector.model_path.name}", unit="clip", leave=False):
            detector.reset()
            per_model[-1].append(detector.process_bands(clip["x"].astype(np.float32),
                                                        clip["e"].astype(np.float32) if "e" in clip else None))
    scores = [ensemble_scores([m[k] for m in per_model]) for k in range(len(neg + pos))]
    # per clip, independent of the threshold: hop times and negative time (a room where someone sat down, too)
    times = [np.asarray(clip["t"], np.float64) for clip in neg + pos]
    neg_masks = [negative_hops(clip["motion"], t_s) for clip, t_s in zip(neg + pos, times)]
    neg_hops = sum(int(m.sum()) for m in neg_masks)
    base = PresenceConfig()
    if gap is not None:  # the defaults' strict threshold with a sensitive one ``gap`` below it; swept as a pair
        base = replace(base, sensitive_threshold=float(shift_logit(base.threshold, -gap)))
    rows = []
    for thr in thresholds:
        cfg = with_threshold(base, thr, sensitive="follow")
        alarms, clips_alarmed, neg_s, missed, majors, on_hops = 0, 0, 0.0, 0, 0, 0
        early, settled_neg_s, settled_majors, settled_missed = 0, 0.0, 0, 0
        for k, (clip, s, t_s, neg_mask) in enumerate(zip(neg + pos, scores, times, neg_masks)):
            motion = np.asarray(decisions_to_arrays(PresenceTracker(cfg).update(t_s, s))["motion"], bool)
            # a model whose scores hover near the sensitive threshold keeps motion on: an occupied room never empties
            on_hops += int((motion & neg_mask).sum())
            if k < len(neg):
                hops, seconds = clip_false_alarms(motion, clip)
                alarms, neg_s = alarms + len(hops), neg_s + seconds
                early += int((t_s[hops] < settled_s).sum())
                settled_neg_s += float((neg_mask & (t_s >= settled_s)).sum()) * HOP_S
                clips_alarmed += bool(len(hops))
            else:
                runs, lost = major_runs(clip["motion"]), missed_majors(motion, clip)
                majors, missed = majors + len(runs), missed + len(lost)
                settled_majors += sum(t_s[a] >= settled_s for a, _ in runs)
                settled_missed += sum(t_s[a] >= settled_s for a, _ in lost)
        rows.append({"threshold": thr, "alarms": alarms, "clips_alarmed": clips_alarmed, "clips_negative": len(neg),
                     "fa_per_h": alarms / (neg_s / 3600.0), "motion_on_share": on_hops / max(neg_hops, 1),
                     "early_alarms": early, "settled_fa_per_h": (alarms - early) / max(settled_neg_s / 3600.0, 1e-9),
                     "settled_h": settled_neg_s / 3600.0, "settled_majors": settled_majors,
                     "settled_found": settled_majors - settled_missed,
                     "found": majors - missed, "majors": majors, "negative_h": neg_s / 3600.0})
    return rows


def main(argv: list[str] | None = None) -> int:
    from uspd.evaluate.metrics import MetricsConfig

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--neg-pool", required=True, help="shards without people moving (false alarms)")
    p.add_argument("--pos-pool", required=True, help="shards with labelled major movements (recall)")
    p.add_argument("--models", nargs="+", default=["shipped"],
                   help="model files (.onnx, manifest beside); 'shipped' is the packaged model; 'A+B+C' is the "
                        "ensemble of those models (logits averaged: too large to ship, a reference for distillation)")
    p.add_argument("--thresholds", default="0.5,0.6,0.7,0.8,0.9,0.95,0.98",
                   help="strict [presence] thresholds to sweep (the default is 0.6)")
    p.add_argument("--sensitive-gap", type=float, default=None,
                   help="logit gap of the sensitive threshold below the strict one (default: the [presence] "
                        "defaults' gap, 1.02 for 0.6 / 0.35; 0 makes them equal)")
    p.add_argument("--settled-s", type=float, default=MetricsConfig.settled_s,  # as uspd evaluate reports it
                   help="also count false alarms only from this many seconds after each negative clip's start (s): "
                        "the detector has settled, as in a device that was already running")
    args = p.parse_args(argv)
    from uspd.errors import UspdError
    from uspd.train.data import load_shards, pool_role, read_manifest

    try:
        thresholds = [float(v) for v in args.thresholds.split(",")]
        if not all(0.0 < t < 1.0 for t in thresholds):
            raise ValueError
    except ValueError:
        print(f"error: --thresholds {args.thresholds}: comma-separated numbers between 0 and 1", file=sys.stderr)
        return 2
    if not 0.0 <= args.settled_s < float("inf"):
        print(f"error: --settled-s {args.settled_s}: a finite number of seconds >= 0", file=sys.stderr)
        return 2
    if args.sensitive_gap is not None and not (0.0 <= args.sensitive_gap < float("inf")):
        print(f"error: --sensitive-gap {args.sensitive_gap}: a finite number >= 0", file=sys.stderr)
        return 2
    try:
        roles = {pool: pool_role(read_manifest(pool)) for pool in (args.neg_pool, args.pos_pool)}
        neg, pos = load_shards(args.neg_pool), load_shards(args.pos_pool)
        results = {m: sweep(None if m == "shipped" else m, neg, pos, thresholds, args.sensitive_gap,
                            settled_s=args.settled_s) for m in args.models}
    except UspdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    first = next(iter(results.values()))
    print(f"false alarms per hour in {first[0]['negative_h']:.2f} h of {args.neg_pool} / major movements found of "
          f"{first[0]['majors']} in {args.pos_pool}, by strict threshold")
    for pool, role in roles.items():
        if role != "tune":
            print(f"note: {pool} is not a tuning pool (seeds 1000-1999, which 'uspd train' refuses): make sure no "
                  "candidate was trained on it")
    print(f"{'model':<32}" + "".join(f"{t:>16}" for t in thresholds))
    for m, rows in results.items():
        cells = "".join(f"{r['fa_per_h']:6.2f} /{100 * r['found'] / max(r['majors'], 1):5.1f} %  " for r in rows)
        print(f"{m[-32:]:<32}{cells}")
    # alarms cluster in a few clips (one fan-and-curtain clip can give half of a model's alarms), so the number of
    # negative clips that alarm at all separates close models more steadily than FA/h
    print(f"negative clips with any false alarm, of {first[0]['clips_negative']}")
    for m, rows in results.items():
        print(f"{m[-32:]:<32}" + "".join(f"{r['clips_alarmed']:>16}" for r in rows))
    # a clip starts with the front end and the model cold; a device that runs for hours is past that
    print(f"false alarms per hour from {args.settled_s:g} s after each negative clip's start "
          f"({first[0]['settled_h']:.2f} h)"
          f" / alarms in the first {args.settled_s:g} s")
    for m, rows in results.items():
        print(f"{m[-32:]:<32}" + "".join(f"{r['settled_fa_per_h']:7.2f} / {r['early_alarms']:<5d}  " for r in rows))
    if first[0]["settled_majors"]:
        print(f"major movements found of the {first[0]['settled_majors']} that start from {args.settled_s:g} s after "
              "their clip's start")
        for m, rows in results.items():
            print(f"{m[-32:]:<32}" + "".join(f"{100 * r['settled_found'] / r['settled_majors']:>15.1f}%" for r in rows))
    print("motion on, share of negative time in both pools (high: an occupied room would not go vacant)")
    for m, rows in results.items():
        print(f"{m[-32:]:<32}" + "".join(f"{100 * r['motion_on_share']:>15.1f}%" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
