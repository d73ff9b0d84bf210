"""Physics of the simulator against formulas and published tables (issue 3, section 4)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal as ss

from uspd import physics
from uspd.simulate import SceneRenderer, load_scene
from uspd.simulate.movers import MAJOR_RANGE_M, MOTION_SPEED_M_S
from uspd.simulate.room import fractional_delay_fir, resolve_world, static_paths

QUIET = {"self_noise_dbfs": -200.0, "capture_bits": 0, "speaker_gain_db": 0.0, "latency_s": 0.0}


def _baseband(x: np.ndarray, fs: int, f0: float, decim: int = 16) -> tuple[np.ndarray, float]:
    """Complex baseband of x around f0, decimated by ``decim`` (two FIR stages)."""
    n = np.arange(len(x))
    z = x.astype(float) * np.exp(-2j * np.pi * f0 * n / fs)
    for q in (4, decim // 4):
        z = ss.decimate(z, q, ftype="fir", zero_phase=True)
    return z, fs / decim


def _peak_hz(z: np.ndarray, fsb: float, lo_hz: float) -> float:
    """Frequency of the strongest spectral line with |f| > lo_hz (Hann window, parabolic interpolation)."""
    nfft = len(z)
    spec = np.abs(np.fft.fft(z * np.hanning(nfft)))
    f = np.fft.fftfreq(nfft, 1 / fsb)
    spec[np.abs(f) < lo_hz] = 0
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[[(k - 1) % nfft, k, (k + 1) % nfft]])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * fsb / nfft if f[k] >= 0 else \
        (k - nfft + 0.5 * (a - c) / (a - 2 * b + c)) * fsb / nfft


def test_speed_of_sound_formula():
    assert physics.speed_of_sound_m_s(0.0) == pytest.approx(331.3)
    assert physics.speed_of_sound_m_s(20.0) == pytest.approx(343.2, abs=0.05)
    assert physics.speed_of_sound_m_s(30.0) == pytest.approx(331.3 * math.sqrt(303.15 / 273.15))
    c = physics.speed_of_sound_m_s(np.array([-10.0, 15.0, 35.0]))
    assert np.all(np.diff(c) > 0)


# ISO 9613-1 attenuation (dB/km) as tabulated for octave bands in ISO 9613-2:1996 Table 2 (computed there with the
# ISO 9613-1 formula): (temperature degC, RH %) -> values at 1, 2, 4, 8 kHz.
ISO_TABLE = {
    (10, 70): [3.7, 9.7, 32.8, 117.0],
    (20, 70): [5.0, 9.0, 22.9, 76.6],
    (30, 70): [7.4, 12.7, 23.1, 59.3],
    (15, 20): [8.2, 28.2, 88.8, 202.0],
    (15, 50): [4.2, 10.8, 36.2, 129.0],
    (15, 80): [4.1, 8.3, 23.7, 82.8],
}


@pytest.mark.parametrize("cond", sorted(ISO_TABLE))
def test_air_absorption_matches_iso_table(cond):
    t, rh = cond
    got = physics.air_absorption_db_per_m(np.array([1000.0, 2000.0, 4000.0, 8000.0]), t, rh) * 1000
    np.testing.assert_allclose(got, ISO_TABLE[cond], rtol=0.05)


def test_air_absorption_ultrasound_and_trends():
    # physics note: 20 degC, 50 % RH, 101.325 kPa
    assert physics.air_absorption_db_per_m(20000.0, 20, 50) == pytest.approx(0.52, rel=0.05)
    assert physics.air_absorption_db_per_m(40000.0, 20, 50) == pytest.approx(1.32, rel=0.05)
    f = np.array([18e3, 25e3, 32e3, 45e3])
    assert np.all(np.diff(physics.air_absorption_db_per_m(f, 20, 50)) > 0)
    # lower pressure shifts relaxation: the coefficient changes (formula really uses the pressure)
    assert physics.air_absorption_db_per_m(40000.0, 20, 50, 80.0) != pytest.approx(
        physics.air_absorption_db_per_m(40000.0, 20, 50))


def test_doppler_shift_formula():
    c = physics.speed_of_sound_m_s(20.0)
    assert physics.doppler_shift_hz(40000.0, -2 * 1.2, c) == pytest.approx(2 * 1.2 * 40000 / c)
    assert physics.doppler_shift_hz(40000.0, -2 * 1.2, c) == pytest.approx(280, abs=2)   # physics note figure
    assert physics.doppler_shift_hz(40000.0, 0.2, c) < 0


def _radial_scene(speed: float, x0: float, x1: float, dur: float, temperature_c: float = 20.0) -> dict:
    """A point reflector moving along +x away from a device whose mic 0 sits on the x axis."""
    return {
        "duration_s": dur, "temperature_c": temperature_c,
        "room": {"size_m": [10.0, 4.0, 3.0], "device_position_m": [0.5, 2.0, 1.2], "scatterers": 0,
                 "reflection": 0.8, "image_order": 1, "door_m": [5.0, 0.0]},
        "device": {**QUIET, "mic_positions_m": [[0.04, 0.0, 0.0], [-0.04, 0.0, 0.0]], "mic_gain_db": [0, 0],
                   "mic_phase_deg": [0, 0]},
        "movers": [{"type": "point", "waypoints_m": [[x0, 2.0, 1.2], [x1, 2.0, 1.2]], "speed_m_s": speed,
                    "ramp_s": 0.2, "start_s": 0.0, "ts_db": -15.0}],
    }


@pytest.mark.parametrize("speed,temp", [(1.0, 20.0), (0.35, 28.0)])
def test_radial_mover_doppler_within_1hz(speed, temp):
    scene = load_scene(_radial_scene(speed, 1.5, 6.0, 4.0, temp))
    r = SceneRenderer(scene, seed=1)
    fs = r.sample_rate
    mics, _ = r.render(4 * fs)
    z, fsb = _baseband(mics[:, 0], fs, 40000.0)
    seg = z[int(1.0 * fsb): int(3.5 * fsb)]                 # constant speed, away from the ramps
    c = physics.speed_of_sound_m_s(temp)
    expected = physics.doppler_shift_hz(40000.0, 2 * speed, c)   # receding: dL/dt = +2 v on the axis
    assert _peak_hz(seg, fsb, 5.0) == pytest.approx(expected, abs=1.0)


def test_echo_amplitude_follows_spreading_and_absorption():
    speed, x0 = 0.5, 1.0
    scene = load_scene(_radial_scene(speed, x0, 4.0, 6.0))
    r = SceneRenderer(scene, seed=2)
    fs = r.sample_rate
    mics, _ = r.render(6 * fs)
    z, fsb = _baseband(mics[:, 0], fs, 40000.0)
    c = physics.speed_of_sound_m_s(20.0)
    fd = physics.doppler_shift_hz(40000.0, 2 * speed, c)
    n = np.arange(len(z))
    z = z - z[int(0.5 * fsb):].mean()                       # drop the static field (constant: no noise)
    echo = z * np.exp(-2j * np.pi * fd * n / fsb)           # echo to DC, everything else >= |fd| away
    env = np.abs(ss.sosfiltfilt(ss.butter(8, 20.0 / (fsb / 2), output="sos"), echo))
    spk = np.array([0.5, 2.0, 1.2])
    mic = spk + [0.04, 0.0, 0.0]
    alpha = physics.air_absorption_db_per_m(40000.0, 20, 50)

    def expected(dist_m):
        p = spk + [dist_m, 0, 0]
        r1, r2 = np.linalg.norm(p - spk), np.linalg.norm(p - mic)
        return physics.spreading_gain(r1, r2) * 10 ** (-alpha * (r1 + r2) / 20)

    def measured(dist_m):
        x = spk[0] + dist_m
        t = 0.2 + (x - x0 - speed * 0.1) / speed     # after the 0.2 s raised-cosine ramp (0.05 m covered)
        return env[int(round(t * fsb))]

    ratio_db = 20 * np.log10(measured(1.5) / measured(3.0))
    assert ratio_db == pytest.approx(20 * np.log10(expected(1.5) / expected(3.0)), abs=0.3)
    assert ratio_db > 11.0   # ~12 dB per doubling (1/(r1 r2)) plus absorption


def test_image_source_delays():
    spec = {"room": {"size_m": [5.0, 4.0, 3.0], "device_position_m": [1.2, 1.7, 0.8], "scatterers": 0,
                     "reflection": [0.9, 0.8, 0.7, 0.6, 0.5, 0.85], "image_order": 1, "door_m": [2.0, 4.0]},
            "device": {**QUIET, "mic_positions_m": [[0.0, 0.0, 0.05]], "mic_gain_db": [0], "mic_phase_deg": [0]}}
    scene = load_scene(spec)
    world = resolve_world(scene, np.random.default_rng(0))
    fs = scene.sample_rate
    paths = static_paths(world)
    h = fractional_delay_fir(paths.delay_s[0] * fs, paths.amplitude[0])
    s = np.array([1.2, 1.7, 0.8])   # walls 1.2, 3.8, 1.7, 2.3, 0.8, 2.2 m away: distinct image delays
    mic = s + [0.0, 0.0, 0.05]
    size = np.array([5.0, 4.0, 3.0])
    beta = [0.9, 0.8, 0.7, 0.6, 0.5, 0.85]
    c = physics.speed_of_sound_m_s(20.0)
    alpha = physics.air_absorption_db_per_m(40000.0, 20, 50)
    images = [(s, 1.0)]
    for ax in range(3):
        lo, hi = s.copy(), s.copy()
        lo[ax] = -s[ax]
        hi[ax] = 2 * size[ax] - s[ax]
        images += [(lo, beta[2 * ax]), (hi, beta[2 * ax + 1])]
    ref = None
    for pos, g in images:
        dist = np.linalg.norm(pos - mic)
        d = dist / c * fs
        k = int(round(d))
        win = h[k - 2: k + 3]
        j = int(np.argmax(np.abs(win))) + k - 2
        y0, y1, y2 = h[j - 1: j + 2]
        peak = j + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
        assert peak == pytest.approx(d, abs=0.15), f"image at {pos}"
        amp = g / dist * 10 ** (-alpha * dist / 20)
        taps = np.arange(k - 16, k + 17)
        measured = float(np.sum(h[taps] * np.sinc(taps - d)))   # band-limited amplitude at the fractional delay
        if ref is None:
            ref = measured / amp
        else:   # amplitudes relative to the direct path: reflection coefficient and 1/L spreading
            assert measured / amp == pytest.approx(ref, rel=0.04), f"image at {pos}"


def _carrier_spectrum(x: np.ndarray, fs: int):
    w = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x.astype(float) * w))
    return spec, np.fft.rfftfreq(len(x), 1 / fs)


@pytest.mark.parametrize("rate,f0", [(96000, 40000.0), (48000, 20000.0)])
def test_music_intermodulation_sidebands(rate, f0):
    f_bass = 60.0
    levels = {}
    for nl in (True, False):
        scene = load_scene({"duration_s": 2.5, "sample_rate": rate, "carrier_hz": f0,
                            "music": {"bass_hz": f_bass, "nonlinearity": nl, "level_dbfs": -16.0},
                            "device": QUIET})
        r = SceneRenderer(scene, seed=3)
        mics, ref = r.render(int(2.5 * rate))
        spec, f = _carrier_spectrum(mics[rate // 2:, 0], rate)
        rspec, _ = _carrier_spectrum(ref[rate // 2:], rate)
        tone = spec[np.argmin(np.abs(f - f0))]
        bins = [np.argmin(np.abs(f - (f0 + k * f_bass))) for k in (-2, -1, 1, 2)]
        levels[nl] = 20 * np.log10(spec[bins] / tone)
        # the reference holds the drive (tone + music), never the loudspeaker's distortion
        assert np.all(20 * np.log10(rspec[bins] / rspec[np.argmin(np.abs(f - f0))]) < -80)
    assert np.all(levels[True][1:3] > -40)            # first-order sidebands clearly present
    assert np.all(levels[False] < levels[True] - 30)  # and gone without the nonlinearity


def _render_all(scene, seed, sizes):
    r = SceneRenderer(scene, seed=seed)
    outs = [r.render(n) for n in sizes]
    return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


def test_determinism_and_split_invariance():
    scene = load_scene("everything", duration_s=3.0)
    fs = scene.sample_rate
    total = int(1.7 * fs)
    a_m, a_r = _render_all(scene, 5, [total])
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, total), 6, replace=False))
    sizes = np.diff(np.concatenate([[0], cuts, [total]]))
    b_m, b_r = _render_all(scene, 5, sizes.tolist())
    assert np.array_equal(a_m, b_m) and np.array_equal(a_r, b_r)
    c_m, _ = _render_all(load_scene("everything", duration_s=3.0), 5, [total])
    assert np.array_equal(a_m, c_m)
    d_m, _ = _render_all(scene, 6, [total])
    assert not np.array_equal(a_m, d_m)


def test_walk_in_labels_match_trajectory_and_signal():
    scene = load_scene("walk-in", duration_s=16.0, device={"self_noise_dbfs": -95.0})
    r = SceneRenderer(scene, seed=4)
    person = r.movers[0]
    lab = r.labels
    major = lab.of_kind("major")
    assert major and lab.of_kind("presence")
    t = np.arange(0, 16.0, 0.05)
    torso = person.positions(t)[0]
    speed = np.linalg.norm(np.gradient(torso, 0.05, axis=0), axis=1)
    dist = r.world.distance_to_device(torso)
    inside = r.world.visibility(torso) > 0.5
    in_major = np.zeros(len(t), bool)
    for iv in major:
        m = (t >= iv.start_s) & (t < iv.end_s)
        in_major |= m
        assert iv.distance_m == pytest.approx(dist[m].min(), abs=0.1)
        assert iv.distance_m <= MAJOR_RANGE_M
    walking = inside & (speed > 1.5 * MOTION_SPEED_M_S) & (dist < MAJOR_RANGE_M - 0.1)
    assert in_major[walking].mean() > 0.95
    assert (speed[in_major] < 0.5 * MOTION_SPEED_M_S).mean() < 0.05
    # the labels agree with the audio: Doppler-band energy is far higher while walking than while standing
    fs = r.sample_rate
    mics, _ = r.render(16 * fs)
    z, fsb = _baseband(mics[:, 0], fs, r.carriers[0])
    f, tt, zz = ss.stft(z, fsb, nperseg=512, return_onesided=False)
    band = (np.abs(f) > 60) & (np.abs(f) < 600)
    energy = 10 * np.log10((np.abs(zz[band]) ** 2).sum(0) + 1e-30)
    walk_t = [(iv.start_s + 0.5, iv.end_s - 0.5) for iv in major if iv.end_s - iv.start_s > 1.5]
    still_t = [(iv.start_s + 1.0, iv.end_s - 0.5) for iv in lab.of_kind("presence")]
    e_walk = max(np.median(energy[(tt > a) & (tt < b)]) for a, b in walk_t)
    e_still = np.median(np.concatenate([energy[(tt > a) & (tt < b)] for a, b in still_t]))
    assert e_walk > e_still + 10


def test_seated_labels_minor_actions_and_presence():
    r = SceneRenderer(load_scene("seated", duration_s=60.0), seed=7)
    lab = r.labels
    minors = lab.of_kind("minor")
    assert minors and all(iv.action in ("reach", "page", "typing", "cup") for iv in minors)
    sit = lab.of_kind("presence")
    assert sit
    last_major_end = max(iv.end_s for iv in lab.of_kind("major"))
    assert all(iv.start_s >= last_major_end - 0.1 for iv in minors)   # actions only once seated
    # the hand really moves during the reach/cup/page actions and rests between them
    person = r.movers[0]
    for iv in minors:
        if iv.action == "typing":
            continue
        t = np.linspace(iv.start_s, iv.end_s, 200)
        hands = person.positions(t)[2:4]
        travel = np.linalg.norm(hands - hands[:, :1], axis=-1).max()
        assert travel > 0.05, iv
    still = SceneRenderer(load_scene("still", duration_s=20.0), seed=1).labels
    assert [iv.kind for iv in still.intervals] == ["presence"]


def test_set_tone_ramps_without_click():
    fs = 96000
    scene = load_scene({"duration_s": "inf", "device": QUIET, "music": {"bass_hz": 80.0, "level_dbfs": -20.0,
                                                                         "nonlinearity": False}})
    r = SceneRenderer(scene, seed=0)
    assert math.isinf(r.duration_s)
    on, ref_on = r.render(fs)
    r.set_tone(False)
    mid, ref_mid = r.render(fs)
    off, ref_off = r.render(fs)
    z, fsb = _baseband(np.concatenate([on[:, 0], mid[:, 0], off[:, 0]]), fs, 40000.0)
    level = np.abs(z)
    before = np.median(level[int(0.5 * fsb): int(0.9 * fsb)])
    after = np.median(level[int(2.2 * fsb): int(2.9 * fsb)])
    assert 20 * np.log10(after / before) < -60
    # no click: during the switch, nothing appears 2-6 kHz away from the carrier
    spec, f = _carrier_spectrum(mid[:, 0], fs)
    tone = spec[np.argmin(np.abs(f - 40000.0))]
    side = spec[(np.abs(f - 40000.0) > 2000) & (np.abs(f - 40000.0) < 6000)]
    assert 20 * np.log10(side.max() / tone) < -70
    # the reference keeps the music but loses the tone
    rs, _ = _carrier_spectrum(ref_off[:, None][:, 0], fs)
    rs_on, _ = _carrier_spectrum(ref_on, fs)
    k0 = np.argmin(np.abs(f - 40000.0))
    assert rs[k0] < 1e-4 * rs_on[k0]
    assert np.std(ref_off) > 0.01
    r.set_tone(True)
    r.render(fs)
    back, _ = r.render(fs // 2)
    zb, _ = _baseband(back[:, 0], fs, 40000.0)
    assert 20 * np.log10(np.median(np.abs(zb)) / before) == pytest.approx(0.0, abs=0.5)


def _band_db(mics: np.ndarray, fs: int, f0: float, lo_hz: float, hi_hz: float, t0: float, t1: float) -> float:
    """Energy (dB) of mic 0 at Doppler offsets lo..hi Hz (both signs) between t0 and t1 s."""
    z, fsb = _baseband(mics[:, 0], fs, f0)
    seg = z[int(t0 * fsb): int(t1 * fsb)]
    spec = np.abs(np.fft.fft(seg * np.hanning(len(seg)))) ** 2
    f = np.abs(np.fft.fftfreq(len(seg), 1 / fsb))
    return 10 * np.log10(spec[(f >= lo_hz) & (f < hi_hz)].sum() + 1e-30)


@pytest.mark.parametrize("mover,band_hz,margin_db", [
    ({"type": "fan", "kind": "desk"}, (300.0, 2500.0), 20.0),               # blades: kHz Doppler
    ({"type": "curtain", "speed_m_s": 0.2, "ts_db": -22.0}, (3.0, 60.0), 15.0),  # slow sway
    ({"type": "hvac", "strength_rad": 0.3}, (0.4, 4.0), 10.0),              # slow phase wander
    ({"type": "keys", "times_s": [1.2], "level_dbfs": -30.0}, (1500.0, 2800.0), 10.0),   # broadband clicks
])
def test_confusers_put_doppler_energy_where_expected(mover, band_hz, margin_db):
    base = {"duration_s": 4.0, "room": {"size_m": [4.0, 3.5, 2.6], "device_position_m": [0.3, 1.7, 0.9],
                                        "door_m": [4.0, 1.0]}, "device": {"self_noise_dbfs": -90.0}}
    fs = 96000
    levels = []
    for movers in ([], [mover]):
        r = SceneRenderer(load_scene({**base, "movers": movers}), seed=8)
        mics, _ = r.render(4 * fs)
        levels.append(_band_db(mics, fs, r.carriers[0], *band_hz, 0.8, 3.8))
    assert levels[1] > levels[0] + margin_db


def test_piston_directivity_matches_published_values():
    """2 J1(x) / x of a rigid circular piston (Kinsler et al. 7.4): -3.01 dB at x = 1.6163, first null at 3.8317,
    first side lobe -17.57 dB at 5.1356; times the box's obliquity (1 + cos theta) / 2."""
    ka = 7.3
    for x, level_db in ((1.6163, -3.01), (5.1356, -17.57)):
        cos_t = math.sqrt(1 - (x / ka) ** 2)
        piston = physics.piston_directivity(cos_t, ka) / ((1 + cos_t) / 2)
        assert 20 * math.log10(piston) == pytest.approx(level_db, abs=0.02)
    assert physics.piston_directivity(math.sqrt(1 - (3.8317 / ka) ** 2), ka) < 1e-4
    assert physics.piston_directivity(1.0, ka) == pytest.approx(1.0)
    assert physics.piston_directivity(-1.0, ka) == pytest.approx(0.0)
    assert np.all(physics.piston_directivity(np.linspace(-1, 1, 9), 0.0) == 1.0)   # a point source: omni
    # narrower with frequency: at 45 degrees a 1 cm tweeter is 6 dB down at 20 kHz and far more at 40 kHz
    c = physics.speed_of_sound_m_s(20.0)
    d20, d40 = (physics.piston_directivity(math.cos(math.pi / 4), 2 * math.pi * f * 0.01 / c) for f in (2e4, 4e4))
    assert d40 < d20 < 0.5


