"""Streaming Doppler front end: synthetic tones land where physics says, chunking never changes the frames."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from uspd.config import load_config
from uspd.errors import ConfigError
from uspd.features.frontend import DopplerFrontEnd, FrontEndConfig, Frames


def tones(fs: int, dur_s: float, comps, n_mics: int = 1, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Sum of cosines (amplitude, freq_hz, phase) on every mic, plus white noise; (n, n_mics) float32."""
    n = int(round(dur_s * fs))
    idx = np.arange(n)
    x = np.zeros(n)
    for amp, f, ph in comps:
        x += amp * np.cos(2 * np.pi * f / fs * idx + ph)
    rng = np.random.default_rng(seed)
    out = x[:, None] * np.linspace(1.0, 0.5, n_mics)[None, :] + noise * rng.standard_normal((n, n_mics))
    return out.astype(np.float32)


def run(fe: DopplerFrontEnd, x: np.ndarray, chunk: int | None = None) -> Frames:
    if chunk is None:
        return fe.process(x)
    return Frames.concat([fe.process(x[i:i + chunk]) for i in range(0, len(x), chunk)])


@pytest.mark.parametrize("delta_hz", [-800, -300, -45, -20, 20, 45, 140, 300, 800])
def test_doppler_tone_lands_in_its_bin(delta_hz):
    fs, f0 = 96000, 40000.0
    x = tones(fs, 1.0, [(0.3, f0, 0.2), (0.003, f0 + delta_hz, 1.0)], noise=1e-5)
    fr = DopplerFrontEnd(fs, [f0], 1).process(x)
    spec = fr.spectra_db[-5:, 0, 0].mean(axis=0)
    peak_hz = fr.freqs_hz[np.argmax(spec)]
    df = fr.freqs_hz[1] - fr.freqs_hz[0]
    assert abs(peak_hz - delta_hz) <= df + 1e-9
    # 0.003 / 0.3 = -40 dB re carrier, spread over at most the Hann main lobe.
    assert -47.0 < spec.max() < -39.0


def test_static_tone_gives_no_doppler_energy():
    """Direct path + two static echoes (same frequency) and a 5 ppm clock offset: all clutter, no Doppler."""
    fs, f0 = 96000, 40000.0
    drift = f0 * 5e-6
    x = tones(fs, 2.0, [(0.2, f0 + drift, 0.0), (0.05, f0 + drift, 2.0), (0.02, f0 + drift, 4.0)], n_mics=2)
    fe = DopplerFrontEnd(fs, [f0], 2)
    fr = fe.process(x)
    df = fr.freqs_hz[1] - fr.freqs_hz[0]
    outside = np.abs(fr.freqs_hz) > 1.5 * df  # outside the clutter notch (±1 bin)
    assert fr.spectra_db[4:][..., outside].max() < -60.0
    # the level is that of the carrier (not zero): the test is not trivially passed by silence
    assert np.all(np.abs(fr.level_db[4:] - fr.level_db[-1]) < 0.1)
    assert fr.level_db[-1, 0, 0] > -20.0


def test_moving_reflector_is_seen_over_static_clutter():
    """A weak echo shifted by 25 Hz (0.1 m/s at ~43 kHz) next to strong static clutter is 40 dB above the floor."""
    fs, f0 = 96000, 40000.0
    x = tones(fs, 1.5, [(0.3, f0, 0.0), (0.0003, f0 + 25, 0.0)], noise=1e-5)
    fr = DopplerFrontEnd(fs, [f0], 1).process(x)
    spec = fr.spectra_db[-1, 0, 0]
    near = np.abs(fr.freqs_hz - 25) <= 8
    far = np.abs(fr.freqs_hz) > 200
    assert spec[near].max() > -62.0
    assert spec[near].max() - np.median(spec[far]) > 40.0


