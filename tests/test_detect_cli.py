"""`uspd detect` contract, through the real command in a subprocess."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from uspd.features.synthetic import SyntheticScene, walker
from uspd.recording import RecordingWriter, Sidecar

FS = 48000
F0 = 20000.0
HOP_S = 0.05


def uspd(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "uspd", *map(str, args)], capture_output=True, text=True,
                          timeout=120, **kw)


def write(path, x: np.ndarray) -> None:
    sc = Sidecar(FS, [F0], [[0.03 * i, 0.0, 0.0] for i in range(x.shape[1])])
    with RecordingWriter(path, sc) as w:
        w.write(x)


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    """A 4.33 s 2-mic recording with a walker from 1.5 to 3.5 s (duration not a multiple of the hop)."""
    path = tmp_path_factory.mktemp("detect") / "walk.wav"
    x = SyntheticScene(FS, [F0], 2, echoes=walker(1.5, 3.5), noise_rms=1e-4).render(int(4.33 * FS))
    write(path, x)
    return path


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_output_contract(rec, tmp_path):
    out = tmp_path / "out.jsonl"
    r = uspd("detect", rec, "--output", out)
    assert r.returncode == 0, r.stderr
    rows = read_lines(out)
    duration = 4.33
    assert len(rows) == int(duration / HOP_S)
    t = np.array([row["t"] for row in rows])
    assert np.all(np.diff(t) > 0)
    assert 0 <= duration - t[-1] < HOP_S
    np.testing.assert_allclose(t, (np.arange(len(rows)) + 1) * HOP_S, atol=1e-4)
    for row in rows:
        assert isinstance(row["motion"], bool) and isinstance(row["presence"], bool)
        assert 0.0 <= row["score"] <= 1.0
        assert row["kind"] in ("major", "minor", None)
        assert (row["kind"] is None) == (not row["motion"])
        assert isinstance(row["events"], list)
    motion_t = t[[row["motion"] for row in rows]]
    assert motion_t.size and 1.5 < motion_t.min() < 2.0
    types = [e["type"] for row in rows for e in row["events"]]
    assert "motion_start" in types and "presence_on" in types


def test_stdout_and_chunk_size_give_the_same_lines(rec, tmp_path):
    out = tmp_path / "a.jsonl"
    assert uspd("detect", rec, "-o", out).returncode == 0
    r = uspd("detect", rec, "--output", "-", "--chunk-s", "0.013")
    assert r.returncode == 0, r.stderr
    assert r.stdout == out.read_text()


def test_labels_are_never_read(rec, tmp_path):
    wav = tmp_path / "copy.wav"
    wav.write_bytes(rec.read_bytes())
    wav.with_suffix(".json").write_text(rec.with_suffix(".json").read_text())
    (tmp_path / "copy.labels.json").write_text("{not json")
    r = uspd("detect", wav, "-o", "-")
    assert r.returncode == 0, r.stderr
    assert r.stdout == uspd("detect", rec, "-o", "-").stdout


def test_killed_run_keeps_every_line_so_far(tmp_path):
    long = tmp_path / "long.wav"
    block = SyntheticScene(FS, [F0], 1, noise_rms=1e-4).render(FS)  # 1 s, repeated: 5 minutes of audio
    sc = Sidecar(FS, [F0], [[0.03, 0.0, 0.0]])
    with RecordingWriter(long, sc) as w:
        for _ in range(300):
            w.write(block)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "uspd", "detect", str(long), "-o", str(out), "--chunk-s", "0.05"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if out.exists() and out.read_text().count("\n") >= 20:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL  # it was still running: the file is what a crash leaves
    text = out.read_text()
    lines = text.splitlines()
    assert len(lines) >= 20
    assert len(lines) < 300 / HOP_S
    complete = lines if text.endswith("\n") else lines[:-1]  # the kill may land mid-write of the last line
    assert len(complete) >= 20
    t = [json.loads(line)["t"] for line in complete]
    np.testing.assert_allclose(t, (np.arange(len(t)) + 1) * HOP_S, atol=1e-4)


def test_bad_inputs_give_one_line_errors(rec, tmp_path, capsys):
    from uspd.cli import main

    def check(args, *fragments):
        """In-process for speed (the missing-file case below goes through a real subprocess)."""
        code = main([str(a) for a in args])
        err = capsys.readouterr().err
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("uspd: error:"), err
        for f in fragments:
            assert f in lines[0], lines[0]

    r = uspd("detect", tmp_path / "nope.wav", "-o", tmp_path / "never.jsonl")
    assert r.returncode == 2 and r.stderr.startswith("uspd: error:") and "nope.wav" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "never.jsonl").exists()  # no empty output for bad input
    lone = tmp_path / "lone.wav"
    lone.write_bytes(rec.read_bytes())
    check(["detect", lone, "-o", "-"], "lone.json", "sidecar")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....not a wav at all")
    junk.with_suffix(".json").write_text(rec.with_suffix(".json").read_text())
    check(["detect", junk, "-o", "-"], "junk.wav")
    check(["detect", rec, "-o", "-", "--chunk-s", "0"], "--chunk-s")
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[frontend]\nhop_s = 0.5\n")
    check(["detect", rec, "-o", "-", "--config", cfg], "hop_s")
    check(["detect", rec, "-o", tmp_path / "no" / "such" / "dir" / "out.jsonl"], "out.jsonl")
    check(["detect", rec, "-o", tmp_path], "directory")


def test_help_gives_units_and_defaults():
    r = uspd("detect", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for fragment in ("--output", "--detector", "--config", "--chunk-s", "(s)", "default: 1.0", "classic"):
        assert fragment in text, fragment
