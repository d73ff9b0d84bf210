"""Routines: rule config and validation, a real command, webhooks to a local HTTP server (retries, backoff,
timeouts), no_motion routing through the real presence tracker, the event log through the engine, bounded queues,
and an audio path that never waits."""
from __future__ import annotations

import json
import logging
import os
import sys
import time

import pytest
from conftest import wait_until, walk_in_then_leave

from uspd.config import load_config
from uspd.errors import ConfigError
from uspd.presence.tracker import Decision, Event, PresenceConfig, PresenceTracker
from uspd.routines.config import RoutinesConfig
from uspd.routines.engine import RoutineEngine
from uspd.routines.eventlog import EventLog, LogConfig

PY = sys.executable
DUMP_ENV = ("import json, os, sys; json.dump({'env': {k: v for k, v in os.environ.items() if k.startswith('USPD_')},"
            " 'argv': sys.argv[1:]}, open(sys.argv[1], 'w'))")


def rules(*dicts, **section) -> RoutinesConfig:
    return RoutinesConfig.from_dict({"rule": list(dicts), **section})


def decision(type_: str, t: float, kind: str | None = None, score: float = 0.5, data: dict | None = None,
             presence: bool = True) -> Decision:
    """One hop carrying one event."""
    return Decision(t=t, score=score, motion=type_ == "motion_start", kind=kind, presence=presence,
                    events=[Event(type_, t, kind, data or {})])


def test_rules_from_toml(tmp_path):
    cfg = tmp_path / "uspd.toml"
    cfg.write_text(f"""
[routines]
queue_size = 7
[[routines.rule]]
name = "lights on"
trigger = "motion_start"
kind = "major"
action = "webhook"
url = "http://127.0.0.1:8123/api/webhook/x"
headers = {{ Authorization = "Bearer t" }}
[[routines.rule]]
trigger = "no_motion"
after_s = 600
action = "command"
command = ["{PY}", "-c", "pass"]
timeout_s = 2
[[routines.rule]]
trigger = "no_motion"
after_s = 60.5
action = "command"
command = ["true"]
""")
    r = load_config(cfg).routines
    assert r.queue_size == 7 and [x.name for x in r.rules] == ["lights on", "rule 2", "rule 3"]
    hook, cmd, _ = r.rules
    assert (hook.trigger, hook.kind, hook.headers, hook.retries, hook.timeout_s) == (
        "motion_start", "major", {"Authorization": "Bearer t"}, 3, 10.0)
    assert (cmd.after_s, cmd.command, cmd.timeout_s) == (600.0, [PY, "-c", "pass"], 2.0)
    assert r.no_motion_after_s() == [60.5, 600.0]
    assert hook.matches("motion_start", "major", {}) and not hook.matches("motion_start", "minor", {})
    assert cmd.matches("no_motion", None, {"after_s": 600}) and not cmd.matches("no_motion", None, {"after_s": 60})
    assert load_config(None).routines.rules == []


