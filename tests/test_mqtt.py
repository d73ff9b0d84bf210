"""Home Assistant over MQTT against a real mosquitto broker: discovery, states, events, last will on SIGKILL,
reconnect after a broker restart with the queued events delivered in order."""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time

import pytest
from conftest import MqttCollector, wait_until, walk_in_then_leave

from uspd import __version__
from uspd.config import load_config
from uspd.errors import ConfigError
from uspd.routines.config import RoutinesConfig
from uspd.routines.engine import RoutineEngine
from uspd.routines.mqtt import HomeAssistantPublisher, MqttConfig

def mqtt_cfg(port: int, **kw) -> MqttConfig:
    base = dict(enabled=True, host="127.0.0.1", port=port, device_id="testdev", device_name="Test room",
                reconnect_min_s=0.05, reconnect_max_s=0.2, state_interval_s=0.5)
    base.update(kw)
    cfg = MqttConfig(**base)
    cfg.validate()
    return cfg


def test_discovery_payloads_and_republish_on_home_assistant_online(mosquitto_broker, mqtt_collector):
    seen = mqtt_collector(["homeassistant/#", "uspd/#"])
    pub = HomeAssistantPublisher(mqtt_cfg(mosquitto_broker.port)).start()
    try:
        assert pub.wait_connected(5)
        topics = ["homeassistant/binary_sensor/testdev/motion/config",
                  "homeassistant/binary_sensor/testdev/occupancy/config",
                  "homeassistant/sensor/testdev/score/config"]
        configs = [seen.wait_for(t)[0] for t in topics]
        motion, occupancy, score = (json.loads(c) for c in configs)
        assert (motion["device_class"], occupancy["device_class"]) == ("motion", "occupancy")
        assert "device_class" not in score and score["state_class"] == "measurement"
        assert len({motion["unique_id"], occupancy["unique_id"], score["unique_id"]}) == 3
        for c in (motion, occupancy, score):
            assert "testdev" in c["unique_id"]
            assert c["device"]["identifiers"] == ["testdev"] and c["device"]["name"] == "Test room"
            assert c["device"]["sw_version"] == __version__ and c["device"]["model"]
            assert seen.wait_for(c["availability_topic"])[-1] == c["payload_available"] == "online"
            assert c["payload_not_available"] == "offline"
        assert motion["state_topic"] != occupancy["state_topic"] != score["state_topic"]
        pub.update_state(1.0, True, False, 0.834)
        assert seen.wait_for(motion["state_topic"])[-1] == motion["payload_on"]
        assert seen.wait_for(occupancy["state_topic"])[-1] == occupancy["payload_off"]
        assert float(seen.wait_for(score["state_topic"])[-1]) == pytest.approx(0.834)

        late = MqttCollector(mosquitto_broker.port, ["homeassistant/#", "uspd/#"])  # retained for newcomers
        try:
            got = {t: (p, r) for t, p, r in wait_until(lambda: late.messages if len(late.messages) >= 7 else None)}
            assert all(got[t][1] for t in topics) and json.loads(got[topics[0]][0]) == motion
            assert got[motion["state_topic"]] == ("ON", True) and got[motion["availability_topic"]][0] == "online"
        finally:
            late.close()

        # Home Assistant restarted: discovery again (its own retained "online" must not cause a loop)
        n0 = [len(seen.on(t)) for t in topics]
        seen.client.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        assert [len(seen.wait_for(t, k + 1)) for t, k in zip(topics, n0)] == [k + 1 for k in n0]
        assert seen.wait_for("uspd/testdev/availability", 2) == ["online", "online"]  # availability again too
        seen.client.publish("homeassistant/status", "offline", qos=1).wait_for_publish(5)
        assert not wait_until(lambda: len(seen.on(topics[0])) > n0[0] + 1, 0.3)
    finally:
        n_available = len(seen.on("uspd/testdev/availability"))
        pub.close()
    # clean close says offline too: one message more, and it is the last
    assert seen.wait_for("uspd/testdev/availability", n_available + 1)[n_available:] == ["offline"]


