"""Classic detector on synthetic Doppler scenes: walking is major motion, a reach is minor, noise and fan-speed
Doppler are not motion, the floor does not learn a moving person, 20 and 40 kHz carriers agree."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from uspd.config import load_config
from uspd.detector.base import ClassicConfig, DetectorConfig, Scores, make_detector
from uspd.detector.classic import ClassicDetector
from uspd.errors import ConfigError, UspdError
from uspd.features.frontend import DopplerFrontEnd, Frames
from uspd.features.synthetic import Echo, SyntheticScene, constant, reach, walker
from uspd.presence.tracker import PresenceConfig


#: The presence tracker's default thresholds: motion needs STRICT when vacant, SENSITIVE after major motion.
STRICT, SENSITIVE = PresenceConfig().threshold, PresenceConfig().sensitive_threshold


def scores_for(echoes, dur_s: float = 10.0, fs: int = 96000, f0: float = 40000.0, n_mics: int = 4,
               config: ClassicConfig | None = None, seed: int = 0) -> tuple[np.ndarray, Scores]:
    scene = SyntheticScene(fs, [f0], n_mics, echoes=echoes, noise_rms=1e-4, seed=seed)
    fr = DopplerFrontEnd(fs, [f0], n_mics).process(scene.render(int(dur_s * fs)))
    return fr.t_s, ClassicDetector(config).process(fr)


def window(t, x, a, b):
    return x[(t > a) & (t <= b)]


def test_noise_and_static_clutter_are_not_motion():
    t, s = scores_for([], dur_s=12.0, seed=1)
    after = t > ClassicConfig().warmup_s
    assert s.score[after].max() < SENSITIVE        # below even the sensitive threshold
    assert np.all(s.score[~after] == 0.0)          # warm-up
    assert s.major[after].max() < 0.5


def test_walking_is_major_motion():
    t, s = scores_for(walker(4.0, 8.0), dur_s=10.0)
    assert np.mean(window(t, s.score, 4.3, 7.9) > STRICT) > 0.9
    assert np.mean(window(t, s.major, 4.5, 7.9) > 0.5) > 0.8
    assert window(t, s.score, 2.0, 3.9).max() < SENSITIVE
    assert window(t, s.score, 9.0, 10.0).max() < SENSITIVE  # no long tail after the walker stopped


def test_seated_reach_is_minor_motion():
    t, s = scores_for(reach(5.0, duration_s=0.8, distance_m=0.3, amplitude=1e-3), dur_s=8.0)
    assert window(t, s.score, 5.0, 6.6).max() > STRICT
    assert window(t, s.major, 4.0, 7.5).max() < 0.5
    assert window(t, s.score, 2.0, 4.9).max() < SENSITIVE


def test_fan_speed_doppler_is_ignored_but_slow_motion_is_not():
    """Steady reflectors at 3.6 m/s (fan blades) start mid-run: outside the motion band, so no score; the same
    energy at 1 m/s is motion."""
    fast = [Echo(3e-3, constant(3.6), 4.0), Echo(3e-3, constant(-3.8), 4.0)]
    t, s = scores_for(fast, dur_s=7.0)
    assert window(t, s.score, 4.0, 7.0).max() < SENSITIVE
    slow = [Echo(3e-3, constant(1.0), 4.0)]
    t, s = scores_for(slow, dur_s=7.0)
    assert window(t, s.score, 4.3, 5.0).min() > STRICT


def test_guard_band_discounts_broadband_flashes():
    """A short broadband flash (energy at all Doppler speeds, like a blade flash or keys) scores less with the
    guard band than without it."""
    flash = [Echo(2e-3, constant(v), 5.0, 5.15) for v in np.linspace(0.3, 4.2, 14)]
    t, with_guard = scores_for(flash, dur_s=7.0)
    _, without = scores_for(flash, dur_s=7.0, config=ClassicConfig(guard_weight=0.0))
    a, b = window(t, with_guard.score, 4.9, 5.8), window(t, without.score, 4.9, 5.8)
    assert b.max() > STRICT
    assert a.max() < SENSITIVE


def test_loudspeaker_distortion_common_to_all_mics_is_not_motion():
    """Sidebands the loudspeaker itself emits (identical at every mic relative to the carrier, e.g. music
    intermodulation) are left out of the echo power; an echo as strong (own phase per mic) is motion."""
    fs, f0 = 96000, 40000.0
    n = 7 * fs
    idx = np.arange(n)
    burst = (idx >= 4 * fs).astype(float)
    side = 3e-3 * burst * (np.cos(2 * np.pi * (f0 + 180) / fs * idx) + np.cos(2 * np.pi * (f0 - 180) / fs * idx))
    common = side * 0.1  # carrier amplitude 0.1 below: sidebands at -30 dB re carrier, in phase with it at every mic
    scene = SyntheticScene(fs, [f0], 4, clutter=[], noise_rms=1e-4, mic_gains=[1.0] * 4)
    x = scene.render(n) + common[:, None].astype(np.float32)
    fr = DopplerFrontEnd(fs, [f0], 4).process(x)
    s = ClassicDetector().process(fr)
    assert window(fr.t_s, s.score, 4.0, 7.0).max() < SENSITIVE
    plain = ClassicDetector(ClassicConfig(use_echo=False, asym_weight=0.0)).process(fr)
    assert window(fr.t_s, plain.score, 4.0, 7.0).max() > STRICT  # without the echo power it would be motion
    t, s = scores_for([Echo(3e-3, constant(0.77), 4.0)], dur_s=7.0)
    assert window(t, s.score, 4.3, 5.0).max() > STRICT


def test_floor_does_not_learn_a_moving_person_but_learns_a_permanent_change():
    # a person walking for 20 s (longer than floor_tau_s) stays detected
    t, s = scores_for(walker(3.0, 23.0), dur_s=23.0, fs=48000, f0=20000.0)
    assert np.mean(window(t, s.score, 19.0, 22.5) > STRICT) > 0.9
    # a permanent new line (steady 0.5 m/s reflector) is learnt by the slow motion-time floor
    line = [Echo(3e-3, constant(0.5), 3.0)]
    cfg = ClassicConfig(floor_tau_motion_s=3.0)
    t, s = scores_for(line, dur_s=25.0, fs=48000, f0=20000.0, config=cfg)
    assert window(t, s.score, 3.3, 4.0).max() > STRICT
    assert window(t, s.score, 20.0, 25.0).max() < SENSITIVE


def test_20k_and_40k_carriers_give_the_same_velocity_picture():
    res = {}
    for fs, f0 in ((48000, 20000.0), (96000, 40000.0)):
        t, s = scores_for(walker(3.0, 7.0), dur_s=8.0, fs=fs, f0=f0)
        res[f0] = (window(t, s.score, 3.3, 6.9), window(t, s.major, 3.5, 6.9))
    for f0, (score, major) in res.items():
        assert np.mean(score > STRICT) > 0.9, f0
        assert np.mean(major > 0.5) > 0.8, f0
    # a reach at 20 kHz is still minor (the Doppler axis is scaled to m/s)
    t, s = scores_for(reach(4.0, amplitude=1e-3), dur_s=7.0, fs=48000, f0=20000.0)
    assert window(t, s.score, 4.0, 5.6).max() > SENSITIVE
    assert window(t, s.major, 3.0, 7.0).max() < 0.5


def test_any_split_of_the_frames_gives_the_same_scores():
    fs, f0 = 48000, 20000.0
    scene = SyntheticScene(fs, [f0], 2, echoes=walker(2.0, 4.0) + reach(5.0), noise_rms=1e-4)
    fr = DopplerFrontEnd(fs, [f0], 2).process(scene.render(6 * fs))
    ref = ClassicDetector().process(fr)
    for step in (1, 7, 50):
        det = ClassicDetector()
        parts = []
        for i in range(0, len(fr.t_s), step):
            sub = Frames(fr.t_s[i:i + step], fr.spectra_db[i:i + step], fr.level_db[i:i + step], fr.freqs_hz,
                         fr.carriers_hz, fr.echo_db[i:i + step])
            parts.append(det.process(sub))
        got = Scores.concat(parts)
        np.testing.assert_array_equal(got.score, ref.score)
        np.testing.assert_array_equal(got.major, ref.major)
    det = ClassicDetector()
    det.process(fr)
    det.reset()
    again = det.process(fr)
    np.testing.assert_array_equal(again.score, ref.score)


def test_frames_without_carriers():
    fs, f0 = 48000, 20000.0
    fr = DopplerFrontEnd(fs, [f0], 1).process(SyntheticScene(fs, [f0], 1).render(fs))
    bare = Frames(fr.t_s, fr.spectra_db, fr.level_db, fr.freqs_hz)
    with pytest.raises(UspdError, match="carrier"):
        ClassicDetector().process(bare)
    s = ClassicDetector(carriers_hz=[f0]).process(bare)
    assert len(s.score) == len(fr.t_s)


def test_detector_config_section(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[detector]\nname = "classic"\n[detector.classic]\nz_mid = 7.5\nv_max_m_s = 2.5\n')
    cfg = load_config(p)
    assert cfg.detector.classic.z_mid == 7.5 and cfg.detector.classic.v_max_m_s == 2.5
    det = make_detector(cfg.detector)
    assert isinstance(det, ClassicDetector) and det.config.z_mid == 7.5
    p.write_text('[detector.classic]\nzmid = 7\n')
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(p)
    p.write_text('[detector.classic]\nv_min_m_s = 4.0\n')
    with pytest.raises(ConfigError, match="v_min_m_s"):
        load_config(p)
    p.write_text('[detector]\nname = "svm"\n')
    with pytest.raises(ConfigError, match="name"):
        load_config(p)
    with pytest.raises(ConfigError, match="unknown detector"):
        make_detector("svm", DetectorConfig())


def test_classic_path_does_not_load_the_neural_runtime():
    code = ("import sys\nfrom uspd.detector.base import make_detector\nmake_detector('classic')\n"
            "import uspd.pipeline\nprint('onnxruntime' in sys.modules, 'torch' in sys.modules, "
            "'scipy.signal' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]