@pytest.mark.parametrize("rule, words", [
    ({"trigger": "walk", "action": "command", "command": ["true"]}, ["trigger", "walk", "presence_on"]),
    ({"trigger": "presence_on", "action": "email"}, ["action", "email", "webhook"]),
    ({"action": "command", "command": ["true"]}, ["missing 'trigger'"]),
    ({"trigger": "presence_on", "action": "command", "command": "notify-send hi"}, ["command", "list", "shell"]),
    ({"trigger": "presence_on", "action": "command", "command": []}, ["command", "empty"]),
    ({"trigger": "presence_on", "action": "command"}, ["needs command"]),
    ({"trigger": "presence_on", "action": "command", "command": ["no-such-program-uspd"]}, ["not found"]),
    ({"trigger": "presence_on", "action": "command", "command": ["/nonexistent/prog"]}, ["not an executable"]),
    ({"trigger": "presence_on", "action": "command", "command": ["true", 3]}, ["command[1]", "string"]),
    ({"trigger": "presence_on", "action": "webhook", "url": "ftp://x/y"}, ["url", "ftp://x/y"]),
    ({"trigger": "presence_on", "action": "webhook", "url": "http://"}, ["url"]),
    ({"trigger": "presence_on", "action": "webhook", "url": "http://h:99999/"}, ["url", "port"]),
    ({"trigger": "presence_on", "action": "webhook"}, ["needs url"]),
    ({"trigger": "presence_on", "action": "webhook", "url": "http://h/", "retries": -1}, ["retries"]),
    ({"trigger": "presence_on", "action": "command", "command": ["true"], "url": "http://h/"},
     ["url", "only for action = \"webhook\""]),
    ({"trigger": "presence_on", "action": "mqtt", "topic": "a/#"}, ["topic", "a/#"]),
    ({"trigger": "presence_on", "action": "mqtt", "topic": "a", "kind": "major"}, ["kind"]),
    ({"trigger": "motion_start", "action": "mqtt", "topic": "a", "kind": "huge"}, ["kind", "huge"]),
    ({"trigger": "motion_start", "action": "mqtt", "topic": "a", "after_s": 5}, ["after_s", "no_motion"]),
    ({"trigger": "no_motion", "action": "mqtt", "topic": "a", "after_s": -5}, ["after_s", "> 0"]),
    ({"trigger": "no_motion", "action": "mqtt", "topic": "a", "timeout_s": 0}, ["timeout_s"]),
    ({"trigger": "no_motion", "action": "mqtt", "topic": "a", "shell": True}, ["unknown key", "shell"]),
])
def test_rule_validation_is_one_line(rule, words):
    with pytest.raises(ConfigError) as err:
        rules({"name": "r", **rule})
    msg = str(err.value)
    assert "\n" not in msg and "rule 1 (r)" in msg
    for w in words:
        assert w in msg


def test_routines_section_validation():
    with pytest.raises(ConfigError, match="unknown key.*rules"):
        RoutinesConfig.from_dict({"rules": []})
    with pytest.raises(ConfigError, match="queue_size"):
        RoutinesConfig.from_dict({"queue_size": 0})


def test_command_routine_gets_the_event_in_its_environment_and_no_shell(tmp_path):
    out = tmp_path / "env.json"
    marker = tmp_path / "INJECTED"
    cfg = rules({"name": "notify", "trigger": "presence_on", "action": "command",
                 "command": [PY, "-c", DUMP_ENV, str(out), f"; touch {marker}", "$HOME"]})
    decisions = walk_in_then_leave()
    on = next((d, e) for d in decisions for e in d.events if e.type == "presence_on")
    with RoutineEngine(cfg, None, None) as engine:
        for d in decisions:
            engine.handle(d)
        assert engine.flush(10)
        assert engine.stats["actions_ok"] == 1 and engine.stats["actions_failed"] == 0
    got = json.loads(out.read_text())
    assert got["argv"] == [str(out), f"; touch {marker}", "$HOME"] and not marker.exists()
    env = got["env"]
    assert env["USPD_EVENT"] == "presence_on" and env["USPD_RULE"] == "notify"
    assert float(env["USPD_T"]) == pytest.approx(on[1].t, abs=1e-4)
    assert float(env["USPD_SCORE"]) == pytest.approx(on[0].score, abs=1e-4)
    assert (env["USPD_PRESENCE"], env["USPD_MOTION"], env["USPD_KIND"]) == ("1", "1", "")
    assert json.loads(env["USPD_DATA"]) == on[1].data and env["USPD_DATA_TRIGGER"] == on[1].data["trigger"]
    assert abs(float(env["USPD_WALL_TIME"]) - time.time()) < 60


def test_command_timeout_kills_it_and_counts_a_failure(tmp_path, caplog):
    pid_file = tmp_path / "pid"
    script = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(30)"
    cfg = rules({"trigger": "presence_off", "action": "command", "command": [PY, "-c", script, str(pid_file)],
                 "timeout_s": 0.5})
    with caplog.at_level(logging.WARNING, logger="uspd.routines"):
        with RoutineEngine(cfg, None, None) as engine:
            t0 = time.monotonic()
            engine.handle(decision("presence_off", 10.0))
            assert engine.flush(10)
            elapsed = time.monotonic() - t0
            assert engine.stats["actions_failed"] == 1 and engine.stats["actions_ok"] == 0
    assert 0.5 <= elapsed < 5.0
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert any("timeout" in r.getMessage() for r in caplog.records)


