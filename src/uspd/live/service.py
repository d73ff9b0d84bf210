"""The always-on service loop: device blocks -> Pipeline -> decisions -> routines, event log, JSON lines, view.

One block at a time (audio time = samples read / sample rate)::

    block = device.read()
    listening:  decisions = pipeline.process(block)       (front end -> detector -> presence tracker)
    settling:   pipeline.frontend.process(block)          (tone just came back on: the front end settles,
                                                           nothing reaches the detector or the tracker)
    tone off:   nothing is computed                       (duty cycle: emission AND compute paused)
    duty.step(t) -> maybe switch the tone

When the tone comes back on, the front end restarts (its frames' times are shifted to audio time) and the presence
tracker is told that nothing was observed meanwhile (``tracker.hold``), so presence holds and its countdowns resume.
SIGINT/SIGTERM stop the loop cleanly: the tone fades out, sinks flush and close.
"""
from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from uspd.errors import UspdError
from uspd.live.audio import AudioDevice
from uspd.live.config import EmissionConfig
from uspd.live.duty import DutyCycle, ToneChange
from uspd.live.view import TerminalView

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Receives what the service produces. ``event`` gets dicts (type, t, kind, data) incl. tone_on/tone_off."""

    def decision(self, decision: Any) -> None: ...

    def event(self, event: dict[str, Any], decision: Any | None) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """Events as JSON lines (one object per event, flushed per line; ``-`` = stdout). Decisions too if asked.

    Each line: type, t (audio s), kind, data, and the decision's score and presence at that hop.
    """

    def __init__(self, path: str, decisions: bool = False):
        import sys

        self._own = path != "-"
        try:
            self._f = open(path, "w", encoding="utf-8") if self._own else sys.stdout  # noqa: SIM115
        except OSError as exc:
            raise UspdError(f"--jsonl {path}: cannot write: {exc.strerror or exc}") from None
        self.with_decisions = decisions

    def _line(self, obj: dict[str, Any]) -> None:
        self._f.write(json.dumps(obj) + "\n")
        self._f.flush()

    def decision(self, decision: Any) -> None:
        if self.with_decisions:
            self._line({"type": "decision", **decision.to_dict()})

    def event(self, event: dict[str, Any], decision: Any | None) -> None:
        obj = dict(event)
        if decision is not None:
            obj["score"] = round(float(decision.score), 4)
            obj["presence"] = bool(decision.presence)
        self._line(obj)

    def close(self) -> None:
        if self._own:
            self._f.close()


class MemorySink:
    """Keeps every event dict, and per decision (t, score, motion, presence) when ``decisions`` (tests, benchmarks)."""

    def __init__(self, decisions: bool = False):
        self.events: list[dict[str, Any]] = []
        self.with_decisions = decisions
        self.rows: list[tuple[float, float, bool, bool]] = []

    def decision(self, decision: Any) -> None:
        if self.with_decisions:
            self.rows.append((float(decision.t), float(decision.score), bool(decision.motion),
                              bool(decision.presence)))

    def event(self, event: dict[str, Any], decision: Any | None) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass

    def times(self, type_: str) -> list[float]:
        """Audio times (s) of the events of one type."""
        return [e["t"] for e in self.events if e["type"] == type_]


class _ShiftedFrontEnd:
    """Proxy for a restarted front end: adds ``offset_s`` to its frames' ``t_s`` so they stay in audio time."""

    def __init__(self, inner: Any, offset_s: float):
        self.inner = inner
        self.offset_s = offset_s

    def process(self, chunk: np.ndarray) -> Any:
        frames = self.inner.process(chunk)
        if len(frames.t_s):
            frames.t_s = frames.t_s + self.offset_s
        return frames

    def reset(self) -> None:
        self.inner.reset()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Detection:
    """Drives a Pipeline through the duty cycle: listen, settle (front end only), or pause (nothing).

    Needs the pipeline's ``frontend`` (with ``process`` and ``reset``) and ``tracker`` (with ``hold``).
    """

    def __init__(self, pipeline: Any):
        for attr in ("process", "frontend", "tracker"):
            if not hasattr(pipeline, attr):
                raise TypeError(f"the pipeline has no '{attr}' (uspd run needs Pipeline.frontend and .tracker)")
        self.pipeline = pipeline
        self._base_frontend = pipeline.frontend
        self._paused = False

    @property
    def tracker(self) -> Any:
        return self.pipeline.tracker

    def listen(self, block: np.ndarray) -> list[Any]:
        return self.pipeline.process(block)

    def settle(self, block: np.ndarray) -> None:
        self.pipeline.frontend.process(block)

    def restart(self, t_s: float) -> None:
        """The tone comes back on at audio time ``t_s``: restart the front end from there."""
        self._base_frontend.reset()
        self.pipeline.frontend = _ShiftedFrontEnd(self._base_frontend, t_s)

    def resume(self, t_s: float) -> Any:
        """Listening resumes at ``t_s``: nothing was observed since the last hop; returns the tracker's decision."""
        return self.tracker.hold(t_s)


@dataclass
class RunStats:
    """What a run did: audio seconds, tone-on audio seconds, events by type, CPU seconds of the process."""

    audio_s: float = 0.0
    tone_on_s: float = 0.0
    events: dict[str, int] = field(default_factory=dict)
    decisions: int = 0
    blocks_listened: int = 0
    blocks_settled: int = 0
    blocks_paused: int = 0
    gaps: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    stopped_by: str = "end"

    @property
    def tone_on_fraction(self) -> float:
        return self.tone_on_s / self.audio_s if self.audio_s > 0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["tone_on_fraction"] = round(self.tone_on_fraction, 4)
        return d


