"""Presence with context-adaptive sensitivity: per-hop scores in, motion/presence decisions and events out.

The detector gives, every hop, ``score`` (probability of any motion) and ``major`` (probability the motion is major).
This module turns them into a debounced motion state and an occupancy state (the ``[presence]`` config section)::

    vacant ──(motion with kind major)──> occupied ──(no motion for vacancy_timeout_s)──> vacant

* Motion starts after ``debounce_hops`` consecutive hops with ``score >= active threshold`` and ends ``hangover_s``
  after the score last was above it. Its kind is ``major`` once any of its hops had ``major >= major_threshold``
  (kinds only upgrade within one motion), else ``minor``.
* The active threshold is the strict ``threshold``, except while the room is occupied and the last major motion was
  at most ``sensitive_window_s`` ago: then it is the lower ``sensitive_threshold``, so a seated person reaching for a
  cup keeps the room occupied, while an empty room keeps the strict threshold. With ``minor_extends_window`` the
  window also restarts on minor motion (a seated person stays sensitised for hours; a confuser that beats the
  lower threshold can keep an empty room occupied — off by default).
* Presence goes on at the first hop of major motion and off ``vacancy_timeout_s`` after motion was last true.
* ``no_motion`` events fire once per quiet spell, ``after_s`` seconds after motion was last true, for each value in
  ``no_motion_s`` (and any added with :meth:`PresenceTracker.watch_no_motion`, e.g. by routines); never before the
  first motion.
* :meth:`PresenceTracker.hold` is the duty-cycle hook: while the tone is off nothing can be observed, so motion ends
  and every countdown (vacancy, no-motion, sensitive window) is FROZEN for the held time: presence holds, and the
  countdown continues from where it stopped once hops arrive again.

All times are audio time in seconds (the ``t_s`` of the frames), never the wall clock.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from uspd.errors import ConfigError

#: Slack for comparing audio times built from float hop counts (s).
_EPS_S = 1e-9

EVENT_TYPES = ("motion_start", "motion_end", "presence_on", "presence_off", "no_motion")


@dataclass
class PresenceConfig:
    """The ``[presence]`` section. Defaults: lights on when someone walks in, off after 5 quiet minutes.

    threshold: strict score threshold (0..1) used while the room is vacant (and outside the sensitive window).
    sensitive_threshold: lower threshold (0..1) for ``sensitive_window_s`` after the last major motion while occupied.
    major_threshold: ``major`` probability (0..1) at or above which motion counts as major.
    debounce_hops: consecutive hops above the threshold before motion starts (1 = start at once; a hop is 50 ms).
    hangover_s: motion stays true this long after the score last was above the threshold (s).
    sensitive_window_s: how long after the last major motion the lower threshold applies (s).
    minor_extends_window: if true, minor motion also restarts the sensitive window.
    vacancy_timeout_s: occupied -> vacant after this long without motion (s); e.g. 600 for "10 minutes".
    no_motion_s: emit a ``no_motion`` event after each of these quiet durations (s).
    """

    threshold: float = 0.6
    sensitive_threshold: float = 0.35
    major_threshold: float = 0.5
    debounce_hops: int = 2
    hangover_s: float = 1.0
    sensitive_window_s: float = 600.0
    minor_extends_window: bool = False
    vacancy_timeout_s: float = 300.0
    no_motion_s: list[float] = field(default_factory=list)

    def validate(self, where: str = "[presence]") -> None:
        """Raise a one-line :class:`ConfigError` naming ``where`` and the bad key."""
        for name in ("threshold", "sensitive_threshold", "major_threshold"):
            v = getattr(self, name)
            if not (0.0 < v <= 1.0):
                raise ConfigError(f"{where}.{name}: must be in (0, 1], got {v}")
        if self.sensitive_threshold > self.threshold:
            raise ConfigError(f"{where}.sensitive_threshold: must not exceed threshold "
                              f"({self.sensitive_threshold} > {self.threshold})")
        if self.debounce_hops < 1:
            raise ConfigError(f"{where}.debounce_hops: must be at least 1, got {self.debounce_hops}")
        for name in ("hangover_s", "sensitive_window_s"):
            v = getattr(self, name)
            if not (v >= 0.0 and math.isfinite(v)):
                raise ConfigError(f"{where}.{name}: must be a finite number >= 0, got {v}")
        if not (self.vacancy_timeout_s > 0.0):
            raise ConfigError(f"{where}.vacancy_timeout_s: must be > 0, got {self.vacancy_timeout_s}")
        for i, v in enumerate(self.no_motion_s):
            if not (v > 0.0 and math.isfinite(v)):
                raise ConfigError(f"{where}.no_motion_s[{i}]: must be a finite number > 0, got {v}")


@dataclass
class Event:
    """Something that happened at audio time ``t`` (s). ``kind``: "major"/"minor" for motion events, else None."""

    type: str
    t: float
    kind: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "t": round(float(self.t), 4), "kind": self.kind, "data": dict(self.data)}


@dataclass
class Decision:
    """The state after one hop ending at audio time ``t`` (s).

    score: the detector's motion score (0..1); motion: debounced motion state; kind: "major"/"minor" while motion,
    else None; presence: occupancy; events: what changed at this hop. Extensions: major (the detector's major
    probability, 0..1) and threshold (the score threshold in force at this hop) for tuning and re-scoring; mover
    (a neural model's evidence that a pet or a robot vacuum moves and no person does, 0..1) when the model has one.
    """

    t: float
    score: float
    motion: bool
    kind: str | None
    presence: bool
    events: list[Event] = field(default_factory=list)
    major: float | None = None
    threshold: float | None = None
    mover: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """One JSON-lines object: t, score, motion, kind, presence, major, threshold, mover (when set), events."""
        d: dict[str, Any] = {
            "t": round(float(self.t), 4),
            "score": round(float(self.score), 4),
            "motion": bool(self.motion),
            "kind": self.kind,
            "presence": bool(self.presence),
        }
        if self.major is not None:
            d["major"] = round(float(self.major), 4)
        if self.threshold is not None:
            d["threshold"] = round(float(self.threshold), 4)
        if self.mover is not None:
            d["mover"] = round(float(self.mover), 4)
        d["events"] = [e.to_dict() for e in self.events]
        return d


class _ScoresLike(Protocol):
    score: np.ndarray
    major: np.ndarray


@dataclass
class _State:
    motion: bool = False
    kind: str | None = None
    motion_start_t: float = 0.0
    above_count: int = 0
    last_above_t: float = -math.inf      # last hop with score >= active threshold while in motion
    last_motion_t: float | None = None   # last hop with motion true (None: never)
    last_major_t: float = -math.inf      # last hop of major motion (or minor, with minor_extends_window)
    presence: bool = False
    no_motion_done: set[float] = field(default_factory=set)
    t_prev: float | None = None


class PresenceTracker:
    """Streaming presence state machine (see the module doc). ``update`` may be called with any number of hops."""

    def __init__(self, config: PresenceConfig | None = None):
        self.config = config if config is not None else PresenceConfig()
        self.config.validate()
        self._no_motion_s = sorted(set(float(v) for v in self.config.no_motion_s))
        self._st = _State()

    # --- public API ---------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to vacant, no motion, no history."""
        self._st = _State()

    def watch_no_motion(self, after_s: float) -> None:
        """Also emit ``no_motion`` events after ``after_s`` quiet seconds (for a routine's ``after_s``)."""
        if not (after_s > 0 and math.isfinite(after_s)):
            raise ConfigError(f"no_motion after_s: must be a finite number > 0, got {after_s}")
        self._no_motion_s = sorted(set(self._no_motion_s) | {float(after_s)})

    @property
    def presence(self) -> bool:
        return self._st.presence

    @property
    def motion(self) -> bool:
        return self._st.motion

    def active_threshold(self, t_s: float) -> float:
        """The score threshold in force at audio time ``t_s`` given the current state."""
        st, cfg = self._st, self.config
        if st.presence and t_s - st.last_major_t <= cfg.sensitive_window_s + _EPS_S:
            return cfg.sensitive_threshold
        return cfg.threshold

    def update(self, t_s: np.ndarray, scores: _ScoresLike) -> list[Decision]:
        """t_s (F,) audio times (s, increasing); scores.score, scores.major (F,) in 0..1 -> F decisions."""
        t_arr = np.asarray(t_s, dtype=float).reshape(-1)
        s_arr = np.asarray(scores.score, dtype=float).reshape(-1)
        m_arr = np.asarray(scores.major, dtype=float).reshape(-1)
        if not (len(t_arr) == len(s_arr) == len(m_arr)):
            raise ValueError(f"t_s, score and major must have the same length ({len(t_arr)}, {len(s_arr)}, "
                             f"{len(m_arr)})")
        decisions = [self._step(t, s, m) for t, s, m in zip(t_arr.tolist(), s_arr.tolist(), m_arr.tolist())]
        mover = getattr(scores, "mover", None)
        if mover is not None:  # passed through for tuning (the hybrid's mover trust), not used here
            for d, v in zip(decisions, np.asarray(mover, dtype=float).reshape(-1).tolist()):
                d.mover = v
        return decisions

    def hold(self, t_s: float) -> Decision:
        """Duty-cycle hook: nothing was observed from the last hop up to audio time ``t_s`` (tone off).

        Ends any motion (``motion_end`` at ``t_s``), resets the debounce and freezes every countdown: the vacancy
        timeout, no-motion timers and the sensitive window are shifted by the held duration, so presence holds.
        Returns the decision at ``t_s`` (score 0). Call it when the tone goes back on (or periodically while off).
        """
        st = self._st
        t_s = float(t_s)
        events: list[Event] = []
        if st.t_prev is not None and t_s > st.t_prev:
            dt = t_s - st.t_prev
            if st.last_motion_t is not None:
                st.last_motion_t += dt
            st.last_major_t += dt
            st.last_above_t += dt
        if st.motion:
            events.append(self._end_motion(t_s))
        st.above_count = 0
        st.t_prev = t_s if st.t_prev is None else max(st.t_prev, t_s)
        return Decision(t=t_s, score=0.0, motion=False, kind=None, presence=st.presence, events=events,
                        major=0.0, threshold=self.active_threshold(t_s))

    # --- internals ----------------------------------------------------------------------------------------------
    def _end_motion(self, t: float) -> Event:
        st = self._st
        ev = Event("motion_end", t, st.kind, {"start_t": round(st.motion_start_t, 4),
                                               "duration_s": round(t - st.motion_start_t, 4)})
        st.motion, st.kind = False, None
        return ev

    def _step(self, t: float, score: float, major: float) -> Decision:
        st, cfg = self._st, self.config
        events: list[Event] = []
        thr = self.active_threshold(t)
        above = score >= thr
        st.above_count = st.above_count + 1 if above else 0
        is_major = above and major >= cfg.major_threshold

        if st.motion:
            if above:
                st.last_above_t = t
                if is_major and st.kind != "major":
                    st.kind = "major"
            elif t - st.last_above_t >= cfg.hangover_s - _EPS_S:
                events.append(self._end_motion(t))
        elif st.above_count >= cfg.debounce_hops:
            st.motion, st.kind = True, ("major" if is_major else "minor")
            st.motion_start_t = st.last_above_t = t
            events.append(Event("motion_start", t, st.kind, {"score": round(score, 4), "threshold": thr}))

        if st.motion:
            st.last_motion_t = t
            st.no_motion_done.clear()
            if is_major or (cfg.minor_extends_window and above):
                st.last_major_t = t
            if st.kind == "major" and not st.presence:
                st.presence = True
                events.append(Event("presence_on", t, None, {"trigger": "major"}))
        elif st.last_motion_t is not None:
            quiet_s = t - st.last_motion_t
            for after_s in self._no_motion_s:
                if quiet_s >= after_s - _EPS_S and after_s not in st.no_motion_done:
                    st.no_motion_done.add(after_s)
                    events.append(Event("no_motion", t, None, {"after_s": after_s,
                                                               "last_motion_t": round(st.last_motion_t, 4)}))
            if st.presence and quiet_s >= cfg.vacancy_timeout_s - _EPS_S:
                st.presence = False
                events.append(Event("presence_off", t, None, {"after_s": cfg.vacancy_timeout_s,
                                                              "last_motion_t": round(st.last_motion_t, 4)}))
        st.t_prev = t
        return Decision(t=t, score=score, motion=st.motion, kind=st.kind, presence=st.presence, events=events,
                        major=major, threshold=thr)


def decisions_to_arrays(decisions: list[Decision]) -> dict[str, np.ndarray]:
    """Columns of a decision stream: t (F,) s, score, major (F,) 0..1, motion, presence (F,) bool; mover (F,) 0..1
    when every decision has one."""
    n = len(decisions)
    out = {
        "t": np.fromiter((d.t for d in decisions), float, n),
        "score": np.fromiter((d.score for d in decisions), float, n),
        "major": np.fromiter((d.major if d.major is not None else math.nan for d in decisions), float, n),
        "motion": np.fromiter((d.motion for d in decisions), bool, n),
        "presence": np.fromiter((d.presence for d in decisions), bool, n),
    }
    if n and all(d.mover is not None for d in decisions):
        out["mover"] = np.fromiter((d.mover for d in decisions), float, n)
    return out


def decision_from_dict(d: dict[str, Any]) -> Decision:
    """Inverse of :meth:`Decision.to_dict` (for reading ``uspd detect`` JSON lines)."""
    events = [Event(e["type"], float(e["t"]), e.get("kind"), dict(e.get("data") or {})) for e in d.get("events", [])]
    return Decision(t=float(d["t"]), score=float(d["score"]), motion=bool(d["motion"]), kind=d.get("kind"),
                    presence=bool(d.get("presence", False)), events=events, major=d.get("major"),
                    threshold=d.get("threshold"), mover=d.get("mover"))


__all__ = ["PresenceConfig", "PresenceTracker", "Decision", "Event", "EVENT_TYPES", "decisions_to_arrays",
           "decision_from_dict"]