def test_level_normalisation_cancels_gain():
    fs, f0 = 96000, 40000.0
    x = tones(fs, 0.6, [(0.05, f0, 0.0), (0.0005, f0 - 200, 1.0), (0.0002, f0 + 60, 2.0)], n_mics=2,
              noise=1e-4, seed=3)
    a = DopplerFrontEnd(fs, [f0], 2).process(x)
    # x 8 is exact in float arithmetic: the frames must be identical, the level 18.06 dB higher
    b = DopplerFrontEnd(fs, [f0], 2).process(x * 8.0)
    np.testing.assert_allclose(b.spectra_db, a.spectra_db, atol=1e-6)
    np.testing.assert_allclose(b.level_db - a.level_db, 20 * np.log10(8.0), atol=1e-6)
    # x 10 (and x 0.1) changes only float32 rounding (~-140 dB re carrier per bin), far below the noise here
    for gain in (10.0, 0.1):
        c = DopplerFrontEnd(fs, [f0], 2).process(x * gain)
        sig = a.spectra_db > -100.0  # all but the deepest nulls of the noise spectrum
        assert sig.mean() > 0.9
        np.testing.assert_allclose(c.spectra_db[sig], a.spectra_db[sig], atol=0.03)
        np.testing.assert_allclose(c.level_db - a.level_db, 20 * np.log10(gain), atol=1e-4)
    # the level is the carrier amplitude in dB re full-scale sine (per-mic gain 1.0 and 0.5)
    np.testing.assert_allclose(a.level_db[-1, 0], 20 * np.log10([0.05, 0.025]), atol=0.05)


def test_t_s_is_the_end_of_the_audio_used():
    fs, f0 = 48000, 20000.0
    cfg = FrontEndConfig()
    x = tones(fs, 1.0, [(0.2, f0, 0.0), (0.002, f0 + 100, 0.5)], noise=1e-5)
    fr = DopplerFrontEnd(fs, [f0], 1, cfg).process(x)
    assert len(fr.t_s) == int(1.0 / cfg.hop_s)
    np.testing.assert_allclose(np.diff(fr.t_s), cfg.hop_s, atol=1e-12)
    np.testing.assert_allclose(fr.t_s[0], cfg.hop_s, atol=1e-12)
    # change the audio after sample n0: frames ending at or before n0 must not change, the next ones must
    n0 = int(0.5 * fs) + 7
    y = x.copy()
    y[n0:] += tones(fs, 1.0, [(0.01, f0 - 300, 0.0)])[n0:]
    fy = DopplerFrontEnd(fs, [f0], 1, cfg).process(y)
    before = fr.t_s * fs <= n0
    np.testing.assert_array_equal(fy.spectra_db[before], fr.spectra_db[before])
    first_after = int(np.argmin(before))
    assert np.abs(fy.spectra_db[first_after] - fr.spectra_db[first_after]).max() > 1.0


def test_48k_with_20k_carrier():
    fs, f0 = 48000, 20000.0
    x = tones(fs, 1.0, [(0.2, f0, 0.0), (0.002, f0 + 140, 0.5)], n_mics=3, noise=1e-5)
    fe = DopplerFrontEnd(fs, [f0], 3)
    fr = fe.process(x)
    assert fr.spectra_db.shape == (20, 1, 3, len(fe.freqs_hz))
    assert fr.freqs_hz.min() >= -1000.0 and fr.freqs_hz.max() <= 1000.0 and fr.freqs_hz.max() > 950.0
    peaks = fr.freqs_hz[np.argmax(fr.spectra_db[-1, 0], axis=-1)]
    np.testing.assert_allclose(peaks, 140.0, atol=fr.freqs_hz[1] - fr.freqs_hz[0])


def test_two_carriers_are_separated():
    fs = 96000
    f1, f2 = 34000.0, 40000.0
    x = tones(fs, 1.0, [(0.2, f1, 0.0), (0.2, f2, 1.0), (0.002, f1 - 250, 0.0), (0.002, f2 + 500, 0.0)],
              n_mics=2, noise=1e-5)
    fr = DopplerFrontEnd(fs, [f1, f2], 2).process(x)
    np.testing.assert_array_equal(fr.carriers_hz, [f1, f2])
    spec = fr.spectra_db[-1]  # (2, 2, B)
    df = fr.freqs_hz[1] - fr.freqs_hz[0]
    for c, shift, other in ((0, -250, 500), (1, 500, -250)):
        peaks = fr.freqs_hz[np.argmax(spec[c], axis=-1)]
        np.testing.assert_allclose(peaks, shift, atol=df)
        # the other carrier's Doppler tone is not there (> 50 dB lower)
        j = np.argmin(np.abs(fr.freqs_hz - other))
        assert np.all(spec[c, :, j] < spec[c].max(axis=-1) - 50.0)


