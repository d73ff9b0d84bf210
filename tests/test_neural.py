"""Neural detector at inference: velocity-band features, the shipped int8 ONNX model, streaming invariance."""
from __future__ import annotations

import socket
from types import SimpleNamespace

import numpy as np
import pytest

from uspd.detector.neural import FeatureSpec, NeuralDetector, band_features, shipped_model_path
from uspd.errors import UspdError

from nn_fixtures import synthetic_spectra


def _frames(spectra, freqs, f0):
    """Frames-like object; its echo spectrum is the mean power over mics (a stand-in: synthetic spectra have no
    phases)."""
    n = spectra.shape[0]
    echo = 10.0 * np.log10(np.mean(10.0 ** (np.asarray(spectra, np.float64) / 10.0), axis=2))
    return SimpleNamespace(t_s=np.arange(1, n + 1) * 0.05, spectra_db=spectra, freqs_hz=freqs,
                           carriers_hz=np.array([f0]), level_db=np.zeros(spectra.shape[:3]), echo_db=echo)


def _slice(frames, a, b):
    return SimpleNamespace(t_s=frames.t_s[a:b], spectra_db=frames.spectra_db[a:b], freqs_hz=frames.freqs_hz,
                           carriers_hz=frames.carriers_hz, level_db=frames.level_db[a:b],
                           echo_db=frames.echo_db[a:b])


@pytest.mark.parametrize("v_m_s", [-1.2, -0.1, 0.05, 0.3, 2.0])
def test_same_velocity_lands_in_same_band_at_20_and_40_khz(v_m_s):
    spec = FeatureSpec()
    edges = spec.edges_m_s()
    expect = int(np.nonzero((edges[:, 0] <= v_m_s) & (v_m_s < edges[:, 1]))[0][0])
    freqs = np.arange(-1000.0, 1000.1, 2.0)
    for f0 in (20000.0, 40000.0):
        shift = 2 * v_m_s * f0 / 343.2
        s = np.full((1, 1, 2, freqs.size), -100.0)
        s[..., np.argmin(np.abs(freqs - shift))] = -20.0
        x = band_features(s, freqs, [f0], spec)
        assert x.shape == (1, 2, spec.n_bands)
        assert int(np.argmax(x[0, 0])) == expect, f0


def test_bands_beyond_the_front_end_range_get_the_floor_not_nan():
    freqs = np.linspace(-100, 100, 41)  # +-100 Hz at 40 kHz is only +-0.43 m/s
    s = np.full((3, 2, 4, 41), -70.0)
    x = band_features(s, freqs, [40000.0, 38000.0])
    assert x.shape == (3, 8, 32) and np.isfinite(x).all()
    assert x[0, 0, 0] == pytest.approx(-70.0) and x[0, 0, 16] == pytest.approx(-70.0, abs=0.01)
    with pytest.raises(UspdError, match="carrier"):
        band_features(s, freqs, [40000.0])


@pytest.fixture(scope="module")
def detector_path():
    path = shipped_model_path()
    assert path.exists(), "the shipped model must be committed in src/uspd/models"
    return path


def _motion_frames(seed, n_mics, f0=40000.0, n=120):
    rng = np.random.default_rng(seed)
    motion = np.zeros(n, bool)
    motion[40:80] = True
    spec, freqs = synthetic_spectra(rng, n, n_mics, f0, motion)
    return _frames(spec, freqs, f0)


def test_chunk_size_does_not_change_scores(detector_path):
    frames = _motion_frames(0, 4)
    whole = NeuralDetector(detector_path).process(frames)
    for size in (1, 7, 50):
        det = NeuralDetector(detector_path)
        parts = [det.process(_slice(frames, a, a + size)) for a in range(0, 120, size)]
        np.testing.assert_array_equal(np.concatenate([p.score for p in parts]), whole.score)
        np.testing.assert_array_equal(np.concatenate([p.major for p in parts]), whole.major)
    det = NeuralDetector(detector_path)
    det.process(frames)
    det.reset()
    np.testing.assert_array_equal(det.process(frames).score, whole.score)


