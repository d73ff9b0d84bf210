"""Event log: SQLite in WAL mode, one committed row per event, survives a real SIGKILL; `uspd events` reads it."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from uspd.cli import main
from uspd.commands.events import parse_since
from uspd.config import load_config
from uspd.errors import ConfigError, UspdError
from uspd.routines.eventlog import EventLog, EventLogError, LogConfig


def fill(log: EventLog, n: int, t0_wall: float = 1_700_000_000.0) -> list[int]:
    """n events cycling through the types, audio time 0.5*i s, wall time t0 + 10*i s."""
    types = ["motion_start", "presence_on", "motion_end", "no_motion", "presence_off"]
    return [log.append(types[i % 5], 0.5 * i, kind="major" if i % 5 == 0 else None, score=i / n,
                       data={"i": i}, wall_time=t0_wall + 10 * i) for i in range(n)]


def test_rows_round_trip_with_filters(tmp_path):
    path = tmp_path / "sub" / "events.sqlite3"  # the folder is created
    with EventLog(path) as log:
        ids = fill(log, 12)
        nan_id = log.append("motion_start", 99.0, kind="minor", score=float("nan"),
                            data={"arr": np.arange(3), "x": np.float32(0.25), "bad": float("inf")}, wall_time=2e9)
        assert ids == sorted(ids) and len(set(ids)) == 12
        rows = log.query()
        assert [r.id for r in rows] == ids + [nan_id]
        r3 = rows[3]
        assert (r3.type, r3.t_s, r3.kind, r3.data) == ("no_motion", 1.5, None, {"i": 3})
        assert r3.score == pytest.approx(3 / 12) and r3.wall_time == pytest.approx(1_700_000_030.0)
        last = rows[-1]
        assert last.score is None and last.data == {"arr": [0, 1, 2], "x": 0.25, "bad": None}
        # since (wall time, inclusive), type (one or several), limit = the last N, after_id
        assert [r.data.get("i") for r in log.query(since=1_700_000_100.0)] == [10, 11, None]
        assert [r.data["i"] for r in log.query(type="presence_on")] == [1, 6, 11]
        assert [r.data["i"] for r in log.query(type=["presence_on", "presence_off"], limit=2)] == [9, 11]
        assert [r.data["i"] for r in log.query(after_id=ids[9], type="motion_end")] == []
        assert [r.data.get("i") for r in log.query(after_id=ids[9], limit=0)] == [10, 11, None]
        assert log.last_id() == nan_id


def test_file_is_wal_and_readable_while_the_writer_is_open(tmp_path):
    path = tmp_path / "events.sqlite3"
    writer = EventLog(path)
    writer.append("presence_on", 1.0)
    reader = EventLog(path, create=False)
    writer.append("presence_off", 2.0)  # committed at once: another connection sees it without a close
    assert [e.type for e in reader.query()] == ["presence_on", "presence_off"]
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    writer.close()
    reader.close()


def test_unusable_files_are_one_line_errors(tmp_path):
    with pytest.raises(EventLogError, match="no event log there"):
        EventLog(tmp_path / "missing.sqlite3", create=False)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(EventLogError) as err:
        EventLog(junk)
    assert str(junk) in str(err.value) and "\n" not in str(err.value)
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(EventLogError, match="not a uspd event log"):
        EventLog(other, create=False)


CHILD = r"""
import sys
from uspd.routines.eventlog import EventLog
log = EventLog(sys.argv[1])
i = 0
while True:
    eid = log.append("motion_start" if i % 2 == 0 else "motion_end", i * 0.05, kind="major", score=0.5,
                     data={"i": i, "pad": "x" * (i % 200)})
    print(eid, i, flush=True)   # printed only after the commit returned
    i += 1