def test_any_chunk_size_gives_identical_frames():
    fs, f0 = 48000, 20000.0
    x = tones(fs, 0.4, [(0.1, f0, 0.0), (0.001, f0 + 90, 0.3), (0.0005, f0 - 400, 2.0)], n_mics=2,
              noise=3e-6, seed=1)
    ref = run(DopplerFrontEnd(fs, [f0], 2), x)
    assert len(ref.t_s) == 8
    rng = np.random.default_rng(0)
    for chunk in (1, 37, 2400, 4801, 19200):
        got = run(DopplerFrontEnd(fs, [f0], 2), x, chunk)
        np.testing.assert_array_equal(got.t_s, ref.t_s)
        np.testing.assert_allclose(got.spectra_db, ref.spectra_db, atol=1e-9, rtol=0)
        np.testing.assert_allclose(got.level_db, ref.level_db, atol=1e-9, rtol=0)
    # irregular chunk sizes (including empty chunks)
    fe = DopplerFrontEnd(fs, [f0], 2)
    cuts = np.sort(rng.integers(0, len(x), 40))
    parts = [fe.process(p) for p in np.split(x, cuts)]
    got = Frames.concat(parts)
    np.testing.assert_allclose(got.spectra_db, ref.spectra_db, atol=1e-9, rtol=0)


def test_reset_restarts_from_silence():
    fs, f0 = 48000, 20000.0
    x = tones(fs, 0.3, [(0.1, f0, 0.0), (0.001, f0 + 90, 0.3)], noise=1e-5)
    fe = DopplerFrontEnd(fs, [f0], 1)
    a = fe.process(x)
    fe.reset()
    b = fe.process(x)
    np.testing.assert_array_equal(a.t_s, b.t_s)
    np.testing.assert_array_equal(a.spectra_db, b.spectra_db)


def test_oscillator_phase_is_exact_after_hours():
    """The mixing phase at sample ~3.6e8 (an hour at 96 kHz) equals exact rational arithmetic."""
    fs = 96000
    f0 = 40000.375
    fe = DopplerFrontEnd(fs, [f0], 1)
    j0 = 3600 * fs // fe.decimation + 12345
    osc = fe.demodulator.oscillator(j0, 3)[0]
    for i, z in enumerate(osc):
        n = (j0 + i + 1) * fe.decimation - 1
        cycles = (Fraction(f0) * n / fs) % 1
        expected = np.exp(-2j * np.pi * float(cycles))
        assert abs(z - expected) < 1e-9