def test_image_rays_leave_the_source_towards_their_wall():
    """The mirror signs turn a ray image -> point into the direction it leaves the real source: the ray from the
    source hits the wall where the image -> point line crosses it (independent geometry, first-order images)."""
    from uspd.simulate.room import image_sources

    size = np.array([5.0, 4.0, 3.0])
    src, point = np.array([1.2, 1.7, 0.8]), np.array([3.1, 0.9, 1.6])
    img, _, order, mirror = image_sources(src, size, np.full(6, 0.8), 1, with_mirror=True)
    assert np.all(mirror[0] == 1) and len(img) == 7
    for pos, sign in zip(img[order == 1], mirror[order == 1]):
        ax = int(np.flatnonzero(sign < 0)[0])
        wall = 0.0 if pos[ax] < 0 else size[ax]
        cross = pos + (point - pos) * (wall - pos[ax]) / (point[ax] - pos[ax])   # where image -> point meets it
        leave = (point - pos) * sign
        hit = src + leave * (wall - src[ax]) / leave[ax]                          # where the source's ray meets it
        np.testing.assert_allclose(hit, cross, atol=1e-9)


@pytest.mark.parametrize("axis_deg", [0.0, 30.0])
def test_loudspeaker_beam_scales_a_moving_echo(axis_deg):
    """A point receding along +x, lit by an 8 mm piston: on the beam axis its echo is the omnidirectional one; with
    the axis turned by 30 degrees it is piston_directivity(cos 30 deg, k a) of it (about -13 dB at 40 kHz)."""
    radius_m = 0.008

    def echo_env(beam: bool) -> np.ndarray:
        spec = _radial_scene(0.5, 1.0, 4.0, 6.0)
        spec["room"]["reflection"] = 0.0          # no image paths: the direct echo alone
        if beam:
            spec["device"].update(speaker_radius_m=radius_m, speaker_axis_deg=[axis_deg, 0.0])
        r = SceneRenderer(load_scene(spec), seed=2)
        mics, _ = r.render(6 * r.sample_rate)
        z, fsb = _baseband(mics[:, 0], r.sample_rate, 40000.0)
        fd = physics.doppler_shift_hz(40000.0, 2 * 0.5, physics.speed_of_sound_m_s(20.0))
        z = z - z[int(0.5 * fsb):].mean()
        echo = z * np.exp(-2j * np.pi * fd * np.arange(len(z)) / fsb)
        env = np.abs(ss.sosfiltfilt(ss.butter(8, 20.0 / (fsb / 2), output="sos"), echo))
        return env[int(2.0 * fsb): int(4.0 * fsb)]

    ratio_db = 20 * np.log10(np.median(echo_env(True) / echo_env(False)))
    ka = 2 * math.pi * 40000.0 * radius_m / physics.speed_of_sound_m_s(20.0)
    expected_db = 20 * math.log10(physics.piston_directivity(math.cos(math.radians(axis_deg)), ka))
    assert ratio_db == pytest.approx(expected_db, abs=0.3)
    if axis_deg:
        assert ratio_db < -10.0


