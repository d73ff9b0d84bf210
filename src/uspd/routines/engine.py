"""The routine engine: decisions and events in; event log, Home Assistant and routine actions out.

The caller (the live service, on its audio thread) only enqueues: :meth:`RoutineEngine.handle` takes a few
microseconds and never waits on a disk, a network or a child process. Behind it:

* one "sink" worker thread writes each event to the SQLite log and publishes it on MQTT, in order;
* one worker thread per rule runs its action (command, webhook, MQTT publish), in event order, so a slow webhook
  never delays another rule;
* paho's network thread talks to the broker (see :mod:`uspd.routines.mqtt`).

Every queue is bounded; when one is full the OLDEST item is dropped with a warning and counted in :attr:`stats`.

Typical use::

    engine = RoutineEngine.from_config(cfg)
    engine.register_no_motion(tracker)        # so the tracker raises the no_motion events the rules wait for
    for decision in pipeline.process(chunk):
        engine.handle(decision)               # its events + the MQTT state (rate-limited)
    engine.close()

It also serves as a sink of the live service (``decision(d)`` per hop, ``event(e, d)`` per event, ``close()``).
Events other than the rule triggers (e.g. the service's tone_on/tone_off) are logged and published, never routed.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from uspd.errors import ConfigError, UspdError
from uspd.routines.actions import post_webhook, run_command
from uspd.routines.config import Rule, RoutinesConfig
from uspd.routines.eventlog import EventLog, LogConfig, to_json
from uspd.routines.mqtt import HomeAssistantPublisher, MqttConfig

log = logging.getLogger(__name__)

#: Events waiting for the log/MQTT sink before the oldest is dropped.
SINK_QUEUE_SIZE = 10_000


class Worker:
    """A daemon thread running ``handler(item)`` for each submitted item, in order, from a bounded queue
    (when full, the oldest item is dropped with a warning and counted in ``dropped``)."""

    def __init__(self, name: str, handler: Callable[[Any], Any], queue_size: int):
        self.name = name
        self._handler = handler
        self._size = queue_size
        self._queue: collections.deque[Any] = collections.deque()
        self._cv = threading.Condition()
        self._busy = False
        self._closing = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> None:
        """Enqueue without blocking."""
        with self._cv:
            if self._closing:
                self.dropped += 1
                log.warning("%s: closed, item dropped", self.name)
                return
            if len(self._queue) >= self._size:
                self._queue.popleft()
                self.dropped += 1
                log.warning("%s: queue full (%d), dropped the oldest item (%d dropped so far)", self.name,
                            self._size, self.dropped)
            self._queue.append(item)
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._cv.wait()
                if not self._queue:
                    return
                item = self._queue.popleft()
                self._busy = True
            try:
                self._handler(item)
            except Exception:  # a failing action must not kill the worker
                log.exception("%s: unexpected error", self.name)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    @property
    def backlog(self) -> int:
        return len(self._queue) + (1 if self._busy else 0)

    def wait_idle(self, deadline: float) -> bool:
        """Wait until the queue is empty and nothing runs, or until ``deadline`` (time.monotonic)."""
        with self._cv:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(remaining)
        return True

    def request_close(self) -> None:
        """Accept nothing more; the thread ends once the queue is done."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()

    def join(self, deadline: float) -> bool:
        """Wait for the thread to end, until ``deadline`` (time.monotonic); True if it ended."""
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def close(self, deadline: float) -> bool:
        """Finish the queued items, until ``deadline`` (time.monotonic); True if the thread ended."""
        self.request_close()
        if not self.join(deadline):
            log.warning("%s: %d item(s) still pending at shutdown", self.name, self.backlog)
            return False
        return True


def event_payload(event: Any, decision: Any = None, wall_time: float | None = None) -> dict[str, Any]:
    """The flat JSON-able form of an event (a ``presence.tracker.Event`` or its ``to_dict()``: type, t, kind,
    data) with the state of ``decision`` at that hop (score, motion, presence; None without a decision)."""
    if isinstance(event, Mapping):
        fields = event
    else:
        fields = {k: getattr(event, k, None) for k in ("type", "t", "kind", "data")}
    return {
        "event": str(fields["type"]),
        "t_s": round(float(fields["t"]), 4),
        "kind": fields.get("kind"),
        "score": None if decision is None else round(float(decision.score), 4),
        "motion": None if decision is None else bool(decision.motion),
        "presence": None if decision is None else bool(decision.presence),
        "wall_time": round(time.time() if wall_time is None else wall_time, 3),
        "data": dict(fields.get("data") or {}),
    }