def _reference_baseband(x: np.ndarray, fs: int, carriers_hz, h: np.ndarray, d: int, lead: int) -> np.ndarray:
    """Float64 mix down, filter, decimate: (K, C, n // d), output j at sample (j + 1) d - 1 - lead."""
    n = np.arange(len(x))
    idx = (np.arange(len(x) // d) + 1) * d - 1 - lead
    out = []
    for f0 in carriers_hz:
        bb = x.astype(np.float64) * np.exp(-2j * np.pi * np.mod(f0 * n / fs, 1.0))[:, None]
        out.append([np.convolve(bb[:, c], h)[idx] for c in range(x.shape[1])])
    return np.array(out)


@pytest.mark.parametrize("fs, d, lead, extra_tap", [(96000, 24, 0, False), (96000, 24, 23, True),
                                                    (48000, 10, 4, False)])
def test_demodulator_matches_mix_filter_decimate(fs, d, lead, extra_tap):
    from uspd.features.demodulator import CarrierDemodulator, decimation_lowpass

    carriers = [fs * 0.35, fs * 0.4167 + 0.375]
    h = decimation_lowpass(fs, d, 1000.0, 80.0, extra_tap=extra_tap)
    x = tones(fs, 0.3, [(0.3, carriers[0] + 120, 0.3), (0.2, carriers[1] - 700, 1.0), (0.1, 3000.0, 0.0)],
              n_mics=2, noise=0.01, seed=4)
    ref = _reference_baseband(x, fs, carriers, h, d, lead)
    demod = CarrierDemodulator(fs, carriers, 2, d, h, lead=lead)
    cuts = np.sort(np.random.default_rng(1).integers(0, len(x), 9))
    got = np.concatenate([demod.feed(part) for part in np.split(x, cuts)], axis=2)
    assert got.shape == ref.shape and demod.produced == len(x) // d
    # a tone's baseband amplitude is A/2: the reference is not trivially small
    assert np.abs(ref[0, 0, demod.warmup:]).min() > 0.1
    np.testing.assert_allclose(got, ref, atol=2e-6, rtol=0)  # float32 products


def test_demodulator_blocks_are_chunk_invariant_and_flush_gives_the_rest():
    from uspd.features.demodulator import CarrierDemodulator, decimation_lowpass

    fs, d, block = 48000, 12, 7
    h = decimation_lowpass(fs, d, 1000.0, 80.0)
    x = tones(fs, 0.25, [(0.3, 20000.0, 0.0), (0.01, 20150.0, 1.0)], n_mics=3, noise=1e-3, seed=2)
    x = x[: 12 * 7 * 40 + 12 * 5 + 9]  # 40 whole blocks, 5 outputs and 9 samples more
    whole = CarrierDemodulator(fs, [20000.0], 3, d, h, block=block)
    a = whole.feed(x)
    assert a.shape == (1, 3, 7 * 40)
    tail = whole.flush()
    assert tail.shape == (1, 3, 5) and whole.flush().shape == (1, 3, 0)
    for chunk in (1, 100, 4801):
        demod = CarrierDemodulator(fs, [20000.0], 3, d, h, block=block)
        parts = [demod.feed(x[i:i + chunk]) for i in range(0, len(x), chunk)] + [demod.flush()]
        assert all(p.shape[2] % block == 0 for p in parts[:-1])
        np.testing.assert_array_equal(np.concatenate(parts, axis=2), np.concatenate([a, tail], axis=2))
    free = CarrierDemodulator(fs, [20000.0], 3, d, h)  # block 0: everything at once, same numbers up to rounding
    np.testing.assert_allclose(free.feed(x), np.concatenate([a, tail], axis=2), atol=1e-6, rtol=0)


@pytest.mark.parametrize("fs, d, band_hz, extra_tap", [(96000, 24, 1000.0, False), (96000, 24, 1000.0, True),
                                                       (48000, 10, 800.0, False)])
def test_decimation_lowpass_passes_the_band_and_stops_aliases(fs, d, band_hz, extra_tap):
    from uspd.features.demodulator import decimation_lowpass

    h = decimation_lowpass(fs, d, band_hz, 80.0, extra_tap=extra_tap)
    assert len(h) % d == (1 if extra_tap else 0)
    f = np.linspace(0.0, fs / 2, 8001)
    gain_db = 20 * np.log10(np.abs(np.exp(-2j * np.pi * np.outer(f, np.arange(len(h))) / fs) @ h))
    assert np.abs(gain_db[f <= band_hz]).max() < 0.01
    assert gain_db[f >= fs / d - band_hz].max() < -78.0  # whatever would alias into ±band_hz


def test_config_validation():
    with pytest.raises(ConfigError, match="hop_s"):
        FrontEndConfig(hop_s=0.1).validate()
    with pytest.raises(ConfigError, match="baseband_rate_hz"):
        FrontEndConfig(baseband_rate_hz=1500.0).validate()
    with pytest.raises(ConfigError, match="carrier_tracking_s"):
        FrontEndConfig(carrier_tracking_s=0.5).validate()
    with pytest.raises(ConfigError, match="band_hz"):
        DopplerFrontEnd(48000, [23500.0], 1)
    with pytest.raises(ValueError):
        DopplerFrontEnd(48000, [20000.0], 2).process(np.zeros((100, 3), np.float32))


def test_frontend_section_of_the_config_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[frontend]\nhop_s = 0.025\nwindow_s = 0.2\n")
    cfg = load_config(p)
    assert cfg.frontend.hop_s == 0.025 and cfg.frontend.window_s == 0.2
    fe = DopplerFrontEnd(48000, [20000.0], 1, cfg.frontend)
    fr = fe.process(np.zeros((4800, 1), np.float32))
    np.testing.assert_allclose(fr.t_s, np.arange(1, 5) * 0.025)
    p.write_text("[frontend]\nhop_s = 0.2\n")
    with pytest.raises(ConfigError, match=r"hop_s"):
        load_config(p)
    p.write_text("[frontend]\nhop = 0.02\n")
    with pytest.raises(ConfigError, match=r"unknown key"):
        load_config(p)


def test_numpy_filter_designs_match_scipy():
    from scipy import signal

    from uspd.features.filters import butter_highpass_zpk, kaiser_lowpass, kaiser_order

    for order, fc, fs in ((4, 3.0, 4000.0), (2, 10.0, 4800.0), (5, 40.0, 4000.0)):
        _, p_ref, k_ref = signal.butter(order, fc, "highpass", fs=fs, output="zpk")
        p, k = butter_highpass_zpk(order, fc, fs)
        np.testing.assert_allclose(np.sort_complex(p), np.sort_complex(p_ref), rtol=1e-12)
        assert k == pytest.approx(k_ref, rel=1e-12)
    for atten, width in ((80.0, 0.0417), (60.0, 0.1), (30.0, 0.2)):
        assert kaiser_order(atten, width) == pytest.approx(signal.kaiserord(atten, width))
        n, beta = kaiser_order(atten, width)
        np.testing.assert_allclose(kaiser_lowpass(n, 2000.0, 96000.0, beta),
                                   signal.firwin(n, 2000.0, window=("kaiser", beta), fs=96000.0), atol=1e-15)


def test_segmented_high_pass_matches_sosfilt_and_starts_settled():
    from scipy import signal

    from uspd.features.filters import SegmentedHighPass

    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4000)) + 1j * rng.standard_normal((3, 4000)) + (2.0 - 1.0j)
    for order, fc in ((4, 3.0), (2, 20.0)):
        z, p, k = signal.butter(order, fc, "highpass", fs=4000.0, output="zpk")
        ref = signal.sosfilt(signal.zpk2sos(z, p, k), x, axis=-1)
        seg = SegmentedHighPass.segment_for(p, 200)
        f = SegmentedHighPass(order, fc, 4000.0, 3, seg)
        got = np.concatenate([f.process(x[:, i:i + 200]) for i in range(0, 4000, 200)], axis=1)
        np.testing.assert_allclose(got, ref, atol=1e-9 * np.abs(ref).max())
    # started on a constant, a constant input gives exactly nothing; a step after it gives the step response
    f = SegmentedHighPass(4, 3.0, 4000.0, 1, 200)
    f.start(np.array([0.3 + 0.1j]))
    np.testing.assert_array_equal(f.process(np.full((1, 400), 0.3 + 0.1j)), 0.0)
    with pytest.raises(ValueError):
        f.process(np.zeros((1, 150), complex))


