"""What a routine does: run a command, POST a webhook. Both run on a worker thread, never on the audio path.

An event reaches an action as a flat JSON-able dict (see :func:`uspd.routines.engine.event_payload`):
``event``, ``t_s`` (audio time, s), ``kind``, ``score``, ``motion``, ``presence``, ``wall_time`` (Unix s), ``data``,
and ``rule`` (the rule's name).
"""
from __future__ import annotations

import http.client
import logging
import os
import signal
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from uspd import __version__
from uspd.routines.config import Rule
from uspd.routines.eventlog import to_json

log = logging.getLogger(__name__)

#: Longest wait between two webhook attempts (s).
MAX_BACKOFF_S = 60.0
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def event_env(payload: dict[str, Any]) -> dict[str, str]:
    """USPD_* environment variables for a command: USPD_EVENT, USPD_T (audio s), USPD_KIND ("" if none),
    USPD_SCORE, USPD_MOTION / USPD_PRESENCE ("1"/"0"), USPD_WALL_TIME (Unix s), USPD_RULE, USPD_DATA (JSON) and
    USPD_DATA_<KEY> for each scalar in data (e.g. USPD_DATA_AFTER_S)."""

    def text(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "1" if v else "0"
        return str(v)

    env = {
        "USPD_EVENT": text(payload.get("event")),
        "USPD_T": text(payload.get("t_s")),
        "USPD_KIND": text(payload.get("kind")),
        "USPD_SCORE": text(payload.get("score")),
        "USPD_MOTION": text(payload.get("motion")),
        "USPD_PRESENCE": text(payload.get("presence")),
        "USPD_WALL_TIME": text(payload.get("wall_time")),
        "USPD_RULE": text(payload.get("rule")),
        "USPD_DATA": to_json(payload.get("data") or {}),
    }
    for key, value in (payload.get("data") or {}).items():
        name = "".join(c if c.isalnum() else "_" for c in str(key)).upper()
        if name and (value is None or isinstance(value, (str, int, float, bool))):
            env[f"USPD_DATA_{name}"] = text(value)
    return env


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        pass


def run_command(rule: Rule, payload: dict[str, Any]) -> bool:
    """Run ``rule.command`` (no shell) with the event in USPD_* variables; kill it (and its children) after
    ``rule.timeout_s``. True if it exited with status 0."""
    env = dict(os.environ)
    env.update(event_env(payload))
    argv = list(rule.command or [])
    try:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=(os.name == "posix"))
    except OSError as exc:
        log.warning("routine %r: cannot run %s: %s", rule.name, argv[0] if argv else "?", exc)
        return False
    try:
        out, err = proc.communicate(timeout=rule.timeout_s)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        proc.communicate()
        log.warning("routine %r: %s killed after the %.3g s timeout", rule.name, argv[0], rule.timeout_s)
        return False
    if out:
        log.debug("routine %r output: %s", rule.name, out.decode(errors="replace").strip()[-500:])
    if proc.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
        log.warning("routine %r: %s exited with status %s%s", rule.name, argv[0], proc.returncode,
                    f": {last[0][:300]}" if last else "")
        return False
    return True


def _opener(url: str) -> urllib.request.OpenerDirector:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in _LOOPBACK:  # never send loopback webhooks through an environment proxy
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def post_webhook(rule: Rule, payload: dict[str, Any], stop: threading.Event | None = None) -> bool:
    """POST the event as JSON to ``rule.url``. Retries after timeouts, connection errors, HTTP 5xx and 429,
    waiting ``backoff_s * 2**k`` s (capped at 60 s) before retry k; stops early if ``stop`` is set.
    True once a 2xx/3xx response came back."""
    url = rule.url or ""
    body = to_json(payload).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": f"uspd/{__version__}", **rule.headers}
    opener = _opener(url)
    reason = ""
    for attempt in range(rule.retries + 1):
        if attempt:
            delay_s = min(MAX_BACKOFF_S, rule.backoff_s * 2 ** (attempt - 1))
            log.info("routine %r: webhook %s failed (%s); retry %d/%d in %.3g s", rule.name, url, reason, attempt,
                     rule.retries, delay_s)
            if stop is not None and stop.wait(delay_s):
                log.warning("routine %r: shutting down, webhook %s abandoned after %d attempt(s) (%s)", rule.name,
                            url, attempt, reason)
                return False
            if stop is None:
                threading.Event().wait(delay_s)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with opener.open(request, timeout=rule.timeout_s) as response:
                response.read(1 << 16)
            return True
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                log.warning("routine %r: webhook %s answered %s; not retrying", rule.name, url, reason)
                return False
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
    log.warning("routine %r: webhook %s failed after %d attempt(s): %s", rule.name, url, rule.retries + 1, reason)
    return False
