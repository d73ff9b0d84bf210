"""The data loop: a seed model sifts a pool of unlabelled-for-motion negative audio for its own false alarms, and the
stretches around them become extra training data ("capture the rare, confusing events automatically, retrain").

``mine_false_alarms(pool_dir, out_dir, model)`` runs the model over every clip of a training-shard pool exactly as it
runs live (the streaming :class:`uspd.detector.neural.NeuralDetector` steps and the :class:`uspd.presence.tracker.
PresenceTracker` with the ``[presence]`` defaults), counts false alarms as the evaluation does (rising edges of motion
in negative time, ``cooldown_s`` apart, after ``warmup_s``), and writes the hops from ``before_s`` before to ``after_s``
after each alarm, ``repeat`` times, as shards in ``out_dir`` (same format as ``uspd dataset train``; the crop sampler
draws by length, so ``repeat`` is the extra weight). The seed model's false alarms per hour on the pool are the
loop's measured result.
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
from uspd.evaluate.metrics import MetricsConfig, false_alarm_indices
from uspd.train.data import LABEL_KEYS, load_shards, shard_path

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


def clip_false_alarms(detector, clip: dict[str, Any], presence_config=None, mcfg: MetricsConfig = MetricsConfig()
                      ) -> tuple[np.ndarray, np.ndarray, float]:
    """Run ``detector`` (a NeuralDetector, reset here) and a PresenceTracker over one clip's band features.
    Returns (alarm hop indices, scores (F,), negative seconds)."""
    from uspd.presence.tracker import PresenceTracker, decisions_to_arrays

    detector.reset()
    scores = detector.process_bands(clip["x"].astype(np.float32),
                                    clip["e"].astype(np.float32) if "e" in clip else None)
    t_s = np.asarray(clip["t"], np.float64)
    decisions = PresenceTracker(presence_config).update(t_s, scores)
    motion = decisions_to_arrays(decisions)["motion"]
    neg = negative_hops(clip["motion"], t_s, mcfg)
    alarms = false_alarm_indices(t_s, motion, neg, mcfg.cooldown_s)
    return alarms, scores.score, float(neg.sum()) * HOP_S


def _segment(clip: dict[str, Any], a: int, b: int) -> dict[str, np.ndarray]:
    keys = ("x", "e", "t", *LABEL_KEYS) if "e" in clip else ("x", "t", *LABEL_KEYS)
    return {k: clip[k][a:b] for k in keys}


def mine_false_alarms(pool_dir: str | os.PathLike, out_dir: str | os.PathLike, model_path: str | None = None,
                      before_s: float = 20.0, after_s: float = 10.0, repeat: int = 2, clips_per_shard: int = 64,
                      progress: bool = True) -> dict[str, Any]:
    """Mine the seed model's false alarms in ``pool_dir`` into ``out_dir`` (see the module doc). Returns the summary
    also written to ``out_dir/manifest.json``."""
    from tqdm import tqdm

    from uspd.detector.neural import NeuralDetector

    if not (before_s >= 0 and after_s >= 0 and math.isfinite(before_s + after_s) and before_s + after_s > 0):
        raise UspdError(f"mining: --before-s {before_s} and --after-s {after_s} must be finite, non-negative and "
                        "not both 0")
    if repeat < 1:
        raise UspdError(f"mining: --repeat {repeat}: must be at least 1")
    pool_dir, out_dir = Path(pool_dir), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UspdError(f"{out_dir}: not a folder; --out must be a new folder")
    if out_dir.exists() and any(out_dir.glob("shard_*.npz")):
        raise UspdError(f"{out_dir}: already holds shards; use a new --out")
    clips = load_shards(pool_dir)
    detector = NeuralDetector(model_path)
    segments: list[tuple[dict, dict]] = []
    negative_s = 0.0
    alarms_total = 0
    by_confuser: dict[str, int] = {}
    for clip in tqdm(clips, desc="mining", unit="clip", disable=not progress):
        alarms, score, neg_s = clip_false_alarms(detector, clip)
        negative_s += neg_s
        alarms_total += len(alarms)
        n = clip["x"].shape[0]
        for i in alarms:
            a = max(0, int(i - round(before_s / HOP_S)))
            b = min(n, int(i + round(after_s / HOP_S)) + 1)
            meta = {**{k: v for k, v in clip["meta"].items() if k != "spec"}, "mined_at_s": float(clip["t"][i]),
                    "mined_score": float(score[i]), "segment_hops": [a, b], "duration_s": (b - a) * HOP_S,
                    "n_hops": b - a}
            for name in clip["meta"].get("confusers", []):
                by_confuser[name] = by_confuser.get(name, 0) + 1
            segments.append((_segment(clip, a, b), meta))
    out_dir.mkdir(parents=True, exist_ok=True)
    pool_manifest = pool_dir / "manifest.json"
    pool_info = json.loads(pool_manifest.read_text(encoding="utf-8")) if pool_manifest.exists() else {}
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
        "segments": len(segments), "repeat": repeat, "before_s": before_s, "after_s": after_s,
        "mined_h": round(sum(seg["x"].shape[0] for seg, _ in segments) * HOP_S / 3600.0 * repeat, 3),
        "command": "uspd " + " ".join(sys.argv[1:]) if "mine" in sys.argv[1:] else "",
    }
    (out_dir / "manifest.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


__all__ = ["mine_false_alarms", "clip_false_alarms", "negative_hops"]