@pytest.mark.parametrize("fs, f0, ppm", [(96000, 40000.0, 20.0), (96000, 40000.0, -100.0), (48000, 20000.0, 100.0)])
def test_carrier_tracking_removes_a_clock_offset(fs, f0, ppm):
    """Playback and capture clocks ``ppm`` apart put the whole static field f0 ppm 1e-6 Hz off the carrier. Without
    tracking the clutter high-pass lets it into the Doppler bins next to zero; tracked, the offset is measured and
    the field is as quiet as a shared clock's, while a moving echo keeps its Doppler (relative to the tone heard)."""
    off = f0 * ppm * 1e-6
    echo_hz = 60.0
    x = tones(fs, 6.0, [(0.2, f0 + off, 0.0), (0.05, f0 + off, 2.0), (0.02, f0 + off, 4.0),
                        (0.0003, f0 + off + echo_hz, 1.0)], n_mics=2, noise=1e-5)
    shared = tones(fs, 6.0, [(0.2, f0, 0.0), (0.05, f0, 2.0), (0.02, f0, 4.0), (0.0003, f0 + echo_hz, 1.0)],
                   n_mics=2, noise=1e-5)
    fe = DopplerFrontEnd(fs, [f0], 2)
    tracked = fe.process(x)
    assert fe.tracker.offset_hz[0] == pytest.approx(off, abs=0.01)  # well beyond the threshold: followed in full
    untracked = DopplerFrontEnd(fs, [f0], 2, FrontEndConfig(carrier_tracking_s=0)).process(x)
    reference = DopplerFrontEnd(fs, [f0], 2, FrontEndConfig(carrier_tracking_s=0)).process(shared)
    df = tracked.freqs_hz[1] - tracked.freqs_hz[0]
    near = (np.abs(tracked.freqs_hz) > 0.5 * df) & (np.abs(tracked.freqs_hz) < 2.5 * df)  # bins +-1, +-2
    settled = slice(40, None)  # after 2 s
    assert untracked.spectra_db[settled][..., near].max() > -60.0      # the offset leaks (test can fail)
    assert tracked.spectra_db[settled][..., near].max() < reference.spectra_db[settled][..., near].max() + 6.0
    assert tracked.spectra_db[settled][..., near].max() < -90.0
    j = np.argmin(np.abs(tracked.freqs_hz - echo_hz))
    np.testing.assert_allclose(tracked.spectra_db[settled][..., j], reference.spectra_db[settled][..., j], atol=0.5)