def test_direct_coupling_and_beam_set_the_static_paths():
    """coupling_db scales the direct speaker->mic path alone; the beam scales every room path by the directivity
    towards where its ray leaves the speaker (scatterers: towards the scatterer)."""
    base = {"room": {"size_m": [5.0, 4.0, 3.0], "device_position_m": [1.2, 1.7, 0.8],
                     "scatterers": [[3.0, 2.5, 1.0, -10.0]], "reflection": 0.8, "image_order": 1, "door_m": [2.0, 4.0]},
            "device": {**QUIET, "mic_positions_m": [[0.03, 0.0, 0.02]], "mic_gain_db": [0], "mic_phase_deg": [0]}}
    omni = static_paths(resolve_world(load_scene(base), np.random.default_rng(0)))
    spec = {**base, "device": {**base["device"], "coupling_db": 6.0, "speaker_radius_m": 0.006,
                               "speaker_axis_deg": [20.0, 10.0]}}
    world = resolve_world(load_scene(spec), np.random.default_rng(0))
    beam = static_paths(world)
    ratio = beam.amplitude[0] / omni.amplitude[0]
    assert ratio[0] == pytest.approx(10 ** (6 / 20), rel=1e-9)                      # the direct path
    ka = 2 * math.pi * 40000.0 * 0.006 / world.c_m_s
    axis = np.array([math.cos(math.radians(10)) * math.cos(math.radians(20)),
                     math.cos(math.radians(10)) * math.sin(math.radians(20)), math.sin(math.radians(10))])
    src, mic = np.array([1.2, 1.7, 0.8]), np.array([1.23, 1.7, 0.82])
    size = np.array([5.0, 4.0, 3.0])
    for wall_index in range(6):   # first-order images: the ray to where image -> mic crosses the wall
        ax, high = divmod(wall_index, 2)
        wall = size[ax] if high else 0.0
        img = src.copy()
        img[ax] = 2 * wall - src[ax]
        p = int(np.argmin(np.abs(beam.length_m[0] - np.linalg.norm(img - mic))))
        assert beam.order[p] == 1 and beam.kind[p] == 1
        hit = img + (mic - img) * (wall - img[ax]) / (mic[ax] - img[ax])
        cos_t = (hit - src) @ axis / np.linalg.norm(hit - src)
        assert ratio[p] == pytest.approx(physics.piston_directivity(cos_t, ka), rel=1e-6)
    sc = np.array([3.0, 2.5, 1.0])
    cos_sc = (sc - src) @ axis / np.linalg.norm(sc - src)
    assert ratio[-1] == pytest.approx(physics.piston_directivity(cos_sc, ka), rel=1e-6)


