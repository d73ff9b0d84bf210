"""Detector metrics: pure functions of decision streams (per-hop arrays) and ground-truth :class:`Labels`.

Definitions (all times audio time, seconds; a hop's decision time ``t`` is the end of the audio it used):

* **Detected interval** (major or minor): ``motion`` is true at some hop with ``start_s <= t <= max(end_s, start_s +
  grace_s)`` — within the interval, or within ``grace_s`` after its start for intervals shorter than that.
  **Detection delay** = first such hop's ``t`` - ``start_s`` (0 if motion was already on at the start).
* **Major recall** overall, by closest approach (``distance_m``) in bins 0-2, 2-4, 4-6 m, and by the evaluation
  set's clip kind (the labels' ``set_kind``). A person beyond 5 m is
  labelled ``far``, not ``major``; the "detected" rate of people who stay beyond 5 m (``far`` intervals that are not
  an approach, below) is reported separately and should be LOW. The simulator
  splits a walk with pauses into several major intervals (still spells are ``presence``), so **entry** recall and
  delay are also given: the first major interval of each person span (spans merged over gaps up to
  ``entry_gap_s``) -- someone walking into a room empty of people, the "lights on" case. **Settled** major recall
  and delay: only intervals starting ``settled_s`` or more after the recording's start, when the detector is past
  its cold start as a device that has been running is (see settled false alarms). **By context**: major recall
  split by what ends where the movement starts (a ``presence`` interval: a person still in the room; ``far``: a
  person beyond 5 m; another ``major``; else an empty room) and whether a confuser (``fan``, ``curtain``, ``hvac``,
  ``pet``, ``keys``, ``music``, ``vacuum``, ``door``) is active from ``context_confuser_s`` before it to its end.
* **Minor recall** by action (reach, page, typing, cup).
* **Negative time**: hops at ``t >= warmup_s`` outside every ``major``/``minor``/``presence`` interval and every
  **approach**, widened by ``margin_before_s`` before and ``margin_after_s`` after (the detector's hangover and the
  label edges are not false alarms). An approach is a ``far`` interval that touches (within ``approach_gap_s``) one of
  those: the same person walking in from beyond 5 m (or out past it, or along its edge) -- found a second early,
  not a false alarm (a Doppler sensor has no range gate; the level of an echo from 5.0 m and one from 5.1 m differ by
  a fraction of a dB). People who stay beyond 5 m (e.g. in a hall past an open door) remain negative time. Each hop
  stands for ``hop_s`` of time.
* **False alarm**: a rising edge of ``motion`` (first hop of a motion run) inside negative time, at least
  ``cooldown_s`` after the previous counted false alarm. Motion still on when negative time begins (at the end of
  the warm-up, or ``margin_after_s`` after a label) counts as a rising edge there: a detector stuck on is not
  "free of false alarms". FA/h = alarms / negative hours; also restricted to
  negative time inside ``music`` intervals, inside each confuser's intervals, and on clips without people; and
  **settled**: only alarms and negative time from ``settled_s`` after each recording's start. Every recording starts
  with the detector cold (front-end background, model state), which a device that has been running for a while is
  past; the headline FA/h keeps those first seconds.
* **Motion fraction**: share of negative time with ``motion`` true (hangover included).
* **Presence**: person spans = union of major/minor/presence intervals, gaps up to ``vacancy_timeout_s`` merged.
  On: presence becomes true inside the span (latency = first true hop - span start). Held: share of the span after
  it went on with presence true. Off: when presence is on as the person leaves and the clip runs
  ``vacancy_timeout_s + off_grace_s`` past the span's end, presence must be false by then (latency = first false hop after the end - end). ``tail``: last motion hop within
  that allowance - span end (what the detector adds to the timeout). Empty clips: presence-on events per hour and
  the share of time with presence true.
* **Real-time factor** = audio seconds / processing seconds.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from uspd.recording.labels import CONFUSER_KINDS, MINOR_ACTIONS, LabelInterval, Labels

#: Kinds during which motion is expected or allowed (not negative time).
POSITIVE_KINDS = ("major", "minor", "presence")
#: Confusers FA/h is split by (``far``: a person beyond 5 m).
FA_CONFUSERS = CONFUSER_KINDS
DISTANCE_BINS_M = ((0.0, 2.0), (2.0, 4.0), (4.0, 6.0))


@dataclass
class MetricsConfig:
    """Tolerances of the metric definitions (module doc). All seconds."""

    grace_s: float = 1.0
    margin_before_s: float = 1.0
    margin_after_s: float = 3.0
    cooldown_s: float = 5.0
    warmup_s: float = 5.0
    settled_s: float = 30.0
    approach_gap_s: float = 0.5
    off_grace_s: float = 10.0
    entry_gap_s: float = 30.0
    context_confuser_s: float = 60.0
    distance_bins_m: tuple[tuple[float, float], ...] = DISTANCE_BINS_M


@dataclass
class ClipResult:
    """One recording's decision stream and ground truth.

    t_s, score, major (F,) float; motion, presence (F,) bool. audio_s: duration (s); processing_s: wall time the
    pipeline took (s, for the real-time factor only). meta: sample_rate, n_mics, seed... (free form). mover (F,) or
    None: the neural model's mover evidence (:class:`uspd.detector.base.Scores`), kept for tuning the hybrid.
    """

    name: str
    labels: Labels
    t_s: np.ndarray
    score: np.ndarray
    major: np.ndarray
    motion: np.ndarray
    presence: np.ndarray
    audio_s: float
    processing_s: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    mover: np.ndarray | None = None

    @property
    def hop_s(self) -> float:
        """Median hop (s); 0.05 if fewer than two hops."""
        return float(np.median(np.diff(self.t_s))) if len(self.t_s) > 1 else 0.05


# --- small helpers ----------------------------------------------------------------------------------------------
def _stats(values: list[float]) -> dict[str, float | None]:
    """median and p95 of ``values`` (None when empty)."""
    if not values:
        return {"median": None, "p95": None}
    a = np.asarray(values, float)
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95))}


def _rate(n_hit: int, n: int) -> dict[str, Any]:
    return {"n": n, "detected": n_hit, "recall": (n_hit / n) if n else None}


def _mask_in(t_s: np.ndarray, intervals: list[tuple[float, float]]) -> np.ndarray:
    """(F,) bool: t inside any [start, end]."""
    m = np.zeros(len(t_s), bool)
    for a, b in intervals:
        m |= (t_s >= a) & (t_s <= b)
    return m


def rising_edges(motion: np.ndarray) -> np.ndarray:
    """Indices of hops where motion turns true (a run starting at hop 0 counts)."""
    m = np.asarray(motion, bool)
    prev = np.concatenate([[False], m[:-1]])
    return np.flatnonzero(m & ~prev)


def interval_delay(t_s: np.ndarray, motion: np.ndarray, start_s: float, end_s: float, grace_s: float) -> float | None:
    """Detection delay (s) of one labelled interval, or None if missed (see module doc)."""
    hit = np.flatnonzero(np.asarray(motion, bool) & (t_s >= start_s) & (t_s <= max(end_s, start_s + grace_s)))
    return None if len(hit) == 0 else max(0.0, float(t_s[hit[0]] - start_s))


def approaches(labels: Labels, gap_s: float) -> list[LabelInterval]:
    """The ``far`` intervals that overlap or lie within ``gap_s`` of a ``major``/``minor``/``presence`` interval (a
    person within 5 m): the same person crossing the 5 m range (module doc, **Negative time**)."""
    near = labels.of_kind(*POSITIVE_KINDS)
    return [iv for iv in labels.of_kind("far")
            if any(iv.start_s <= p.end_s + gap_s and p.start_s <= iv.end_s + gap_s for p in near)]


def negative_mask(clip: ClipResult, cfg: MetricsConfig) -> np.ndarray:
    """(F,) bool: hops in negative time."""
    pos = [(iv.start_s - cfg.margin_before_s, iv.end_s + cfg.margin_after_s)
           for iv in clip.labels.of_kind(*POSITIVE_KINDS) + approaches(clip.labels, cfg.approach_gap_s)]
    return (clip.t_s >= cfg.warmup_s) & ~_mask_in(clip.t_s, pos)


def false_alarm_indices(t_s: np.ndarray, motion: np.ndarray, negative: np.ndarray, cooldown_s: float) -> np.ndarray:
    """Hop indices of counted false alarms: rising edges of ``motion & negative``, >= cooldown_s apart.

    Motion still on when negative time begins (after warm-up or a label's margin) counts as a rising edge too, so
    a detector stuck on cannot score zero false alarms.
    """
    out: list[int] = []
    for i in rising_edges(np.asarray(motion, bool) & negative):
        if not out or t_s[i] - t_s[out[-1]] >= cooldown_s:
            out.append(int(i))
    return np.asarray(out, dtype=int)


# --- metric groups ----------------------------------------------------------------------------------------------
def interval_recall(clips: list[ClipResult], cfg: MetricsConfig, kind: str) -> list[tuple[Any, float | None]]:
    """[(LabelInterval, delay_s or None)] for every interval of ``kind`` in every clip."""
    return [(iv, interval_delay(c.t_s, c.motion, iv.start_s, iv.end_s, cfg.grace_s))
            for c in clips for iv in c.labels.of_kind(kind)]


def major_metrics(clips: list[ClipResult], cfg: MetricsConfig) -> dict[str, Any]:
    """Major recall overall, by distance bin, by the evaluation set's clip kind (``set_kind`` in the labels' extra,
    when given) and settled (starting from ``settled_s``), detection delay (median, p95), entries, and the ``far``
    detected rate of people who stay beyond 5 m (approaches left out)."""
    res = interval_recall(clips, cfg, "major")
    delays = [d for _, d in res if d is not None]
    out = _rate(len(delays), len(res))
    out["delay_s"] = _stats(delays)
    by_bin = {}
    for lo, hi in cfg.distance_bins_m:
        sel = [d for iv, d in res if iv.distance_m is not None and lo <= iv.distance_m < hi]
        by_bin[f"{lo:g}-{hi:g}m"] = _rate(sum(d is not None for d in sel), len(sel))
    out["by_distance"] = by_bin
    out["by_set_kind"] = _recall_by(res, _set_kinds(clips, "major"))
    out["by_context"] = _recall_by(res, [movement_context(c.labels, iv, cfg.context_confuser_s)
                                         for c in clips for iv in c.labels.of_kind("major")])
    settled = [d for iv, d in res if iv.start_s >= cfg.settled_s]
    out["settled"] = _rate(sum(d is not None for d in settled), len(settled))
    out["settled"]["delay_s"] = _stats([d for d in settled if d is not None])
    out["settled"]["settled_s"] = cfg.settled_s
    entry = entry_recall(clips, cfg)
    out["entry"] = _rate(sum(d is not None for d in entry), len(entry))
    out["entry"]["delay_s"] = _stats([d for d in entry if d is not None])
    far = []
    for c in clips:
        crossing = {id(iv) for iv in approaches(c.labels, cfg.approach_gap_s)}
        far += [(iv, d) for iv, d in interval_recall([c], cfg, "far") if id(iv) not in crossing]
    out["far"] = _rate(sum(d is not None for _, d in far), len(far))
    return out


#: Label kinds that count as a confuser beside a movement (``far`` is a "before" state of its own).
CONTEXT_CONFUSERS = tuple(k for k in CONFUSER_KINDS if k != "far")
#: What ends where a major movement starts -> its name in ``by_context``.
CONTEXT_BEFORE = {"presence": "person still in the room", "far": "person beyond 5 m", "major": "another movement"}


def movement_context(labels: Labels, iv: LabelInterval, confuser_s: float) -> str:
    """``"<before>, <confuser | no confuser>"`` of major interval ``iv``: the labelled state that ends where it
    starts (within 1 s; else "empty room") and whether a confuser is active from ``confuser_s`` before it to its end
    (module doc, **By context**)."""
    before = [j for j in labels.intervals
              if j.kind in CONTEXT_BEFORE and iv.start_s - 1.0 < j.end_s <= iv.start_s + 0.01]
    prev = CONTEXT_BEFORE[max(before, key=lambda j: j.end_s).kind] if before else "empty room"
    return f"{prev}, {'confuser' if confusers_near(labels, iv, confuser_s) else 'no confuser'}"


def confusers_near(labels: Labels, iv: LabelInterval, confuser_s: float) -> list[str]:
    """The confuser kinds (:data:`CONTEXT_CONFUSERS`) active from ``confuser_s`` before interval ``iv`` to its end
    (sorted, each once)."""
    return sorted({j.kind for j in labels.intervals
                   if j.kind in CONTEXT_CONFUSERS and j.start_s < iv.end_s and j.end_s > iv.start_s - confuser_s})


def _set_kinds(clips: list[ClipResult], kind: str) -> list[str | None]:
    """The evaluation set's clip kind (``set_kind``) of every ``kind`` interval, in :func:`interval_recall`'s order."""
    return [c.labels.extra.get("set_kind") for c in clips for _ in c.labels.of_kind(kind)]


def _recall_by(res: list, keys: list[str | None]) -> dict[str, Any]:
    """Recall of ``res`` (:func:`interval_recall`) grouped by ``keys`` (one per interval, same order; None: left
    out)."""
    return {k: _rate(sum(d is not None for (_, d), kk in zip(res, keys) if kk == k), keys.count(k))
            for k in sorted({k for k in keys if k})}


def entry_recall(clips: list[ClipResult], cfg: MetricsConfig) -> list[float | None]:
    """Delay (s) or None for every entry: the first major interval of each person span (spans merged over gaps up
    to ``entry_gap_s``) -- a person walking into a room that was empty of people."""
    out = []
    for c in clips:
        majors = sorted(c.labels.of_kind("major"), key=lambda iv: iv.start_s)
        for a, b in person_spans(c.labels, cfg.entry_gap_s):
            first = next((iv for iv in majors if a <= iv.start_s <= b), None)
            if first is not None:
                out.append(interval_delay(c.t_s, c.motion, first.start_s, first.end_s, cfg.grace_s))
    return out


def minor_metrics(clips: list[ClipResult], cfg: MetricsConfig) -> dict[str, Any]:
    """Minor recall overall, by action and by the set's clip kind, with detection delay; ``most_missed_clips``: the
    three clips with the most missed minor movements (a few long clips can hold most misses)."""
    res = interval_recall(clips, cfg, "minor")
    delays = [d for _, d in res if d is not None]
    out = _rate(len(delays), len(res))
    out["delay_s"] = _stats(delays)
    actions = list(MINOR_ACTIONS) + sorted({iv.action for iv, _ in res if iv.action not in MINOR_ACTIONS})
    out["by_action"] = {str(a): _rate(sum(d is not None for iv, d in res if iv.action == a),
                                      sum(iv.action == a for iv, _ in res)) for a in actions}
    out["by_set_kind"] = _recall_by(res, _set_kinds(clips, "minor"))
    names = [c.name for c in clips for _ in c.labels.of_kind("minor")]  # res's order
    missed = Counter(name for (_, d), name in zip(res, names) if d is None)
    out["most_missed_clips"] = [{"clip": name, "missed": m, "n": names.count(name)}
                                for name, m in missed.most_common(3)]
    return out


def _fa_entry(n_alarms: int, negative_s: float, motion_s: float | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"alarms": n_alarms, "negative_h": negative_s / 3600.0,
                         "fa_per_h": (n_alarms / (negative_s / 3600.0)) if negative_s > 0 else None}
    if motion_s is not None:
        e["motion_fraction"] = (motion_s / negative_s) if negative_s > 0 else None
    return e


def false_alarm_metrics(clips: list[ClipResult], cfg: MetricsConfig) -> dict[str, Any]:
    """FA/h overall, on clips without people, during music and by confuser; share of negative time with motion;
    ``clips_alarmed`` of ``clips_negative`` (clips with negative time): alarms cluster in a few clips, so how many
    clips alarm at all separates detectors more steadily than the alarm count."""
    acc: dict[str, list[float]] = {"all": [0, 0.0, 0.0], "empty_clips": [0, 0.0, 0.0], "settled": [0, 0.0, 0.0]}
    clips_negative = clips_alarmed = 0
    for k in FA_CONFUSERS:
        acc[k] = [0, 0.0, 0.0]
    for c in clips:
        neg = negative_mask(c, cfg)
        alarms = false_alarm_indices(c.t_s, c.motion, neg, cfg.cooldown_s)
        clips_negative += bool(neg.any())
        clips_alarmed += bool(len(alarms))
        hop_s = c.hop_s
        groups = {"all": neg, "settled": neg & (c.t_s >= cfg.settled_s)}
        if not c.labels.has_people():
            groups["empty_clips"] = neg
        for k in FA_CONFUSERS:
            ivs = [(iv.start_s, iv.end_s) for iv in c.labels.of_kind(k)]
            if ivs:
                groups[k] = neg & _mask_in(c.t_s, ivs)
        for k, m in groups.items():
            a = acc[k]
            a[0] += int(m[alarms].sum())
            a[1] += float(m.sum()) * hop_s
            a[2] += float((m & c.motion).sum()) * hop_s
    out = _fa_entry(acc["all"][0], acc["all"][1], acc["all"][2])
    out["clips_negative"], out["clips_alarmed"] = clips_negative, clips_alarmed
    out["empty_clips"] = _fa_entry(*acc["empty_clips"][:2])
    out["settled"] = _fa_entry(*acc["settled"][:2])
    out["settled"]["settled_s"] = cfg.settled_s
    out["by_confuser"] = {k: _fa_entry(*acc[k][:2]) for k in FA_CONFUSERS if acc[k][1] > 0}
    return out


def person_spans(labels: Labels, merge_gap_s: float) -> list[tuple[float, float]]:
    """Union of major/minor/presence intervals, gaps <= merge_gap_s merged: [(start_s, end_s)] sorted."""
    ivs = sorted((iv.start_s, iv.end_s) for iv in labels.of_kind(*POSITIVE_KINDS))
    spans: list[list[float]] = []
    for a, b in ivs:
        if spans and a - spans[-1][1] <= merge_gap_s:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    return [(a, b) for a, b in spans]


def presence_metrics(clips: list[ClipResult], cfg: MetricsConfig, vacancy_timeout_s: float) -> dict[str, Any]:
    """Presence on/off accuracy and latency (module doc)."""
    on_lat, off_lat, tails = [], [], []
    n_spans = n_on = n_off_eval = n_off_ok = 0
    held_s = span_s = 0.0
    empty_on, empty_s, empty_true_s = 0, 0.0, 0.0
    allowance_s = vacancy_timeout_s + cfg.off_grace_s
    for c in clips:
        t, pres, hop_s = c.t_s, c.presence, c.hop_s
        if len(t) == 0:
            continue
        spans = person_spans(c.labels, vacancy_timeout_s)
        if not spans:
            m = t >= cfg.warmup_s
            empty_s += float(m.sum()) * hop_s
            empty_true_s += float((m & pres).sum()) * hop_s
            empty_on += int(np.sum(m[rising_edges(pres)]))
            continue
        for a, b in spans:
            n_spans += 1
            inside = np.flatnonzero((t >= a) & (t <= b) & pres)
            if len(inside):
                n_on += 1
                on_t = float(t[inside[0]])
                on_lat.append(max(0.0, on_t - a))
                sel = (t >= on_t) & (t <= b)
                span_s += float(sel.sum()) * hop_s
                held_s += float((sel & pres).sum()) * hop_s
            at_end = np.flatnonzero(t <= b)
            if t[-1] >= b + allowance_s and len(at_end) and pres[at_end[-1]]:  # left an occupied room
                n_off_eval += 1
                after = (t > b) & (t <= b + allowance_s)
                off = np.flatnonzero(after & ~pres)
                if len(off):
                    n_off_ok += 1
                    off_lat.append(float(t[off[0]] - b))
                mot = np.flatnonzero(after & c.motion)
                tails.append(float(t[mot[-1]] - b) if len(mot) else 0.0)
    return {
        "spans": n_spans,
        "on_rate": (n_on / n_spans) if n_spans else None,
        "on_latency_s": _stats(on_lat),
        "held_fraction": (held_s / span_s) if span_s > 0 else None,
        "off_evaluable": n_off_eval,
        "off_rate": (n_off_ok / n_off_eval) if n_off_eval else None,
        "off_latency_s": _stats(off_lat),
        "departure_tail_s": _stats(tails),
        "empty_h": empty_s / 3600.0,
        "empty_presence_on_per_h": (empty_on / (empty_s / 3600.0)) if empty_s > 0 else None,
        "empty_presence_fraction": (empty_true_s / empty_s) if empty_s > 0 else None,
    }


def real_time_factor(clips: list[ClipResult]) -> float | None:
    """Total audio seconds / total processing seconds (None if nothing was timed)."""
    proc = sum(c.processing_s for c in clips)
    return (sum(c.audio_s for c in clips) / proc) if proc > 0 else None


def evaluate_clips(clips: list[ClipResult], vacancy_timeout_s: float,
                   cfg: MetricsConfig | None = None) -> dict[str, Any]:
    """Every metric above as one JSON-ready dict."""
    cfg = cfg or MetricsConfig()
    return {
        "clips": len(clips),
        "audio_h": sum(c.audio_s for c in clips) / 3600.0,
        "major": major_metrics(clips, cfg),
        "minor": minor_metrics(clips, cfg),
        "false_alarms": false_alarm_metrics(clips, cfg),
        "presence": presence_metrics(clips, cfg, vacancy_timeout_s),
        "real_time_factor": real_time_factor(clips),
    }


def nan_to_none(x: Any) -> Any:
    """Recursively replace NaN/inf floats by None (strict JSON)."""
    if isinstance(x, dict):
        return {k: nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [nan_to_none(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
