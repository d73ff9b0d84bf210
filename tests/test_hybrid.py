"""The hybrid detector: classic and nn on the same frames, logits averaged per hop, streaming like both."""
from __future__ import annotations

import numpy as np
import pytest

from uspd.config import load_config
from uspd.detector.base import DetectorConfig, HybridConfig, make_detector
from uspd.detector.hybrid import fuse_scores
from uspd.errors import ConfigError
from uspd.features.synthetic import SyntheticScene, walker
from uspd.pipeline import Pipeline
from uspd.recording import Sidecar

FS = 48000
F0 = 20000.0


def _sidecar(n_mics: int = 3) -> Sidecar:
    return Sidecar(FS, [F0], [[0.03 * i, 0.01 * (i % 2), 0.0] for i in range(n_mics)])


@pytest.fixture(scope="module")
def walk_audio():
    return SyntheticScene(FS, [F0], 3, echoes=walker(3.0, 6.0), noise_rms=1e-4, seed=3).render(int(8.0 * FS))


def test_fuse_scores_is_the_weighted_logit_mean():
    nn = np.array([0.9, 0.2, 0.5, 0.0, 1.0])
    classic = np.array([0.5, 0.95, 0.5, 1.0, 0.0])
    logit = lambda p: np.log(np.clip(p, 1e-6, 1 - 1e-6) / (1 - np.clip(p, 1e-6, 1 - 1e-6)))  # noqa: E731
    want = 1 / (1 + np.exp(-(0.7 * logit(nn) + 0.3 * logit(classic) + 0.4)))
    np.testing.assert_allclose(fuse_scores(nn, classic, 0.7, 0.4), want, rtol=1e-6)
    np.testing.assert_allclose(fuse_scores(nn, classic, 1.0), np.clip(nn, 1e-6, 1 - 1e-6), rtol=1e-5)
    np.testing.assert_allclose(fuse_scores(nn, classic, 0.0), np.clip(classic, 1e-6, 1 - 1e-6), rtol=1e-5)
    assert fuse_scores(nn, classic, 0.7)[2] == pytest.approx(0.5)  # both undecided -> undecided
    assert fuse_scores(nn, classic, 0.7)[0] > 0.5 > fuse_scores(nn, classic, 0.7)[1]  # the heavier one leads


def test_classic_floor_limits_the_classic_veto_only():
    nn = np.array([0.7, 0.7, 0.7, 0.1])
    classic = np.array([0.0, 0.05, 0.9, 0.9])
    floored = fuse_scores(nn, classic, 0.5, 0.0, classic_floor=0.1)
    np.testing.assert_allclose(floored, fuse_scores(nn, np.maximum(classic, 0.1), 0.5), rtol=1e-6)
    np.testing.assert_array_equal(fuse_scores(nn, classic, 0.5, 0.2, classic_floor=0.0), fuse_scores(nn, classic, 0.5, 0.2))
    plain = fuse_scores(nn, classic, 0.5)
    assert floored[0] > plain[0] and floored[1] > plain[1]  # a quiet classic detector pulls the score down less
    np.testing.assert_array_equal(floored[2:], plain[2:])  # above the floor nothing changes
    assert floored[0] < 0.7  # it still pulls down: the floor is 0.1, not 0.5


def _scores(pipe: Pipeline, x: np.ndarray, chunk: int):
    rows = []
    for i in range(0, len(x), chunk):
        rows += pipe.process(x[i:i + chunk])
    rows += pipe.flush()
    return np.array([d.score for d in rows])


def test_hybrid_streams_and_equals_the_fusion_of_its_two_detectors(walk_audio):
    cfg = load_config(None, {"detector": {"hybrid": {"nn_weight": 0.6, "score_logit_offset": -0.3}}})
    whole = _scores(Pipeline(_sidecar(), cfg, "hybrid"), walk_audio, len(walk_audio))
    for chunk in (2400, 777):
        np.testing.assert_array_equal(_scores(Pipeline(_sidecar(), cfg, "hybrid"), walk_audio, chunk), whole)
    classic = _scores(Pipeline(_sidecar(), cfg, "classic"), walk_audio, 4800)
    nn = _scores(Pipeline(_sidecar(), cfg, "nn"), walk_audio, 4800)
    floor = cfg.detector.hybrid.classic_score_floor  # the default floor applies too
    assert floor > 0
    np.testing.assert_allclose(whole, fuse_scores(nn, classic, 0.6, -0.3, floor), atol=1e-6)
    t = np.arange(1, len(whole) + 1) * 0.05
    assert np.median(whole[(t > 3.5) & (t < 5.5)]) > 0.6 > np.median(whole[t < 2.5])  # the walker stands out


def test_hybrid_config_is_validated():
    with pytest.raises(ConfigError, match=r"hybrid.nn_weight: must be in \[0, 1\], got 1.5"):
        load_config(None, {"detector": {"hybrid": {"nn_weight": 1.5}}})
    with pytest.raises(ConfigError, match="score_logit_offset: must be finite"):
        DetectorConfig(hybrid=HybridConfig(score_logit_offset=float("nan"))).validate()
    with pytest.raises(ConfigError, match=r"classic_score_floor: must be in \[0, 1\), got 1.0"):
        load_config(None, {"detector": {"hybrid": {"classic_score_floor": 1.0}}})
    with pytest.raises(ConfigError, match="classic_score_floor"):
        load_config(None, {"detector": {"hybrid": {"classic_score_floor": -0.1}}})
    det = make_detector("hybrid")
    assert det.config.hybrid == HybridConfig()
