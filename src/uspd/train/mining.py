"""The data loop: a seed model sifts a pool of unlabelled-for-motion negative audio for its own false alarms, and the
stretches around them become extra training data ("capture the rare, confusing events automatically, retrain").

``mine_false_alarms(pool_dir, out_dir, model)`` runs the model over every clip of a training-shard pool exactly as it
runs live (the streaming :class:`uspd.detector.neural.NeuralDetector` steps and the :class:`uspd.presence.tracker.
PresenceTracker` with the ``[presence]`` defaults), counts false alarms as the evaluation does (rising edges of motion
in negative time, ``cooldown_s`` apart, after ``warmup_s``), and writes the hops from ``before_s`` before to ``after_s``
after each alarm, ``repeat`` times, as shards in ``out_dir`` (same format as ``uspd dataset train``; the crop sampler
draws by length, so ``repeat`` is the extra weight). The seed model's false alarms per hour on the pool are the
loop's measured result.

With ``misses=True`` it also keeps the seed model's *hard positives*: every labelled major movement (a run of
``motion == MAJOR`` hops, as the evaluation's major intervals) that no motion decision covers within the evaluation's
grace (:func:`uspd.evaluate.metrics.interval_delay` returns None), from ``before_s`` before its start to ``after_s``
after its end. Mining false alarms alone teaches "a confuser is there, so nobody moves"; the misses (walkers beside
vacuums, slow walkers) pull the other way.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from uspd.errors import UspdError
from uspd.evaluate.metrics import MetricsConfig, false_alarm_indices, interval_delay
from uspd.train.data import LABEL_KEYS, load_shards, read_manifest, shard_path
from uspd.train.labels import MAJOR

#: Hop length of the features (s).
HOP_S = 0.05


def negative_hops(motion: np.ndarray, t_s: np.ndarray, mcfg: MetricsConfig = MetricsConfig()) -> np.ndarray:
    """(F,) bool: hops in negative time: after ``mcfg.warmup_s``, and not within ``mcfg.margin_before_s`` /
    ``margin_after_s`` of a motion hop (as :func:`uspd.evaluate.metrics.negative_mask` treats labelled intervals)."""
    moving = np.asarray(motion) > 0
    near = np.zeros(moving.size, bool)
    before, after = int(round(mcfg.margin_before_s / HOP_S)), int(round(mcfg.margin_after_s / HOP_S))
    for i in np.flatnonzero(moving):
        near[max(0, i - before): i + after + 1] = True
    return (np.asarray(t_s) >= mcfg.warmup_s) & ~near


def major_runs(motion: np.ndarray) -> list[tuple[int, int]]:
    """[(first, last)] hop indices of each run of ``motion == MAJOR`` (the labelled major movements)."""
    m = np.concatenate([[False], np.asarray(motion) == MAJOR, [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def clip_decisions(detector, clip: dict[str, Any], presence_config=None) -> tuple[np.ndarray, np.ndarray]:
    """Run ``detector`` (a NeuralDetector, reset here) and a PresenceTracker over one clip's band features, as live.
    Returns (motion decisions (F,) bool, scores (F,))."""
    from uspd.presence.tracker import PresenceTracker, decisions_to_arrays

    detector.reset()
    scores = detector.process_bands(clip["x"].astype(np.float32),
                                    clip["e"].astype(np.float32) if "e" in clip else None)
    decisions = PresenceTracker(presence_config).update(np.asarray(clip["t"], np.float64), scores)
    return np.asarray(decisions_to_arrays(decisions)["motion"], bool), scores.score


def clip_false_alarms(motion: np.ndarray, clip: dict[str, Any], mcfg: MetricsConfig = MetricsConfig()
                      ) -> tuple[np.ndarray, float]:
    """(alarm hop indices, negative seconds) of the decisions ``motion`` (F,) over one clip, counted as evaluated."""
    t_s = np.asarray(clip["t"], np.float64)
    neg = negative_hops(clip["motion"], t_s, mcfg)
    return false_alarm_indices(t_s, motion, neg, mcfg.cooldown_s), float(neg.sum()) * HOP_S


def missed_majors(motion: np.ndarray, clip: dict[str, Any], mcfg: MetricsConfig = MetricsConfig()
                  ) -> list[tuple[int, int]]:
    """[(first, last)] hops of the clip's labelled major movements that the decisions ``motion`` (F,) miss."""
    t_s = np.asarray(clip["t"], np.float64)
    return [(a, b) for a, b in major_runs(clip["motion"])
            if interval_delay(t_s, motion, float(t_s[a]), float(t_s[b]), mcfg.grace_s) is None]


def _segment(clip: dict[str, Any], a: int, b: int) -> dict[str, np.ndarray]:
    keys = ("x", "e", "t", *LABEL_KEYS) if "e" in clip else ("x", "t", *LABEL_KEYS)
    return {k: clip[k][a:b] for k in keys}


