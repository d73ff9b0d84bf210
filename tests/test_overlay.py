"""Walkers laid over running confusers (uspd.train.overlay, `uspd train --overlay`): powers add, labels follow."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nn_fixtures import synthetic_clip
from uspd.train.labels import CONFUSER_BITS, MAJOR
from uspd.train.overlay import (CONTEXT_S, SETTLE_S, TAIL_S, VISIBLE_DB, add_above_floor_db, is_host, is_walker,
                                overlay_clip, overlay_clips, trim_mix)

HOP_S = 0.05


def host_clip(rng, n_hops=1200, n_mics=4, floor_db=-90.0, seed=7):
    """A negative clip with a fan on all of it: noise floor ``floor_db`` +- 1 dB, one fan band 20 dB up."""
    x = floor_db + rng.uniform(-1, 1, (n_hops, n_mics, 32))
    x[:, :, 3] += 20.0
    zeros = np.zeros(n_hops, bool)
    return {"x": x.astype(np.float16), "e": (floor_db + rng.uniform(-1, 1, (n_hops, 1, 32))).astype(np.float16),
            "t": np.arange(1, n_hops + 1, dtype=np.float32) * HOP_S, "motion": np.zeros(n_hops, np.int8),
            "action": np.zeros(n_hops, np.int8), "distance_m": np.full(n_hops, np.nan, np.float32),
            "presence": zeros, "pet": zeros.copy(), "far": zeros.copy(),
            "confusers": np.full(n_hops, CONFUSER_BITS["fan"], np.uint16), "edge": zeros.copy(),
            "meta": {"seed": seed, "n_mics": n_mics}}


def test_walker_power_adds_to_the_host_above_its_floor_and_its_noise_does_not():
    host = np.full((100, 2, 4), -90.0)
    walker = np.full((20, 2, 4), -70.0)  # a device 20 dB louder: its floor sits 20 dB above the host's
    walker[5:10, :, 1] = -40.0  # an echo 30 dB above its floor
    walker[12, 0, 2] = -65.0  # noise 5 dB above its floor: under the gate
    mix = add_above_floor_db(host, walker, slice(50, 70))
    np.testing.assert_allclose(mix[:50], -90.0)
    np.testing.assert_allclose(mix[70:], -90.0)
    # the echo keeps its 30 dB over the floor: -60 on the host's -90 floor, plus the host's own power
    np.testing.assert_allclose(mix[55:60, :, 1], 10 * np.log10(10 ** -6 + 10 ** -9), rtol=1e-6)
    quiet = np.ones((20, 2, 4), bool)
    quiet[5:10, :, 1] = False
    np.testing.assert_allclose(mix[50:70][quiet], -90.0)


def test_overlay_clip_keeps_the_host_labels_and_lays_the_walkers_in_its_window():
    rng = np.random.default_rng(1)
    host = host_clip(rng)
    walker = synthetic_clip(rng, n_hops=300, n_mics=6, major=True)
    moving = walker["motion"] > 0
    walker["x"] = -70.0 + rng.uniform(-1, 1, (300, 6, 32))  # a louder device: its floor is 20 dB over the host's
    walker["x"][moving, :, 10:13] += 30.0  # a walker's Doppler bump, 30 dB over that floor
    walker["e"] = walker["e"][:, None, :]  # shards keep e per carrier
    walker["far"] = walker["far"].copy()
    walker["far"][:10] = True
    walker["confusers"] = np.full(300, CONFUSER_BITS["curtain"], np.uint16)
    walker["meta"] = {"seed": 11}
    mix = overlay_clip(walker, host, 700)
    window = slice(700, 1000)
    assert mix["x"].shape == (1200, 4, 32) and mix["meta"]["n_mics"] == 4  # the smaller channel count
    assert mix["meta"]["overlay"] == {"walker": 11, "host": 7, "offset_hops": 700, "walker_hops": 300}
    np.testing.assert_array_equal(mix["x"][:700], host["x"][:700])
    np.testing.assert_array_equal(mix["motion"][window], walker["motion"])
    assert not mix["motion"][:700].any() and not mix["motion"][1000:].any()
    assert mix["far"][700:710].all() and not mix["far"][710:].any()
    assert (mix["confusers"][window] == CONFUSER_BITS["fan"] | CONFUSER_BITS["curtain"]).all()
    assert (mix["confusers"][:700] == CONFUSER_BITS["fan"]).all()
    rise = (mix["x"][window].astype(float) - host["x"][window].astype(float)).max(axis=(1, 2))
    assert rise[moving].mean() > 25.0  # the walker's bump is there
    assert (rise[~moving] < VISIBLE_DB).all()  # and nothing else of it
    assert not mix["edge"][window][moving & (rise >= VISIBLE_DB)].any()
    np.testing.assert_array_equal(host["motion"], 0)  # the host itself is untouched
    # a louder fan in the walker's band masks it: its motion hops become ambiguous (no loss), not positives
    loud = host_clip(rng)
    loud["x"][:, :, 8:15] = -40.0  # 50 dB over the floor where the walker's bump is, 20 dB over the bump
    masked = overlay_clip(walker, loud, 700)
    assert masked["edge"][window][moving].all()
    with pytest.raises(ValueError, match="does not fit"):
        overlay_clip(walker, host, 1000)


def test_overlay_clips_are_reproducible_settled_and_cut_around_the_movement():
    rng = np.random.default_rng(2)
    walkers = [synthetic_clip(rng, n_hops=200, n_mics=4, major=True) for _ in range(3)]
    for k, w in enumerate(walkers):
        w["e"] = w["e"][:, None, :]
        w["meta"] = {"seed": 100 + k}
    hosts = [host_clip(rng, n_hops=1200 + 200 * k, seed=k) for k in range(3)]
    short = host_clip(rng, n_hops=int((SETTLE_S + CONTEXT_S) / HOP_S) - 1, seed=9)
    minor = synthetic_clip(rng, n_hops=200, major=False)
    assert all(map(is_walker, walkers)) and not is_walker(minor) and not is_walker(hosts[0])
    assert all(map(is_host, hosts)) and not is_host(short) and not is_host(walkers[0])
    clips = [*walkers, *hosts, short, minor]
    a = overlay_clips(clips, 0.1, seed=5)
    b = overlay_clips(clips, 0.1, seed=5)
    cut = [trim_mix(m) for m in a]
    assert sum(len(m["x"]) for m in cut) * HOP_S >= 0.1 * 3600 > sum(len(m["x"]) for m in cut[:-1]) * HOP_S
    assert [m["meta"]["overlay"] for m in a] == [m["meta"]["overlay"] for m in b]
    assert [m["meta"]["overlay"] for m in overlay_clips(clips, 0.1, seed=6)] != [m["meta"]["overlay"] for m in a]
    assert {m["meta"]["overlay"]["host"] for m in a} == {0, 1, 2}
    assert {m["meta"]["overlay"]["walker"] for m in a} == {100, 101, 102}
    for m, c in zip(a, cut):
        info = m["meta"]["overlay"]
        assert info["offset_hops"] * HOP_S >= SETTLE_S
        assert len(c["x"]) == round((CONTEXT_S + TAIL_S) / HOP_S) + info["walker_hops"]
        assert (c["motion"] == MAJOR).sum() == (m["motion"] == MAJOR).sum()
        assert all(len(v) == len(c["x"]) for k, v in c.items() if k != "meta")
    assert overlay_clips([*walkers, short], 1.0, seed=5) == []  # no host to lay them over
    assert overlay_clips(hosts, 1.0, seed=5) == []  # no walker


def test_train_cli_overlay_adds_mixes_to_the_training_split_only(tmp_path, capsys):
    pytest.importorskip("torch")
    from uspd.cli import main

    rng = np.random.default_rng(3)
    walkers = [synthetic_clip(rng, n_hops=200, n_mics=4, major=True) for _ in range(8)]
    for k, w in enumerate(walkers):
        w["e"] = w["e"][:, None, :]
        w["meta"] = {"seed": 100 + k, "duration_s": 10.0}
    clips = [*walkers, *(host_clip(rng, seed=k) for k in range(4))]

    def shard(folder, cs):
        folder.mkdir()
        arrays = {f"{k}_{j}": v for j, c in enumerate(cs) for k, v in c.items() if k != "meta"}
        arrays["meta"] = np.array(json.dumps([c["meta"] for c in cs]))
        np.savez(folder / "shard_00000.npz", **arrays)
        (folder / "manifest.json").write_text(json.dumps({"seed": 7, "hours": 0.01, "features": {"n_per_side": 16}}))

    shard(tmp_path / "data", clips)
    out = tmp_path / "m.onnx"
    args = ["train", "--data", str(tmp_path / "data"), "--out", str(out), "--epochs", "1", "--batch", "4",
            "--crop-s", "4"]
    assert main([*args, "--overlay", "0.05"]) == 0
    history = json.loads(out.with_suffix(".json").read_text())["training"]["history"]
    assert history["config"]["overlay_hours"] == 0.05
    assert history["n_val_clips"] == 1 and history["n_extra_train_clips"] >= 3
    assert history["n_train_clips"] == len(clips) - 1 + history["n_extra_train_clips"]
    shard(tmp_path / "walkers", walkers)
    assert main(["train", "--data", str(tmp_path / "walkers"), "--out", str(out), "--overlay", "1"]) == 2
    assert main([*args, "--overlay", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--overlay: the data hold no clip with a major movement, or no negative clip" in err
    assert "--overlay -1.0: must not be negative" in err and "Traceback" not in err
