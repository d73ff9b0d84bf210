"""Training side of the neural detector: per-hop labels, the training loop, ONNX export, int8, the CLI."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from uspd.errors import UspdError
from uspd.recording.labels import LabelInterval, Labels
from uspd.train.labels import CONFUSER_BITS, MAJOR, MINOR, hop_labels

from nn_fixtures import synthetic_clip

torch = pytest.importorskip("torch")


def test_hop_labels_kinds_edges_and_confusers():
    labels = Labels(duration_s=20.0, intervals=[
        LabelInterval(2.0, 6.0, "major", distance_m=1.5),
        LabelInterval(5.0, 8.0, "minor", distance_m=1.0, action="page"),
        LabelInterval(0.0, 20.0, "fan"),
        LabelInterval(12.0, 14.0, "pet"),
    ])
    t = np.arange(1, 401) * 0.05
    lab = hop_labels(labels, t, window_s=0.1, edge_s=0.25)
    at = lambda s: int(np.argmin(np.abs(t - s)))  # noqa: E731
    assert lab["motion"][at(1.0)] == 0
    assert lab["motion"][at(4.0)] == MAJOR and lab["distance_m"][at(4.0)] == pytest.approx(1.5)
    assert lab["motion"][at(5.5)] == MAJOR  # major wins over a concurrent minor
    assert lab["motion"][at(7.0)] == MINOR and lab["action"][at(7.0)] == 2  # page
    assert lab["motion"][at(10.0)] == 0 and np.isnan(lab["distance_m"][at(10.0)])
    assert lab["edge"][at(2.0)] and lab["edge"][at(8.1)] and not lab["edge"][at(4.0)]
    assert lab["pet"][at(13.0)] and not lab["pet"][at(10.0)]
    assert np.all(lab["confusers"] & CONFUSER_BITS["fan"])
    assert not np.any(lab["confusers"] & CONFUSER_BITS["curtain"])


def test_hop_weights_weigh_hard_negatives_and_hard_positives():
    from uspd.train.trainer import TrainConfig, hop_weights

    n = 8
    clip = {"motion": np.array([0, 0, 2, 2, 1, 1, 0, 2], np.int8), "action": np.array([0, 0, 0, 0, 2, 3, 0, 0], np.int8),
            "confusers": np.array([0, 1, 0, 1, 0, 1, 0, 0], np.uint16), "pet": np.zeros(n, bool),
            "far": np.zeros(n, bool), "presence": np.zeros(n, bool), "edge": np.array([0, 0, 0, 0, 0, 0, 0, 1], bool)}
    cfg = TrainConfig(hard_weight=5.0, hard_positive_weight=3.0, minor_weight=2.0, typing_weight=0.3)
    targets, w, wm = hop_weights(clip, cfg)
    np.testing.assert_array_equal(targets[0], [0, 0, 1, 1, 1, 1, 0, 1])
    np.testing.assert_array_equal(targets[1], [0, 0, 1, 1, 0, 0, 0, 1])
    # plain negative 1, confuser negative 5, major 1, major beside a confuser 3, page 2, typing beside a confuser
    # 0.3 * 3, an edge hop 0
    np.testing.assert_allclose(w, [1, 5, 1, 3, 2, 0.9, 1, 0])
    assert wm[7] == 0 and wm[0] == pytest.approx(cfg.major_neg_weight)
    # --far-weight: the negative hops beside a person beyond 5 m weigh that much more, nothing else moves
    clip["far"] = np.array([1, 0, 0, 1, 0, 0, 0, 0], bool)
    _, w_far, _ = hop_weights(clip, TrainConfig(hard_weight=5.0, far_weight=4.0, typing_weight=0.3))
    np.testing.assert_allclose(w_far, [20, 5, 1, 3, 2, 0.9, 1, 0])


def test_approach_weight_applies_to_a_walker_crossing_5_m_not_to_people_who_stay_beyond():
    """--approach-weight: far hops in a run that touches (within 0.5 s = 10 hops) a person within 5 m -- the walker
    coming in -- get that factor; a far run 12 hops away (a passer-by) keeps the far weight."""
    from uspd.train.labels import MAJOR, approach_hops
    from uspd.train.trainer import TrainConfig, hop_weights

    n = 100
    motion, far, presence = np.zeros(n, np.int8), np.zeros(n, bool), np.zeros(n, bool)
    far[0:30] = True          # walks in from beyond 5 m ...
    motion[30:40] = MAJOR     # ... and on within 5 m
    presence[40:50] = True    # stands
    far[55:60] = True         # steps back past 5 m, 5 hops after standing
    far[62:70] = True         # a passer-by 12 hops after the person within 5 m stood
    expect = np.zeros(n, bool)
    expect[0:30] = expect[55:60] = True
    np.testing.assert_array_equal(approach_hops(motion, presence, far), expect)
    assert not approach_hops(motion, presence, far, gap_hops=4)[55:60].any()   # 5 hops away: not within 4
    assert not approach_hops(np.zeros(n, np.int8), np.zeros(n, bool), far).any()  # nobody within 5 m
    clip = {"motion": motion, "action": np.zeros(n, np.int8), "confusers": np.zeros(n, np.uint16),
            "pet": np.zeros(n, bool), "far": far, "presence": presence, "edge": np.zeros(n, bool)}
    _, w_default, _ = hop_weights(clip, TrainConfig(hard_weight=5.0))
    _, w, _ = hop_weights(clip, TrainConfig(hard_weight=5.0, approach_weight=0.0))
    assert w_default[0] == w_default[65] == 5.0                        # both far stretches are hard negatives
    assert w[0] == 0 and w[57] == 0 and w[65] == 5.0 and w[35] == 1.0  # the walker's cost nothing; the rest as before


def _train(clips, seed, epochs=3):
    from uspd.train.trainer import TrainConfig, train_model

    cfg = TrainConfig(epochs=epochs, batch=8, crop_hops=100, threads=1, seed=seed, lr=1e-2)
    return train_model(clips, cfg, progress=False)


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(1)
    return [synthetic_clip(rng, n_mics=int(rng.integers(2, 9)), major=bool(i % 2)) for i in range(16)]


@pytest.fixture(scope="module")
def trained(clips):
    return _train(clips, seed=3, epochs=6)


def test_training_learns_motion_from_features(clips, trained):
    net, history = trained
    from uspd.train.trainer import evaluate_clips, TrainConfig

    stats = evaluate_clips(net, clips, TrainConfig())
    assert stats["major"] > 0.9
    assert stats["neg_fp"] < 0.1
    assert history["best_epoch"] >= 1


def test_training_is_reproducible_from_its_seed(clips):
    a, _ = _train(clips, seed=5, epochs=1)
    b, _ = _train(clips, seed=5, epochs=1)
    c, _ = _train(clips, seed=6, epochs=1)
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(va, vc) for va, vc in zip(a.state_dict().values(), c.state_dict().values()))


def test_ema_keeps_the_moving_average_of_the_weights_the_training_steps_went_through(clips, monkeypatch):
    from uspd.train.trainer import TrainConfig, train_model

    steps = []  # the weights after every optimizer step: the scheduler steps right after it
    original = torch.optim.lr_scheduler.OneCycleLR.step

    def record(sched, *a, **k):
        steps.append([p.detach().clone() for g in sched.optimizer.param_groups for p in g["params"]])
        return original(sched, *a, **k)

    monkeypatch.setattr(torch.optim.lr_scheduler.OneCycleLR, "step", record)
    cfg = TrainConfig(epochs=1, batch=8, crop_hops=100, threads=1, seed=5, lr=1e-2)
    plain, _ = train_model(clips, cfg, progress=False)
    trajectory = steps[1:]  # the scheduler's first step runs when it is built, before any training
    steps.clear()
    averaged, _ = train_model(clips, replace(cfg, ema=0.5), progress=False)
    assert len(trajectory) >= 3
    for a, b in zip(steps[1:][-1], trajectory[-1]):  # the average does not change the training itself
        assert torch.equal(a, b)
    expected = trajectory[0]
    for weights in trajectory[1:]:
        expected = [0.5 * e + 0.5 * w for e, w in zip(expected, weights)]
    kept = list(averaged.parameters())
    for k, e in zip(kept, expected):
        torch.testing.assert_close(k, e)
    assert any(not torch.equal(k, p) for k, p in zip(kept, plain.parameters()))  # not the last weights


def test_weight_decay_shrinks_the_weights_the_same_training_steps_reach(clips):
    from uspd.train.trainer import TrainConfig, train_model

    cfg = TrainConfig(epochs=1, batch=8, crop_hops=100, threads=1, seed=5, lr=1e-2, val_fraction=0.0)
    norms = {}
    for decay in (0.0, 1e-4, 20.0):
        net, history = train_model(clips, replace(cfg, weight_decay=decay), progress=False)
        assert history["config"]["weight_decay"] == decay
        norms[decay] = float(torch.sqrt(sum((p.detach() ** 2).sum() for p in net.parameters())))
    assert norms[20.0] < 0.8 * norms[0.0]  # AdamW pulls every weight towards 0 by lr x decay per step
    assert norms[1e-4] == pytest.approx(norms[0.0], rel=1e-2)  # the old default barely does


def test_hard_example_mining_draws_clips_the_model_gets_wrong_more_often(clips):
    from uspd.train.trainer import TrainConfig, _Batcher

    cfg = TrainConfig(batch=8, crop_hops=50, mining=1.0, mining_cap=4.0)
    b = _Batcher(clips, cfg, np.random.default_rng(0))
    by_length = b.prob.copy()
    b.last_idx = np.arange(len(clips))
    loss = np.full(len(clips), 0.1)
    loss[3] = 1.0  # one clip the model keeps getting wrong
    b.update(loss, decay=0.0)
    ratio = (b.prob / by_length)
    assert ratio[3] > 3.0 * ratio[0]  # drawn more than three times as often as an easy clip of its length
    assert ratio[3] / ratio[0] <= 4.0 ** 2 + 1e-9  # the cap bounds the boost
    assert b.prob.sum() == pytest.approx(1.0)
    off = _Batcher(clips, TrainConfig(batch=8, crop_hops=50, mining=0.0), np.random.default_rng(0))
    off.last_idx = np.arange(len(clips))
    off.update(loss, decay=0.0)
    np.testing.assert_allclose(off.prob, by_length)


def test_level_jitter_shifts_only_the_band_levels_by_a_bounded_gain_per_crop_and_mic():
    """--level-jitter-db J: each crop's levels move by one gain in [-J, J] (the echo input by the same gain) plus a
    per-channel offset in [-J/2, J/2]; the rise above the background (offset-free) is untouched; J = 0 is exact."""
    from nn_fixtures import synthetic_clip
    from uspd.train.trainer import TrainConfig, _Batcher

    clip = synthetic_clip(np.random.default_rng(0), n_hops=120, n_mics=4)
    levels, rise = np.linspace(-80, -40, 32, dtype=np.float32), np.linspace(0, 9, 32, dtype=np.float32)
    clip["x"] = np.broadcast_to(np.concatenate([levels, rise]), (120, 4, 64)).astype(np.float16)
    clip["e"] = np.broadcast_to(np.concatenate([levels, rise]), (120, 64)).astype(np.float16)
    j = 6.0
    x, mask, _, _, e = _Batcher([clip], TrainConfig(batch=32, crop_hops=60, mining=0.0, level_jitter_db=j,
                                                    level_bands=32, channel_drop=0.0), np.random.default_rng(1)).batch()
    x, e = x.numpy().astype(np.float64), e.numpy().astype(np.float64)
    lv = np.asarray(clip["x"][0, 0, :32], np.float64)
    shift = x[..., :32] - lv  # (N, T, C, 32): one value per crop and channel
    assert np.ptp(shift, axis=(1, 3)).max() < 1e-4  # float32 sums
    gain = e[:, 0, :32] - lv  # (N, 32): one value per crop
    assert np.ptp(gain, axis=1).max() < 1e-4 and np.abs(gain).max() <= j + 1e-4
    assert np.abs(shift[:, 0, :, 0] - gain[:, :1]).max() <= j / 2 + 1e-4
    assert gain[:, 0].std() > j / 4 and np.ptp(shift[:, 0, :, 0] - gain[:, :1], axis=1).min() > 0
    np.testing.assert_array_equal(x[..., 32:], np.broadcast_to(np.asarray(clip["x"][0, 0, 32:]), x[..., 32:].shape))
    np.testing.assert_array_equal(e[..., 32:], np.broadcast_to(np.asarray(clip["e"][0, 32:]), e[..., 32:].shape))
    x0 = _Batcher([clip], TrainConfig(batch=4, crop_hops=60, mining=0.0, channel_drop=0.0),
                  np.random.default_rng(1)).batch()[0].numpy()
    np.testing.assert_array_equal(x0, np.broadcast_to(np.asarray(clip["x"][0], np.float32), x0.shape))
    # a model without level inputs (level_bands 0): nothing shifts, and the crops are the jittered run's
    clip["x"][:, :, :32] = np.arange(120, dtype=np.float16)[:, None, None]  # the hop index tells the crop
    cfg = dict(batch=32, crop_hops=60, mining=0.0, level_jitter_db=j, channel_drop=0.0)
    xj = _Batcher([clip], TrainConfig(level_bands=32, **cfg), np.random.default_rng(1)).batch()[0].numpy()
    xn = _Batcher([clip], TrainConfig(level_bands=0, **cfg), np.random.default_rng(1)).batch()[0].numpy()
    np.testing.assert_array_equal(xn[..., 32:], xj[..., 32:])
    hop = xn[:, :, 0, 0]
    assert np.all(hop == np.round(hop)) and np.ptp(hop[:, 0]) > 0  # untouched hop indices, from various starts
    np.testing.assert_allclose(xj[:, :, 0, 0] - hop, (xj[:, :, 0, 0] - hop)[:, :1].repeat(60, 1), atol=1e-4)


def test_band_mask_holds_a_run_of_velocity_bands_at_their_median_level_and_zero_rise_in_half_the_crops():
    """--band-mask W: about half the crops lose one run of 1..W adjacent bands, the same in every channel and in the
    echo input: levels held at each channel's median over the crop, rises at 0 dB; every other input is untouched."""
    from nn_fixtures import synthetic_clip
    from uspd.train.trainer import TrainConfig, _Batcher

    clip = synthetic_clip(np.random.default_rng(0), n_hops=120, n_mics=4)
    levels, rise = np.linspace(-80, -40, 32), np.linspace(1, 9, 32)
    noise = np.random.default_rng(2).normal(0.0, 2.0, (120, 4, 64))  # every hop and channel differs
    clip["x"] = (np.concatenate([levels, rise]) + noise).astype(np.float16)
    clip["e"] = (np.concatenate([levels, rise]) + noise[:, 0]).astype(np.float16)
    cfg = TrainConfig(batch=64, crop_hops=120, mining=0.0, channel_drop=0.0, level_bands=32, band_mask=3)
    x, _, _, _, e = (a.numpy() for a in _Batcher([clip], cfg, np.random.default_rng(1)).batch() if a is not None)
    widths = []
    for xb, eb in zip(x, e):  # crop_hops = the clip: every crop is the whole clip, so the rest is the clip itself
        masked = np.flatnonzero((xb[..., 32:] == 0).all(axis=(0, 1)))
        widths.append(len(masked))
        if len(masked):
            assert np.all(np.diff(masked) == 1)  # one run of adjacent bands
            np.testing.assert_array_equal(np.flatnonzero((eb[:, 32:] == 0).all(axis=0)), masked)
            median = np.median(np.asarray(clip["x"][:, :, masked], np.float32), axis=0)
            np.testing.assert_allclose(xb[:, :, masked], np.broadcast_to(median, xb[:, :, masked].shape))
        kept = np.setdiff1d(np.arange(32), masked)
        for block in (0, 32):
            np.testing.assert_array_equal(xb[:, :, block + kept], np.asarray(clip["x"][:, :, block + kept],
                                                                               np.float32))
            np.testing.assert_array_equal(eb[:, block + kept], np.asarray(clip["e"][:, block + kept], np.float32))
    assert max(widths) == 3 and 16 <= sum(w > 0 for w in widths) <= 48  # 1..W bands, about half the crops
    plain = _Batcher([clip], replace(cfg, band_mask=0), np.random.default_rng(1)).batch()[0].numpy()
    np.testing.assert_array_equal(plain, np.broadcast_to(np.asarray(clip["x"], np.float32), plain.shape))


