"""Run the one pipeline over labelled recordings, collect decision streams, sweep thresholds at matched FA rates.

Detection only ever sees the WAV + sidecar (``uspd.pipeline.run_file``); labels are read afterwards, here, to score.
Processing time is the worker's CPU time (``time.process_time``) for the whole file, read included, so the
real-time factor means "audio seconds per CPU second" whatever else shares the machine.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from uspd.config import Config, load_config
from uspd.errors import UspdError
from uspd.evaluate.metrics import (ClipResult, MetricsConfig, false_alarm_metrics, interval_recall,
                                   major_metrics, minor_metrics)
from uspd.evaluate.parallel import imap_progress, single_thread_math
from uspd.evaluate.seeds import TRAIN_SEEDS, seed_role
from uspd.presence.tracker import Decision, PresenceConfig, PresenceTracker, decisions_to_arrays
from uspd.recording.format import read_sidecar, sidecar_path
from uspd.recording.labels import read_labels

log = logging.getLogger(__name__)


class EvaluationError(UspdError):
    """Nothing to evaluate, or a set that must not be evaluated."""


def find_recordings(root: str | os.PathLike) -> list[Path]:
    """Every ``NAME.wav`` under ``root`` (recursive, sorted) with a sidecar and labels beside it.

    Reference files (``*.ref.wav``) and hidden folders (temporary output) are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise EvaluationError(f"{root}: not a directory")
    out, skipped = [], 0
    for p in sorted(root.rglob("*.wav")):
        rel = p.relative_to(root)
        if p.name.endswith(".ref.wav") or any(part.startswith(".") for part in rel.parts):
            continue
        if sidecar_path(p).exists() and p.with_name(p.stem + ".labels.json").exists():
            out.append(p)
        else:
            skipped += 1
    if skipped:
        log.warning("%s: skipped %d WAV file(s) without a sidecar and labels", root, skipped)
    if not out:
        raise EvaluationError(f"{root}: no recordings with labels (NAME.wav + NAME.json + NAME.labels.json) found")
    return out


def check_seeds(wavs: Iterable[Path], allow_training: bool = False) -> dict[str, int]:
    """Count recordings by seed role (from ``dataset_seed`` in their labels); refuse training seeds."""
    roles: dict[str, int] = {}
    for w in wavs:
        labels = read_labels(w)
        seed = None if labels is None else labels.extra.get("dataset_seed")
        role = "unknown" if seed is None else seed_role(int(seed))
        if role == "train" and not allow_training:
            raise EvaluationError(f"{w}: made with training dataset seed {seed} (range {TRAIN_SEEDS.start}-"
                                  f"{TRAIN_SEEDS.stop - 1}); evaluate on seeds >= 9000 (or --allow-training-seeds)")
        roles[role] = roles.get(role, 0) + 1
    return roles


def _run_pipeline(wav: Path, config: Config, detector: str) -> list[Decision]:
    from uspd.pipeline import run_file  # the detection helper's module; imported late (heavy)

    decisions: list[Decision] = []

    def sink(x: Decision | list[Decision]) -> None:
        if isinstance(x, Decision):
            decisions.append(x)
        else:
            decisions.extend(x)

    run_file(wav, config, detector, sink)
    return decisions


def run_clip(wav: str | os.PathLike, config: Config, detector: str) -> ClipResult:
    """Run detector ``detector`` over one recording and pair the decisions with its labels."""
    wav = Path(wav)
    t0 = time.process_time()
    decisions = _run_pipeline(wav, config, detector)
    proc_s = time.process_time() - t0
    labels = read_labels(wav)
    if labels is None:
        raise EvaluationError(f"{wav}: no labels beside the recording")
    sc = read_sidecar(wav)
    cols = decisions_to_arrays(decisions)
    audio_s = float(labels.duration_s) if labels.duration_s else (float(cols["t"][-1]) if len(decisions) else 0.0)
    return ClipResult(name=str(wav), labels=labels, t_s=cols["t"], score=cols["score"], major=cols["major"],
                      motion=cols["motion"], presence=cols["presence"], audio_s=audio_s, processing_s=proc_s,
                      meta={"sample_rate": sc.sample_rate, "n_mics": len(sc.mic_positions_m)})


# --- parallel driver --------------------------------------------------------------------------------------------
_WORKER_CONFIG: Config | None = None


def _worker_init(config_path: str | None, in_worker: bool) -> None:
    global _WORKER_CONFIG
    if in_worker:
        single_thread_math()
    _WORKER_CONFIG = load_config(config_path)


def _worker_task(task: tuple[str, str]) -> tuple[str, str, ClipResult | None, str | None]:
    wav, det = task
    try:
        assert _WORKER_CONFIG is not None
        return wav, det, run_clip(wav, _WORKER_CONFIG, det), None
    except UspdError as exc:
        return wav, det, None, str(exc)