def test_actions_never_block_the_caller(tmp_path, http_server):
    http_server.delay_s = 0.5
    cfg = rules({"trigger": "motion_start", "action": "command", "command": [PY, "-c", "import time; time.sleep(.5)"]},
                {"trigger": "motion_start", "action": "webhook", "url": http_server.url, "timeout_s": 5},
                queue_size=2)
    with RoutineEngine(cfg, None, LogConfig(path=str(tmp_path / "ev.sqlite3"))) as engine:
        t0 = time.perf_counter()
        for i in range(20):
            engine.handle(decision("motion_start", 0.05 * i, kind="major"))
        per_call_s = (time.perf_counter() - t0) / 20
        assert per_call_s < 0.02  # the actions take 0.5 s each; the caller only enqueues
        assert engine.flush(30)
        assert engine.stats["actions_ok"] + engine.stats["dropped"] == 40 and engine.stats["dropped"] >= 30
        assert engine.stats["logged"] == 20


def test_webhook_retries_after_500_with_backoff(http_server):
    http_server.responses = [500, 503]
    cfg = rules({"name": "hook", "trigger": "presence_on", "action": "webhook", "url": http_server.url + "/on",
                 "retries": 3, "backoff_s": 0.1, "headers": {"X-Token": "abc"}})
    with RoutineEngine(cfg, None, None) as engine:
        engine.handle(decision("presence_on", 12.5, score=0.875, data={"trigger": "major"}))
        assert engine.flush(10)
        assert engine.stats["actions_ok"] == 1
    reqs = http_server.wait_for(3)
    assert len(reqs) == 3 and all(r["path"] == "/on" for r in reqs)
    bodies = [json.loads(r["body"]) for r in reqs]
    assert bodies[0] == bodies[1] == bodies[2]
    b = bodies[0]
    assert (b["event"], b["t_s"], b["score"], b["presence"], b["rule"], b["data"]) == (
        "presence_on", 12.5, 0.875, True, "hook", {"trigger": "major"})
    assert reqs[0]["headers"]["Content-Type"] == "application/json" and reqs[0]["headers"]["X-Token"] == "abc"
    gaps = [b_["time"] - a["time"] for a, b_ in zip(reqs, reqs[1:])]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # exponential: 0.1 s, then 0.2 s


def test_webhook_gives_up_on_4xx_and_after_the_last_retry(http_server):
    cfg = rules({"trigger": "presence_on", "action": "webhook", "url": http_server.url + "/a", "backoff_s": 0.01},
                {"trigger": "presence_off", "action": "webhook", "url": http_server.url + "/b", "retries": 2,
                 "backoff_s": 0.01})
    http_server.responses = [404]
    with RoutineEngine(cfg, None, None) as engine:
        engine.handle(decision("presence_on", 1.0))
        assert engine.flush(10)
        http_server.responses = [500, 500, 500, 500]
        engine.handle(decision("presence_off", 2.0, presence=False))
        assert engine.flush(10)
        assert engine.stats["actions_failed"] == 2 and engine.stats["actions_ok"] == 0
    assert [r["path"] for r in http_server.requests] == ["/a", "/b", "/b", "/b"]


def test_webhook_timeout_is_retried(http_server):
    http_server.delays_s = [1.0]  # the first answer comes too late
    cfg = rules({"trigger": "motion_start", "action": "webhook", "url": http_server.url, "timeout_s": 0.3,
                 "retries": 1, "backoff_s": 0.01})
    with RoutineEngine(cfg, None, None) as engine:
        engine.handle(decision("motion_start", 1.0, kind="minor"))
        assert engine.flush(10)
        assert engine.stats["actions_ok"] == 1
    assert len(http_server.wait_for(2)) == 2


