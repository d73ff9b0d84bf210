"""The recording format: what outside tools write is accepted, uspd's writer round-trips, and every bad input is a
one-line error naming the file (also through the CLI: exit 2, no traceback, no picture)."""
from __future__ import annotations

import subprocess
import sys
import wave

import numpy as np
import pytest
import soundfile as sf
from rec_helpers import RING_2, read_json, ring, tones, write_json, write_tones

from uspd import cli
from uspd.errors import RecordingError
from uspd.recording import (LabelInterval, Labels, RecordingReader, RecordingWriter, Sidecar, read_labels,
                            write_labels)

FS = 96000


def minimal_sidecar(name: str, reference: str | None, **changes) -> dict:
    """The minimal sidecar of issue 3, as outside tools write it."""
    d = {"sample_rate": 96000, "carrier_hz": [40000.0], "mic_positions_m": [[0.035, 0.0, 0.05], [-0.035, 0.0, 0.05]],
         "reference": reference}
    d.update(changes)
    return d


def write_with_wave_module(path, x: np.ndarray, fs: int) -> None:
    """int16 WAV written by the standard library (an 'outside tool', not libsndfile)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(fs)
        w.writeframes(np.round(x * 32767).astype("<i2").tobytes())


def read_everything(wav) -> RecordingReader:
    r = RecordingReader(wav)
    for _ in r.chunks(4096):
        pass
    if r.reference_path is not None:
        for _ in r.reference_chunks(4096):
            pass
    return r


# --- what must be accepted ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("with_reference", [True, False])
def test_minimal_sidecar_from_an_outside_tool(tmp_path, with_reference):
    n = 9600
    x = np.stack([0.5 * tones(FS, n, [40000.0], [1.0]), 0.25 * tones(FS, n, [40100.0], [1.0])], axis=1)
    write_with_wave_module(tmp_path / "ext.wav", x, FS)
    ref = None
    if with_reference:
        ref = "ext.ref.wav"
        write_with_wave_module(tmp_path / ref, 0.5 * tones(FS, n, [40000.0], [1.0])[:, None], FS)
    (tmp_path / "ext.json").write_text(
        '{"sample_rate": 96000, "carrier_hz": [40000.0], "mic_positions_m": [[0.035, 0.0, 0.05], '
        '[-0.035, 0.0, 0.05]],\n "reference": ' + (f'"{ref}"' if ref else "null") + "}\n")
    r = RecordingReader(tmp_path / "ext.wav")
    assert (r.sample_rate, r.n_mics, r.n_frames) == (FS, 2, n)
    assert r.sidecar.carrier_hz == [40000.0] and r.sidecar.mic_positions_m == RING_2
    assert r.duration_s == pytest.approx(0.1)
    np.testing.assert_allclose(r.read_all(), np.round(x * 32767) / 32768, atol=1e-6)
    if with_reference:
        assert r.reference_path == tmp_path / ref
        (block,) = list(r.reference_chunks(n))
        assert block.shape == (n,) and abs(block.max() - 0.5) < 1e-3
    else:
        assert r.reference_path is None
        with pytest.raises(RecordingError, match="no reference"):
            next(r.reference_chunks(100))


@pytest.mark.parametrize("fmt, tol", [("int16", 1 / 32768), ("int24", 1 / 2 ** 23), ("float32", 1e-7)])
def test_sample_formats_round_trip(tmp_path, fmt, tol):
    wav = write_tones(tmp_path / f"{fmt}.wav", freqs_hz=(40000.0, 40200.0), amps=(0.6, 0.3), duration_s=0.2,
                      n_mics=3, sample_format=fmt, with_reference=True, mic_gains=(1.0, 0.5, -1.0))
    r = RecordingReader(wav)
    expected = tones(FS, int(0.2 * FS), [40000.0, 40200.0], [0.6, 0.3])[:, None] * np.array([1.0, 0.5, -1.0])
    got = r.read_all()
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1.01 * tol
    assert sf.info(str(wav)).subtype == {"int16": "PCM_16", "int24": "PCM_24", "float32": "FLOAT"}[fmt]
    assert len(np.concatenate(list(r.reference_chunks(777)))) == r.n_frames


def test_int16_samples_are_libsndfiles_float_values_at_any_chunking(tmp_path):
    """16-bit PCM is scaled by uspd itself (faster): every value, the extremes included, must equal libsndfile's own
    float conversion, and chunk boundaries must not matter."""
    rng = np.random.default_rng(5)
    raw = rng.integers(-32768, 32768, size=(5003, 3), dtype=np.int16)
    raw[:4, 0] = [-32768, 32767, 0, -1]
    sf.write(str(tmp_path / "r.wav"), raw, FS, subtype="PCM_16")
    write_json(tmp_path / "r.json", minimal_sidecar("r", None, carrier_hz=[40000.0], mic_positions_m=ring(3)))
    expected = sf.read(str(tmp_path / "r.wav"), dtype="float32", always_2d=True)[0]
    assert expected[0, 0] == -1.0 and expected[1, 0] == np.float32(32767 / 32768)
    r = RecordingReader(tmp_path / "r.wav")
    for chunk in (1, 777, 5003, 10 ** 6):
        blocks = list(r.chunks(chunk))
        assert all(b.dtype == np.float32 and b.shape[1] == 3 for b in blocks)
        np.testing.assert_array_equal(np.concatenate(blocks), expected)


def test_extensible_wav_int24_four_channels(tmp_path):
    """WAVE_FORMAT_EXTENSIBLE, as many recorders write for >2 channels or 24 bit."""
    x = 0.4 * np.stack([tones(FS, 4800, [38000.0 + 100 * k], [1.0]) for k in range(4)], axis=1)
    sf.write(str(tmp_path / "x.wav"), x, FS, subtype="PCM_24", format="WAVEX")
    write_json(tmp_path / "x.json", minimal_sidecar("x", None, carrier_hz=[38000.0], mic_positions_m=ring(4)))
    np.testing.assert_allclose(RecordingReader(tmp_path / "x.wav").read_all(), x, atol=1e-6)


def test_unknown_keys_are_kept_and_written_back(tmp_path):
    wav = write_tones(tmp_path / "a.wav", duration_s=0.05, with_reference=True)
    d = read_json(tmp_path / "a.json")
    d.update(device={"name": "kitchen speaker", "serial": 17}, emission_db=-20.5, temperature_c=21.0)
    write_json(tmp_path / "a.json", d)
    r = RecordingReader(wav)
    assert r.sidecar.extra["device"] == {"name": "kitchen speaker", "serial": 17}
    with RecordingWriter(tmp_path / "copy" / "b.wav", r.sidecar, with_reference=True) as w:
        w.write(r.read_all(), np.concatenate(list(r.reference_chunks(10 ** 6))))
    out = read_json(tmp_path / "copy" / "b.json")
    for key in ("device", "emission_db", "temperature_c", "format_version"):
        assert out[key] == d[key]
    # The copy names its own reference; the original sidecar object and file are untouched.
    assert out["reference"] == "b.ref.wav" and (tmp_path / "copy" / "b.ref.wav").exists()
    assert r.sidecar.reference == "a.ref.wav"
    assert RecordingReader(tmp_path / "copy" / "b.wav").n_frames == r.n_frames


def test_chunks_stream_and_cover_the_file(tmp_path, monkeypatch):
    wav = write_tones(tmp_path / "c.wav", duration_s=0.5, n_mics=2, with_reference=True)
    r = RecordingReader(wav)
    requested = []
    original_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return original_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    blocks = list(r.chunks(5000))
    assert 0 < max(requested) <= 5000 and all(b.shape[1] == 2 and len(b) <= 5000 for b in blocks)
    whole = np.concatenate(blocks)
    assert len(whole) == r.n_frames == 48000
    part = np.concatenate(list(r.chunks(1000, start=12345, stop=20000)))
    np.testing.assert_array_equal(part, whole[12345:20000])
    ref = np.concatenate(list(r.reference_chunks(3000, start=100, stop=400)))
    assert ref.shape == (300,)


def test_streaming_header_without_sizes_is_accepted(tmp_path):
    """Writers that stream to a pipe leave 0xFFFFFFFF as the data size; that is not truncation."""
    wav = write_tones(tmp_path / "s.wav", duration_s=0.05)
    data = bytearray(wav.read_bytes())
    i = data.find(b"data")
    data[i + 4:i + 8] = b"\xff\xff\xff\xff"
    wav.write_bytes(bytes(data))
    assert RecordingReader(wav).n_frames == int(0.05 * FS)


# --- the writer ------------------------------------------------------------------------------------------------------

def test_writer_writes_sidecar_last_and_refuses_nan(tmp_path):
    sc = Sidecar(FS, [40000.0], RING_2, reference="someone-else.ref.wav", extra={"note": "x"})
    w = RecordingWriter(tmp_path / "w.wav", sc, with_reference=False)
    w.write(np.zeros((100, 2)))
    assert not (tmp_path / "w.json").exists()  # a recording without sidecar is visibly unfinished
    bad = np.zeros((10, 2))
    bad[3, 1] = np.nan
    with pytest.raises(RecordingError, match=r"w\.wav.*NaN"):
        w.write(bad)
    w.close()
    w.close()
    assert read_json(tmp_path / "w.json")["reference"] is None
    assert sc.reference == "someone-else.ref.wav"  # caller's object not modified
    assert RecordingReader(tmp_path / "w.wav").n_frames == 100


def test_writer_clips_integer_formats(tmp_path):
    sc = Sidecar(FS, [40000.0], RING_2)
    with RecordingWriter(tmp_path / "k.wav", sc) as w:
        w.write(np.array([[1.7, -3.0], [0.5, -0.5]]))
    got = RecordingReader(tmp_path / "k.wav").read_all()
    np.testing.assert_allclose(got, [[32767 / 32768, -1.0], [0.5, -0.5]], atol=1e-4)


# --- labels ----------------------------------------------------------------------------------------------------------

def test_labels_round_trip_and_validation(tmp_path):
    wav = tmp_path / "l.wav"
    labels = Labels(60.0, [LabelInterval(3.2, 9.8, "major", 1.4), LabelInterval(20, 21.1, "minor", 1.2, "reach"),
                           LabelInterval(0, 60, "fan", extra={"rpm": 900})], extra={"seed": 7})
    write_labels(wav, labels)
    back = read_labels(wav)
    assert back.duration_s == 60.0 and back.extra == {"seed": 7}
    assert [(iv.kind, iv.action) for iv in back.intervals] == [("major", None), ("minor", "reach"), ("fan", None)]
    assert back.intervals[2].extra == {"rpm": 900} and back.has_people() and back.confusers() == ["fan"]
    assert read_labels(tmp_path / "none.wav") is None
    for bad, fragment in (("{oops", "malformed labels"), ('{"intervals": [{"start_s": 5, "end_s": 2, "kind": "major"}]}',
                                                          "start_s <= end_s"),
                          ('{"intervals": [{"start_s": 1}]}', "bad label interval"), ('[1, 2]', "'intervals' list")):
        (tmp_path / "l.labels.json").write_text(bad)
        with pytest.raises(RecordingError) as err:
            read_labels(wav)
        assert "l.labels.json" in str(err.value) and fragment in str(err.value) and "\n" not in str(err.value)


# --- bad inputs: one line naming the file and the problem -----------------------------------------------------------

def _rec(tmp_path, **kwargs):
    kwargs.setdefault("duration_s", 0.2)
    return write_tones(tmp_path / "rec.wav", **kwargs)


def _edit_sidecar(tmp_path, **changes):
    wav = _rec(tmp_path)
    d = read_json(tmp_path / "rec.json")
    d.update(changes)
    for k in [k for k, v in changes.items() if v is ...]:
        del d[k]
    write_json(tmp_path / "rec.json", d)
    return wav


def _mono_wav_four_mics(tmp_path):
    sf.write(str(tmp_path / "rec.wav"), np.zeros(960), FS, subtype="PCM_16")
    write_json(tmp_path / "rec.json", minimal_sidecar("rec", None, mic_positions_m=ring(4)))
    return tmp_path / "rec.wav"


def _garbage(tmp_path):
    wav = _rec(tmp_path)
    wav.write_bytes(bytes(range(256)) * 40)
    return wav


def _truncate(tmp_path, n_bytes):
    wav = _rec(tmp_path, n_mics=4)
    data = wav.read_bytes()
    wav.write_bytes(data[:-n_bytes])
    return wav


def _nonfinite(tmp_path, value, where="mic"):
    wav = _rec(tmp_path, sample_format="float32", with_reference=True)
    path = wav if where == "mic" else tmp_path / "rec.ref.wav"
    x, _ = sf.read(str(path), dtype="float32", always_2d=True)
    x[5000, -1] = value
    sf.write(str(path), x, FS, subtype="FLOAT")
    return wav


def _replace_reference(tmp_path, x, fs=FS):
    wav = _rec(tmp_path, with_reference=True)
    sf.write(str(tmp_path / "rec.ref.wav"), x, fs, subtype="PCM_16")
    return wav


def _wav_rate_differs(tmp_path):
    wav = _rec(tmp_path)
    x, _ = sf.read(str(wav))
    sf.write(str(wav), x, 48000, subtype="PCM_16")
    return wav


BAD = {
    # name: (make(tmp_path) -> wav, file named in the message, fragments of the message, also via the CLI)
    "missing wav": (lambda p: p / "nothing.wav", "nothing.wav", ["not found"], True),
    "missing sidecar": (lambda p: (_rec(p), (p / "rec.json").unlink())[0], "rec.json", ["sidecar not found"], True),
    "malformed json": (lambda p: (_rec(p), (p / "rec.json").write_text('{"sample_rate": 96000,'))[0], "rec.json",
                       ["malformed sidecar JSON", "line 1"], True),
    "json not an object": (lambda p: (_rec(p), (p / "rec.json").write_text("[96000]"))[0], "rec.json",
                           ["JSON object"], True),
    "missing keys": (lambda p: _edit_sidecar(p, carrier_hz=..., mic_positions_m=...), "rec.json",
                     ["missing carrier_hz, mic_positions_m"], True),
    "sample rate not an integer": (lambda p: _edit_sidecar(p, sample_rate="96k"), "rec.json", ["sample_rate"], True),
    "bad mic position": (lambda p: _edit_sidecar(p, mic_positions_m=[[0.0, 0.0], [0.1, 0, 0]]), "rec.json",
                         ["mic_positions_m", "[x, y, z]"], True),
    "NaN carrier": (lambda p: _edit_sidecar(p, carrier_hz=[float("nan")]), "rec.json", ["carrier_hz"], True),
    "channels differ from mics": (_mono_wav_four_mics, "rec.wav", ["1 channel", "4 mic"], True),
    "carrier band above nyquist": (lambda p: _edit_sidecar(p, sample_rate=48000, carrier_hz=[40000.0]), "rec.json",
                                   ["40000 Hz", "does not fit", "24000 Hz"], True),
    "carrier band below zero": (lambda p: _edit_sidecar(p, carrier_hz=[500.0]), "rec.json", ["does not fit"], True),
    "wav rate differs from sidecar": (_wav_rate_differs, "rec.wav", ["48000 Hz", "96000 Hz"], True),
    "garbage bytes": (_garbage, "rec.wav", ["unreadable WAV"], True),
    "truncated data": (lambda p: _truncate(p, 4000), "rec.wav", ["truncated WAV"], True),
    "truncated by a few bytes": (lambda p: _truncate(p, 5), "rec.wav", ["truncated WAV"], True),
    "unsupported 8-bit": (lambda p: (_rec(p), sf.write(str(p / "rec.wav"), np.zeros((96, 2)), FS,
                                                       subtype="PCM_U8"))[0], "rec.wav", ["unsupported", "PCM_U8"],
                          True),
    "NaN sample": (lambda p: _nonfinite(p, np.nan), "rec.wav", ["NaN or Inf", "0.052083 s"], True),
    "Inf sample": (lambda p: _nonfinite(p, -np.inf), "rec.wav", ["NaN or Inf"], True),
    "NaN in reference": (lambda p: _nonfinite(p, np.nan, "ref"), "rec.ref.wav", ["NaN or Inf"], False),
    "reference missing": (lambda p: (_rec(p, with_reference=True), (p / "rec.ref.wav").unlink())[0], "rec.ref.wav",
                          ["reference file not found", "rec.json"], True),
    "reference shorter": (lambda p: _replace_reference(p, np.zeros(9000)), "rec.ref.wav",
                          ["9000 frames", "19200", "same length"], True),
    "reference rate differs": (lambda p: _replace_reference(p, np.zeros(19200), 48000), "rec.ref.wav",
                               ["48000 Hz", "96000 Hz"], True),
    "reference not mono": (lambda p: _replace_reference(p, np.zeros((19200, 2))), "rec.ref.wav", ["mono"], True),
    "reference garbage": (lambda p: (_rec(p, with_reference=True), (p / "rec.ref.wav").write_bytes(b"RIFF" * 99))[0],
                          "rec.ref.wav", ["unreadable reference WAV"], True),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_naming_file_and_problem(tmp_path, case, capsys):
    make, filename, fragments, via_cli = BAD[case]
    wav = make(tmp_path)
    with pytest.raises(RecordingError) as err:
        read_everything(wav)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / filename) + ":"), msg
    for fragment in fragments:
        assert fragment in msg, msg
    if via_cli:
        out = tmp_path / "fig.png"
        assert cli.main(["spectrogram", str(wav), "--out", str(out)]) == 2
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert lines == [f"uspd: error: {msg}"] and "Traceback" not in captured.err
        assert not out.exists()


def test_bad_inputs_through_the_real_command(tmp_path):
    """The installed entry point (python -m uspd): exit 2, one line on stderr, no traceback."""
    cases = {"missing sidecar": tmp_path / "a", "garbage bytes": tmp_path / "b", "NaN sample": tmp_path / "c"}
    for case, folder in cases.items():
        folder.mkdir()
        wav = BAD[case][0](folder)
        proc = subprocess.run([sys.executable, "-m", "uspd", "spectrogram", str(wav), "--out", str(folder / "f.png")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("uspd: error:")]
        assert len(errors) == 1 and BAD[case][1] in errors[0] and BAD[case][2][0] in errors[0]
        assert not (folder / "f.png").exists()