def run_all(wavs: list[Path], detectors: list[str], config_path: str | None = None, workers: int = 1,
            progress: bool = True) -> dict[str, list[ClipResult]]:
    """{detector: [ClipResult in ``wavs`` order]}; ``workers`` processes (1 = in this process)."""
    tasks = [(str(w), d) for d in detectors for w in wavs]
    results: dict[tuple[str, str], ClipResult] = {}
    for wav, det, res, err in imap_progress(_worker_task, tasks, workers, _worker_init, (config_path, workers > 1),
                                            desc="evaluate", progress=progress):
        if err is not None:
            raise EvaluationError(err)
        results[(wav, det)] = res
    return {d: [results[(str(w), d)] for w in wavs] for d in detectors}


# --- re-running the presence logic on stored scores -------------------------------------------------------------
def rescore(clip: ClipResult, config: PresenceConfig) -> ClipResult:
    """The same clip with motion/presence recomputed from its stored scores under ``config`` (cheap)."""
    tracker = PresenceTracker(config)
    major = np.nan_to_num(clip.major, nan=1.0)
    cols = decisions_to_arrays(tracker.update(clip.t_s, _Scores(clip.score, major)))
    return dataclasses.replace(clip, motion=cols["motion"], presence=cols["presence"])


@dataclasses.dataclass
class _Scores:
    score: np.ndarray
    major: np.ndarray


def with_threshold(config: PresenceConfig, threshold: float) -> PresenceConfig:
    """``config`` with the strict threshold set to ``threshold`` (the sensitive one capped at it)."""
    return dataclasses.replace(config, threshold=float(threshold),
                               sensitive_threshold=min(config.sensitive_threshold, float(threshold)))


def operating_point(clips: list[ClipResult], config: PresenceConfig, threshold: float,
                    mcfg: MetricsConfig) -> dict[str, Any]:
    """FA/h, alarms and major/minor recall at strict ``threshold``."""
    cs = [rescore(c, with_threshold(config, threshold)) for c in clips]
    fa = false_alarm_metrics(cs, mcfg)
    major, minor = major_metrics(cs, mcfg), minor_metrics(cs, mcfg)
    return {"threshold": float(threshold), "fa_per_h": fa["fa_per_h"], "alarms": fa["alarms"],
            "negative_h": fa["negative_h"], "motion_fraction": fa["motion_fraction"],
            "major_recall": major["recall"], "minor_recall": minor["recall"]}


def matched_fa(clips: list[ClipResult], config: PresenceConfig, targets_per_h: list[float],
               mcfg: MetricsConfig | None = None, iterations: int = 12) -> list[dict[str, Any]]:
    """For each target FA/h: the lowest strict threshold whose FA/h <= target (bisection; FA/h falls as the
    threshold rises) and the recall there. ``threshold`` None when even 1.0 gives too many alarms."""
    mcfg = mcfg or MetricsConfig()
    cache: dict[float, dict[str, Any]] = {}

    def at(thr: float) -> dict[str, Any]:
        if thr not in cache:
            cache[thr] = operating_point(clips, config, thr, mcfg)
        return cache[thr]

    def fa(thr: float) -> float:
        v = at(thr)["fa_per_h"]
        return 0.0 if v is None else v

    out = []
    for target in targets_per_h:
        lo, hi = 0.0, 1.0
        if fa(hi) > target:
            out.append({"target_fa_per_h": target, **{k: None for k in at(hi)}, "reachable": False})
            continue
        for _ in range(iterations):
            mid = round(0.5 * (lo + hi), 6)
            if fa(mid) <= target:
                hi = mid
            else:
                lo = mid
        out.append({"target_fa_per_h": target, **at(hi), "reachable": True})
    return out


def misses_and_alarms(clips: list[ClipResult], mcfg: MetricsConfig, limit: int = 200) -> dict[str, list]:
    """Missed major/minor intervals and false-alarm times per clip, for the JSON report (at most ``limit`` each)."""
    from uspd.evaluate.metrics import false_alarm_indices, negative_mask

    missed = []
    for kind in ("major", "minor"):
        for c in clips:
            for iv, d in interval_recall([c], mcfg, kind):
                if d is None:
                    missed.append({"clip": c.name, "kind": kind, "start_s": iv.start_s, "end_s": iv.end_s,
                                   "distance_m": iv.distance_m, "action": iv.action})
    alarms = []
    for c in clips:
        idx = false_alarm_indices(c.t_s, c.motion, negative_mask(c, mcfg), mcfg.cooldown_s)
        alarms += [{"clip": c.name, "t": float(c.t_s[i]), "score": float(c.score[i]),
                    "active": sorted({iv.kind for iv in c.labels.intervals if iv.start_s <= c.t_s[i] <= iv.end_s})}
                   for i in idx]
    return {"missed_intervals": missed[:limit], "false_alarm_events": alarms[:limit]}