def test_walk_in_states_and_events_reach_the_broker(mosquitto_broker, mqtt_collector):
    seen = mqtt_collector(["uspd/#"])
    decisions = walk_in_then_leave()
    expected_events = [(e.type, e.t) for d in decisions for e in d.events]
    assert [e for e, _ in expected_events] == ["motion_start", "presence_on", "motion_end", "presence_off"]
    engine = RoutineEngine(RoutinesConfig(), mqtt_cfg(mosquitto_broker.port), None)
    try:
        assert engine.publisher.wait_connected(5)
        for d in decisions:
            engine.handle(d)
        events = [json.loads(p) for p in seen.wait_for("uspd/testdev/event", len(expected_events))]
        assert [(e["event"], e["t_s"]) for e in events] == [(e, pytest.approx(t)) for e, t in expected_events]
        start = events[0]
        assert start["kind"] == "major" and start["motion"] is True and 0.9 < start["score"] <= 1.0
        assert seen.wait_for("uspd/testdev/occupancy", 3) == ["OFF", "ON", "OFF"]
        assert seen.wait_for("uspd/testdev/motion", 3) == ["OFF", "ON", "OFF"]
        scores = [float(x) for x in seen.on("uspd/testdev/score")]
        duration_s = decisions[-1].t
        # rate-limited: about one per 0.5 s plus one per state change, not one per 50 ms hop
        assert duration_s / 0.5 <= len(scores) <= duration_s / 0.5 + 6
        assert scores[0] == pytest.approx(decisions[0].score, abs=1e-3)
        assert max(scores) > 0.9 and min(scores) < 0.2
    finally:
        engine.close()


KILLED_CHILD = r"""
import sys, time
from uspd.routines.mqtt import HomeAssistantPublisher, MqttConfig
pub = HomeAssistantPublisher(MqttConfig(enabled=True, host="127.0.0.1", port=int(sys.argv[1]),
                                        device_id="killed")).start()
assert pub.wait_connected(10), "no connection"
pub.update_state(0.0, True, True, 0.9)
print("connected", flush=True)
time.sleep(60)
"""


