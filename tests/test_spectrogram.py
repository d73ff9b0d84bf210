"""`uspd spectrogram` and the Doppler-band computation behind it, on tones at known frequencies."""
from __future__ import annotations

import struct
import sys

import numpy as np
import pytest
from rec_helpers import write_signal, write_tones

from uspd import cli
from uspd.errors import UspdError
from uspd.recording import LabelInterval, Labels, RecordingReader, write_labels
from uspd.viz import doppler_spectrogram
from uspd.viz.spectrogram import BandSpectrogram, colour_limits_db, plot_spectrogram

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def row(spec, offset_hz: float) -> int:
    return int(np.argmin(np.abs(spec.doppler_hz - offset_hz)))


@pytest.fixture(scope="module")
def two_carriers(tmp_path_factory):
    """2 s, 96 kHz, 2 mics: carriers 34 and 40 kHz, echoes at 40 kHz + 150 Hz and 34 kHz - 230 Hz."""
    path = tmp_path_factory.mktemp("spec") / "two.wav"
    return write_tones(path, freqs_hz=(34000.0, 33770.0, 40000.0, 40150.0), amps=(0.3, 0.01, 0.3, 0.003),
                       duration_s=2.0, carriers_hz=(34000.0, 40000.0), mic_gains=(1.0, 0.1))


def test_shifted_tone_lands_in_its_doppler_row_at_its_level(two_carriers):
    s34, s40 = doppler_spectrogram(two_carriers)
    assert (s34.carrier_hz, s40.carrier_hz) == (34000.0, 40000.0)
    for spec, offset, amp in ((s40, 150.0, 0.003), (s34, -230.0, 0.01)):
        assert spec.power_db.shape == (len(spec.doppler_hz), len(spec.times_s))
        assert spec.doppler_hz[0] == pytest.approx(-1000) and spec.doppler_hz[-1] == pytest.approx(1000)
        off = np.abs(spec.doppler_hz) > 50  # away from the carrier line
        strongest = spec.doppler_hz[off][np.argmax(spec.power_db[off], axis=0)]
        assert np.all(strongest == pytest.approx(offset)), strongest
        # Mean power over the two mics (gains 1 and 0.1) of a sine of amplitude `amp`, in dBFS.
        expected_db = 10 * np.log10(amp ** 2 * (1 + 0.01) / 2)
        inner = spec.power_db[row(spec, offset), 2:-2]
        assert np.median(inner) == pytest.approx(expected_db, abs=0.5)


def test_static_tone_gives_nothing_off_centre(tmp_path):
    wav = write_tones(tmp_path / "static.wav", freqs_hz=(20000.0,), amps=(0.5,), fs=48000, duration_s=1.5,
                      carriers_hz=(20000.0,))
    (spec,) = doppler_spectrogram(wav)
    centre = spec.power_db[row(spec, 0.0)]
    assert np.median(centre) == pytest.approx(20 * np.log10(0.5), abs=0.3)
    off = np.abs(spec.doppler_hz) >= 50
    assert spec.power_db[off].max() < centre.min() - 70


def test_mic_selection_and_mean(two_carriers):
    per_mic = [doppler_spectrogram(two_carriers, mic=m)[1] for m in (0, 1)]
    (_, mean) = doppler_spectrogram(two_carriers)
    r = row(mean, 150)
    gap = np.median(per_mic[0].power_db[r] - per_mic[1].power_db[r])
    assert gap == pytest.approx(20.0, abs=0.2)  # mic gains 1 and 0.1
    lin = [10 ** (s.power_db / 10) for s in per_mic]
    np.testing.assert_allclose(10 ** (mean.power_db / 10), (lin[0] + lin[1]) / 2, rtol=1e-3, atol=1e-14)


def test_result_does_not_depend_on_chunking(two_carriers):
    a = doppler_spectrogram(two_carriers, chunk_s=0.0371)
    b = doppler_spectrogram(two_carriers, chunk_s=5.0)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.times_s, y.times_s)
        np.testing.assert_allclose(x.power_db, y.power_db, atol=0.01)


def test_the_last_window_of_the_selection_is_a_column(two_carriers):
    """Every decimated sample reaches the STFT, including those at the end of the file (demodulator flush)."""
    from uspd.viz.spectrogram import DEMODULATOR_BLOCK, _make_plan

    fs = 96000
    plan = _make_plan(fs, 1000.0, 0.1, fs, 2000)
    n_dec = plan.q + plan.n_win + 5 * plan.hop  # ends exactly with a window: 6 columns
    assert n_dec % DEMODULATOR_BLOCK  # (else a flush would not be needed)
    for chunk_s in (0.05, 1.0):
        (spec,) = doppler_spectrogram(two_carriers, mic=0, end_s=n_dec * plan.d / fs, chunk_s=chunk_s)[1:]
        assert len(spec.times_s) == 6


def test_file_is_streamed_in_chunks(two_carriers, monkeypatch):
    requested = []
    original = RecordingReader.chunks

    def spy(self, n, *args, **kwargs):
        for block in original(self, n, *args, **kwargs):
            requested.append(len(block))
            yield block

    monkeypatch.setattr(RecordingReader, "chunks", spy)
    doppler_spectrogram(two_carriers, chunk_s=0.25)
    assert len(requested) >= 8 and max(requested) <= 0.25 * 96000


