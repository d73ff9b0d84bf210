"""The ``[routines]`` config section: which event triggers which action.

Example (TOML)::

    [routines]
    queue_size = 100                  # pending actions per rule before the oldest is dropped (with a warning)

    [[routines.rule]]
    name = "lights on"
    trigger = "motion_start"          # motion_start | motion_end | presence_on | presence_off | no_motion
    kind = "major"                    # optional filter on the event's kind (major | minor)
    action = "webhook"
    url = "http://127.0.0.1:8123/api/webhook/lights-on"
    timeout_s = 5
    retries = 3                       # extra attempts after a failure (timeouts, connection errors, 5xx, 429)
    backoff_s = 1.0                   # wait before retry k: backoff_s * 2**k seconds (capped at 60 s)

    [[routines.rule]]
    trigger = "no_motion"
    after_s = 600                     # quiet seconds (the live service registers it with the presence tracker)
    action = "command"
    command = ["/usr/bin/notify-send", "nobody moved for 10 minutes"]   # argument list, never a shell
    timeout_s = 10

    [[routines.rule]]
    trigger = "presence_off"
    action = "mqtt"                   # needs [mqtt] enabled = true
    topic = "home/livingroom/lights/set"
    payload = "OFF"                   # default: the event as JSON

Every problem is a one-line :class:`ConfigError` naming the rule and the key.
"""
from __future__ import annotations

import math
import os
import shutil
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from uspd.errors import ConfigError

#: Event types a rule can trigger on (the presence tracker's events).
TRIGGERS = ("motion_start", "motion_end", "presence_on", "presence_off", "no_motion")
#: Actions and the keys that only they accept.
ACTION_KEYS = {
    "command": {"command"},
    "webhook": {"url", "headers", "retries", "backoff_s"},
    "mqtt": {"topic", "payload", "retain"},
}
KINDS = ("major", "minor")


@dataclass
class Rule:
    """One routine: when an event of type ``trigger`` happens (optionally only of ``kind``, or for ``no_motion``
    only the one for ``after_s`` quiet seconds), run ``action``.

    command: argument list (no shell); event fields go into USPD_* environment variables.
    url/headers/retries/backoff_s: webhook POST of the event as JSON, retried with exponential backoff.
    topic/payload/retain: MQTT publish (payload default: the event as JSON).
    timeout_s: per attempt, for commands and webhooks (s).
    """

    trigger: str = ""
    action: str = ""
    name: str = ""
    kind: str | None = None
    after_s: float | None = None
    command: list[str] | None = None
    timeout_s: float = 10.0
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retries: int = 3
    backoff_s: float = 1.0
    topic: str | None = None
    payload: str | None = None
    retain: bool = False

    def matches(self, event_type: str, kind: str | None, data: dict[str, Any]) -> bool:
        """True if an event (type, kind, data) triggers this rule."""
        if event_type != self.trigger:
            return False
        if self.kind is not None and kind != self.kind:
            return False
        if self.after_s is not None:
            try:
                return abs(float(data.get("after_s")) - self.after_s) < 1e-6
            except (TypeError, ValueError):
                return False
        return True

    def validate(self, where: str) -> None:
        """Raise a one-line :class:`ConfigError` for the first problem found."""
        if not self.trigger:
            raise ConfigError(f"{where}: missing 'trigger' (one of {', '.join(TRIGGERS)})")
        if self.trigger not in TRIGGERS:
            raise ConfigError(f"{where}.trigger: unknown trigger {self.trigger!r} (known: {', '.join(TRIGGERS)})")
        if not self.action:
            raise ConfigError(f"{where}: missing 'action' (one of {', '.join(ACTION_KEYS)})")
        if self.action not in ACTION_KEYS:
            raise ConfigError(f"{where}.action: unknown action {self.action!r} (known: {', '.join(ACTION_KEYS)})")
        self._check_foreign_keys(where)
        if self.kind is not None:
            if self.trigger not in ("motion_start", "motion_end"):
                raise ConfigError(f"{where}.kind: only motion_start and motion_end events have a kind")
            if self.kind not in KINDS:
                raise ConfigError(f"{where}.kind: must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.after_s is not None:
            if self.trigger != "no_motion":
                raise ConfigError(f"{where}.after_s: only for trigger = \"no_motion\"")
            if not (self.after_s > 0 and math.isfinite(self.after_s)):
                raise ConfigError(f"{where}.after_s: must be a finite number of seconds > 0, got {self.after_s}")
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ConfigError(f"{where}.timeout_s: must be a finite number of seconds > 0, got {self.timeout_s}")
        getattr(self, f"_validate_{self.action}")(where)

    def _check_foreign_keys(self, where: str) -> None:
        defaults = Rule()
        for action, keys in ACTION_KEYS.items():
            if action == self.action:
                continue
            for key in sorted(keys):
                if getattr(self, key) != getattr(defaults, key):
                    raise ConfigError(f"{where}.{key}: only for action = \"{action}\" (this rule's action is "
                                      f"\"{self.action}\")")

    def _validate_command(self, where: str) -> None:
        if self.command is None:
            raise ConfigError(f"{where}: action = \"command\" needs command = [\"program\", \"arg\", ...]")
        if not self.command:
            raise ConfigError(f"{where}.command: must not be empty")
        prog = self.command[0]
        if os.sep in prog or (os.altsep and os.altsep in prog):
            if not (os.path.isfile(prog) and os.access(prog, os.X_OK)):
                raise ConfigError(f"{where}.command: {prog!r} is not an executable file")
        elif shutil.which(prog) is None:
            raise ConfigError(f"{where}.command: program {prog!r} not found on PATH")

    def _validate_webhook(self, where: str) -> None:
        if not self.url:
            raise ConfigError(f"{where}: action = \"webhook\" needs url = \"http://...\"")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where}.url: not an http(s) URL with a host: {self.url!r}")
        try:
            parts.port  # noqa: B018 (raises ValueError on a bad port)
        except ValueError:
            raise ConfigError(f"{where}.url: bad port in {self.url!r}") from None
        for k, v in self.headers.items():
            if not isinstance(v, str) or not k or any(c in k + v for c in "\r\n"):
                raise ConfigError(f"{where}.headers: bad header {k!r} = {v!r} (strings on one line)")
        if self.retries < 0:
            raise ConfigError(f"{where}.retries: must be >= 0, got {self.retries}")
        if not (self.backoff_s >= 0 and math.isfinite(self.backoff_s)):
            raise ConfigError(f"{where}.backoff_s: must be a finite number of seconds >= 0, got {self.backoff_s}")

    def _validate_mqtt(self, where: str) -> None:
        if not self.topic:
            raise ConfigError(f"{where}: action = \"mqtt\" needs topic = \"...\"")
        check_topic(self.topic, f"{where}.topic")