def test_burn_in_drops_the_loss_of_the_first_hops_of_crops_that_start_inside_a_clip_only():
    """--burn-in-s: a crop that starts inside a clip (zero GRU state on a warm front end, never seen live) carries no
    loss on its first burn_in_hops; a crop from the clip's start (a cold start, as live) keeps all its weights."""
    from nn_fixtures import synthetic_clip
    from uspd.train.trainer import TrainConfig, _Batcher, hop_weights

    clip = synthetic_clip(np.random.default_rng(0), n_hops=300, n_mics=2)
    clip["x"] = clip["x"].copy()
    clip["x"][:, 0, 0] = np.arange(300)  # the hop index, to read each crop's start back (exact in float16)
    cfg = TrainConfig(batch=64, crop_hops=60, mining=0.0, channel_drop=0.0, burn_in_hops=10)
    _, wa, wm = hop_weights(clip, cfg)
    x, _, _, w, _ = _Batcher([clip], cfg, np.random.default_rng(3)).batch()
    starts = x.numpy()[:, 0, 0, 0].astype(int)
    w = w.numpy()
    assert (starts == 0).sum() >= 3 and (starts > 0).sum() >= 30  # both kinds of crop were drawn
    for b, a in enumerate(starts):
        expect = np.stack([wa[a:a + 60], wm[a:a + 60]], axis=1)
        if a > 0:
            expect[:10] = 0.0
        np.testing.assert_array_equal(w[b], expect)
    assert (w[starts > 0, 10:].sum(axis=(1, 2)) > 0).all()  # the rest of the crop still counts
    _, _, _, w0, _ = _Batcher([clip], replace(cfg, burn_in_hops=0), np.random.default_rng(3)).batch()
    assert (w0.numpy()[starts > 0, :10] > 0).any()  # without burn-in the first hops count


