"""The emission duty cycle: switch the tone (and detection) off while it is not needed. Pure logic on audio time.

Rules (``[emission]``, see :class:`~uspd.live.config.EmissionConfig`)::

    tone on, listening ──(occupied, a motion seen since listening began has ended, listened >= recheck_s)──>
    tone off for off_after_presence_s ──> tone on (fade_s + settle_s before listening again) ──> ...
    vacant and vacant_off_s > 0: on vacant_on_s, off vacant_off_s (never while motion is on)

While the tone is off (and while it fades in and the front end settles) decisions do not count: the service stops
feeding detection and the presence tracker holds (its countdowns freeze, see ``PresenceTracker.hold``).
"""
from __future__ import annotations

from dataclasses import dataclass

from uspd.live.config import EmissionConfig


@dataclass
class ToneChange:
    """A switch of the tone requested at audio time ``t`` (s); ``until_t`` is when an off period ends."""

    on: bool
    t: float
    reason: str
    until_t: float | None = None

    def to_event(self) -> dict:
        data: dict = {"reason": self.reason}
        if self.until_t is not None:
            data["until_t"] = round(self.until_t, 4)
        return {"type": "tone_on" if self.on else "tone_off", "t": round(self.t, 4), "kind": None, "data": data}


class DutyCycle:
    """Decides when the tone is on. Feed it decisions (``observe``) and ask ``step(t_s)`` after each block.

    ``listening(t_s)``: the tone is on and has settled (``tone_delay_s`` + ``fade_s`` + ``settle_s`` after the
    switch), so decisions at ``t_s`` count. Keeps ``on_s`` / ``off_s``
    totals of audio time with the tone on / off (for the emission-duty figure).
    """

    def __init__(self, cfg: EmissionConfig, t0_s: float = 0.0, tone_delay_s: float = 0.0):
        self.cfg = cfg
        self.tone_delay_s = tone_delay_s  # from set_tone until the change reaches the captured audio
        self.tone_on = True
        self.on_since_s = t0_s
        self.listen_from_s = t0_s + tone_delay_s + cfg.fade_s + cfg.settle_s
        self.off_until_s: float | None = None
        self.motion_seen = False  # motion observed since listening began
        self.motion = False
        self.presence = False
        self.on_s = 0.0
        self.off_s = 0.0
        self._t_last = t0_s

    def set_tone_delay(self, tone_delay_s: float) -> None:
        """Set the device's tone delay (known once its stream runs); moves a pending listening start."""
        if self.tone_on:
            self.listen_from_s += tone_delay_s - self.tone_delay_s
        self.tone_delay_s = tone_delay_s

    def resync(self, t_s: float) -> None:
        """The audio stream restarted at ``t_s`` (lost audio): listen again after ``settle_s``."""
        if self.tone_on:
            self.listen_from_s = max(self.listen_from_s, t_s + self.cfg.settle_s)

    def listening(self, t_s: float) -> bool:
        return self.tone_on and t_s >= self.listen_from_s

    def observe(self, motion: bool, presence: bool) -> None:
        """The latest decision that counted (motion and presence states)."""
        self.motion = bool(motion)
        self.presence = bool(presence)
        if motion:
            self.motion_seen = True

    @property
    def on_fraction(self) -> float:
        total = self.on_s + self.off_s
        return self.on_s / total if total > 0 else 1.0

    def _switch(self, on: bool, t_s: float, reason: str, off_for_s: float = 0.0) -> ToneChange:
        self.tone_on = on
        if on:
            self.on_since_s = t_s
            self.listen_from_s = t_s + self.tone_delay_s + self.cfg.fade_s + self.cfg.settle_s
            self.off_until_s = None
            self.motion_seen = False
            return ToneChange(True, t_s, reason)
        self.off_until_s = t_s + off_for_s
        self.motion = False
        return ToneChange(False, t_s, reason, self.off_until_s)

    def step(self, t_s: float) -> ToneChange | None:
        """Account time up to ``t_s`` and return the tone switch due at ``t_s``, if any."""
        dt = max(0.0, t_s - self._t_last)
        if self.tone_on:
            self.on_s += dt
        else:
            self.off_s += dt
        self._t_last = max(self._t_last, t_s)
        cfg = self.cfg
        if not cfg.duty_cycle:
            return None
        if not self.tone_on:
            if self.off_until_s is not None and t_s >= self.off_until_s:
                return self._switch(True, t_s, "re-check" if self.presence else "vacant scan")
            return None
        if not self.listening(t_s) or self.motion:
            return None
        if self.presence:
            if self.motion_seen and t_s - self.listen_from_s >= cfg.recheck_s and cfg.off_after_presence_s > 0:
                return self._switch(False, t_s, "presence confirmed", cfg.off_after_presence_s)
        elif cfg.vacant_off_s > 0 and t_s - self.on_since_s >= cfg.vacant_on_s:
            return self._switch(False, t_s, "vacant", cfg.vacant_off_s)
        return None