def mine_false_alarms(pool_dir: str | os.PathLike, out_dir: str | os.PathLike, model_path: str | None = None,
                      before_s: float = 20.0, after_s: float = 10.0, repeat: int = 2, clips_per_shard: int = 64,
                      progress: bool = True, misses: bool = False, alarms: bool = True) -> dict[str, Any]:
    """Mine the seed model's false alarms (and with ``misses``, its missed major movements) in ``pool_dir`` into
    ``out_dir`` (see the module doc). ``alarms=False`` counts the false alarms but keeps only the misses: in a pool
    with people in it the gaps between labelled movements hold small unlabelled ones, which must not become
    negatives. Returns the summary also written to ``out_dir/manifest.json``."""
    from tqdm import tqdm

    from uspd.detector.neural import NeuralDetector

    if not (before_s >= 0 and after_s >= 0 and math.isfinite(before_s + after_s) and before_s + after_s > 0):
        raise UspdError(f"mining: --before-s {before_s} and --after-s {after_s} must be finite, non-negative and "
                        "not both 0")
    if repeat < 1:
        raise UspdError(f"mining: --repeat {repeat}: must be at least 1")
    if not (alarms or misses):
        raise UspdError("mining: keeping neither false alarms nor misses would mine nothing")
    pool_dir, out_dir = Path(pool_dir), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UspdError(f"{out_dir}: not a folder; --out must be a new folder")
    if out_dir.exists() and any(out_dir.glob("shard_*.npz")):
        raise UspdError(f"{out_dir}: already holds shards; use a new --out")
    clips = load_shards(pool_dir)
    detector = NeuralDetector(model_path)
    segments: list[tuple[dict, dict]] = []
    negative_s = 0.0
    alarms_total = majors_total = misses_total = 0
    by_confuser: dict[str, int] = {}
    misses_by_kind: dict[str, int] = {}
    mcfg = MetricsConfig()
    before, after = int(round(before_s / HOP_S)), int(round(after_s / HOP_S))

    def keep(clip: dict, first: int, last: int, what: str, score: np.ndarray) -> None:
        a, b = max(0, first - before), min(clip["x"].shape[0], last + after + 1)
        meta = {**{k: v for k, v in clip["meta"].items() if k != "spec"}, "mined": what,
                "mined_at_s": float(clip["t"][first]), "mined_score": float(np.max(score[first:last + 1])),
                "segment_hops": [a, b], "duration_s": (b - a) * HOP_S, "n_hops": b - a}
        segments.append((_segment(clip, a, b), meta))

    for clip in tqdm(clips, desc="mining", unit="clip", disable=not progress):
        motion, score = clip_decisions(detector, clip)
        alarm_hops, neg_s = clip_false_alarms(motion, clip, mcfg)
        negative_s += neg_s
        alarms_total += len(alarm_hops)
        for i in alarm_hops:
            for name in clip["meta"].get("confusers", []):
                by_confuser[name] = by_confuser.get(name, 0) + 1
            if alarms:
                keep(clip, int(i), int(i), "false alarm", score)
        if misses:
            majors_total += len(major_runs(clip["motion"]))
            for first, last in missed_majors(motion, clip, mcfg):
                misses_total += 1
                kind = str(clip["meta"].get("kind"))
                misses_by_kind[kind] = misses_by_kind.get(kind, 0) + 1
                keep(clip, first, last, "missed major", score)
    out_dir.mkdir(parents=True, exist_ok=True)
    pool_info = read_manifest(pool_dir)
    items = [s for s in segments for _ in range(repeat)]
    n_shards = math.ceil(len(items) / clips_per_shard)
    for k in range(n_shards):
        part = items[k * clips_per_shard:(k + 1) * clips_per_shard]
        arrays = {f"{key}_{j}": v for j, (seg, _) in enumerate(part) for key, v in seg.items()}
        arrays["meta"] = np.array(json.dumps([meta for _, meta in part]))
        path = shard_path(out_dir, k)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    hours = negative_s / 3600.0
    summary = {
        "mined_from": str(pool_dir), "seed_model": str(detector.model_path), "features": pool_info.get("features"),
        "seed": pool_info.get("seed"),
        "pool_clips": len(clips), "pool_negative_h": round(hours, 3), "false_alarms": alarms_total,
        "fa_per_h": round(alarms_total / hours, 3) if hours > 0 else None,
        "false_alarms_by_confuser": dict(sorted(by_confuser.items(), key=lambda kv: -kv[1])),
        "major_movements": majors_total if misses else None, "missed_majors": misses_total if misses else None,
        "missed_majors_by_kind": dict(sorted(misses_by_kind.items(), key=lambda kv: -kv[1])) if misses else None,
        "kept": ["false alarm"] * alarms + ["missed major"] * misses,
        "segments": len(segments), "repeat": repeat, "before_s": before_s, "after_s": after_s,
        "mined_h": round(sum(seg["x"].shape[0] for seg, _ in segments) * HOP_S / 3600.0 * repeat, 3),
        "command": "uspd " + " ".join(sys.argv[1:]) if "mine" in sys.argv[1:] else "",
    }
    (out_dir / "manifest.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


__all__ = ["mine_false_alarms", "clip_false_alarms", "clip_decisions", "missed_majors", "major_runs",
           "negative_hops"]
