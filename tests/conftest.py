"""Shared fixtures with real parts: a mosquitto broker on a free loopback port, an MQTT collector, a local HTTP
server. Everything binds to 127.0.0.1 only; every wait is bounded.

If mosquitto is not installed, the MQTT tests are skipped locally and FAIL in CI (env CI=true).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def load_benchmark(name: str):
    """The module ``benchmarks/<name>.py`` (benchmarks are scripts, not a package), loaded under ``name``."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_until(predicate: Callable[[], Any], timeout_s: float = 5.0, interval_s: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout_s`` passes (returns it anyway)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval_s)


def walk_in_then_leave(vacancy_timeout_s: float = 3.0, tracker=None) -> list:
    """Decisions of the real presence tracker (50 ms hops) for: 1 s empty, 2 s walking (major motion), then 4 s
    with nobody moving (presence off ``vacancy_timeout_s`` after the motion ended). The score wiggles every hop."""
    import numpy as np

    from uspd.presence.tracker import PresenceConfig, PresenceTracker

    hop_s = 0.05
    spans = [(1.0, 0.05, 0.0), (2.0, 0.95, 0.9), (4.0, 0.1, 0.0)]  # (duration s, score, major)
    score = np.concatenate([np.full(int(round(d / hop_s)), s) for d, s, _ in spans])
    major = np.concatenate([np.full(int(round(d / hop_s)), m) for d, _, m in spans])
    score = score + 0.01 * np.sin(np.arange(len(score)))
    tracker = tracker or PresenceTracker(PresenceConfig(debounce_hops=2, hangover_s=0.5,
                                                        vacancy_timeout_s=vacancy_timeout_s))
    t = hop_s * np.arange(1, len(score) + 1)
    return tracker.update(t, SimpleNamespace(score=score, major=major))


def _mosquitto_path() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_CANDIDATES if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class MosquittoBroker:
    """A real mosquitto on 127.0.0.1:``port`` with a temp config (anonymous, loopback only). ``persistence``
    keeps sessions across :meth:`restart` (in the temp folder), for tests where a subscriber must not miss
    messages sent while it reconnects."""

    def __init__(self, exe: str, folder: Path, persistence: bool = False):
        self.exe = exe
        self.folder = folder
        self.persistence = persistence
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.conf = folder / "mosquitto.conf"
        self.log_path = folder / "mosquitto.log"

    def _write_conf(self) -> None:
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                 f"persistence {'true' if self.persistence else 'false'}", "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice"]
        if self.persistence:
            lines += [f"persistence_location {self.folder}/", "autosave_interval 0"]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                lines.append("user root")  # else it drops to user "mosquitto", who cannot write the temp folder
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout_s: float = 10.0) -> MosquittoBroker:
        self._write_conf()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        ok = wait_until(lambda: self.proc.poll() is not None or _port_open(self.port), timeout_s)
        if not ok or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"mosquitto did not start on port {self.port}: "
                               f"{self.log_path.read_text(errors='replace')[-500:]}")
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _broker(tmp_path_factory: pytest.TempPathFactory, persistence: bool) -> Iterator[MosquittoBroker]:
    exe = _mosquitto_path()
    if exe is None:
        msg = "mosquitto is not installed (apt-get install mosquitto); the MQTT tests need a real broker"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    last: Exception | None = None
    for _ in range(3):  # the free port may be taken between choosing and binding it
        broker = MosquittoBroker(exe, tmp_path_factory.mktemp("mosquitto"), persistence)
        try:
            broker.start()
        except RuntimeError as exc:
            last = exc
            continue
        try:
            yield broker
        finally:
            broker.stop()
        return
    raise RuntimeError(str(last))


@pytest.fixture
def mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A fresh broker (persistence off) per test."""
    yield from _broker(tmp_path_factory, persistence=False)


@pytest.fixture
def persistent_mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A fresh broker that keeps persistent sessions across a restart (files in a temp folder)."""
    yield from _broker(tmp_path_factory, persistence=True)


class MqttCollector:
    """A paho client that subscribes to ``topics`` and records every message as (topic, payload str, retain)."""

    def __init__(self, port: int, topics: list[str], client_id: str = "", persistent: bool = False):
        import paho.mqtt.client as paho

        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.topics = topics
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or f"collector-{id(self)}",
                                  clean_session=not persistent)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(5.0):
            raise RuntimeError("MQTT collector could not subscribe")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload.decode(errors="replace"), bool(msg.retain)))

    def on(self, topic: str) -> list[str]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def json_on(self, topic: str) -> list[dict]:
        return [json.loads(p) for p in self.on(topic)]

    def wait_for(self, topic: str, n: int = 1, timeout_s: float = 5.0) -> list[str]:
        """Wait until ``n`` messages arrived on ``topic``; returns them (fewer on timeout)."""
        wait_until(lambda: len(self.on(topic)) >= n, timeout_s)
        return self.on(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt_collector(mosquitto_broker: MosquittoBroker) -> Iterator[Callable[..., MqttCollector]]:
    """Factory: ``mqtt_collector(["topic/#", ...])`` -> a subscribed :class:`MqttCollector` (closed after)."""
    made: list[MqttCollector] = []

    def make(topics: list[str], **kw: Any) -> MqttCollector:
        c = MqttCollector(mosquitto_broker.port, topics, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


class HttpRecorder:
    """A local HTTP server (127.0.0.1, free port) recording POSTs. ``responses``: status codes to answer in
    order (then 200); ``delays_s``: seconds to wait before answering, in order (then ``delay_s``), to provoke
    client timeouts."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.responses: list[int] = []
        self.delay_s = 0.0
        self.delays_s: list[float] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder._lock:
                    recorder.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "time": time.monotonic()})
                    code = recorder.responses.pop(0) if recorder.responses else 200
                    delay = recorder.delays_s.pop(0) if recorder.delays_s else recorder.delay_s
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def wait_for(self, n: int, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.requests) >= n, timeout_s)
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_server() -> Iterator[HttpRecorder]:
    server = HttpRecorder()
    yield server
    server.close()