"""


def test_sigkill_never_corrupts_and_keeps_every_committed_event(tmp_path):
    path = tmp_path / "events.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    reported: list[tuple[int, int]] = []
    deadline = time.monotonic() + 20
    try:
        while len(reported) < 300 and time.monotonic() < deadline:  # the child is writing flat out: kill it mid-run
            line = proc.stdout.readline()
            if not line:
                break
            eid, i = map(int, line.split())
            reported.append((eid, i))
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert len(reported) >= 300, err[-500:]
    for line in rest.splitlines():  # lines printed (after commit) before the kill landed
        if line.count(" ") == 1:
            eid, i = map(int, line.split())
            reported.append((eid, i))
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    log = EventLog(path)  # reopens (recovers the WAL) and writes on
    rows = {r.id: r for r in log.query()}
    missing = [eid for eid, _ in reported if eid not in rows]
    assert not missing, f"{len(missing)} committed events lost, e.g. {missing[:5]}"
    for eid, i in reported:
        assert rows[eid].data["i"] == i and rows[eid].t_s == pytest.approx(i * 0.05)
    assert sorted(rows) == list(range(1, len(rows) + 1))  # no holes: every row is whole
    new_id = log.append("presence_off", 1.0)
    assert new_id == max(rows) + 1
    log.close()


def test_follow_yields_new_matching_events_in_order_then_times_out(tmp_path):
    path = tmp_path / "events.sqlite3"
    writer = EventLog(path)
    writer.append("presence_on", 0.0)  # before following: not yielded

    def write_later():
        for i in range(6):
            time.sleep(0.02)
            writer.append("motion_start" if i % 2 == 0 else "motion_end", float(i), data={"i": i})

    reader = EventLog(path, create=False)
    thread = threading.Thread(target=write_later)
    thread.start()
    t0 = time.monotonic()
    got = [e.data["i"] for e in reader.follow(type="motion_start", poll_s=0.01, idle_timeout_s=0.6)]
    elapsed = time.monotonic() - t0
    thread.join()
    assert got == [0, 2, 4]
    assert 0.6 <= elapsed < 5.0
    writer.close()
    reader.close()


def _cli(capsys, *argv):
    code = main(["events", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_uspd_events_lists_filters_and_prints_json(tmp_path, capsys):
    path = tmp_path / "events.sqlite3"
    now = time.time()
    with EventLog(path) as log:
        log.append("presence_on", 3.25, score=0.91, data={"trigger": "major"}, wall_time=now - 7200)
        log.append("motion_start", 3.2, kind="major", score=0.91, wall_time=now - 7200)
        log.append("no_motion", 63.2, data={"after_s": 60.0}, wall_time=now - 60)
        log.append("presence_off", 303.2, data={"after_s": 300.0}, wall_time=now - 10)
        log.append("tone_off", 303.3, wall_time=now - 9)

    code, out, _ = _cli(capsys, "--db", str(path), "-n", "0")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 6 and lines[0].split()[:2] == ["id", "wall"]
    assert lines[1].split()[3:7] == ["3.25", "presence_on", "-", "0.91"] and '"trigger":"major"' in lines[1]
    assert lines[2].split()[3:6] == ["3.20", "motion_start", "major"]

    code, out, _ = _cli(capsys, "--db", str(path), "--json", "--type", "presence_on,presence_off", "-n", "1")
    rows = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and [r["type"] for r in rows] == ["presence_off"] and rows[0]["data"] == {"after_s": 300.0}
    assert rows[0]["t_s"] == pytest.approx(303.2)

    code, out, _ = _cli(capsys, "--db", str(path), "--json", "--since", "30m")
    assert [json.loads(x)["type"] for x in out.splitlines()] == ["no_motion", "presence_off", "tone_off"]
    code, out, _ = _cli(capsys, "--db", str(path), "--json", "--type", "tone_off")  # a type found in the log
    assert [json.loads(x)["t_s"] for x in out.splitlines()] == [303.3]

    code, out, err = _cli(capsys, "--db", str(path), "--type", "walking")
    assert code == 2 and err.count("\n") == 1 and "walking" in err and "Traceback" not in err
    code, out, err = _cli(capsys, "--db", str(tmp_path / "none.sqlite3"))
    assert code == 2 and "none.sqlite3" in err and err.count("\n") == 1


def test_uspd_events_reads_the_log_path_from_the_config(tmp_path, capsys):
    path = tmp_path / "x" / "log.sqlite3"
    cfg = tmp_path / "uspd.toml"
    cfg.write_text(f'[log]\npath = "{path}"\n')
    assert load_config(cfg).log.resolved_path == path
    with EventLog(path) as log:
        log.append("presence_on", 1.0)
    code, out, _ = _cli(capsys, "--config", str(cfg), "--json")
    assert code == 0 and json.loads(out)["type"] == "presence_on"
    cfg.write_text('[log]\nfile = "x"\n')
    with pytest.raises(ConfigError, match=r"\[log\].*unknown key.*file"):
        load_config(cfg)
    assert LogConfig().path.endswith("events.sqlite3") and not LogConfig().path.startswith(str(tmp_path))


def test_uspd_events_follow_prints_new_events(tmp_path, capsys):
    path = tmp_path / "events.sqlite3"
    writer = EventLog(path)
    writer.append("presence_on", 1.0)

    def write_later():
        time.sleep(0.3)
        writer.append("motion_start", 2.0, kind="minor")
        writer.append("presence_off", 9.0)

    thread = threading.Thread(target=write_later)
    thread.start()
    code, out, _ = _cli(capsys, "--db", str(path), "--follow", "--json", "--exit-after", "0.8", "--poll", "0.02",
                        "--type", "presence_on", "--type", "presence_off")
    thread.join()
    assert code == 0
    assert [(r["type"], r["t_s"]) for r in map(json.loads, out.splitlines())] == [
        ("presence_on", 1.0), ("presence_off", 9.0)]
    writer.close()


def test_parse_since():
    now = 1_700_000_000.0
    assert parse_since("90s", now) == now - 90
    assert parse_since("2h", now) == now - 7200
    assert parse_since("2023-11-14T22:13:20+00:00", now) == 1_700_000_000.0
    with pytest.raises(UspdError, match="--since"):
        parse_since("yesterday", now)
