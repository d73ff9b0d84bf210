"""Home Assistant over MQTT: the device appears by itself (MQTT discovery) as a motion sensor, an occupancy sensor
and a motion-score sensor, and every event is published as JSON.

Topics (``P`` = ``{base_topic}/{device_id}``, ``D`` = ``{discovery_prefix}``):

* ``P/availability``: retained ``online`` after connecting; the retained last will ``offline`` (sent by the broker
  when the connection dies: a crash or a kill) and on a clean close.
* ``P/motion``, ``P/occupancy``: retained ``ON``/``OFF``; ``P/score``: retained motion score 0..1 (3 decimals,
  at most once per ``state_interval_s`` of audio time unless motion or occupancy changed).
* ``P/event``: one JSON object per event (QoS 1, not retained).
* ``D/binary_sensor/{device_id}/motion/config``, ``D/binary_sensor/{device_id}/occupancy/config``,
  ``D/sensor/{device_id}/score/config``: retained discovery payloads, republished when ``D/status`` says ``online``
  (Home Assistant restarted).

The network runs on paho's own thread (``loop_start``) and reconnects with exponential backoff
(``reconnect_min_s`` doubling up to ``reconnect_max_s``). While the broker is unreachable, events and routine
publishes wait in a bounded queue (``queue_size``; when full, the OLDEST is dropped with a warning and counted in
``dropped``) and go out in order when it is back; states are not queued, the latest one is republished.
Nothing here blocks the caller on the network.
"""
from __future__ import annotations

import collections
import json
import logging
import math
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho

from uspd import __version__
from uspd.errors import ConfigError
from uspd.routines.config import check_topic
from uspd.routines.eventlog import to_json

log = logging.getLogger(__name__)

QOS = 1
MODEL = "uspd ultrasonic presence sensor"


def _default_device_id() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname()).strip("_").lower() or "host"
    return f"uspd_{host}"


@dataclass
class MqttConfig:
    """The ``[mqtt]`` section (off by default).

    host/port: broker address; username/password: optional credentials; tls: connect with TLS (system CAs).
    base_topic: state topics are ``{base_topic}/{device_id}/...``; discovery_prefix: Home Assistant's (default
    "homeassistant"); device_id: unique id of this sensor (default "uspd_<hostname>", letters, digits, _ and -);
    device_name: shown in Home Assistant (default "uspd <hostname>"); client_id: MQTT client id (default device_id).
    queue_size: messages kept while the broker is unreachable (oldest dropped, with a warning, when full).
    keepalive_s: MQTT keepalive (s); reconnect_min_s/reconnect_max_s: reconnect backoff bounds (s).
    state_interval_s: minimum audio time between two score updates (s).
    """

    enabled: bool = False
    host: str = "localhost"
    port: int = 1883
    username: str = ""
    password: str = ""
    tls: bool = False
    base_topic: str = "uspd"
    discovery_prefix: str = "homeassistant"
    device_id: str = ""
    device_name: str = ""
    client_id: str = ""
    queue_size: int = 1000
    keepalive_s: int = 60
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    state_interval_s: float = 1.0

    def validate(self, where: str = "[mqtt]") -> None:
        if not self.host.strip():
            raise ConfigError(f"{where}.host: must not be empty")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"{where}.port: must be 1..65535, got {self.port}")
        if self.password and not self.username:
            raise ConfigError(f"{where}.password: set username too")
        for key in ("base_topic", "discovery_prefix"):
            value = getattr(self, key)
            check_topic(value, f"{where}.{key}")
            if value.startswith("/") or value.endswith("/"):
                raise ConfigError(f"{where}.{key}: must not start or end with '/', got {value!r}")
        if self.device_id and not re.fullmatch(r"[A-Za-z0-9_-]+", self.device_id):
            raise ConfigError(f"{where}.device_id: only letters, digits, '_' and '-', got {self.device_id!r}")
        if self.queue_size < 1:
            raise ConfigError(f"{where}.queue_size: must be >= 1, got {self.queue_size}")
        if self.keepalive_s < 5:
            raise ConfigError(f"{where}.keepalive_s: must be >= 5 s, got {self.keepalive_s}")
        if not (0 < self.reconnect_min_s <= self.reconnect_max_s and math.isfinite(self.reconnect_max_s)):
            raise ConfigError(f"{where}.reconnect_min_s/reconnect_max_s: need 0 < min <= max, got "
                              f"{self.reconnect_min_s}, {self.reconnect_max_s}")
        if not (self.state_interval_s >= 0 and math.isfinite(self.state_interval_s)):
            raise ConfigError(f"{where}.state_interval_s: must be a finite number >= 0, got {self.state_interval_s}")

    @property
    def resolved_device_id(self) -> str:
        return self.device_id or _default_device_id()

    @property
    def resolved_device_name(self) -> str:
        return self.device_name or f"uspd {socket.gethostname()}"