def test_preroll_plays_the_clip_back_and_forth_into_its_first_hop():
    from uspd.train.trainer import preroll_index

    for n_hops, length in ((5, 12), (300, 1200), (1, 4), (700, 600)):
        idx = preroll_index(n_hops, length)
        assert len(idx) == length and idx[-1] == 0  # runs into the clip's first hop
        assert idx.min() >= 0 and idx.max() < n_hops
        assert np.abs(np.diff(idx)).max() <= 1  # no jump anywhere: the clip reversed, forwards, reversed, ...
    np.testing.assert_array_equal(preroll_index(5, 12), [1, 0, 0, 1, 2, 3, 4, 4, 3, 2, 1, 0])
    assert len(preroll_index(5, 0)) == 0


def test_prewarm_starts_a_share_of_clips_with_the_backgrounds_settled_as_on_a_device_long_on():
    """--prewarm: a quiet room's rise above the background sits near 0 while the background is a running mean (the
    first 30 s after a cold start) and several dB up once it has settled to a slow-rise / fast-fall tracker (live,
    after minutes). Pre-warmed clips start in the settled state; the others are the plain streaming features."""
    from uspd.detector.neural import EchoStream, FeatureSpec, FeatureStream
    from uspd.train.trainer import add_model_inputs

    spec = FeatureSpec()
    rng = np.random.default_rng(0)

    def quiet_clip(n_hops):  # noise floor: each band's dB fluctuates by a few dB around a per-band level
        x = (-90.0 + rng.normal(0, 1, (1, 2, 32)) + rng.normal(0, 3, (n_hops, 2, 32))).astype(np.float16)
        e = (-92.0 + rng.normal(0, 3, (n_hops, 1, 32))).astype(np.float16)
        return {"x": x, "e": e}

    long_run = FeatureStream(spec).process(quiet_clip(4000)["x"].astype(np.float32))
    settled_rise = long_run[2400:, :, 32:].mean()  # after two minutes
    cold_rise = long_run[20:200, :, 32:].mean()  # the first seconds after a cold start
    assert settled_rise > cold_rise + 2.0  # the two states differ: the model could tell them apart

    clips = [quiet_clip(400) for _ in range(40)]
    plain = [{k: v.copy() for k, v in c.items()} for c in clips]
    add_model_inputs(clips, spec, prewarm=0.5, seed=1)
    warmed = [abs(c["x"][20:200, :, 32:].astype(np.float32).mean() - settled_rise) < 1.0 for c in clips]
    assert 10 <= sum(warmed) <= 30  # about half
    for c, p, w in zip(clips, plain, warmed):
        rise = c["x"][20:200, :, 32:].astype(np.float32).mean()
        if not w:  # the others start cold and are exactly the streaming features
            assert abs(rise - cold_rise) < 1.0
            np.testing.assert_array_equal(c["x"], FeatureStream(spec).process(p["x"]).astype(np.float16))
            np.testing.assert_array_equal(c["e"], EchoStream(spec).process(p["e"]).astype(np.float16))
        else:  # the echo input is warmed with the same clip
            cold_e = EchoStream(spec).process(p["e"])[20:200, 32:].mean()
            assert c["e"][20:200, 32:].astype(np.float32).mean() > cold_e + 2.0
        np.testing.assert_array_equal(c["x"][:, :, :32], p["x"])  # band levels untouched
    again = [{k: v.copy() for k, v in c.items()} for c in plain]
    add_model_inputs(again, spec, prewarm=0.5, seed=1)
    assert all(np.array_equal(a["x"], c["x"]) for a, c in zip(again, clips))  # reproducible from the seed


def test_peak_loss_takes_each_crops_highest_negative_scores_only():
    """The event-level loss is the BCE towards 0 of each crop's k highest logits among negative hops (target 0,
    weight > 0): positive and zero-weight (edge) hops are ignored however high they score, crops with fewer than k
    negative hops are left out, and its gradient reaches only those top hops."""
    import torch.nn.functional as F

    from uspd.train.trainer import _peak_loss

    logits = torch.full((3, 10, 2), -5.0)
    y = torch.zeros(3, 10, 2)
    w = torch.ones(3, 10, 2)
    logits[0, 2, 0], logits[0, 7, 0] = 3.0, 1.0  # crop 0: two negative peaks
    logits[0, 4, 0], y[0, 4, 0] = 9.0, 1.0  # a positive hop: ignored
    logits[0, 5, 0], w[0, 5, 0] = 8.0, 0.0  # an edge hop (weight 0): ignored
    logits[1, :, 0] = torch.linspace(-4, 0, 10)  # crop 1: rising score
    y[2, 1:, 0] = 1.0  # crop 2: one negative hop only (< k): left out
    logits.requires_grad_(True)
    loss = _peak_loss(logits, y, w, k=2)
    top = torch.tensor([[3.0, 1.0], [0.0, -4 + 4 * 8 / 9]])
    expected = F.binary_cross_entropy_with_logits(top, torch.zeros_like(top))
    assert abs(loss.detach().item() - expected.item()) < 1e-5
    loss.backward()
    touched = sorted(map(tuple, torch.nonzero(logits.grad[..., 0]).tolist()))
    assert touched == [(0, 2), (0, 7), (1, 8), (1, 9)]
    assert _peak_loss(logits, torch.ones(3, 10, 2), w, k=2).item() == 0.0  # no negative hops at all


def test_export_int8_is_small_quantized_and_close_to_float(tmp_path, clips, trained):
    from uspd.detector.neural import FeatureSpec
    from uspd.train.export import export_float_onnx, onnx_op_types, quantize_int8, run_onnx_sequence, write_manifest

    net, _ = trained
    f_path = export_float_onnx(net, tmp_path / "m.float.onnx")
    q_path = quantize_int8(f_path, tmp_path / "m.onnx")
    ops = onnx_op_types(q_path)
    assert "MatMulInteger" in ops and "MatMul" not in ops  # every weight matrix is int8
    mpath = write_manifest(q_path, net, FeatureSpec(background=False), {"training": {"data_seed": 1}})
    man = json.loads(mpath.read_text())
    assert man["parameters"] <= 50_000
    assert man["macs_per_s_8_mics"] <= 2_000_000
    x = clips[0]["x"].astype(np.float32)
    e = clips[0]["e"].astype(np.float32)
    with torch.no_grad():
        logits, _ = net(torch.from_numpy(x)[None], e=torch.from_numpy(e)[None])
    p_torch = torch.sigmoid(logits)[0].numpy()
    assert man["inputs"]["e"] and net.n_echo == e.shape[1]
    p_float = run_onnx_sequence(f_path, x, e)
    p_int8 = run_onnx_sequence(q_path, x, e)
    np.testing.assert_allclose(p_float, p_torch, atol=1e-4)  # the step graph is the trained sequence model
    assert np.abs(p_int8 - p_float).max() < 0.08
    assert np.abs(p_int8 - p_float).mean() < 0.02