@pytest.mark.parametrize("n_mics", [2, 3, 5, 8])
@pytest.mark.parametrize("f0", [20000.0, 40000.0])
def test_any_mic_count_and_both_rates_and_mic_order_does_not_matter(detector_path, n_mics, f0):
    frames = _motion_frames(n_mics, n_mics, f0)
    out = NeuralDetector(detector_path).process(frames)
    assert out.score.shape == (120,) and out.major.shape == (120,)
    assert np.all((out.score >= 0) & (out.score <= 1)) and np.all((out.major >= 0) & (out.major <= 1))
    perm = np.random.default_rng(1).permutation(n_mics)
    shuffled = _frames(frames.spectra_db[:, :, perm], frames.freqs_hz, f0)
    np.testing.assert_allclose(NeuralDetector(detector_path).process(shuffled).score, out.score, atol=2e-3)


def test_shipped_model_loads_with_no_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    det = NeuralDetector()
    assert det.manifest["parameters"] <= 50_000
    assert det.manifest["macs_per_s_8_mics"] <= 2_000_000
    assert det.model_path.name.endswith(".onnx")


def test_hybrid_defaults_are_the_ones_chosen_for_the_shipped_model():
    """The fusion's offset and weight are tuned per model: the ``[detector.hybrid]`` defaults must be the ones the
    shipped model's manifest records as chosen for it (shipping a model without its defaults fails here)."""
    from uspd.detector.base import HybridConfig

    chosen = NeuralDetector().manifest["hybrid_defaults"]
    h = HybridConfig()
    assert (h.nn_weight, h.score_logit_offset, h.classic_score_floor) == (
        chosen["nn_weight"], chosen["score_logit_offset"], chosen["classic_score_floor"])