def check_topic(topic: str, where: str) -> None:
    """A topic to publish to: non-empty, no wildcards, no NUL."""
    if not topic or any(c in topic for c in "+#\0"):
        raise ConfigError(f"{where}: not a valid MQTT topic to publish to: {topic!r} (no '+', '#')")


@dataclass
class RoutinesConfig:
    """The ``[routines]`` section: ``rule`` (a list of :class:`Rule`, TOML ``[[routines.rule]]``) and
    ``queue_size`` (pending actions per rule; when full the oldest is dropped with a warning)."""

    rule: list[Rule] = field(default_factory=list)
    queue_size: int = 100

    @property
    def rules(self) -> list[Rule]:
        return self.rule

    def no_motion_after_s(self) -> list[float]:
        """The quiet durations (s) that rules wait for: register each with ``PresenceTracker.watch_no_motion``."""
        return sorted({r.after_s for r in self.rule if r.trigger == "no_motion" and r.after_s is not None})

    @classmethod
    def from_dict(cls, d: Any, where: str = "[routines]") -> RoutinesConfig:
        """Build from the ``[routines]`` TOML table; one-line :class:`ConfigError` on any problem."""
        from uspd.config import section_from_dict

        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a table")
        unknown = sorted(set(d) - {"rule", "queue_size"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: queue_size, rule; "
                              f"write rules as [[routines.rule]])")
        raw_rules = d.get("rule", [])
        if isinstance(raw_rules, dict):
            raw_rules = [raw_rules]
        if not isinstance(raw_rules, list):
            raise ConfigError(f"{where}.rule: expected a list of tables ([[routines.rule]])")
        rules = []
        for i, r in enumerate(raw_rules):
            label = f"{where} rule {i + 1}"
            if isinstance(r, dict) and isinstance(r.get("name"), str) and r["name"]:
                label += f" ({r['name']})"
            if isinstance(r, dict) and isinstance(r.get("command"), str):
                raise ConfigError(f"{label}.command: must be a list of arguments, not a string "
                                  f"(no shell is used), e.g. [\"/usr/bin/prog\", \"arg\"]")
            rule = section_from_dict(Rule, r, label)
            if not rule.name:
                rule.name = f"rule {i + 1}"
            rules.append(rule)
        queue_size = d.get("queue_size", 100)
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError(f"{where}.queue_size: must be an integer >= 1, got {queue_size!r}")
        return cls(rule=rules, queue_size=queue_size)