def _walker_doppler_db(wall_x0: float, radius_m: float, axis_deg: float) -> float:
    """Doppler power (dB, 20-200 Hz either side of the carrier) of a person crossing the room behind a device 0.4 m
    from wall x = 0 (the only wall that reflects, ``wall_x0``), its loudspeaker beam along ``axis_deg``."""
    spec = {"duration_s": 6.0, "room": {"size_m": [6.0, 4.0, 3.0], "device_position_m": [0.4, 2.0, 1.0],
                                        "scatterers": 0, "reflection": [wall_x0, 0, 0, 0, 0, 0], "image_order": 1,
                                        "door_m": [3.0, 0.0]},
            "device": {**QUIET, "mic_positions_m": [[0.0, 0.04, 0.0], [0.0, -0.04, 0.0]], "mic_gain_db": [0, 0],
                       "mic_phase_deg": [0, 0], "speaker_radius_m": radius_m, "speaker_axis_deg": [axis_deg, 0.0]},
            "movers": [{"type": "person", "route": "cross", "waypoints_m": [[2.0, 1.0], [4.5, 3.0]], "start_s": 0.5,
                        "speed_m_s": 1.2}]}
    r = SceneRenderer(load_scene(spec), seed=3)
    x, _ = r.render(6 * r.sample_rate)
    z, fsb = _baseband(x[:, 0], r.sample_rate, 40000.0, decim=64)
    f, p = ss.welch(z, fsb, nperseg=256, return_onesided=False)
    return float(10 * np.log10(p[(np.abs(f) > 20) & (np.abs(f) < 200)].sum()))


def test_wall_bounces_leave_through_the_beam():
    """A loudspeaker beaming at the wall behind the device (8 mm piston at 40 kHz) hardly lights a walker in the room
    directly, but its wall bounce does: the walker's Doppler power rises by > 15 dB when that wall reflects, while
    with an omnidirectional speaker the bounce adds only a few dB to the direct echo."""
    beam_gain_db = _walker_doppler_db(0.9, 0.008, 180.0) - _walker_doppler_db(0.0, 0.008, 180.0)
    omni_gain_db = _walker_doppler_db(0.9, 0.0, 0.0) - _walker_doppler_db(0.0, 0.0, 0.0)
    assert beam_gain_db > 15.0
    assert 0.0 < omni_gain_db < 6.0