def test_columns_are_capped_by_averaging(two_carriers):
    (full,) = doppler_spectrogram(two_carriers, mic=0)[1:]
    (capped,) = doppler_spectrogram(two_carriers, mic=0, max_columns=7)[1:]
    n = len(full.times_s)
    group = -(-n // 7)
    assert len(capped.times_s) == -(-n // group) <= 7
    lin = 10 ** (full.power_db / 10)
    for j in range(len(capped.times_s)):
        cols = slice(j * group, min(n, (j + 1) * group))
        np.testing.assert_allclose(capped.power_db[:, j], 10 * np.log10(lin[:, cols].mean(axis=1)), atol=1e-3)
        assert capped.times_s[j] == pytest.approx(full.times_s[cols].mean())


def test_time_axis_and_segment(tmp_path):
    """A tone at +150 Hz that starts at 1.0 s: off before, half (-6 dB) in the column centred there, full after."""
    fs, f0 = 96000, 40000.0
    t = np.arange(2 * fs) / fs
    x = 0.3 * np.cos(2 * np.pi * f0 * t) + 0.01 * np.cos(2 * np.pi * (f0 + 150) * t) * (t >= 1.0)
    wav = write_signal(tmp_path / "burst.wav", x[:, None], fs, (f0,))
    (spec,) = doppler_spectrogram(wav, start_s=0.5, end_s=1.6)
    assert spec.times_s[0] >= 0.5 and spec.times_s[-1] <= 1.6
    level, t_s = spec.power_db[row(spec, 150)], spec.times_s
    top = 10 * np.log10(0.01 ** 2)
    assert np.all(np.abs(level[t_s >= 1.0 + 0.05] - top) < 0.5)  # window (0.1 s) entirely after the onset
    assert np.all(level[t_s <= 1.0 - 0.05] < top - 30)  # entirely before
    half = level[np.argmin(np.abs(t_s - 1.0))]  # window centred on the onset: half the Hann sum, -6 dB
    assert top - 7.5 < half < top - 4.5


@pytest.mark.parametrize("kwargs, fragment", [
    ({"mic": 2}, "--mic 2"),
    ({"band_hz": 9000.0}, "--band-hz"),
    ({"band_hz": 0.0}, "--band-hz"),
    ({"start_s": 3.0}, "--start-s"),
    ({"start_s": 1.0, "end_s": 0.5}, "--end-s"),
    ({"window_s": 0.001}, "--window-s"),
    ({"window_s": 5.0}, "--window-s"),
    ({"window_s": float("nan")}, "--window-s"),
    ({"start_s": float("nan")}, "--start-s"),
    ({"end_s": float("nan")}, "--end-s"),
])
def test_bad_options_are_one_line_errors(two_carriers, kwargs, fragment):
    with pytest.raises(UspdError) as err:
        doppler_spectrogram(two_carriers, **kwargs)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_colour_scale_follows_the_doppler_content_not_the_carrier():
    rng = np.random.default_rng(1)
    doppler = np.arange(-100, 101) * 10.0
    noise = -120 + 3 * rng.standard_normal((len(doppler), 50))
    quiet = noise.copy()
    quiet[100] = -10  # carrier line: never sets the scale
    low, high = colour_limits_db([BandSpectrogram(40000.0, np.arange(50) * 0.05, doppler, quiet)], range_db=60)
    assert low == pytest.approx(-123, abs=1) and high == pytest.approx(low + 60)
    busy = quiet.copy()
    busy[113:118, 10:30] = -40  # an echo around +150 Hz (1 % of the picture)
    low2, high2 = colour_limits_db([BandSpectrogram(40000.0, np.arange(50) * 0.05, doppler, busy)], range_db=60)
    assert low2 == pytest.approx(low, abs=0.5) and high2 == pytest.approx(-40 + 6)


def test_png_is_real_and_labels_add_a_strip(two_carriers, tmp_path):
    specs = doppler_spectrogram(two_carriers)
    plain = plot_spectrogram(specs, tmp_path / "plain.png", "two.wav")
    labels = Labels(2.0, [LabelInterval(0.2, 1.2, "major", 1.5), LabelInterval(1.3, 1.8, "minor", 1.0, "reach"),
                          LabelInterval(0.0, 2.0, "fan")])
    marked = plot_spectrogram(specs, tmp_path / "marked.png", "two.wav", labels=labels)
    w0, h0 = png_size(plain)
    w1, h1 = png_size(marked)
    assert w0 >= 800 and h0 >= 500 and w1 == w0
    assert h1 > h0  # the label strip adds a row per kind


def test_cli_writes_png_with_labels(two_carriers, tmp_path, capsys):
    write_labels(two_carriers, Labels(2.0, [LabelInterval(0.5, 1.5, "major", 2.0)]))
    out = tmp_path / "sub" / "fig.png"
    assert cli.main(["spectrogram", str(two_carriers), "--out", str(out), "--mic", "all", "--band-hz", "500",
                     "--window-s", "0.05"]) == 0
    w, h = png_size(out)
    assert w >= 800 and h >= 500
    default_out = two_carriers.with_name("two.spectrogram.png")
    assert cli.main(["spectrogram", str(two_carriers), "--mic", "1", "--end-s", "1"]) == 0
    assert png_size(default_out)[0] == w


def test_missing_matplotlib_is_a_one_line_hint(two_carriers, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = tmp_path / "x.png"
    assert cli.main(["spectrogram", str(two_carriers), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("uspd: error:") and "pip install 'uspd[plot]'" in err and "\n" not in err
    assert not out.exists()
