"""Run the one pipeline over labelled recordings, collect decision streams, sweep operating points.

Detection only ever sees the WAV + sidecar (``uspd.pipeline.run_file``); labels are read afterwards, here, to score.
Processing time is the worker's CPU time (``time.process_time``) for the whole file, read included, so the
real-time factor means "audio seconds per CPU second" whatever else shares the machine.

Operating points (:func:`sweep`) re-run only the presence tracker on the stored per-hop scores, over the strict
threshold (bisected on the logit scale: scores pile up near 1) x ``debounce_hops`` (a longer debounce separates short
confuser bursts from walks even when both score 0.999+):

* **recall at matched FA/h** (``matched_fa``): per target and debounce, the lowest threshold with FA/h <= target;
  reported is the debounce with the best major recall (then minor recall);
* **FA/h at recall** (``fa_at_recall``): per major-recall level and debounce, the highest threshold that still
  reaches it; reported is the lowest FA/h. With two detectors the report gives the ratio of their FA/h at each level
  (the issue's "10x fewer false alarms at the classic one's recall").

Points with motion on for more than ``max_motion_fraction`` of the negative time are not admissible: the event-based
FA/h counts a detector stuck on only once per stretch of negative time.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

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
                      meta={"sample_rate": sc.sample_rate, "n_mics": len(sc.mic_positions_m)}, mover=cols.get("mover"))


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
    """{detector: [ClipResult in ``wavs`` order]}; ``workers`` processes (1 = in this process). Each detector is
    built once first, so a bad ``[detector]`` setting (e.g. a missing model) fails before any recording is run."""
    from uspd.detector.base import make_detector

    detector_config = load_config(config_path).detector
    for name in detectors:
        make_detector(name, detector_config)
    tasks = [(str(w), d) for d in detectors for w in wavs]
    results: dict[tuple[str, str], ClipResult] = {}
    for wav, det, res, err in imap_progress(_worker_task, tasks, workers, _worker_init, (config_path, workers > 1),
                                            desc="evaluate", progress=progress):
        if err is not None:
            raise EvaluationError(err)
        results[(wav, det)] = res
    return {d: [results[(str(w), d)] for w in wavs] for d in detectors}


# --- re-running the presence logic on stored scores -------------------------------------------------------------
#: Debounce lengths (hops) the operating-point sweep tries (``--debounce-grid``).
DEBOUNCE_GRID_HOPS = (1, 2, 3, 4, 6, 8, 12, 16, 24)
#: Major-recall levels of the FA-at-recall view (``--recall-levels``).
RECALL_LEVELS = (0.8, 0.9, 0.95)
#: Bisection halvings of the threshold per search.
SWEEP_STEPS = 8
#: Operating points with motion on for more of the negative time than this are not admissible in the sweep.
MAX_MOTION_FRACTION = 0.05
#: Thresholds are bisected on the logit scale between these ends (~0.0009 and 1.0 itself): scores pile up near 1,
#: where a linear step of 1/256 could not tell 0.999 from 0.9999 (one logit step of the 8-halving search is 0.08).
LOGIT_RANGE = (-7.0, 14.0)


def rescore(clip: ClipResult, config: PresenceConfig) -> ClipResult:
    """The same clip with motion/presence recomputed from its stored scores under ``config`` (cheap).

    The tracker starts at the first run of ``debounce_hops`` consecutive scores >= ``threshold``: before it nothing
    can start motion (the room is vacant, so the strict threshold holds), and the tracker's state at that hop equals
    a new tracker's (no motion yet, debounce count 0), so the output is the full run's, without the idle prefix.
    """
    n = len(clip.t_s)
    start = first_run_start(clip.score, config.threshold, config.debounce_hops)
    motion, presence = np.zeros(n, bool), np.zeros(n, bool)
    if start < n:
        major = np.nan_to_num(clip.major[start:], nan=1.0)
        cols = decisions_to_arrays(PresenceTracker(config).update(clip.t_s[start:], _Scores(clip.score[start:], major)))
        motion[start:], presence[start:] = cols["motion"], cols["presence"]
    return dataclasses.replace(clip, motion=motion, presence=presence)


def first_run_start(score: np.ndarray, threshold: float, hops: int) -> int:
    """Index of the first hop of the first ``hops`` consecutive ``score >= threshold`` (``len(score)`` if none)."""
    above = np.asarray(score, dtype=float) >= threshold
    hops = max(1, int(hops))
    if len(above) < hops:
        return len(above)
    counts = np.concatenate([[0], np.cumsum(above)])
    full = np.flatnonzero(counts[hops:] - counts[:-hops] == hops)
    return int(full[0]) if len(full) else len(above)


@dataclasses.dataclass
class _Scores:
    score: np.ndarray
    major: np.ndarray


#: How the sensitive threshold moves with the swept strict one: ``cap`` keeps the config's value (capped at the strict
#: threshold); ``follow`` keeps the config's gap between the two on the logit scale (0.6 / 0.35: 1.02).
SENSITIVE_MODES = ("follow", "cap")


def _logit(p: float) -> float:
    p = min(max(float(p), 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def with_threshold(config: PresenceConfig, threshold: float, debounce_hops: int | None = None,
                   sensitive: str = SENSITIVE_MODES[0]) -> PresenceConfig:
    """``config`` with the strict threshold set to ``threshold``, the sensitive one moved as ``sensitive`` says
    (:data:`SENSITIVE_MODES`; never above the strict one) and, if given, ``debounce_hops``."""
    if sensitive not in SENSITIVE_MODES:
        raise ValueError(f"sensitive must be one of {SENSITIVE_MODES}, got {sensitive!r}")
    thr = float(threshold)
    sens = config.sensitive_threshold
    if sensitive == "follow":
        gap = _logit(config.threshold) - _logit(config.sensitive_threshold)
        sens = 1.0 if thr >= 1.0 else _sigmoid(_logit(thr) - gap)
    return dataclasses.replace(config, threshold=thr, sensitive_threshold=min(sens, thr),
                               debounce_hops=config.debounce_hops if debounce_hops is None else int(debounce_hops))


class OperatingPoints:
    """Metrics of ``clips`` re-scored at (strict threshold, debounce_hops), cached.

    The tracker sees a clip's scores only through ``score >= threshold`` and ``score >= sensitive_threshold``, so a
    clip is re-run only when one of those two hop sets changes (their sizes, counted on the sorted scores, tell:
    the sets are nested in the threshold). Re-scored clips are kept for the current debounce only (memory).
    """

    def __init__(self, clips: list[ClipResult], config: PresenceConfig, mcfg: MetricsConfig | None = None,
                 sensitive: str = SENSITIVE_MODES[0]):
        self.clips, self.config, self.mcfg, self.sensitive = clips, config, mcfg or MetricsConfig(), sensitive
        self._sorted = [np.sort(np.asarray(c.score, dtype=float)) for c in clips]
        self._points: dict[tuple[float, int], dict[str, Any]] = {}
        self._rescored: list[dict[tuple[int, int], ClipResult]] = [{} for _ in clips]
        self._debounce: int | None = None
        self.tracker_runs = 0  # clips actually re-run (for tests and tuning)

    def _clip(self, i: int, cfg: PresenceConfig) -> ClipResult:
        s = self._sorted[i]
        key = (len(s) - int(np.searchsorted(s, cfg.threshold)),
               len(s) - int(np.searchsorted(s, cfg.sensitive_threshold)))
        if key not in self._rescored[i]:
            self._rescored[i][key] = rescore(self.clips[i], cfg)
            self.tracker_runs += 1
        return self._rescored[i][key]

    def at(self, threshold: float, debounce_hops: int | None = None) -> dict[str, Any]:
        """threshold, sensitive_threshold, debounce_hops, FA/h, alarms, negative_h, motion_fraction, major/minor/entry
        recall and the median major delay (s) at strict ``threshold`` (default debounce: the config's)."""
        debounce_hops = self.config.debounce_hops if debounce_hops is None else int(debounce_hops)
        key = (float(threshold), debounce_hops)
        if key not in self._points:
            if debounce_hops != self._debounce:
                self._rescored = [{} for _ in self.clips]
                self._debounce = debounce_hops
            cfg = with_threshold(self.config, threshold, debounce_hops, self.sensitive)
            cs = [self._clip(i, cfg) for i in range(len(self.clips))]
            fa = false_alarm_metrics(cs, self.mcfg)
            major, minor = major_metrics(cs, self.mcfg), minor_metrics(cs, self.mcfg)
            self._points[key] = {
                "threshold": float(threshold), "sensitive_threshold": cfg.sensitive_threshold,
                "debounce_hops": debounce_hops, "fa_per_h": fa["fa_per_h"],
                "alarms": fa["alarms"], "negative_h": fa["negative_h"], "motion_fraction": fa["motion_fraction"],
                "major_recall": major["recall"], "minor_recall": minor["recall"],
                "entry_recall": major["entry"]["recall"], "delay_median_s": major["delay_s"]["median"]}
        return self._points[key]

    def at_logit(self, x: float, debounce_hops: int) -> dict[str, Any]:
        """:meth:`at` the threshold ``sigmoid(x)`` (1.0 at the top of :data:`LOGIT_RANGE`)."""
        return self.at(1.0 if x >= LOGIT_RANGE[1] else _sigmoid(x), debounce_hops)


def _edge(ok: Callable[[float], bool], good: float, bad: float, steps: int) -> float | None:
    """Bisection between the ``good`` and ``bad`` ends: the x nearest ``bad`` with ``ok(x)`` after ``steps``
    halvings (``bad`` itself if ok there; None if not even ``good`` is ok)."""
    if not ok(good):
        return None
    if ok(bad):
        return bad
    for _ in range(steps):
        mid = 0.5 * (good + bad)
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good


def _fa(point: dict[str, Any]) -> float:
    return 0.0 if point["fa_per_h"] is None else point["fa_per_h"]


def _recall(point: dict[str, Any], key: str = "major_recall") -> float:
    return -1.0 if point[key] is None else point[key]


_POINT_KEYS = ("threshold", "sensitive_threshold", "debounce_hops", "fa_per_h", "alarms", "negative_h",
               "motion_fraction", "major_recall", "minor_recall", "entry_recall", "delay_median_s")


@dataclasses.dataclass
class _Search:
    """One row of the sweep: ``key: value`` (a target FA/h or a recall level), searched per debounce from the
    ``good`` to the ``bad`` end of the logit range while ``ok(point)``."""

    key: str
    value: float
    good: float
    bad: float
    ok: Callable[[dict[str, Any]], bool]
    found: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    grid: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def best(self, rank: Callable[[dict[str, Any]], tuple]) -> dict[str, Any]:
        """The found point ranked lowest, or a row of None (``reachable`` false); with the per-debounce points."""
        point = min(self.found, key=rank) if self.found else {k: None for k in _POINT_KEYS}
        return {self.key: self.value, **point, "reachable": bool(self.found), "by_debounce": self.grid}


def _rank_by_recall(p: dict[str, Any]) -> tuple:
    return -_recall(p), -_recall(p, "minor_recall"), _fa(p), p["debounce_hops"]


def _rank_by_fa(p: dict[str, Any]) -> tuple:
    return _fa(p), -_recall(p), -_recall(p, "minor_recall"), p["debounce_hops"]


def _admissible(point: dict[str, Any], max_motion_fraction: float) -> bool:
    """Motion on for at most ``max_motion_fraction`` of the negative time (see :func:`sweep`)."""
    return point["motion_fraction"] is None or point["motion_fraction"] <= max_motion_fraction


def _search_rows(targets_per_h: Iterable[float], recall_levels: Iterable[float],
                 max_motion_fraction: float) -> list[_Search]:
    """The sweep's rows: one per target FA/h (searched from the top of the logit range down), then one per
    major-recall level (from the bottom up)."""
    lo, hi = LOGIT_RANGE
    return ([_Search("target_fa_per_h", float(t), hi, lo,
                     lambda p, t=float(t): _fa(p) <= t and _admissible(p, max_motion_fraction))
             for t in targets_per_h]
            + [_Search("major_recall_level", float(r), lo, hi, lambda p, r=float(r): _recall(p) >= r)
               for r in recall_levels])


def _search_debounce(points: OperatingPoints, rows: list[_Search], debounce_hops: int, steps: int,
                     max_motion_fraction: float) -> list[dict[str, Any] | None]:
    """Each row's admissible operating point at ``debounce_hops`` (None where there is none)."""
    out = []
    for row in rows:
        x = _edge(lambda x, row=row: row.ok(points.at_logit(x, debounce_hops)), row.good, row.bad, steps)
        point = None if x is None else points.at_logit(x, debounce_hops)
        out.append(point if point is not None and _admissible(point, max_motion_fraction) else None)
    return out


_SWEEP_JOB: dict[str, Any] = {}  # a sweep worker's clips and settings (set once per worker process)


def _sweep_init(job: dict[str, Any], in_worker: bool) -> None:
    if in_worker:
        single_thread_math()
    _SWEEP_JOB.clear()
    _SWEEP_JOB.update(job, points=OperatingPoints(job["clips"], job["config"], job["mcfg"], job["sensitive"]),
                      rows=_search_rows(job["targets"], job["levels"], job["max_motion_fraction"]))


def _sweep_task(debounce_hops: int) -> tuple[int, list[dict[str, Any] | None]]:
    job = _SWEEP_JOB
    return debounce_hops, _search_debounce(job["points"], job["rows"], debounce_hops, job["steps"],
                                           job["max_motion_fraction"])


def sweep(clips: list[ClipResult], config: PresenceConfig, targets_per_h: Iterable[float] = (),
          recall_levels: Iterable[float] = (), mcfg: MetricsConfig | None = None,
          debounce_grid: Iterable[int] = DEBOUNCE_GRID_HOPS, steps: int = SWEEP_STEPS,
          max_motion_fraction: float = MAX_MOTION_FRACTION, sensitive: str = SENSITIVE_MODES[0], progress: bool = False,
          desc: str = "sweep", workers: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Operating points over (strict threshold x ``debounce_hops`` in ``debounce_grid``) on the stored scores.

    ``matched_fa``: for each target FA/h and each debounce, the lowest threshold with FA/h <= target (bisection,
    ``steps`` halvings on the logit scale); of those, the one with the best major recall (ties: minor recall, then
    fewer false alarms, then the shorter debounce). ``fa_at_recall``: for each major-recall level and each debounce,
    the highest threshold whose major recall still reaches the level; of those, the lowest FA/h (ties: better
    recall, shorter debounce). Points with motion on for more than ``max_motion_fraction`` of the negative time are
    not admissible (a detector stuck on raises few "rising edge" alarms). ``sensitive``: :func:`with_threshold`.
    Each entry also lists its per-debounce points (``by_debounce``). The debounce lengths are searched in ``workers``
    processes (each gets the clips once); the result does not depend on ``workers``.
    """
    targets, levels = [float(t) for t in targets_per_h], [float(r) for r in recall_levels]
    rows = _search_rows(targets, levels, max_motion_fraction)
    grid = sorted({int(v) for v in debounce_grid})
    job = {"clips": clips, "config": config, "mcfg": mcfg or MetricsConfig(), "sensitive": sensitive,
           "targets": targets, "levels": levels, "steps": steps, "max_motion_fraction": max_motion_fraction}
    found = dict(imap_progress(_sweep_task, grid, workers if rows else 1, _sweep_init, (job, workers > 1),
                               desc=desc, unit="debounce", progress=progress))
    _SWEEP_JOB.clear()  # the clips are not kept beyond the sweep
    for d in grid:  # in debounce order whatever order the workers finished in
        for row, point in zip(rows, found[d]):
            if point is not None:
                row.found.append(point)
                row.grid.append({**point, "reachable": True})
            else:
                row.grid.append({"debounce_hops": d, "reachable": False})
    return {"matched_fa": [row.best(_rank_by_recall) for row in rows[:len(targets)]],
            "fa_at_recall": [row.best(_rank_by_fa) for row in rows[len(targets):]]}


def matched_fa(clips: list[ClipResult], config: PresenceConfig, targets_per_h: list[float],
               mcfg: MetricsConfig | None = None, **kw: Any) -> list[dict[str, Any]]:
    """The ``matched_fa`` part of :func:`sweep`: per target FA/h, the best-recall operating point (``threshold``
    None and ``reachable`` false when no threshold and debounce keep FA/h at the target)."""
    return sweep(clips, config, targets_per_h, (), mcfg, **kw)["matched_fa"]


def fa_at_recall(clips: list[ClipResult], config: PresenceConfig, recall_levels: list[float],
                 mcfg: MetricsConfig | None = None, **kw: Any) -> list[dict[str, Any]]:
    """The ``fa_at_recall`` part of :func:`sweep`: per major-recall level, the operating point with the fewest
    false alarms that still reaches it."""
    return sweep(clips, config, (), recall_levels, mcfg, **kw)["fa_at_recall"]


def misses_and_alarms(clips: list[ClipResult], mcfg: MetricsConfig, limit: int = 200) -> dict[str, list]:
    """For the JSON report: missed major/minor intervals and false-alarm times per clip (at most ``limit`` each), and
    ``per_clip``, every recording's negative time (s), false alarms, major movements and majors detected. Alarms
    cluster in a few recordings, so a bootstrap that compares two runs resamples these rows, not alarms."""
    from uspd.evaluate.metrics import false_alarm_indices, negative_mask

    missed: dict[str, list] = {"major": [], "minor": []}
    alarms, per_clip = [], []
    for c in clips:
        found = {kind: interval_recall([c], mcfg, kind) for kind in ("major", "minor")}
        for kind, res in found.items():
            missed[kind] += [{"clip": c.name, "kind": kind, "start_s": iv.start_s, "end_s": iv.end_s,
                              "distance_m": iv.distance_m, "action": iv.action} for iv, d in res if d is None]
        neg = negative_mask(c, mcfg)
        idx = false_alarm_indices(c.t_s, c.motion, neg, mcfg.cooldown_s)
        alarms += [{"clip": c.name, "t": float(c.t_s[i]), "score": float(c.score[i]),
                    "active": sorted({iv.kind for iv in c.labels.intervals if iv.start_s <= c.t_s[i] <= iv.end_s})}
                   for i in idx]
        per_clip.append({"clip": c.name, "negative_s": float(neg.sum()) * c.hop_s, "alarms": int(len(idx)),
                         "major": len(found["major"]), "major_detected": sum(d is not None for _, d in found["major"])})
    return {"missed_intervals": (missed["major"] + missed["minor"])[:limit], "false_alarm_events": alarms[:limit],
            "per_clip": per_clip}