def _on_off(flag: bool) -> str:
    return "ON" if flag else "OFF"


class HomeAssistantPublisher:
    """MQTT connection to Home Assistant (see the module docstring). Call :meth:`start`, then
    :meth:`update_state`, :meth:`publish_event`, :meth:`publish` from any thread, and :meth:`close`."""

    def __init__(self, config: MqttConfig):
        self.config = config
        self.device_id = config.resolved_device_id
        self.prefix = f"{config.base_topic}/{self.device_id}"
        self.availability_topic = f"{self.prefix}/availability"
        self.event_topic = f"{self.prefix}/event"
        self.status_topic = f"{config.discovery_prefix}/status"
        self._lock = threading.RLock()
        self._pending: collections.deque[tuple[str, bytes, bool]] = collections.deque()
        self._connected = False
        self._closed = False
        self._state: dict[str, str] = {}  # topic suffix -> payload, the latest state
        self._last_score_t: float | None = None
        self._last_flags: tuple[bool, bool] | None = None
        self.dropped = 0
        self.connects = 0
        self._connected_event = threading.Event()
        self._client = self._make_client()

    # -- setup -----------------------------------------------------------------------------------------------
    def _make_client(self) -> paho.Client:
        cfg = self.config
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=cfg.client_id or self.device_id,
                             protocol=paho.MQTTv311, clean_session=True)
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password or None)
        if cfg.tls:
            client.tls_set()
        client.will_set(self.availability_topic, "offline", qos=QOS, retain=True)
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
        client.max_inflight_messages_set(100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        return client

    def start(self) -> HomeAssistantPublisher:
        """Start connecting in the background (never blocks, never fails on an unreachable broker)."""
        self._client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s)
        self._client.loop_start()
        return self

    def discovery_messages(self) -> list[tuple[str, dict[str, Any]]]:
        """(topic, payload) of the three Home Assistant discovery configs."""
        cfg, dev = self.config, self.device_id
        device = {"identifiers": [dev], "name": cfg.resolved_device_name, "model": MODEL, "manufacturer": "uspd",
                  "sw_version": __version__}
        common = {"availability_topic": self.availability_topic, "payload_available": "online",
                  "payload_not_available": "offline", "device": device,
                  "origin": {"name": "uspd", "sw_version": __version__}}
        binary = {"payload_on": "ON", "payload_off": "OFF"}
        return [
            (f"{cfg.discovery_prefix}/binary_sensor/{dev}/motion/config",
             {"name": "Motion", "unique_id": f"{dev}_motion", "device_class": "motion",
              "state_topic": f"{self.prefix}/motion", **binary, **common}),
            (f"{cfg.discovery_prefix}/binary_sensor/{dev}/occupancy/config",
             {"name": "Occupancy", "unique_id": f"{dev}_occupancy", "device_class": "occupancy",
              "state_topic": f"{self.prefix}/occupancy", **binary, **common}),
            (f"{cfg.discovery_prefix}/sensor/{dev}/score/config",
             {"name": "Motion score", "unique_id": f"{dev}_score", "state_topic": f"{self.prefix}/score",
              "state_class": "measurement", "suggested_display_precision": 2, "icon": "mdi:motion-sensor",
              **common}),
        ]

    # -- paho callbacks (network thread) ----------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s:%s refused the connection: %s", self.config.host, self.config.port, reason)
            return
        client.subscribe(self.status_topic, qos=QOS)
        with self._lock:
            self._announce()
            n = len(self._pending)
            while self._pending:
                topic, payload, retain = self._pending.popleft()
                client.publish(topic, payload, qos=QOS, retain=retain)
            self._connected = True
            self.connects += 1
        self._connected_event.set()
        log.info("MQTT connected to %s:%s%s", self.config.host, self.config.port,
                 f", delivering {n} queued message(s)" if n else "")

    def _announce(self) -> None:
        """Discovery, availability and the latest states (all retained)."""
        for topic, payload in self.discovery_messages():
            self._client.publish(topic, json.dumps(payload), qos=QOS, retain=True)
        self._client.publish(self.availability_topic, "online", qos=QOS, retain=True)
        for suffix, value in self._state.items():
            self._client.publish(f"{self.prefix}/{suffix}", value, qos=QOS, retain=True)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
        self._connected_event.clear()
        if was and not self._closed:
            log.warning("MQTT connection to %s:%s lost (%s); reconnecting, events are queued",
                        self.config.host, self.config.port, reason)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        log.debug("MQTT connection to %s:%s failed; retrying", self.config.host, self.config.port)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic == self.status_topic and msg.payload.strip().lower() == b"online":
            log.info("Home Assistant is online: republishing discovery")
            with self._lock:
                if self._connected:
                    self._announce()

    # -- publishing (any thread) ------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def pending(self) -> int:
        """Messages waiting for the broker."""
        return len(self._pending)

    def wait_connected(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` seconds for a connection; True if connected (for tools and tests)."""
        return self._connected_event.wait(timeout_s)

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        """Publish now if connected, else queue (bounded, oldest dropped with a warning)."""
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        with self._lock:
            if self._closed:
                log.warning("MQTT publisher closed: not publishing to %s", topic)
                self.dropped += 1
                return
            if self._connected and not self._pending:
                info = self._client.publish(topic, data, qos=QOS, retain=retain)
                if info.rc == paho.MQTT_ERR_SUCCESS:
                    return
            if len(self._pending) >= self.config.queue_size:
                old_topic, _, _ = self._pending.popleft()
                self.dropped += 1
                log.warning("MQTT queue full (%d messages while the broker is unreachable): dropped the oldest, "
                            "for %s (%d dropped so far)", self.config.queue_size, old_topic, self.dropped)
            self._pending.append((topic, data, retain))

    def publish_event(self, event: dict[str, Any]) -> None:
        """Publish one event (a JSON-able dict) to ``P/event``."""
        self.publish(self.event_topic, to_json(event))

    def update_state(self, t_s: float, motion: bool, occupancy: bool, score: float) -> bool:
        """Record the state at audio time ``t_s``; publish motion/occupancy when they change and the score at most
        every ``state_interval_s``. Returns True if something was published (or stored for the reconnect)."""
        flags = (bool(motion), bool(occupancy))
        changed = flags != self._last_flags
        due = self._last_score_t is None or t_s - self._last_score_t >= self.config.state_interval_s - 1e-9
        if not (changed or due):
            return False
        score_s = f"{float(score):.3f}" if math.isfinite(score) else "0.000"
        new = {"motion": _on_off(flags[0]), "occupancy": _on_off(flags[1]), "score": score_s}
        with self._lock:
            updates = {k: v for k, v in new.items() if self._state.get(k) != v}
            self._state.update(new)
            connected = self._connected and not self._closed
            for suffix, value in updates.items():
                if connected:
                    self._client.publish(f"{self.prefix}/{suffix}", value, qos=QOS, retain=True)
        self._last_flags = flags
        self._last_score_t = t_s
        return bool(updates)

    def close(self, timeout_s: float = 3.0) -> None:
        """Publish ``offline`` (retained) if connected, disconnect and stop the network thread. Messages still
        queued because the broker is unreachable are reported in a warning."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            connected = self._connected
            info = self._client.publish(self.availability_topic, "offline", qos=QOS, retain=True) \
                if connected else None
            left = len(self._pending)
        if info is not None:
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                pass
        if left:
            log.warning("MQTT: %d queued message(s) not delivered: broker %s:%s unreachable at shutdown",
                        left, self.config.host, self.config.port)
        self._client.disconnect()
        deadline = time.monotonic() + timeout_s
        stopper = threading.Thread(target=self._client.loop_stop, daemon=True)
        stopper.start()
        stopper.join(max(0.0, deadline - time.monotonic()))