def test_firm_threshold_is_zero_inside_continuous_and_unbiased_beyond():
    from uspd.features.carrier_tracker import firm_threshold

    t = 0.3
    assert firm_threshold(0.29, t) == 0.0 and firm_threshold(-0.3, t) == 0.0
    assert firm_threshold(0.45, t) == pytest.approx(0.3) and firm_threshold(-0.45, t) == pytest.approx(-0.3)
    assert firm_threshold(0.61, t) == 0.61 and firm_threshold(-4.0, t) == -4.0   # a clear value in full
    xs = np.linspace(-1.0, 1.0, 20001)
    ys = np.array([firm_threshold(x, t) for x in xs])
    assert np.abs(np.diff(ys)).max() < 3 * (xs[1] - xs[0])                      # no jump anywhere


def test_carrier_tracking_follows_a_clean_carrier_from_the_first_hop():
    """A clean carrier (the static field 60 dB above the noise and the echoes) 4 Hz off: its estimate's noise margin
    is tiny, so the offset is followed in full from the first hop, and the Doppler bins next to zero are as quiet
    as a shared clock's from the first frame on (a fixed 0.5 Hz / sqrt(hops) margin left them 20-30 dB louder for the
    first second); a noisy shared clock is still left alone."""
    fs, f0, off = 96000, 40000.0, 4.0
    field = [(0.2, 0.0, 0.0), (0.05, 0.0, 2.0), (0.02, 0.0, 4.0), (0.0003, 60.0, 1.0)]
    x = tones(fs, 1.5, [(a, f0 + off + f, ph) for a, f, ph in field], n_mics=2, noise=1e-5)
    shared = tones(fs, 1.5, [(a, f0 + f, ph) for a, f, ph in field], n_mics=2, noise=1e-5)
    fe = DopplerFrontEnd(fs, [f0], 2)
    fe.process(x[:4800])
    assert fe.tracker.offset_hz[0] == pytest.approx(off, abs=0.01)
    tracked = DopplerFrontEnd(fs, [f0], 2).process(x)
    reference = DopplerFrontEnd(fs, [f0], 2, FrontEndConfig(carrier_tracking_s=0)).process(shared)
    df = tracked.freqs_hz[1] - tracked.freqs_hz[0]
    near = (np.abs(tracked.freqs_hz) > 0.5 * df) & (np.abs(tracked.freqs_hz) < 2.5 * df)  # bins +-1, +-2
    level = lambda fr: fr.spectra_db[:20][..., near].max(axis=(1, 2, 3))  # first second, per frame
    assert np.all(level(tracked) < level(reference) + 10.0)  # within the noise (-86 dB) of the same field
    # a shared clock under loud broadband noise (-6 dB in the band around the carrier): the first hops' raw estimate
    # strays beyond DEADBAND_HZ, the noise margin (grown with the incoherence) holds it: frames exactly untracked
    from uspd.features.carrier_tracker import DEADBAND_HZ

    noisy = tones(fs, 1.0, [(0.2, f0, 0.3), (0.03, f0, 2.0)], n_mics=3, noise=0.1, seed=2)
    fe = DopplerFrontEnd(fs, [f0], 3)
    frames = fe.process(noisy[:4800])
    r_avg = fe.tracker._r_avg[0]
    assert abs(math.atan2(r_avg.imag, r_avg.real) / (math.pi * fe.tracker.hop_s)) > DEADBAND_HZ
    frames = Frames.concat([frames, fe.process(noisy[4800:])])
    plain = DopplerFrontEnd(fs, [f0], 3, FrontEndConfig(carrier_tracking_s=0))
    untracked = Frames.concat([plain.process(noisy[:4800]), plain.process(noisy[4800:])])
    np.testing.assert_array_equal(frames.spectra_db, untracked.spectra_db)


