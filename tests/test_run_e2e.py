"""End to end: `uspd run --simulate ...` as a user runs it (a subprocess), checked through its JSON lines, the
SQLite event log, its terminal view on a pseudo-terminal, and a clean stop on SIGTERM."""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCENE = "walk-in-then-leave"


def uspd(*args: str) -> list[str]:
    return [sys.executable, "-m", "uspd", *args]


def write_config(tmp_path: Path, emission: str = "duty_cycle = false", extra: str = "") -> Path:
    cfg = tmp_path / "uspd.toml"
    cfg.write_text(f'[log]\npath = "{tmp_path / "events.sqlite3"}"\n'
                   f"[presence]\nvacancy_timeout_s = 10\n[emission]\n{emission}\n{extra}")
    return cfg


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def env() -> dict[str, str]:
    e = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    e.pop("NO_COLOR", None)
    return e


@pytest.fixture(scope="module")
def labels():
    from uspd.simulate.render import SceneRenderer

    return SceneRenderer(SCENE, 0).labels


def _major(labels):
    return [iv for iv in labels.intervals if iv.kind == "major"]


def test_walk_in_then_leave_gives_presence_on_then_off_after_the_timeout(tmp_path, labels):
    cfg = write_config(tmp_path)
    out = tmp_path / "events.jsonl"
    proc = subprocess.run(uspd("run", "--simulate", SCENE, "--speed", "0", "--config", str(cfg),
                               "--jsonl", str(out), "--no-view"),
                          capture_output=True, text=True, timeout=120, env=env())
    assert proc.returncode == 0, proc.stderr
    events = read_jsonl(out)
    types = [e["type"] for e in events]
    assert types.count("presence_on") == 1 and types.count("presence_off") == 1
    on = next(e for e in events if e["type"] == "presence_on")
    off = next(e for e in events if e["type"] == "presence_off")
    majors = _major(labels)
    arrive_s = min(iv.start_s for iv in labels.intervals)  # first seen walking in (far, then within 5 m)
    # presence comes on while the person walks (not before they arrive), and goes off after they left + timeout
    assert arrive_s <= on["t"] <= majors[-1].end_s
    last_motion = max(e["t"] for e in events if e["type"] == "motion_end")
    assert off["t"] >= majors[-1].end_s + 10 - 1.5  # hangover may end motion up to ~1 s after the label
    assert off["t"] == pytest.approx(off["data"]["last_motion_t"] + 10, abs=0.06)
    assert last_motion < off["t"]
    assert all(a["t"] <= b["t"] for a, b in zip(events, events[1:]))  # audio time, increasing
    # the same events are in the SQLite event log, with their audio times
    with sqlite3.connect(tmp_path / "events.sqlite3") as db:
        rows = db.execute("SELECT type, t_s FROM events ORDER BY id").fetchall()
    assert [r[0] for r in rows] == types
    assert [round(r[1], 3) for r in rows] == [round(e["t"], 3) for e in events]
    assert "1 presence on, 1 presence off" in proc.stderr  # the summary line


def test_duty_cycle_end_to_end_holds_presence_and_saves_emission(tmp_path):
    """Same walk, tone off 5 s after each confirmation: presence holds through every off period."""
    spec = tmp_path / "walk80.toml"
    spec.write_text('duration_s = 80.0\n[[movers]]\ntype = "person"\nroute = "enter-leave"\n'
                    "start_s = 3.0\nstay_s = 25.0\n")
    cfg = write_config(tmp_path, "off_after_presence_s = 5\nrecheck_s = 1")
    out = tmp_path / "events.jsonl"
    proc = subprocess.run(uspd("run", "--simulate", str(spec), "--speed", "0", "--config", str(cfg),
                               "--jsonl", str(out), "--no-view"),
                          capture_output=True, text=True, timeout=120, env=env())
    assert proc.returncode == 0, proc.stderr
    events = read_jsonl(out)
    offs = [e for e in events if e["type"] == "tone_off"]
    ons = [e for e in events if e["type"] == "tone_on"]
    assert len(offs) >= 1 and len(ons) == len(offs)
    for a, b in zip(offs, ons):
        assert b["t"] == pytest.approx(a["data"]["until_t"], abs=0.06)
        inside = [e for e in events if a["t"] < e["t"] < b["t"]]
        assert inside == []  # nothing detected while the tone is off: detection paused, presence held
        assert a["presence"] is True
    (p_off,) = [e for e in events if e["type"] == "presence_off"]
    # vacancy countdown frozen while off: the quiet time is counted only while listening
    assert p_off["t"] > ons[-1]["t"] + 1.0
    assert "tone on" in proc.stderr and "% of the time" in proc.stderr
    pct = int(proc.stderr.split("tone on ")[1].split("%")[0])
    assert 50 <= pct < 100


def test_terminal_view_on_a_tty(tmp_path):
    cfg = write_config(tmp_path)
    master, slave = pty.openpty()
    proc = subprocess.Popen(uspd("run", "--simulate", SCENE, "--speed", "0", "--duration-s", "30",
                                 "--config", str(cfg)),
                            stdin=slave, stdout=slave, stderr=slave, env=dict(env(), TERM="xterm"), close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, text[-2000:]
    assert "\x1b[?25l" in text and "\x1b[?25h" in text  # cursor hidden while live, shown again
    assert "F\x1b[2K" in text  # redrawn in place (cursor up N lines, clear line)
    for needle in ("audio time", "score", "presence", "tone", "OCCUPIED", "presence ON", "Ctrl-C to stop"):
        assert needle in text, needle
    assert "0:00:30.0" in text  # final panel at the end of the requested audio time
    assert "Traceback" not in text


def test_sigterm_stops_cleanly_and_keeps_the_log(tmp_path):
    cfg = write_config(tmp_path)
    out = tmp_path / "events.jsonl"
    proc = subprocess.Popen(uspd("run", "--simulate", SCENE, "--speed", "4", "--config", str(cfg), "--jsonl",
                                 str(out), "--no-view", "--decisions"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 2000):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "(SIGTERM)" in err and "Traceback" not in err
    lines = read_jsonl(out)  # every line complete JSON
    decisions = [d for d in lines if d["type"] == "decision"]
    assert decisions and decisions[-1]["t"] < 55  # stopped early, at audio time, not at the scene's end
    with sqlite3.connect(tmp_path / "events.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("args, needle", [
    (["--simulate", "no-such-scene"], "no-such-scene"),
    (["--simulate", "walk-in", "--speed", "-1"], "--speed"),
    (["--simulate", "walk-in", "--duration-s", "0"], "--duration-s"),
    (["--simulate", "walk-in", "--decisions"], "--jsonl"),
    (["--seed", "3"], "--simulate"),
    (["--simulate", "walk-in", "--set", "presence=1"], "SECTION.KEY=VALUE"),
    (["--simulate", "walk-in", "--set", "emission.fade_s=0"], "[emission].fade_s"),
])
def test_bad_run_options_are_one_line_errors(args, needle, capsys):
    from uspd.cli import main

    assert main(["run", "--no-view", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and err.startswith("uspd: error:")


def test_set_overrides_config_values():
    from uspd.commands.run import parse_overrides

    assert parse_overrides(["presence.vacancy_timeout_s=20", "emission.duty_cycle=false", "device.input=USB Mic",
                            "presence.no_motion_s=[60, 120]"]) == {
        "presence": {"vacancy_timeout_s": 20, "no_motion_s": [60, 120]},
        "emission": {"duty_cycle": False}, "device": {"input": "USB Mic"}}