class LiveService:
    """The service: reads ``device`` until it ends, ``duration_s`` of audio have passed, or a stop is requested.

    pipeline: a :class:`uspd.pipeline.Pipeline` (front end -> detector -> presence tracker). emission: the
    ``[emission]`` section (duty cycle). sinks: receive events and decisions. view: the terminal view or None.
    """

    def __init__(self, device: AudioDevice, pipeline: Any, emission: EmissionConfig,
                 sinks: list[Sink] | None = None, view: TerminalView | None = None,
                 duration_s: float | None = None):
        self.device = device
        self.detection = Detection(pipeline)
        self.emission = emission
        self.duty = DutyCycle(emission, t0_s=0.0)
        self.sinks = list(sinks or [])
        self.view = view
        self.duration_s = math.inf if duration_s is None else float(duration_s)
        self.stats = RunStats()
        self._stop = threading.Event()
        self._stop_reason = "end"
        self._last_decision: Any = None

    # --- control ----------------------------------------------------------------------------------------------
    def request_stop(self, reason: str = "stop") -> None:
        """Ask the loop to stop after the current block (thread- and signal-safe)."""
        self._stop_reason = reason
        self._stop.set()

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}

        def handler(signum: int, frame: Any) -> None:
            if self._stop.is_set():  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.request_stop(signal.Signals(signum).name)

        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, handler)
        return old

    # --- outputs -----------------------------------------------------------------------------------------------
    def _emit(self, event: dict[str, Any], decision: Any | None) -> None:
        self.stats.events[event["type"]] = self.stats.events.get(event["type"], 0) + 1
        for sink in self.sinks:
            sink.event(event, decision)
        if self.view is not None:
            self.view.event(event)

    def _handle(self, decision: Any) -> None:
        self.stats.decisions += 1
        self._last_decision = decision
        self.duty.observe(decision.motion, decision.presence)
        for sink in self.sinks:
            sink.decision(decision)
        for ev in decision.events:
            self._emit(ev.to_dict() if hasattr(ev, "to_dict") else dict(ev), decision)

    def _tone(self, change: ToneChange) -> None:
        self.device.set_tone(change.on)
        if change.on:
            self.detection.restart(change.t)
        self._emit(change.to_event(), self._last_decision)

    def _update_view(self, t_s: float, listening: bool) -> None:
        if self.view is None:
            return
        d = self._last_decision
        state: dict[str, Any] = {"t_s": t_s, "tone_on": self.duty.tone_on, "listening": listening,
                                 "tone_back_s": self.duty.off_until_s,
                                 "tone_on_fraction": self.duty.on_fraction if self.emission.duty_cycle else None}
        if d is not None:
            state.update(score=float(d.score), motion=bool(d.motion), kind=d.kind, presence=bool(d.presence),
                         threshold=getattr(d, "threshold", None))
            if not d.presence:
                state["presence_since_s"] = None
        self.view.update(**state)

    def _gap(self, t_from: float, t_to: float) -> None:
        """Audio from ``t_from`` to ``t_to`` never arrived: restart the front end and settle again."""
        log.warning("audio lost from %.2f to %.2f s: detection restarts", t_from, t_to)
        self.stats.gaps += 1
        if self.duty.tone_on:
            self.detection.restart(t_to)
            self.duty.resync(t_to)

    # --- the loop ----------------------------------------------------------------------------------------------
    def run(self) -> RunStats:
        """Run until the end; returns :class:`RunStats`. Always fades the tone out and closes the sinks."""
        old_handlers = self._install_signals()
        wall0, cpu0 = time.monotonic(), time.process_time()
        was_listening = True
        try:
            with self.device:
                self.duty.set_tone_delay(float(getattr(self.device, "tone_delay_s", 0.0)))
                while not self._stop.is_set():
                    t_start = self.device.t_s
                    if t_start >= self.duration_s - 1e-9:
                        self._stop_reason = "duration"
                        break
                    block = self.device.read()
                    if block is None:
                        self._stop_reason = "end"
                        break
                    t_s = self.device.t_s
                    t_block = t_s - len(block) / self.device.sample_rate  # audio time of its first sample
                    if t_block > t_start + 1e-6:  # audio was lost (the reader fell behind): start over from here
                        self._gap(t_start, t_block)
                    listening = self.duty.listening(t_block)
                    if listening:
                        if not was_listening:
                            self._handle(self.detection.resume(t_block))
                        for d in self.detection.listen(block):
                            self._handle(d)
                        self.stats.blocks_listened += 1
                    elif self.duty.tone_on:
                        self.detection.settle(block)
                        self.stats.blocks_settled += 1
                    else:
                        self.stats.blocks_paused += 1
                    was_listening = listening
                    change = self.duty.step(t_s)
                    if change is not None:
                        self._tone(change)
                    self._update_view(t_s, listening)
        finally:
            for sig, h in old_handlers.items():
                signal.signal(sig, h)
            self.stats.audio_s = self.device.t_s
            self.duty.step(self.device.t_s)
            self.stats.tone_on_s = self.duty.on_s
            self.stats.wall_s = time.monotonic() - wall0
            self.stats.cpu_s = time.process_time() - cpu0
            self.stats.stopped_by = self._stop_reason
            self._close()
        return self.stats

    def _close(self) -> None:
        errors = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # close every sink even if one fails
                errors.append(exc)
        if self.view is not None:
            self.view.close()
        if errors:
            raise errors[0]