class RoutineEngine:
    """Routines, event log and Home Assistant for one running service.

    config: the ``[routines]`` rules; mqtt: ``[mqtt]`` (None or enabled=false: no MQTT); log: ``[log]`` (None or
    enabled=false: no event log). Raises :class:`ConfigError` if a rule publishes to MQTT while MQTT is off, and
    an :class:`UspdError` if the log cannot be opened. Starting never waits for the broker.
    """

    def __init__(self, config: RoutinesConfig | None = None, mqtt: MqttConfig | None = None,
                 log: LogConfig | None = None):
        self.config = config or RoutinesConfig()
        self.mqtt_config = mqtt
        mqtt_on = mqtt is not None and mqtt.enabled
        for rule in self.config.rules:
            if rule.action == "mqtt" and not mqtt_on:
                raise ConfigError(f"[routines] rule {rule.name!r}: action = \"mqtt\" needs [mqtt] enabled = true")
        self.event_log = EventLog(log.resolved_path) if log is not None and log.enabled else None
        self.publisher = HomeAssistantPublisher(mqtt).start() if mqtt_on else None
        self._stop = threading.Event()
        self._counts: collections.Counter[str] = collections.Counter()
        self._counts_lock = threading.Lock()
        self._sink = Worker("uspd-events", self._sink_one, SINK_QUEUE_SIZE)
        self._rule_workers = [
            (rule, Worker(f"uspd-routine-{i + 1}", self._action_runner(rule), self.config.queue_size))
            for i, rule in enumerate(self.config.rules)
        ]
        self._closed = False

    @classmethod
    def from_config(cls, cfg: Any) -> RoutineEngine:
        """From a loaded :class:`uspd.config.Config` (its routines, mqtt and log sections)."""
        return cls(cfg.routines, cfg.mqtt, cfg.log)

    # -- input (audio thread) ----------------------------------------------------------------------------------
    def register_no_motion(self, tracker: Any) -> list[float]:
        """Have ``tracker`` (PresenceTracker) raise a no_motion event for every rule's ``after_s``."""
        after = self.config.no_motion_after_s()
        for after_s in after:
            tracker.watch_no_motion(after_s)
        return after

    def handle(self, decision: Any) -> None:
        """Handle every event of ``decision`` and publish its state (rate-limited). Never blocks."""
        for event in getattr(decision, "events", None) or ():
            self.handle_event(event, decision)
        self.publish_state(decision)

    def handle_event(self, event: Any, decision: Any = None) -> dict[str, Any]:
        """Log, publish and route one event (``decision``: the hop's state, optional). Returns its payload."""
        payload = event_payload(event, decision)
        if self._closed:
            log.warning("routine engine closed: event %s at t=%.3f s not handled", payload["event"],
                        payload["t_s"])
            return payload
        self._count("events")
        self._sink.submit(payload)
        for rule, worker in self._rule_workers:
            if rule.matches(payload["event"], payload["kind"], payload["data"]):
                worker.submit(payload)
        return payload

    def publish_state(self, decision: Any) -> None:
        """Motion, occupancy and score to Home Assistant (changes at once, the score at most every
        ``[mqtt] state_interval_s`` of audio time)."""
        if self.publisher is not None and not self._closed:
            self.publisher.update_state(float(decision.t), bool(decision.motion), bool(decision.presence),
                                        float(decision.score))

    # the live service's sink protocol: decision(d) for every hop, event(e, d) for every event
    def decision(self, decision: Any) -> None:
        """Sink protocol: the hop's state only (its events come through :meth:`event`)."""
        self.publish_state(decision)

    def event(self, event: Any, decision: Any = None) -> None:
        """Sink protocol: one event (object or dict with type, t, kind, data); same as :meth:`handle_event`."""
        self.handle_event(event, decision)

    # -- workers -----------------------------------------------------------------------------------------------
    def _count(self, key: str, n: int = 1) -> None:
        with self._counts_lock:
            self._counts[key] += n

    def _sink_one(self, payload: dict[str, Any]) -> None:
        if self.event_log is not None:
            try:
                self.event_log.append(payload["event"], payload["t_s"], kind=payload["kind"],
                                      score=payload["score"], data=payload["data"], wall_time=payload["wall_time"])
                self._count("logged")
            except UspdError as exc:
                self._count("log_errors")
                log.error("%s", exc)
        if self.publisher is not None:
            self.publisher.publish_event(payload)

    def _action_runner(self, rule: Rule) -> Callable[[dict[str, Any]], None]:
        def run(payload: dict[str, Any]) -> None:
            payload = {**payload, "rule": rule.name}
            if rule.action == "command":
                ok = run_command(rule, payload)
            elif rule.action == "webhook":
                ok = post_webhook(rule, payload, self._stop)
            else:
                assert self.publisher is not None
                self.publisher.publish(rule.topic or "", rule.payload if rule.payload is not None
                                       else to_json(payload), retain=rule.retain)
                ok = True
            self._count("actions_ok" if ok else "actions_failed")
            log.debug("routine %r on %s at t=%.3f s: %s", rule.name, payload["event"], payload["t_s"],
                      "ok" if ok else "failed")
        return run

    # -- status and shutdown ----------------------------------------------------------------------------------
    @property
    def stats(self) -> dict[str, int]:
        """Counters: events, logged, log_errors, actions_ok, actions_failed, dropped (full queues), mqtt_dropped,
        mqtt_pending."""
        with self._counts_lock:
            out = {k: self._counts.get(k, 0) for k in ("events", "logged", "log_errors", "actions_ok",
                                                         "actions_failed")}
        out["dropped"] = self._sink.dropped + sum(w.dropped for _, w in self._rule_workers)
        out["mqtt_dropped"] = self.publisher.dropped if self.publisher else 0
        out["mqtt_pending"] = self.publisher.pending if self.publisher else 0
        return out

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued event is logged and every queued action has run; False on timeout."""
        deadline = time.monotonic() + timeout_s
        ok = self._sink.wait_idle(deadline)
        for _, worker in self._rule_workers:
            ok = worker.wait_idle(deadline) and ok
        return ok

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish queued actions (up to ``timeout_s``; webhook retries are abandoned after it), log the remaining
        events, say "offline" to Home Assistant and close the log."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout_s
        workers = [w for _, w in self._rule_workers]
        for worker in workers:
            worker.request_close()
        if not all([w.join(deadline) for w in workers]):
            self._stop.set()  # abandon webhook retries; a running command still ends at its own timeout
            for worker in workers:
                worker.close(time.monotonic() + 1.0)
        self._stop.set()
        self._sink.close(time.monotonic() + 5.0)
        if self.publisher is not None:
            self.publisher.close()
        if self.event_log is not None:
            self.event_log.close()

    def __enter__(self) -> RoutineEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