def test_train_cli_end_to_end_and_errors(tmp_path, clips, capsys):
    from uspd.cli import main

    data = tmp_path / "data"
    data.mkdir()
    arrays = {}
    for j, c in enumerate(clips[:6]):
        for k, v in c.items():
            if k != "meta":
                arrays[f"{k}_{j}"] = v[:, None, :] if k == "e" else v  # shards keep e per carrier
    arrays["meta"] = np.array(json.dumps([c["meta"] for c in clips[:6]]))
    np.savez(data / "shard_00000.npz", **arrays)
    (data / "manifest.json").write_text(json.dumps({"seed": 7, "hours": 0.01, "features": {"n_per_side": 16}}))
    out = tmp_path / "m.onnx"
    assert main(["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--batch", "4",
                 "--crop-s", "4", "--threads", "1"]) == 0
    man = json.loads(out.with_suffix(".json").read_text())
    assert man["training"]["data_seed"] == 7 and man["model_file"] == "m.onnx"
    assert out.with_name("m.float.onnx").exists() and out.with_suffix(".pt").exists()  # the checkpoint for ensembles
    assert "e" in man["inputs"]  # echo features are fed by default

    # --echo-floor: e also carries the classic floor's z-scores; the exported model streams them with any chunking
    floor = tmp_path / "floor.onnx"
    assert main(["train", "--data", str(data), "--out", str(floor), "--epochs", "1", "--batch", "4",
                 "--crop-s", "4", "--echo-floor"]) == 0
    man_floor = json.loads(floor.with_suffix(".json").read_text())
    assert man_floor["features"]["echo_floor"] and "FloorStream" in man_floor["inputs"]["e"]
    from uspd.detector.neural import NeuralDetector
    det = NeuralDetector(floor)
    assert det.spec.n_echo_inputs == 96 and not man["features"]["echo_floor"]
    x, e = arrays["x_0"].astype(np.float32), arrays["e_0"].astype(np.float32)
    whole = det.process_bands(x, e).score
    det.reset()
    parts = [det.process_bands(x[i:j], e[i:j]).score for i, j in ((0, 1), (1, 37), (37, len(x)))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert main(["train", "--data", str(data), "--out", str(floor), "--echo-floor", "--no-echo"]) == 2
    assert "--echo-floor works on the echo features" in capsys.readouterr().err
    man_floor["features"]["echo_floor"] = False  # a manifest that does not match its graph
    floor.with_suffix(".json").write_text(json.dumps(man_floor))
    with pytest.raises(UspdError, match="give 64 echo inputs, the model takes 96"):
        NeuralDetector(floor)

    # shards from before the echo features: --no-echo trains on them, --echo says why it cannot
    old = tmp_path / "old"
    old.mkdir()
    np.savez(old / "shard_00000.npz", **{k: v for k, v in arrays.items() if not k.startswith("e_")})
    (old / "manifest.json").write_text((data / "manifest.json").read_text())
    out_old = tmp_path / "old.onnx"
    assert main(["train", "--data", str(old), "--out", str(out_old), "--epochs", "1", "--batch", "4",
                 "--crop-s", "4", "--no-echo"]) == 0
    assert "e" not in json.loads(out_old.with_suffix(".json").read_text())["inputs"]
    assert main(["train", "--data", str(old), "--out", str(out_old), "--epochs", "1"]) == 2
    assert "--echo needs shards with echo features" in capsys.readouterr().err

    # a tuning pool (seeds 1000-1999, for model selection) and data mined from one are refused
    tune = tmp_path / "tune"
    tune.mkdir()
    np.savez(tune / "shard_00000.npz", **arrays)
    (tune / "manifest.json").write_text(json.dumps({"seed": 1012, "hours": 0.01, "features": {"n_per_side": 16}}))
    assert main(["train", "--data", str(data), str(tune), "--out", str(out), "--epochs", "1"]) == 2
    assert "seed 1012, a tune seed; only training seeds" in capsys.readouterr().err
    (tune / "manifest.json").write_text("{not json")
    assert main(["train", "--data", str(tune), "--out", str(out), "--epochs", "1"]) == 2
    assert "not a readable manifest" in capsys.readouterr().err

    # a pool whose manifest lists every feature field (as 'uspd dataset train' writes now) trains beside one from
    # before some fields existed (their defaults then); a pool with other features is refused
    from dataclasses import asdict

    from uspd.detector.neural import FeatureSpec
    for name, features in (("new", asdict(FeatureSpec())), ("other", {**asdict(FeatureSpec()), "n_per_side": 8})):
        pool = tmp_path / name
        pool.mkdir()
        np.savez(pool / "shard_00000.npz", **arrays)
        (pool / "manifest.json").write_text(json.dumps({"seed": 8, "hours": 0.01, "features": features}))
    assert main(["train", "--data", str(data), str(tmp_path / "new"), "--out", str(out), "--epochs", "1",
                 "--batch", "4", "--crop-s", "4", "--weight-decay", "0.05"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["training"]["history"]["config"]["weight_decay"] == 0.05
    assert main(["train", "--data", str(data), str(tmp_path / "other"), "--out", str(out), "--epochs", "1"]) == 2
    assert f"{tmp_path / 'other'}: built with other features than {data}" in capsys.readouterr().err

    assert main(["train", "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m.txt")]) == 2
    for bad in (["--hard-positive-weight", "-1"], ["--mining", "nan"], ["--hidden", "2"], ["--peak-weight", "inf"],
                ["--peak-hops", "0"], ["--enc", "2"], ["--burn-in-s", "30"], ["--burn-in-s", "-1"],
                ["--prewarm", "1.5"], ["--prewarm", "nan"], ["--ema", "1"], ["--weight-decay", "-0.1"],
                ["--weight-decay", "inf"]):
        assert main(["train", "--data", str(data), "--out", str(out), *bad]) == 2
    err = capsys.readouterr().err
    assert "no training shards" in err and ".onnx" in err and "Traceback" not in err
    assert "--hard-positive-weight -1.0: must not be negative" in err and "--mining nan: must be a number" in err
    assert "--hidden 2" in err
    assert "--peak-weight inf: must be finite" in err and "--peak-hops 0: must be at least 1" in err
    assert "--enc 2: must be at least 4" in err
    assert "--burn-in-s 30.0: must be >= 0 and shorter than --crop-s (24.0)" in err and "--burn-in-s -1.0" in err
    assert "--prewarm 1.5: must be a share between 0 and 1" in err and "--prewarm nan" in err
    assert "--ema 1.0: must be a decay in [0, 1) (0 = off)" in err
    assert "--weight-decay -0.1: must not be negative" in err and "--weight-decay inf: must be finite" in err


def test_dataset_train_shards_labels_resume_and_determinism(tmp_path):
    pytest.importorskip("uspd.simulate.render")
    from uspd.train.data import HELD_OUT_N_MICS, build_training_set, check_pool_seed, load_shards, shard_path

    out = tmp_path / "ds"
    kw = dict(hours=6.0 / 3600, seed=11, workers=1, shard_s=3.0, progress=False,
              kind_weights={"walk": 1.0, "fan": 1.0}, clip_s=3.0)
    build_training_set(out=out, **kw)
    clips = load_shards(out)
    assert len(clips) == 2 and shard_path(out, 1).exists()
    for c in clips:
        meta = c["meta"]
        n_ch = len(meta["carriers_hz"]) * meta["n_mics"]
        assert c["x"].shape == (c["t"].size, n_ch, 32) and np.isfinite(c["x"]).all()
        assert meta["n_mics"] not in HELD_OUT_N_MICS
        assert np.all(np.diff(c["t"]) > 0) and c["t"][-1] <= 3.0 + 1e-6
        if meta["kind"] == "fan":
            assert not c["motion"].any() and c["confusers"].any()
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard_*.npz")}
    first = np.load(shard_path(out, 0))["x_0"].copy()
    shard_path(out, 0).unlink()
    build_training_set(out=out, **kw)  # resumes: rebuilds only the missing shard, identically
    assert shard_path(out, 1).stat().st_mtime_ns == before["shard_00001.npz"]
    np.testing.assert_array_equal(np.load(shard_path(out, 0))["x_0"], first)
    from uspd.errors import UspdError
    assert json.loads((out / "manifest.json").read_text())["role"] == "train"
    with pytest.raises(UspdError, match="training seeds 0-999 or tuning seeds 1000-1999"):
        build_training_set(out=tmp_path / "x", **{**kw, "seed": 9000})
    assert check_pool_seed(1012) == "tune" and check_pool_seed(999) == "train"


def test_kind_weights_option_parses_and_rejects_bad_input():
    pytest.importorskip("uspd.simulate.scene")
    from uspd.errors import UspdError
    from uspd.train.data import parse_kind_weights

    assert parse_kind_weights("") is None
    assert parse_kind_weights("music_motion=2, music=0.5,walk") == {"music_motion": 2.0, "music": 0.5, "walk": 1.0}
    for bad in ("nope=1", "walk=x", "walk=-1", "walk=0"):
        with pytest.raises(UspdError, match="--kinds"):
            parse_kind_weights(bad)


def test_record_evaluation_puts_the_side_by_side_table_in_the_manifest(tmp_path, trained):
    from uspd.cli import main
    from uspd.detector.neural import FeatureSpec
    from uspd.train.export import write_manifest

    net, _ = trained
    model = tmp_path / "m.onnx"
    write_manifest(model, net, FeatureSpec(background=False), {})
    det = lambda recall, fa: {"major": {"recall": recall, "by_distance": {"0-2m": {"recall": 1.0}},  # noqa: E731
                                        "settled": {"recall": recall - 0.5}},
                              "minor": {"recall": 0.5, "by_action": {"page": {"recall": 0.25}}},
                              "false_alarms": {"fa_per_h": fa, "by_confuser": {"fan": {"fa_per_h": 2 * fa}},
                                               "settled": {"fa_per_h": fa / 2}},
                              "matched_fa": [{"target_fa_per_h": 1.0, "major_recall": recall / 2, "alarms": 3}]}
    result = {"dir": "/x", "recordings": 3, "detectors": {"classic": det(0.9, 60.0), "nn": det(0.95, 0.4)}}
    ev = tmp_path / "eval.json"
    ev.write_text(json.dumps(result))
    assert main(["train", "--out", str(model), "--record-eval", f"{ev}:heldout"]) == 0
    table = json.loads(model.with_suffix(".json").read_text())["evaluation"]["heldout"]["detectors"]
    assert table["nn"]["fa_per_h"] == 0.4 and table["classic"]["fa_per_h_by_confuser"]["fan"] == 120.0
    assert table["nn"]["fa_per_h_settled"] == 0.2 and table["classic"]["fa_per_h_settled"] == 30.0
    assert table["nn"]["major_recall_settled"] == 0.45 and table["classic"]["major_recall_settled"] == 0.4
    assert table["nn"]["matched_fa"] == [{"target_fa_per_h": 1.0, "major_recall": 0.475}]
    assert table["classic"]["minor_recall_by_action"] == {"page": 0.25}
    assert main(["train", "--out", str(model)]) == 2  # neither --data nor --record-eval


def test_mining_keeps_the_stretches_where_the_seed_model_raises_false_alarms(tmp_path, trained, capsys):
    """The data loop: a pool whose one clip has a walker-like Doppler bump labelled as no motion (a confuser the
    seed model mistakes for a person) gives exactly that clip's stretch, repeated; true motion is not mined."""
    from uspd.cli import main
    from uspd.detector.neural import FeatureSpec
    from uspd.train.data import load_shards
    from uspd.train.export import export_float_onnx, quantize_int8, write_manifest

    net, _ = trained
    model = quantize_int8(export_float_onnx(net, tmp_path / "seed.float.onnx"), tmp_path / "seed.onnx")
    write_manifest(model, net, FeatureSpec(background=False), {})
    rng = np.random.default_rng(4)
    pool_clips = [synthetic_clip(rng, n_hops=400, n_mics=4) for _ in range(3)]
    pool_clips[1]["motion"][:] = 0  # its bump (6.65-13.3 s) is labelled "nobody moves"
    pool = tmp_path / "pool"
    pool.mkdir()
    arrays = {f"{k}_{j}": (v[:, None, :] if k == "e" else v)
              for j, c in enumerate(pool_clips) for k, v in c.items() if k != "meta"}
    arrays["meta"] = np.array(json.dumps([{"n_mics": 4, "duration_s": 20.0, "confusers": ["pet"] if j == 1 else []}
                                          for j in range(3)]))
    np.savez(pool / "shard_00000.npz", **arrays)
    out = tmp_path / "mined"
    assert main(["dataset", "mine", str(pool), "--out", str(out), "--model", str(model), "--before-s", "4",
                 "--after-s", "2", "--repeat", "2"]) == 0
    summary = json.loads((out / "manifest.json").read_text())
    assert summary["false_alarms"] == 1 and summary["segments"] == 1
    assert summary["false_alarms_by_confuser"] == {"pet": 1}
    mined = load_shards(out)
    assert len(mined) == 2  # repeated
    t_alarm = mined[0]["meta"]["mined_at_s"]
    assert 6.5 <= t_alarm <= 7.5
    assert mined[0]["t"][0] == pytest.approx(t_alarm - 4.0, abs=0.051)
    assert mined[0]["meta"]["duration_s"] == pytest.approx(len(mined[0]["t"]) * 0.05)
    np.testing.assert_array_equal(mined[0]["x"], mined[1]["x"])
    assert mined[0]["e"].shape[1:] == (1, 32) and (mined[0]["motion"] == 0).all()
    # negative time: clip 1 after the 5 s warm-up, and the other clips outside their motion and its margins
    assert 15.0 + 2 * (20.0 - 5.0 - 6.7 - 4.0) - 1 <= summary["pool_negative_h"] * 3600 <= 15.0 + 2 * 15.0
    assert main(["dataset", "mine", str(pool), "--out", str(out), "--model", str(model)]) == 2
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(["dataset", "mine", str(pool), "--out", str(a_file), "--model", str(model)]) == 2
    assert main(["dataset", "mine", str(pool), "--out", str(tmp_path / "m2"), "--before-s", "nan"]) == 2
    err = capsys.readouterr().err
    assert "already holds shards" in err and "not a folder" in err and "must be finite" in err
    assert "Traceback" not in err


def test_mining_misses_keeps_the_major_movements_the_seed_model_does_not_find(tmp_path, trained, capsys):
    """--misses: a labelled major movement with no Doppler energy (one the seed model cannot see) is kept from
    --before-s before its start to --after-s after its end; the movements it finds are not. --misses-only keeps it
    and leaves out the false alarm (an unlabelled movement), which it still counts."""
    from uspd.cli import main
    from uspd.detector.neural import FeatureSpec
    from uspd.train.data import load_shards
    from uspd.train.export import export_float_onnx, quantize_int8, write_manifest

    net, _ = trained
    model = quantize_int8(export_float_onnx(net, tmp_path / "seed.float.onnx"), tmp_path / "seed.onnx")
    write_manifest(model, net, FeatureSpec(background=False), {})
    rng = np.random.default_rng(5)
    pool_clips = [synthetic_clip(rng, n_hops=400, n_mics=4) for _ in range(3)]
    pool_clips[1]["motion"][300:360] = 2  # 15.05-18.0 s: labelled walking, but the features hold nothing there
    pool_clips[2]["motion"][:] = 0  # movement in the features with no label: a "false alarm" (an unlabelled one)
    pool = tmp_path / "pool"
    pool.mkdir()
    arrays = {f"{k}_{j}": (v[:, None, :] if k == "e" else v)
              for j, c in enumerate(pool_clips) for k, v in c.items() if k != "meta"}
    arrays["meta"] = np.array(json.dumps([{"n_mics": 4, "duration_s": 20.0, "kind": "walk"} for _ in range(3)]))
    np.savez(pool / "shard_00000.npz", **arrays)
    out = tmp_path / "mined"
    assert main(["dataset", "mine", str(pool), "--out", str(out), "--model", str(model), "--before-s", "2",
                 "--after-s", "1", "--repeat", "1", "--misses"]) == 0
    summary = json.loads((out / "manifest.json").read_text())
    assert summary["major_movements"] == 3 and summary["missed_majors"] == 1 and summary["false_alarms"] == 1
    assert summary["missed_majors_by_kind"] == {"walk": 1}
    mined = [c for c in load_shards(out) if c["meta"]["mined"] == "missed major"]
    assert len(mined) == 1
    assert mined[0]["t"][0] == pytest.approx(15.05 - 2.0, abs=0.051)
    assert mined[0]["t"][-1] == pytest.approx(18.0 + 1.0, abs=0.051)
    assert "missed 1 of 3 major movements" in capsys.readouterr().out
    assert summary["segments"] == 2
    only = tmp_path / "only"
    assert main(["dataset", "mine", str(pool), "--out", str(only), "--model", str(model), "--before-s", "2",
                 "--after-s", "1", "--repeat", "1", "--misses-only"]) == 0
    only_summary = json.loads((only / "manifest.json").read_text())
    assert only_summary["false_alarms"] == summary["false_alarms"] and only_summary["missed_majors"] == 1
    assert [c["meta"]["mined"] for c in load_shards(only)] == ["missed major"]


def test_echo_model_runs_streaming_with_any_chunking_and_needs_echo_spectra(tmp_path, trained):
    """A model with the echo input, through NeuralDetector.process(frames): chunking does not change its scores,
    they match the torch sequence model, and frames without echo spectra are a one-line error."""
    from types import SimpleNamespace

    from nn_fixtures import synthetic_spectra
    from uspd.detector.neural import FeatureSpec, NeuralDetector
    from uspd.errors import UspdError
    from uspd.train.export import export_float_onnx, write_manifest

    net, _ = trained
    path = export_float_onnx(net, tmp_path / "echo.onnx")
    write_manifest(path, net, FeatureSpec(background=False), {})
    motion = np.zeros(150, bool)
    motion[50:100] = True
    spec, freqs = synthetic_spectra(np.random.default_rng(8), 150, 3, 40000.0, motion)
    echo = spec.mean(axis=2) - 5.0

    def frames(a, b, with_echo=True):
        return SimpleNamespace(t_s=np.arange(a + 1, b + 1) * 0.05, spectra_db=spec[a:b], freqs_hz=freqs,
                               carriers_hz=np.array([40000.0]), echo_db=echo[a:b] if with_echo else None)

    det = NeuralDetector(path)
    assert det.uses_echo
    whole = det.process(frames(0, 150)).score
    det.reset()
    parts = np.concatenate([det.process(frames(a, min(a + 13, 150))).score for a in range(0, 150, 13)])
    np.testing.assert_array_equal(parts, whole)
    assert whole[60:100].mean() > 0.5 > whole[:40].mean()
    from uspd.detector.neural import band_features, echo_band_features
    x = torch.from_numpy(band_features(spec, freqs, [40000.0]))[None]
    e = torch.from_numpy(echo_band_features(echo, freqs, [40000.0])[:, 0])[None]
    with torch.no_grad():
        ref = torch.sigmoid(net(x, e=e)[0])[0, :, 0].numpy()
    np.testing.assert_allclose(whole, ref, atol=1e-4)
    det.reset()
    with pytest.raises(UspdError, match="echo spectra"):
        det.process(frames(0, 10, with_echo=False))


def _exported_model_and_raw_scores(tmp_path, trained, seed: int, n_hops: int):
    """An exported (uncalibrated) model from ``trained``, and its scores on a synthetic clip: (path, x, e, raw)."""
    from uspd.detector.neural import FeatureSpec, NeuralDetector
    from uspd.train.export import export_float_onnx, write_manifest

    net, _ = trained
    path = export_float_onnx(net, tmp_path / "c.onnx")
    write_manifest(path, net, FeatureSpec(background=False), {})
    clip = synthetic_clip(np.random.default_rng(seed), n_hops=n_hops, n_mics=3)
    x, e = clip["x"].astype(np.float32), clip["e"][:, None, :].astype(np.float32)
    return path, x, e, NeuralDetector(path).process_bands(x, e).score


def test_calibration_moves_the_operating_point_onto_the_presence_threshold(tmp_path, trained, capsys):
    """uspd train --calibrate T: a raw score of T becomes the [presence] threshold, order is kept, and the chunked
    streaming scores stay identical."""
    from uspd.cli import main
    from uspd.detector.neural import NeuralDetector, shift_logit
    from uspd.presence.tracker import PresenceConfig

    path, x, e, raw = _exported_model_and_raw_scores(tmp_path, trained, seed=2, n_hops=120)
    assert main(["train", "--out", str(path), "--calibrate", "0.9:tuning set, 1 FA/h"]) == 0
    det = NeuralDetector(path)
    cal = det.process_bands(x, e).score
    assert det.manifest["calibration"]["chosen_on"] == "tuning set, 1 FA/h"
    np.testing.assert_allclose(cal, shift_logit(raw, det.score_logit_offset), atol=1e-6)
    assert shift_logit(np.array([0.9]), det.score_logit_offset)[0] == pytest.approx(PresenceConfig().threshold)
    assert det.score_logit_offset < 0 and np.all(cal <= raw + 1e-6)
    np.testing.assert_array_equal(np.argsort(cal, kind="stable"), np.argsort(shift_logit(raw, det.score_logit_offset),
                                                                             kind="stable"))
    assert main(["train", "--out", str(path), "--calibrate", "1.5"]) == 2
    assert main(["train", "--out", str(path), "--calibrate", "high"]) == 2
    err = capsys.readouterr().err
    assert "strictly between 0 and 1" in err and "must be numbers" in err


def test_two_point_calibration_lands_both_tuned_thresholds_on_the_presence_ones(tmp_path, trained, capsys):
    """uspd train --calibrate T,S: raw T becomes the strict [presence] threshold and raw S the sensitive one (a
    squeezed model's own gap between them), scores keep their order, and the tracker's motion on the calibrated
    scores at the shared defaults is its motion on the raw scores at (T, S)."""
    from dataclasses import replace
    from types import SimpleNamespace

    from uspd.cli import main
    from uspd.detector.neural import NeuralDetector, shift_logit
    from uspd.errors import UspdError
    from uspd.presence.tracker import PresenceConfig, PresenceTracker, decisions_to_arrays

    path, x, e, raw = _exported_model_and_raw_scores(tmp_path, trained, seed=3, n_hops=200)
    tuned_t, tuned_s = float(np.quantile(raw, 0.7)), float(np.quantile(raw, 0.4))
    assert main(["train", "--out", str(path), "--calibrate", f"{tuned_t},{tuned_s}:tune set"]) == 0
    det = NeuralDetector(path)
    cfg = PresenceConfig()
    assert det.score_logit_scale != pytest.approx(1.0)
    assert det.manifest["calibration"]["tuned_sensitive_threshold"] == tuned_s
    lands = shift_logit(np.array([tuned_t, tuned_s]), det.score_logit_offset, det.score_logit_scale)
    np.testing.assert_allclose(lands, [cfg.threshold, cfg.sensitive_threshold], atol=1e-5)
    cal = det.process_bands(x, e).score
    np.testing.assert_array_equal(np.argsort(cal, kind="stable"), np.argsort(raw, kind="stable"))
    t_s = np.arange(len(raw)) * 0.05
    ones = np.ones_like(raw)

    def motion(config, score):
        return decisions_to_arrays(PresenceTracker(config).update(t_s, SimpleNamespace(score=score, major=ones)))["motion"]

    # nudge the tuned points just off any raw score so float rounding at the boundary cannot flip a hop
    raw_cfg = replace(cfg, threshold=tuned_t, sensitive_threshold=tuned_s)
    safe = np.abs(raw[:, None] - np.array([tuned_t, tuned_s])[None]).min(axis=1) > 1e-4
    assert safe.mean() > 0.9
    np.testing.assert_array_equal(motion(cfg, np.where(safe, cal, 0.0)), motion(raw_cfg, np.where(safe, raw, 0.0)))
    assert main(["train", "--out", str(path), "--calibrate", f"{tuned_s},{tuned_t}"]) == 2
    assert "sensitive thresholds must be below the strict ones" in capsys.readouterr().err
    manifest = json.loads(path.with_suffix(".json").read_text())
    manifest["calibration"]["score_logit_scale"] = -1.0
    path.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(UspdError, match="score_logit_scale > 0"):
        NeuralDetector(path)
    for bad in ({"score_logit_offset": "high"}, "not a table"):  # a hand-edited manifest: one-line errors too
        manifest["calibration"] = bad
        path.with_suffix(".json").write_text(json.dumps(manifest))
        with pytest.raises(UspdError, match="calibration needs"):
            NeuralDetector(path)


def test_distillation_target_mixes_the_label_with_the_teachers_mean_logit(tmp_path, trained, capsys):
    """uspd train --teachers A B --distill D: each teacher scores the clip as it runs live; their logits are averaged
    and the "any motion" target is (1 - D) x label + D x that probability. A teacher on other features is refused."""
    import shutil

    from uspd.cli import main
    from uspd.detector.neural import FeatureSpec, NeuralDetector, shift_logit
    from uspd.errors import UspdError
    from uspd.train.trainer import TrainConfig, attach_teacher_scores, hop_weights

    path, x, e, raw = _exported_model_and_raw_scores(tmp_path, trained, seed=4, n_hops=150)
    other = tmp_path / "d.onnx"  # a second teacher: the same network, its scores moved by a logit offset
    shutil.copy(path, other)
    shutil.copy(path.with_suffix(".json"), other.with_suffix(".json"))
    assert main(["train", "--out", str(other), "--calibrate", "0.9"]) == 0
    offset = NeuralDetector(other).score_logit_offset
    assert offset < -1.0
    clip = synthetic_clip(np.random.default_rng(4), n_hops=150, n_mics=3)
    clip["e"] = clip["e"][:, None, :]  # as load_shards gives it: per carrier
    attach_teacher_scores([clip], [str(path), str(other)], FeatureSpec(background=False), progress=False)
    np.testing.assert_allclose(clip["teacher"], shift_logit(raw, offset / 2), atol=1e-5)

    label = (clip["motion"] > 0).astype(np.float32)
    assert 0.0 < label.mean() < 1.0
    target, _, _ = hop_weights(clip, TrainConfig(teachers=("a", "b"), distill=0.25))
    np.testing.assert_allclose(target[0], 0.75 * label + 0.25 * clip["teacher"], atol=1e-6)
    np.testing.assert_array_equal(hop_weights(clip, TrainConfig())[0][0], label)  # no teachers: the label alone

    with pytest.raises(UspdError, match="built on other features"):
        attach_teacher_scores([clip], [str(path)], FeatureSpec(background=True), progress=False)
    with pytest.raises(UspdError, match="not found"):
        attach_teacher_scores([clip], [str(tmp_path / "missing.onnx")], FeatureSpec(background=False), progress=False)
    for bad in (["--distill", "0"], ["--distill", "nan"], ["--peak-weight", "1"]):
        assert main(["train", "--data", str(tmp_path), "--out", str(path), "--teachers", str(path), *bad]) == 2
    err = capsys.readouterr().err
    assert "--distill 0.0: must be in (0, 1]" in err and "--distill nan" in err
    assert "--peak-weight and --teachers do not combine" in err and "Traceback" not in err


def test_ensemble_joins_trained_models_into_one_streaming_model_with_their_mean_logit(tmp_path, trained, capsys):
    """uspd train --ensemble A.pt B.pt: one ONNX step graph whose scores are the mean of the members' logits and
    whose state is theirs side by side (members of other sizes too); the int8 model stays close to it, runs in any
    chunking, and its manifest lists the members. Bad checkpoints give one-line errors."""
    from uspd.cli import main
    from uspd.detector.model import DopplerNet, count_params
    from uspd.detector.neural import FeatureSpec, NeuralDetector
    from uspd.train.export import export_float_onnx, run_onnx_sequence, save_checkpoint, write_manifest

    net_a, _ = trained
    torch.manual_seed(5)
    net_b = DopplerNet(n_in=net_a.n_in, enc=16, hidden=8, n_echo=net_a.n_echo, echo_enc=8).eval()
    net_b.load_state_dict({**net_b.state_dict(), "in_mean_db": net_a.in_mean_db, "in_std_db": net_a.in_std_db},
                          strict=True)
    spec = FeatureSpec(background=False)
    for name, net in (("a", net_a), ("b", net_b)):
        export_float_onnx(net, tmp_path / f"{name}.onnx")
        write_manifest(tmp_path / f"{name}.onnx", net, spec,
                       {"training": {"command": f"uspd train --seed {name}", "data_sets": [{"dir": "d", "seed": 1}]}})
        save_checkpoint(net, tmp_path / f"{name}.pt")
    out = tmp_path / "ens" / "e.onnx"
    assert main(["train", "--ensemble", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--out", str(out)]) == 0

    clip = synthetic_clip(np.random.default_rng(6), n_hops=120, n_mics=3)
    x, e = clip["x"].astype(np.float32), clip["e"].astype(np.float32)
    logit = lambda p: np.log(p) - np.log1p(-p)
    p_a, p_b = run_onnx_sequence(tmp_path / "a.onnx", x, e), run_onnx_sequence(tmp_path / "b.onnx", x, e)
    assert np.abs(logit(p_a) - logit(p_b)).mean() > 0.5  # the members disagree, so the mean is a real test
    expected = 1.0 / (1.0 + np.exp(-(logit(p_a) + logit(p_b)) / 2))
    np.testing.assert_allclose(run_onnx_sequence(out.with_name("e.float.onnx"), x, e), expected, atol=1e-5)
    p_int8 = run_onnx_sequence(out, x, e)
    assert np.abs(p_int8 - expected).mean() < 0.02

    man = json.loads(out.with_suffix(".json").read_text())
    assert man["state_size"] == net_a.hidden + 8
    assert man["parameters"] == count_params(net_a) + count_params(net_b)
    assert [m["command"] for m in man["training"]["members"]] == ["uspd train --seed a", "uspd train --seed b"]
    assert man["training"]["data_sets"] == [{"dir": "d", "seed": 1}]
    det = NeuralDetector(out)
    whole = det.process_bands(x, clip["e"][:, None, :]).score
    det.reset()
    parts = [det.process_bands(x[i:j], clip["e"][i:j, None, :]).score for i, j in ((0, 7), (7, 64), (64, 120))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)

    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    other = tmp_path / "other.onnx"  # a member built on other features
    export_float_onnx(net_b, other)
    write_manifest(other, net_b, FeatureSpec(background=False, background_up_s=10.0), {})
    save_checkpoint(net_b, tmp_path / "other.pt")
    a = str(tmp_path / "a.pt")
    for bad in ([a], [a, str(tmp_path / "missing.pt")], [a, str(tmp_path / "bad.pt")], [a, str(tmp_path / "other.pt")]):
        assert main(["train", "--ensemble", *bad, "--out", str(out)]) == 2
    assert main(["train", "--ensemble", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--data", str(tmp_path),
                 "--out", str(out)]) == 2
    assert main(["train", "--ensemble", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"),
                 "--out", str(tmp_path / "b.onnx")]) == 2  # would overwrite a member
    err = capsys.readouterr().err
    assert "at least two checkpoints" in err and "missing.pt: checkpoint not found" in err
    assert "bad.pt: not a uspd training checkpoint" in err and "built on other features" in err
    assert "takes no --data" in err and "is the model of member" in err and "Traceback" not in err


def test_projection_before_the_gru_is_a_low_rank_input_matrix_that_exports_and_streams(tmp_path, clips, capsys):
    """--proj P puts a linear P-wide bottleneck between the pooled features and the GRU: the network equals one
    without it whose GRU input matrix is the rank-P product of the two, so it only trades input-matrix parameters
    for state; it trains, exports float + int8 (every matrix quantized), round-trips its checkpoint and streams in
    any chunking; a width below 4 is refused."""
    from uspd.cli import main
    from uspd.detector.model import DopplerNet, count_params, macs_per_hop
    from uspd.detector.neural import NeuralDetector
    from uspd.train.export import load_checkpoint, onnx_op_types, run_onnx_sequence

    n_in, n_echo = clips[0]["x"].shape[-1], clips[0]["e"].shape[-1]
    torch.manual_seed(2)
    low = DopplerNet(n_in=n_in, enc=8, hidden=12, n_echo=n_echo, echo_enc=8, proj=6).eval()
    full = DopplerNet(n_in=n_in, enc=8, hidden=12, n_echo=n_echo, echo_enc=8).eval()
    state = {k: v for k, v in low.state_dict().items() if not k.startswith(("proj.", "gru.weight_ih", "gru.bias_ih"))}
    w_gru, b_gru = low.gru.weight_ih_l0.detach(), low.gru.bias_ih_l0.detach()
    state["gru.weight_ih_l0"] = w_gru @ low.proj.weight.detach()   # (3H, pooled) of rank <= P
    state["gru.bias_ih_l0"] = b_gru + w_gru @ low.proj.bias.detach()
    full.load_state_dict(state)
    x = torch.from_numpy(clips[1]["x"].astype(np.float32))[None]
    e = torch.from_numpy(clips[1]["e"].astype(np.float32))[None]
    with torch.no_grad():
        np.testing.assert_allclose(low(x, e=e)[0].numpy(), full(x, e=e)[0].numpy(), atol=1e-4)
    pooled, h3 = full.pooled_dim, 3 * 12
    assert count_params(full) - count_params(low) == pooled * h3 - (pooled * 6 + 6 + 6 * h3)
    assert macs_per_hop(full, 8) - macs_per_hop(low, 8) == pooled * h3 - (pooled * 6 + 6 * h3)

    data = tmp_path / "data"
    data.mkdir()
    arrays = {f"{k}_{j}": (v[:, None, :] if k == "e" else v) for j, c in enumerate(clips[:6]) for k, v in c.items()
              if k != "meta"}
    arrays["meta"] = np.array(json.dumps([c["meta"] for c in clips[:6]]))
    np.savez(data / "shard_00000.npz", **arrays)
    (data / "manifest.json").write_text(json.dumps({"seed": 7, "hours": 0.01, "features": {"n_per_side": 16}}))
    out = tmp_path / "p.onnx"
    assert main(["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--batch", "4", "--crop-s", "4",
                 "--proj", "6", "--hidden", "12", "--no-background"]) == 0
    net = load_checkpoint(out.with_suffix(".pt"))
    assert net.arch["proj"] == 6 and tuple(net.gru.weight_ih_l0.shape) == (36, 6)
    assert json.loads(out.with_suffix(".json").read_text())["parameters"] == count_params(net)
    assert "MatMul" not in onnx_op_types(out)  # the projection is int8 too
    xs, es = clips[2]["x"].astype(np.float32), clips[2]["e"].astype(np.float32)
    with torch.no_grad():
        p_torch = torch.sigmoid(net(torch.from_numpy(xs)[None], e=torch.from_numpy(es)[None])[0])[0].numpy()
    np.testing.assert_allclose(run_onnx_sequence(out.with_name("p.float.onnx"), xs, es), p_torch, atol=1e-4)
    assert np.abs(run_onnx_sequence(out, xs, es) - p_torch).mean() < 0.02
    det = NeuralDetector(out)
    whole = det.process_bands(xs, es[:, None, :]).score
    det.reset()
    parts = [det.process_bands(xs[i:j], es[i:j, None, :]).score for i, j in ((0, 5), (5, 77), (77, len(xs)))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)

    fixed = tmp_path / "fixed.onnx"  # the background tracker without its warm-up travels in the manifest
    assert main(["-q", "train", "--data", str(data), "--out", str(fixed), "--epochs", "1", "--batch", "4",
                 "--crop-s", "4", "--hidden", "12", "--no-background-warmup"]) == 0
    assert json.loads(fixed.with_suffix(".json").read_text())["features"]["background_warmup"] is False
    assert NeuralDetector(fixed).spec.background_warmup is False and det.spec.background_warmup

    spread = tmp_path / "spread.onnx"  # the spread features travel too, and widen the model's input
    assert main(["-q", "train", "--data", str(data), "--out", str(spread), "--epochs", "1", "--batch", "4",
                 "--crop-s", "4", "--hidden", "12", "--spread", "--spread-tau-s", "8"]) == 0
    sdet = NeuralDetector(spread)
    assert sdet.spec.spread and sdet.spec.spread_tau_s == 8.0 and not det.spec.spread
    assert sdet._session.get_inputs()[0].shape[-1] == 3 * sdet.spec.n_bands
    assert main(["train", "--data", str(data), "--out", str(spread), "--spread", "--spread-tau-s", "0"]) == 2
    assert "--spread-tau-s 0.0: must be a positive number of seconds" in capsys.readouterr().err

    bare = tmp_path / "bare.onnx"  # without level inputs: the rise alone, recorded in the manifest
    assert main(["-q", "train", "--data", str(data), "--out", str(bare), "--epochs", "1", "--batch", "4",
                 "--crop-s", "4", "--hidden", "12", "--no-level", "--level-jitter-db", "6"]) == 0
    bare_manifest = json.loads(bare.with_suffix(".json").read_text())
    assert bare_manifest["features"]["level"] is False
    # its input description says what the model sees: the rise, not the level re carrier
    assert "rise above the slow background" in bare_manifest["inputs"]["x"]
    assert "re carrier" not in bare_manifest["inputs"]["x"]
    level_only_x = json.loads(out.with_suffix(".json").read_text())["inputs"]["x"]  # --no-background: the level alone
    assert "re carrier" in level_only_x and "rise" not in level_only_x
    assert "z-score" in json.loads(spread.with_suffix(".json").read_text())["inputs"]["x"]
    bdet = NeuralDetector(bare)
    assert not bdet.spec.level and det.spec.level
    assert bdet._session.get_inputs()[0].shape[-1] == bdet.spec.n_bands
    whole = bdet.process_bands(xs, es[:, None, :]).score
    bdet.reset()
    parts = [bdet.process_bands(xs[i:j], es[i:j, None, :]).score for i, j in ((0, 9), (9, len(xs)))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert main(["train", "--data", str(data), "--out", str(bare), "--no-level", "--no-background"]) == 2
    assert "leaves the model no inputs" in capsys.readouterr().err

    # the level's shape, or the level re the room's Doppler floor, instead of the level re carrier: recorded,
    # described, and refused with an option it does not combine with
    for flag, field, words, clash, refusal in (
            ("--level-shape", "level_shape", "spectrum's shape", "--no-level", "--level-shape and --no-level do not"),
            ("--level-floor", "level_floor", "(the floor)", "--no-background", "--level-floor does not combine with")):
        model = tmp_path / f"{field}.onnx"
        assert main(["-q", "train", "--data", str(data), "--out", str(model), "--epochs", "1", "--batch", "4",
                     "--crop-s", "4", "--hidden", "12", flag]) == 0
        manifest = json.loads(model.with_suffix(".json").read_text())
        assert manifest["features"][field] is True
        assert words in manifest["inputs"]["x"] and "re carrier" not in manifest["inputs"]["x"]
        assert getattr(NeuralDetector(model).spec, field) and not getattr(det.spec, field)
        assert main(["train", "--data", str(data), "--out", str(model), flag, clash]) == 2
        assert refusal in capsys.readouterr().err

    assert main(["train", "--data", str(data), "--out", str(out), "--proj", "2"]) == 2
    assert "--proj 2: must be 0 (none) or at least 4" in capsys.readouterr().err


def test_dataset_train_reflection_redraws_the_walls_only_and_guards_resume(tmp_path):
    """``uspd dataset train --reflection``: the same clips (kinds, devices, lengths) with other walls, so other
    features; recorded in the manifest; a folder built with another range is refused."""
    pytest.importorskip("uspd.simulate.render")
    from uspd.errors import UspdError
    from uspd.train.data import build_training_set, load_shards

    kw = dict(hours=3.0 / 3600, seed=12, workers=1, shard_s=3.0, progress=False, kind_weights={"walk": 1.0},
              clip_s=3.0)
    build_training_set(out=tmp_path / "a", **kw)
    build_training_set(out=tmp_path / "b", reflection=(0.1, 0.3), **kw)
    (a,), (b,) = load_shards(tmp_path / "a"), load_shards(tmp_path / "b")
    same = ("kind", "n_mics", "carriers_hz", "duration_s")
    assert {k: a["meta"][k] for k in same} == {k: b["meta"][k] for k in same}
    assert a["x"].shape == b["x"].shape and not np.array_equal(a["x"], b["x"])
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["reflection"] == [0.1, 0.3]
    with pytest.raises(UspdError, match="other settings"):
        build_training_set(out=tmp_path / "b", reflection=(0.1, 0.4), **kw)
    with pytest.raises(UspdError, match="LO <= HI < 1"):
        build_training_set(out=tmp_path / "c", reflection=(0.5, 1.0), **kw)