def test_no_motion_rules_fire_once_per_quiet_spell_at_their_after_s(http_server, tmp_path):
    cfg = rules({"trigger": "no_motion", "after_s": 1.0, "action": "webhook", "url": http_server.url + "/1"},
                {"trigger": "no_motion", "after_s": 2.5, "action": "webhook", "url": http_server.url + "/2"},
                {"trigger": "motion_start", "kind": "minor", "action": "webhook", "url": http_server.url + "/m"})
    tracker = PresenceTracker(PresenceConfig(debounce_hops=2, hangover_s=0.5, vacancy_timeout_s=3.0))
    with RoutineEngine(cfg, None, LogConfig(path=str(tmp_path / "ev.sqlite3"))) as engine:
        assert engine.register_no_motion(tracker) == [1.0, 2.5]
        decisions = walk_in_then_leave(tracker=tracker)
        for d in decisions:
            engine.handle(d)
        assert engine.flush(10)
    reqs = http_server.wait_for(2)
    assert sorted(r["path"] for r in reqs) == ["/1", "/2"]  # once each; the major walk-in is not "minor"
    last_motion_t = max(d.t for d in decisions if d.motion)
    for r in reqs:
        body = json.loads(r["body"])
        assert body["event"] == "no_motion" and body["motion"] is False
        assert body["t_s"] - last_motion_t == pytest.approx(body["data"]["after_s"], abs=0.051)
    with EventLog(tmp_path / "ev.sqlite3", create=False) as log:  # the engine logged every event, in order
        rows = log.query()
    expected = [(e.type, e.t, e.kind) for d in decisions for e in d.events]
    assert [(r.type, r.t_s, r.kind) for r in rows] == [(a, pytest.approx(b, abs=1e-4), c) for a, b, c in expected]
    assert [r.type for r in rows].count("no_motion") == 2
    assert all(r.score is not None and 0 <= r.score <= 1.1 for r in rows)


def test_full_rule_queue_drops_the_oldest_loudly(http_server, caplog):
    http_server.delay_s = 0.3
    cfg = rules({"trigger": "motion_start", "action": "webhook", "url": http_server.url}, queue_size=2)
    with caplog.at_level(logging.WARNING, logger="uspd.routines"):
        with RoutineEngine(cfg, None, None) as engine:
            for i in range(6):
                engine.handle(decision("motion_start", float(i), kind="major"))
            assert engine.flush(10)
            stats = engine.stats
    delivered = [json.loads(r["body"])["t_s"] for r in http_server.requests]
    assert stats["dropped"] >= 2 and stats["dropped"] + len(delivered) == 6
    assert delivered[-2:] == [4.0, 5.0] and delivered == sorted(delivered)  # the newest are kept, in order
    assert sum("dropped the oldest" in r.getMessage() for r in caplog.records) == stats["dropped"]


def test_close_abandons_long_webhook_backoff(http_server, caplog):
    http_server.responses = [500] * 10
    cfg = rules({"trigger": "presence_on", "action": "webhook", "url": http_server.url, "retries": 5,
                 "backoff_s": 30})
    engine = RoutineEngine(cfg, None, None)
    engine.handle(decision("presence_on", 1.0))
    assert wait_until(lambda: http_server.requests, 5)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="uspd.routines"):
        engine.close(timeout_s=0.3)
    assert time.monotonic() - t0 < 3.0
    assert len(http_server.requests) == 1 and engine.stats["actions_failed"] == 1
    assert any("abandoned" in r.getMessage() for r in caplog.records)


def test_engine_is_a_live_service_sink(tmp_path, http_server):
    """decision(d) per hop + event(dict, d) per event, as the live service calls its sinks; other event types
    (tone_off) are logged but trigger nothing."""
    path = tmp_path / "ev.sqlite3"
    cfg = rules({"trigger": "presence_on", "action": "webhook", "url": http_server.url})
    decisions = walk_in_then_leave()
    with RoutineEngine(cfg, None, LogConfig(path=str(path))) as engine:
        for d in decisions:
            engine.decision(d)
            for e in d.events:
                engine.event(e.to_dict(), d)
        engine.event({"type": "tone_off", "t": 9.0, "kind": None, "data": {"off_s": 30.0}}, None)
        assert engine.flush(10)
        assert engine.stats["events"] == engine.stats["logged"] == sum(len(d.events) for d in decisions) + 1
    with EventLog(path, create=False) as log:
        rows = log.query()
    assert [r.type for r in rows] == [e.type for d in decisions for e in d.events] + ["tone_off"]
    assert rows[-1].data == {"off_s": 30.0} and rows[-1].score is None
    assert [json.loads(r["body"])["event"] for r in http_server.wait_for(1)] == ["presence_on"]