def test_carrier_tracking_leaves_a_shared_clock_alone_and_needs_a_carrier():
    """No offset: the tracked frames are exactly the untracked ones, even with slow echoes only 40 dB below the
    carrier (a person close by) that leave some jitter in the estimate (within DEADBAND_HZ, which the clutter
    high-pass handles alone, plus the estimate's noise while few hops are averaged); a Doppler tone beyond the
    tracking range (+-1 / hop_s, here 45 Hz) with no carrier beside it is not taken for an offset."""
    fs, f0 = 96000, 40000.0
    x = tones(fs, 6.0, [(0.2, f0, 0.3), (0.03, f0, 2.0), (2e-3, f0 + 35, 0.0), (1e-3, f0 - 180, 1.0),
                        (1e-3, f0 + 4, 0.5)], n_mics=3, noise=1e-4, seed=2)
    from uspd.features.carrier_tracker import DEADBAND_HZ

    fe = DopplerFrontEnd(fs, [f0], 3)
    a, raw = [], []
    for i in range(0, len(x), 4800):  # hop by hop: the raw estimate (before the deadband) after every hop
        a.append(fe.process(x[i:i + 4800]).spectra_db)
        r_avg = fe.tracker._r_avg[0]
        raw.append(math.atan2(r_avg.imag, r_avg.real) / (math.pi * fe.tracker.hop_s))
    assert 0.005 < max(map(abs, raw)) < DEADBAND_HZ  # the echoes did move the estimate; the deadband holds it
    b = run(DopplerFrontEnd(fs, [f0], 3, FrontEndConfig(carrier_tracking_s=0)), x, 4800).spectra_db
    np.testing.assert_array_equal(np.concatenate(a), b)
    lone = tones(fs, 2.0, [(0.01, f0 + 45.0, 0.0)], n_mics=2, noise=1e-4)
    fe = DopplerFrontEnd(fs, [f0], 2)
    fr = fe.process(lone)
    assert fe.tracker.offset_hz[0] == 0.0
    df = fr.freqs_hz[1] - fr.freqs_hz[0]
    assert fr.freqs_hz[np.argmax(fr.spectra_db[-1, 0, 0])] == pytest.approx(45.0, abs=df)


def test_carrier_tracking_is_chunk_invariant():
    fs, f0 = 48000, 20000.0
    x = tones(fs, 1.0, [(0.1, f0 + 1.5, 0.0), (0.001, f0 + 90, 0.3), (0.0005, f0 - 400, 2.0)], n_mics=2,
              noise=3e-6, seed=1)
    ref = run(DopplerFrontEnd(fs, [f0], 2), x)
    for chunk in (1, 37, 4801, 19200):
        got = run(DopplerFrontEnd(fs, [f0], 2), x, chunk)
        np.testing.assert_allclose(got.spectra_db, ref.spectra_db, atol=1e-9, rtol=0)
    fe = DopplerFrontEnd(fs, [f0], 2)
    fe.process(x)
    fe.reset()
    np.testing.assert_array_equal(fe.process(x).spectra_db, ref.spectra_db)