def test_last_will_offline_after_sigkill(mosquitto_broker, mqtt_collector):
    seen = mqtt_collector(["uspd/killed/#"])
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(mosquitto_broker.port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "connected", proc.stderr.read()[-500:] if proc.poll() else ""
        assert seen.wait_for("uspd/killed/availability") == ["online"]
        assert seen.wait_for("uspd/killed/occupancy") == ["ON"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert seen.wait_for("uspd/killed/availability", 2) == ["online", "offline"]
    late = MqttCollector(mosquitto_broker.port, ["uspd/killed/availability"])
    try:
        assert wait_until(lambda: late.messages) == [("uspd/killed/availability", "offline", True)]
    finally:
        late.close()


def test_events_queued_while_the_broker_is_down_arrive_in_order(persistent_mosquitto_broker, caplog):
    broker = persistent_mosquitto_broker
    # a persistent session: the broker keeps what it receives for this subscriber while it reconnects
    seen = MqttCollector(broker.port, ["uspd/testdev/#"], client_id="restart-collector", persistent=True)
    pub = HomeAssistantPublisher(mqtt_cfg(broker.port, queue_size=5)).start()
    try:
        assert pub.wait_connected(5)
        pub.publish_event({"event": "motion_start", "i": -1})
        assert len(seen.wait_for("uspd/testdev/event")) == 1
        broker.stop()
        assert wait_until(lambda: not pub.connected, 5)
        with caplog.at_level(logging.WARNING, logger="uspd.routines.mqtt"):
            for i in range(7):  # 2 more than the queue holds: the 2 oldest are dropped, loudly
                pub.publish_event({"event": "motion_start", "i": i})
            pub.update_state(10.0, True, True, 0.77)  # states are not queued: the latest goes out on reconnect
        assert pub.pending == 5 and pub.dropped == 2
        drops = [r for r in caplog.records if "dropped the oldest" in r.getMessage()]
        assert len(drops) == 2 and "2 dropped so far" in drops[-1].getMessage()
        broker.start()
        # QoS 1 is at-least-once: a message whose acknowledgement the broker had not yet handled when it stopped
        # (-1, on a busy machine) may come again on reconnect; what matters is that none is lost and the order holds
        firsts = lambda: list(dict.fromkeys(json.loads(p)["i"] for p in seen.on("uspd/testdev/event")))
        wait_until(lambda: len(firsts()) >= 6, 10)
        assert firsts() == [-1, 2, 3, 4, 5, 6]
        assert pub.pending == 0 and pub.connects == 2
        assert seen.wait_for("uspd/testdev/occupancy")[-1] == "ON"
        assert float(seen.wait_for("uspd/testdev/score")[-1]) == pytest.approx(0.77)
        pub.publish_event({"event": "motion_end", "i": 7})  # and live publishing goes on
        assert wait_until(lambda: firsts()[-1] == 7)
    finally:
        pub.close()
        seen.close()


def test_close_with_the_broker_down_is_prompt_and_reports_undelivered(mosquitto_broker, caplog):
    pub = HomeAssistantPublisher(mqtt_cfg(mosquitto_broker.port)).start()
    assert pub.wait_connected(5)
    mosquitto_broker.stop()
    assert wait_until(lambda: not pub.connected, 5)
    pub.publish_event({"event": "presence_off"})
    with caplog.at_level(logging.WARNING, logger="uspd.routines.mqtt"):
        t0 = time.monotonic()
        pub.close(timeout_s=2.0)
        assert time.monotonic() - t0 < 3.0
    assert any("1 queued message(s) not delivered" in r.getMessage() for r in caplog.records)


def test_mqtt_routine_action_publishes_to_its_topic(mosquitto_broker, mqtt_collector, tmp_path):
    seen = mqtt_collector(["home/#"])
    rules = RoutinesConfig.from_dict({"rule": [
        {"trigger": "presence_off", "action": "mqtt", "topic": "home/lights/set", "payload": "OFF", "retain": True},
        {"trigger": "presence_on", "action": "mqtt", "topic": "home/presence"},
    ]})
    engine = RoutineEngine(rules, mqtt_cfg(mosquitto_broker.port), None)
    try:
        assert engine.publisher.wait_connected(5)
        decisions = walk_in_then_leave()
        for d in decisions:
            engine.handle(d)
        assert engine.flush(5)
        assert seen.wait_for("home/lights/set") == ["OFF"]
        on = json.loads(seen.wait_for("home/presence")[0])
        t_on = next(e.t for d in decisions for e in d.events if e.type == "presence_on")
        assert on["event"] == "presence_on" and on["t_s"] == pytest.approx(t_on) and on["rule"] == "rule 2"
        assert engine.stats["actions_ok"] == 2
    finally:
        engine.close()


def test_mqtt_config_validation(tmp_path):
    cfg = tmp_path / "c.toml"
    bad = {'port = 70000': "port", 'base_topic = "uspd/#"': "base_topic", 'device_id = "a b"': "device_id",
           'password = "x"': "password", 'reconnect_min_s = 5\nreconnect_max_s = 1': "reconnect",
           'hots = "x"': "unknown key"}
    for line, word in bad.items():
        cfg.write_text(f"[mqtt]\nenabled = true\n{line}\n")
        with pytest.raises(ConfigError) as err:
            load_config(cfg)
        assert word in str(err.value) and "[mqtt]" in str(err.value) and "\n" not in str(err.value)
    cfg.write_text('[mqtt]\nenabled = true\nhost = "broker.lan"\ndevice_id = "hall"\n')
    m = load_config(cfg).mqtt
    assert (m.host, m.port, m.resolved_device_id, m.discovery_prefix) == ("broker.lan", 1883, "hall",
                                                                          "homeassistant")
    assert not load_config(None).mqtt.enabled  # off by default
    rules = RoutinesConfig.from_dict({"rule": [{"trigger": "presence_on", "action": "mqtt", "topic": "a/b"}]})
    with pytest.raises(ConfigError, match=r"mqtt.*enabled = true"):
        RoutineEngine(rules, MqttConfig(enabled=False), None)
