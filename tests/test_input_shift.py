"""benchmarks/input_shift.py: the model's inputs grouped as the network sees them, and the hops it compares."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import load_benchmark

from uspd.recording.labels import LabelInterval, Labels


@pytest.fixture(scope="module")
def shift():
    return load_benchmark("input_shift")


def test_hop_groups_normalise_then_pool_over_channels_as_the_network_does(shift):
    rng = np.random.default_rng(0)
    x = rng.normal(-60, 10, (5, 3, 8)).astype(np.float32)   # 5 hops, 3 channels, 4 bands of level then 4 of rise
    e = rng.normal(-70, 10, (5, 8)).astype(np.float32)
    mean, std = rng.normal(-60, 5, 8).astype(np.float32), rng.uniform(2, 9, 8).astype(np.float32)
    e_mean, e_std = rng.normal(-70, 5, 8).astype(np.float32), rng.uniform(2, 9, 8).astype(np.float32)
    g = shift.hop_groups(x, e, mean, std, e_mean, e_std)
    assert g.shape == (5, 6, 4)
    z = (x - mean) / std
    np.testing.assert_allclose(g[:, 0], z[:, :, :4].mean(1), rtol=1e-5)     # level, channel mean
    np.testing.assert_allclose(g[:, 1], z[:, :, 4:].mean(1), rtol=1e-5)     # rise, channel mean
    np.testing.assert_allclose(g[:, 2], z[:, :, :4].std(1), rtol=1e-5)      # level spread over channels
    np.testing.assert_allclose(g[:, 3], z[:, :, 4:].std(1), rtol=1e-5)
    np.testing.assert_allclose(g[:, 4], ((e - e_mean) / e_std)[:, :4], rtol=1e-5)
    np.testing.assert_allclose(g[:, 5], ((e - e_mean) / e_std)[:, 4:], rtol=1e-5)


def test_walker_hops_are_a_near_walker_alone_and_still_hops_have_nothing_labelled(shift):
    labels = Labels(duration_s=10.0, intervals=[
        LabelInterval(1.0, 4.0, "major", distance_m=2.0),     # a walker, a fan from 3 s on
        LabelInterval(3.0, 10.0, "fan"),
        LabelInterval(6.0, 7.0, "major", distance_m=4.5),     # beyond --near
    ])
    t = np.arange(1, 201) * 0.05
    walker, still = shift.select_hops(labels, t, near_m=3.0)
    assert walker.any() and still.any()
    assert t[walker].min() >= 1.25 and t[walker].max() < 3.0   # after the start's edge, before the fan
    assert t[still].max() < 1.0                                # nothing labelled: before the walker only
    assert not (walker & still).any()


def test_floor_levels_cancel_a_device_offset_that_the_level_re_carrier_carries(shift):
    """floor_levels: per hop, the level's mean over bands and channels re the carrier and re the median over bands of
    the background (level - rise). A drive or coupling offset moves the levels and their background alike (the rise
    stays): the first column moves by it, the second not; a loud carrier skirt in a few bands leaves the floor alone."""
    rng = np.random.default_rng(3)
    b = 32
    level = (-100.0 + 3.0 * rng.standard_normal((50, 4, b))).astype(np.float32)
    rise = rng.uniform(0.0, 6.0, (50, 4, b)).astype(np.float32)
    x = np.concatenate([level, rise], axis=2)
    out = shift.floor_levels(x)
    assert out.shape == (50, 2)
    np.testing.assert_allclose(out[:, 0], level.mean(axis=(1, 2)), rtol=1e-6)
    floor = np.median(level - rise, axis=2, keepdims=True)
    np.testing.assert_allclose(out[:, 1], (level - floor).mean(axis=(1, 2)), rtol=1e-5)
    louder = x.copy()
    louder[:, :, :b] += 12.0
    moved = shift.floor_levels(louder)
    np.testing.assert_allclose(moved[:, 0], out[:, 0] + 12.0, rtol=1e-6)
    np.testing.assert_allclose(moved[:, 1], out[:, 1], atol=1e-4)
    skirt = x.copy()
    skirt[:, :, 15:17] += 30.0  # two loud bands near 0 m/s: the level's mean rises, the floor (a median) barely
    assert np.abs(shift.floor_levels(skirt)[:, 1] - out[:, 1] - 60.0 / b).max() < 1.0  # a mean floor: -1.9 dB