def test_bad_model_files_are_one_line_errors(tmp_path):
    with pytest.raises(UspdError, match="not found"):
        NeuralDetector(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(UspdError, match="manifest"):
        NeuralDetector(bad)
    bad.with_suffix(".json").write_text('{"state_size": 48}')
    with pytest.raises(UspdError, match="cannot load ONNX model"):
        NeuralDetector(bad)


def test_carriers_unknown_is_an_error(detector_path):
    frames = _motion_frames(0, 2)
    frames.carriers_hz = None
    with pytest.raises(UspdError, match="carrier"):
        NeuralDetector(detector_path).process(frames)
    assert NeuralDetector(detector_path, carriers_hz=[40000.0]).process(frames).score.shape == (120,)


def _simulated_features(preset, seed, duration_s, **overrides):
    """Frames of a simulated scene through the real streaming front end, and its labels."""
    from uspd.features.frontend import DopplerFrontEnd, Frames, FrontEndConfig
    from uspd.simulate.render import SceneRenderer
    from uspd.simulate.scene import load_scene

    r = SceneRenderer(load_scene(preset, duration_s=duration_s, **overrides), seed)
    fe = DopplerFrontEnd(r.sample_rate, r.sidecar.carrier_hz, r.n_mics, FrontEndConfig())
    n = int(duration_s * r.sample_rate)
    frames = Frames.concat([fe.process(r.render(min(r.sample_rate, n - i))[0]) for i in range(0, n, r.sample_rate)])
    return frames, r.labels


@pytest.fixture(scope="module")
def realistic():
    pytest.importorskip("uspd.simulate.render")
    return {
        "walk96": _simulated_features("walk-in", 2001, 6.0, movers=[{"type": "person", "route": "approach",
                                                                      "start_s": 1.0}]),
        "walk48": _simulated_features("walk-in", 2002, 6.0, sample_rate=48000,
                                      movers=[{"type": "person", "route": "approach", "start_s": 1.0}]),
        "fan": _simulated_features("fan", 2003, 6.0),
        # a walker crossing 2.3 m away while a robot vacuum runs, and the vacuum alone
        "walk+vacuum": _simulated_features("walk-in", 2005, 8.0, device={"n_mics": 4}, movers=[
            {"type": "vacuum"}, {"type": "person", "route": "cross", "start_s": 1.0}]),
        "vacuum": _simulated_features("walk-in", 2005, 8.0, device={"n_mics": 4}, movers=[{"type": "vacuum"}]),
    }


def test_int8_scores_stay_close_to_the_float_model_on_realistic_features(detector_path, realistic):
    float_path = detector_path.with_name(detector_path.name.replace(".onnx", ".float.onnx"))
    assert float_path.exists()
    for name, (frames, _) in realistic.items():
        q = NeuralDetector(detector_path).process(frames)
        f = NeuralDetector(float_path).process(frames)
        diff = np.abs(q.score - f.score)
        assert diff.max() < 0.1 and diff.mean() < 0.02, name
        assert np.abs(q.major - f.major).mean() < 0.05, name


def _walking_scores(detector_path, frames, labels):
    score = NeuralDetector(detector_path).process(frames).score
    walking = np.zeros(score.size, bool)
    for iv in labels.of_kind("major"):
        walking |= (frames.t_s >= iv.start_s + 0.5) & (frames.t_s <= iv.end_s)
    return score[walking]


#: Rooms for the vacuum test, fresh seeds (no model was selected on them). One room is a coin toss: across 20 other
#: rooms every model so far lost the walker in 7 to 9, mostly walkers 3.5-4 m out or walking for only a second.
VACUUM_ROOM_SEEDS = range(2100, 2112)


@pytest.fixture(scope="module")
def vacuum_rooms():
    """Per room: (frames, labels) of a walker crossing while a robot vacuum runs, and frames of the vacuum alone."""
    pytest.importorskip("uspd.simulate.render")
    movers = [{"type": "vacuum"}, {"type": "person", "route": "cross", "start_s": 1.0}]
    return [(_simulated_features("walk-in", seed, 8.0, device={"n_mics": 4}, movers=movers),
             _simulated_features("walk-in", seed, 8.0, device={"n_mics": 4}, movers=movers[:1])[0])
            for seed in VACUUM_ROOM_SEEDS]


def test_shipped_model_finds_walkers_beside_a_robot_vacuum(detector_path, vacuum_rooms):
    """A model that learnt "a confuser is there -> nobody moves" fails this: it finds few walkers. (The one shipped
    before hard positives scored the walker 0.11 at the 75th percentile in the one room this test used to have.)"""
    from uspd.detector.neural import shift_logit
    from uspd.presence.tracker import PresenceConfig

    detector = NeuralDetector(detector_path)
    # quiet: below 0.1 on the network's own (raw) scale (a calibration in the manifest moves every score, not the
    # network), and at least 0.5 logit below the sensitive threshold as the model runs, where a calibration could lift it
    sensitive = PresenceConfig().sensitive_threshold
    quiet_below = min(shift_logit(np.array([0.1]), detector.score_logit_offset, detector.score_logit_scale)[0],
                      shift_logit(np.array([sensitive]), -0.5)[0])
    found, quiet, counted = 0, 0, 0
    for (frames, labels), alone in vacuum_rooms:
        detector.reset()
        walking = _walking_scores(detector_path, frames, labels)
        if walking.size >= 20:  # at least a second of walking after the first half second
            counted += 1
            found += np.quantile(walking, 0.75) > 0.6  # 0.6: the strict [presence] threshold
        quiet += np.quantile(detector.process(alone).score[20:], 0.99) < quiet_below
    assert counted >= 8
    assert 2 * found >= counted, f"walker found beside the vacuum in {found} of {counted} rooms"
    assert quiet == len(vacuum_rooms), f"vacuum alone stays quiet in {quiet} of {len(vacuum_rooms)} rooms"


def test_shipped_model_scores_walking_above_a_fan(detector_path, realistic):
    fan = NeuralDetector(detector_path).process(realistic["fan"][0]).score
    for name in ("walk96", "walk48"):
        frames, labels = realistic[name]
        score = NeuralDetector(detector_path).process(frames).score
        walking = np.zeros(score.size, bool)
        for iv in labels.of_kind("major"):
            walking |= (frames.t_s >= iv.start_s + 0.5) & (frames.t_s <= iv.end_s)
        assert walking.sum() > 20, name
        assert np.median(score[walking]) > 0.5 > np.median(fan[20:]), name


def test_background_stream_shows_new_energy_and_forgets_steady_energy():
    from uspd.detector.neural import FeatureStream

    spec = FeatureSpec()
    x = np.full((2400, 2, spec.n_bands), -90.0, np.float32)
    x[200:, :, 20] = -60.0  # a fan switched on at 10 s, running for 110 s
    x[2300:2340, 1, 10] = -70.0  # a short burst on one mic only
    out = FeatureStream(spec).process(x)
    assert out.shape == (2400, 2, 2 * spec.n_bands)
    np.testing.assert_array_equal(out[:, :, :spec.n_bands], x)
    rise = out[:, :, spec.n_bands:]
    assert rise[205, 0, 20] > 25.0  # new energy stands out at once
    assert rise[2200, 0, 20] < 3.0  # a steady source is absorbed into the background within ~1.5 min
    assert rise[2320, 1, 10] > 15.0 and abs(rise[2320, 0, 10]) < 1e-3
    parts = FeatureStream(spec)
    chunked = np.concatenate([parts.process(x[a:a + 37]) for a in range(0, 2400, 37)])
    np.testing.assert_array_equal(chunked, out)


def test_features_without_levels_are_the_rise_alone_which_no_gain_or_coupling_offset_changes():
    """FeatureSpec(level=False) feeds only the rise above the background: the default stream's rise columns, and the
    same after a device gain or a louder direct path shifts every band's dB re carrier (by 12 dB here, a mic 3 dB
    more), where the level columns move by the shift. With no inputs left the spec is refused."""
    from uspd.detector.neural import FeatureStream
    from uspd.errors import UspdError

    rng = np.random.default_rng(4)
    full, bare = FeatureSpec(), FeatureSpec(level=False)
    assert bare.n_inputs == full.n_bands and full.n_inputs == 2 * full.n_bands
    x = (-90.0 + 3.0 * rng.standard_normal((600, 2, full.n_bands))).astype(np.float32)
    x[300:320, :, 20] += 30.0  # a walker's burst in one band
    out, ref = FeatureStream(bare).process(x), FeatureStream(full).process(x)
    assert out.shape == (600, 2, full.n_bands)
    np.testing.assert_array_equal(out, ref[:, :, full.n_bands:])
    shifted = x + np.array([12.0, 15.0], np.float32)[None, :, None]
    np.testing.assert_allclose(FeatureStream(bare).process(shifted), out, atol=1e-3)
    moved = FeatureStream(full).process(shifted)[:, :, :full.n_bands] - ref[:, :, :full.n_bands]
    np.testing.assert_allclose(moved[:, 1], 15.0, atol=1e-3)
    parts = FeatureStream(bare)
    np.testing.assert_array_equal(np.concatenate([parts.process(x[a:a + 41]) for a in range(0, 600, 41)]), out)
    assert FeatureSpec(level=False, background=False, spread=True).n_inputs == full.n_bands
    with pytest.raises(UspdError, match="no inputs"):
        FeatureSpec(level=False, background=False)
    assert FeatureSpec.from_dict({"n_per_side": 16}).level  # old manifests keep their level inputs


def test_level_shape_is_the_level_minus_its_mean_over_bands_which_a_gain_offset_leaves_alone():
    """FeatureSpec(level_shape=True): the level columns are each hop's band levels minus their mean over that
    channel's bands, unchanged when a gain or coupling offset shifts a mic's bands alike (12 / 15 dB here), while a
    walker's burst in one band still stands out; the rise columns are the default stream's; any chunking gives the
    same output. Without level inputs there is nothing to reshape, so that spec is refused."""
    from uspd.detector.neural import FeatureStream
    from uspd.errors import UspdError

    rng = np.random.default_rng(5)
    full, shape = FeatureSpec(), FeatureSpec(level_shape=True)
    nb = full.n_bands
    assert shape.n_inputs == full.n_inputs
    x = (-90.0 + 3.0 * rng.standard_normal((600, 2, nb))).astype(np.float32)
    x[300:320, :, 20] += 30.0  # a walker's burst in one band
    out, ref = FeatureStream(shape).process(x), FeatureStream(full).process(x)
    np.testing.assert_allclose(out[:, :, :nb], x - x.mean(axis=2, keepdims=True), atol=1e-4)
    np.testing.assert_array_equal(out[:, :, nb:], ref[:, :, nb:])
    assert out[310, 0, 20] - np.median(out[310, 0, :nb]) > 25.0
    shifted = x + np.array([12.0, 15.0], np.float32)[None, :, None]
    np.testing.assert_allclose(FeatureStream(shape).process(shifted), out, atol=1e-3)
    parts = FeatureStream(shape)
    np.testing.assert_array_equal(np.concatenate([parts.process(x[a:a + 37]) for a in range(0, 600, 37)]), out)
    only = FeatureStream(FeatureSpec(level_shape=True, background=False)).process(x)  # not the raw levels
    np.testing.assert_allclose(only, out[:, :, :nb], atol=1e-4)
    with pytest.raises(UspdError, match="do not combine"):
        FeatureSpec(level=False, level_shape=True)
    assert not FeatureSpec.from_dict({"n_per_side": 16}).level_shape  # old manifests keep the level re carrier


def test_level_floor_is_the_level_re_the_median_of_its_background_which_a_device_offset_leaves_alone():
    """FeatureSpec(level_floor=True): the level columns are each hop's band levels minus the median over that
    channel's bands of its slow background (bg = level - rise of the default stream, after this hop's update), so a
    gain, drive or coupling offset that shifts a mic's bands alike (12 / 15 dB here) cancels, while a walker's burst
    stands as high above the floor as it is loud; the rise columns are the default stream's; any chunking gives the
    same output. Without the levels or the background, or with level_shape, the spec is refused."""
    from uspd.detector.neural import FeatureStream
    from uspd.errors import UspdError

    rng = np.random.default_rng(6)
    full, floor = FeatureSpec(), FeatureSpec(level_floor=True)
    nb = full.n_bands
    assert floor.n_inputs == full.n_inputs
    x = (-100.0 + 3.0 * rng.standard_normal((600, 2, nb))).astype(np.float32)
    x[:, :, 14:18] += 25.0  # the carrier's own skirt near 0 m/s: loud, but not the floor
    x[300:320, :, 20] += 30.0  # a walker's burst in one band
    out, ref = FeatureStream(floor).process(x), FeatureStream(full).process(x)
    np.testing.assert_array_equal(out[:, :, nb:], ref[:, :, nb:])
    bg = x - ref[:, :, nb:]
    np.testing.assert_allclose(out[:, :, :nb], x - np.median(bg, axis=2, keepdims=True), atol=1e-3)
    # the floor is the noise's (bg follows its dips, so the noise stands a few dB above it), not the loud skirt's:
    plain = FeatureStream(floor).process(np.where(np.arange(nb) // 4 == 4, x - 25.0, x).astype(np.float32))
    assert 0.0 < float(np.median(out[100:, :, :nb])) < 5.0
    assert np.abs(out[100:, :, :14] - plain[100:, :, :14]).max() < 1.0  # a mean over bands would move by ~3 dB
    assert 25.0 < out[310, 0, 20] < 40.0  # the burst: 30 dB above a floor of noise
    shifted = x + np.array([12.0, 15.0], np.float32)[None, :, None]
    np.testing.assert_allclose(FeatureStream(floor).process(shifted), out, atol=1e-3)
    assert np.abs(FeatureStream(full).process(shifted)[:, 1, :nb] - ref[:, 1, :nb]).min() > 14.0  # re carrier moves
    parts = FeatureStream(floor)
    np.testing.assert_array_equal(np.concatenate([parts.process(x[a:a + 37]) for a in range(0, 600, 37)]), out)
    for bad in (dict(level=False), dict(background=False), dict(level_shape=True)):
        with pytest.raises(UspdError, match="does not combine"):
            FeatureSpec(level_floor=True, **bad)
    assert not FeatureSpec.from_dict({"n_per_side": 16}).level_floor  # old manifests keep the level re carrier


def test_background_without_warmup_follows_its_fixed_rates_from_the_first_hop():
    """x steps from -90 to -60 dB at hop 1 and back at hop 1000: the rise above the background decays as
    30 (1 - hop/up_s)^n, then falls as (1 - hop/down_s)^n -- the same at any time since the start. The default
    (warm-up) tracker averages the first hops instead, so its first rise is halved."""
    from uspd.detector.neural import FeatureStream

    spec = FeatureSpec(background_warmup=False)
    x = np.full((1400, 1, spec.n_bands), -90.0, np.float32)
    x[1:1000] = -60.0
    rise = FeatureStream(spec).process(x)[:, 0, spec.n_bands + 3].astype(np.float64)
    n = np.arange(1, 1000)
    up, down = 0.05 / spec.background_up_s, 0.05 / spec.background_down_s
    np.testing.assert_allclose(rise[1:1000], 30.0 * (1 - up) ** n, rtol=1e-4)
    bg_end = -60.0 - 30.0 * (1 - up) ** 999  # background at hop 999
    m = np.arange(1, 400)
    np.testing.assert_allclose(rise[1000:1399], (-90.0 - bg_end) * (1 - down) ** m, rtol=1e-4, atol=1e-4)
    warm = FeatureStream(FeatureSpec()).process(x)[:, 0, spec.n_bands + 3]
    assert warm[1] == pytest.approx(15.0) and rise[1] == pytest.approx(30.0 * (1 - up))
    assert FeatureSpec.from_dict({"n_per_side": 16}).background_warmup  # old manifests keep the warm-up


def test_spread_feature_is_a_z_score_against_each_bands_own_fluctuation():
    """Two bands carry Gaussian level noise, 1 dB and 6 dB spread; the spread tracker learns each (within 15 %, its
    clipped updates slightly under-estimate), so the same +12 dB burst is ~12 sigma in the quiet band and ~2 in the
    noisy one (the fan-like band). A steady source is forgiven only as fast as spread_tau_s allows, and any chunking
    gives the same output."""
    from uspd.detector.neural import FeatureStream, SPREAD_MAX_Z

    spec = FeatureSpec(spread=True, spread_tau_s=10.0)
    rng = np.random.default_rng(0)
    n = 4000  # 200 s
    x = np.full((n, 1, spec.n_bands), -90.0, np.float32)
    x[:, 0, 3] += rng.normal(0.0, 1.0, n)
    x[:, 0, 20] += rng.normal(0.0, 6.0, n)
    x[3000:3010, 0, [3, 20]] += 12.0  # the same 0.5 s burst in both bands
    out = FeatureStream(spec).process(x)
    assert out.shape == (n, 1, 3 * spec.n_bands) and spec.n_inputs == 3 * spec.n_bands
    np.testing.assert_array_equal(out[:, :, :spec.n_bands], x)
    z = out[:, 0, 2 * spec.n_bands:]
    assert np.all(z[0] == 0.0) and np.abs(z).max() <= SPREAD_MAX_Z
    settled = slice(1000, 3000)
    for band in (3, 20):
        assert 0.85 < np.std(z[settled, band]) < 1.2, band  # unit spread in both bands
    burst = slice(3000, 3010)
    assert np.median(z[burst, 3]) > 8.0 and np.median(z[burst, 20]) < 3.5
    parts = FeatureStream(spec)
    chunked = np.concatenate([parts.process(x[a:a + 53]) for a in range(0, n, 53)])
    np.testing.assert_array_equal(chunked, out)
    assert not FeatureSpec.from_dict({"n_per_side": 16}).spread  # old manifests keep their inputs


def test_echo_floor_is_the_classic_detectors_motion_gated_floor_on_the_bands():
    """FloorStream on one carrier's bands (1 dB level noise, one band 6 dB): z = 0 during the 1.5 s warm-up, then
    about unit spread; a walker (+20 dB in the 1 m/s band for 30 s) stays far above the floor because, while a motion
    band is above the gate, only the mean moves (120 s); a fan left on for good (+15 dB) is learnt within minutes; a
    rise alike at +v and -v (the loudspeaker's own distortion) scores far below the same rise on one side (an echo);
    the same burst is many spreads in a quiet band and few in a fluctuating one; any chunking gives the same output."""
    from uspd.detector.neural import FLOOR_GATE_Z, FLOOR_MAX_Z, EchoStream, FloorStream

    spec = FeatureSpec(echo_floor=True)
    edges = spec.edges_m_s()
    walk, fan, sym, quiet_b, noisy_b = 27, 22, 25, 24, 20
    assert edges[walk, 0] < 1.0 < edges[walk, 1] and edges[spec.n_bands - 1 - sym, 1] == -edges[sym, 0]
    rng = np.random.default_rng(3)
    hop = 20  # hops per second
    n = 1000 * hop
    x = -90.0 + rng.normal(0.0, 1.0, (n, 1, spec.n_bands))
    x[:, 0, noisy_b] += rng.normal(0.0, 6.0, n)
    x[60 * hop:90 * hop, 0, walk] += 20.0
    x[100 * hop:, 0, fan] += 15.0
    x[950 * hop:951 * hop, 0, [sym, spec.n_bands - 1 - sym]] += 12.0
    x[970 * hop:971 * hop, 0, sym] += 12.0
    x[980 * hop:981 * hop, 0, [quiet_b, noisy_b]] += 12.0
    x = x.astype(np.float32)
    z = FloorStream(spec).process(x)[:, 0]
    assert z.shape == (n, spec.n_bands) and np.abs(z).max() <= FLOOR_MAX_Z
    assert np.all(z[:30] == 0.0) and np.any(z[30] != 0.0)
    assert 0.3 < np.std(z[20 * hop:60 * hop, quiet_b]) < 1.2  # ~0.5 dB after the 0.2 s average; 1 dB minimum spread
    onset = z[61 * hop, walk]
    assert onset > FLOOR_GATE_Z and z[85 * hop, walk] > 0.5 * onset  # not learnt as noise while it moves
    assert z[101 * hop, fan] > FLOOR_GATE_Z and abs(np.median(z[850 * hop:940 * hop, fan])) < 2.0  # a fan is
    assert np.median(z[950 * hop + 5:951 * hop, sym]) < 0.3 * np.median(z[970 * hop + 5:971 * hop, sym])
    burst_quiet, burst_noisy = (np.median(z[980 * hop + 5:981 * hop, b]) for b in (quiet_b, noisy_b))
    assert burst_quiet > 8.0 and burst_noisy < 0.65 * burst_quiet  # 12 dB over ~0.5 vs ~2 dB of averaged noise
    parts = FloorStream(spec)
    chunked = np.concatenate([parts.process(x[a:a + 777]) for a in range(0, n, 777)])
    np.testing.assert_array_equal(chunked, z[:, None, :])
    e = EchoStream(spec).process(np.concatenate([x, x], axis=1))  # two carriers alike: the mean is each one
    assert e.shape == (n, spec.n_echo_inputs) and spec.n_echo_inputs == 3 * spec.n_bands
    np.testing.assert_allclose(e[:, 2 * spec.n_bands:], z, atol=1e-5)
    assert not FeatureSpec.from_dict({"n_per_side": 16}).echo_floor  # old manifests keep their inputs
