"""The mover readout: a logistic readout of the model's state ("a pet or a vacuum moves, no person"), fitted on training
shards, written into the manifest, run by the neural detector hop by hop like the model itself."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from uspd.detector.neural import NeuralDetector, band_features, echo_band_features, shipped_model_path
from uspd.errors import UspdError
from uspd.train.labels import CONFUSER_BITS
from uspd.train.readout import fit_logistic, fit_mover_readout, mover_targets, write_mover_readout

F0 = 40000.0


def _clip(rng, who: str, n_hops: int = 240, n_mics: int = 3) -> dict:
    """A shard clip: noise, then in the middle third a pet (a narrow, weak echo at 0.4 m/s) or a person (a strong,
    wide one at 1.3 m/s with limbs to 3 m/s)."""
    freqs = np.linspace(-1000.0, 1000.0, 129)
    spec = -90.0 + 3.0 * rng.standard_normal((n_hops, 1, n_mics, 129))
    moving = np.zeros(n_hops, bool)
    moving[n_hops // 3: 2 * n_hops // 3] = True
    hz = lambda v: 2 * v * F0 / 343.2  # noqa: E731
    if who == "pet":
        bump = 22.0 * np.exp(-0.5 * ((freqs - hz(0.4)) / 15.0) ** 2)
    else:
        bump = 38.0 * np.exp(-0.5 * ((freqs - hz(1.3)) / 40.0) ** 2) + 20.0 * ((freqs > 0) & (freqs < hz(3.0)))
    spec[moving] += bump
    spec = spec.astype(np.float32)
    zeros = np.zeros(n_hops, bool)
    return {"x": band_features(spec, freqs, [F0]).astype(np.float16),
            "e": echo_band_features(spec.mean(axis=2), freqs, [F0]).astype(np.float16),
            "t": np.arange(1, n_hops + 1, dtype=np.float32) * 0.05,
            "motion": np.where(moving & (who == "person"), 2, 0).astype(np.int8),
            "action": np.zeros(n_hops, np.int8), "distance_m": np.full(n_hops, np.nan, np.float32),
            "presence": moving & (who == "person"), "pet": moving & (who == "pet"), "far": zeros,
            "confusers": np.zeros(n_hops, np.uint16), "edge": zeros.copy(), "meta": {"n_mics": n_mics}}


def _write_set(folder, clips, seed: int = 7) -> None:
    folder.mkdir()
    arrays = {f"{k}_{j}": v for j, c in enumerate(clips) for k, v in c.items() if k != "meta"}
    arrays["meta"] = np.array(json.dumps([c["meta"] for c in clips]))
    np.savez(folder / "shard_00000.npz", **arrays)
    (folder / "manifest.json").write_text(json.dumps({"seed": seed, "hours": 0.01}))


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory):
    """The shipped int8 model and its manifest, copied (the readout is written into the copy's manifest)."""
    folder = tmp_path_factory.mktemp("model")
    src = shipped_model_path()
    shutil.copy(src, folder / src.name)
    shutil.copy(src.with_suffix(".json"), folder / (src.stem + ".json"))
    return folder / src.name


def test_targets_are_pet_or_vacuum_alone_against_any_person_movement():
    n = 6
    clip = {"pet": np.array([1, 0, 0, 1, 0, 0], bool),
            "confusers": np.array([0, CONFUSER_BITS["vacuum"], 0, 0, 1, 0], np.uint16),
            "motion": np.array([0, 0, 2, 1, 0, 0], np.int8), "edge": np.zeros(n, bool)}
    used, target = mover_targets(clip)
    np.testing.assert_array_equal(used, [1, 1, 1, 1, 0, 0])  # a fan alone (bit 0) and nothing: left out
    np.testing.assert_array_equal(target[used], [1, 1, 0, 0])  # a person beside a pet counts as a person
    clip["edge"][0] = True
    assert not mover_targets(clip)[0][0]


def test_logistic_fit_is_class_balanced_and_recovers_a_separating_direction():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 5))
    y = (x[:, 2] - 0.5 * x[:, 4] > 1.2).astype(float)  # a rare class (~12 %)
    w, b = fit_logistic(x, y)
    pred = x @ w + b > 0
    assert 0.5 * (pred[y == 1].mean() + (~pred[y == 0]).mean()) > 0.9  # balanced, not "always the common class"
    assert abs(w[2]) > 3 * max(abs(w[0]), abs(w[1]), abs(w[3])) and w[2] * w[4] < 0
    with pytest.raises(UspdError, match="both kinds"):
        fit_logistic(x, np.zeros(3000))


def test_readout_is_fitted_on_training_shards_written_into_the_manifest_and_run_hop_by_hop(tmp_path, model_copy):
    rng = np.random.default_rng(5)
    _write_set(tmp_path / "data", [_clip(rng, "pet" if i % 2 else "person") for i in range(12)])
    before = json.loads(model_copy.with_suffix(".json").read_text())
    entry = fit_mover_readout(model_copy, [tmp_path / "data"], max_clips=12, progress=False, settled=False)
    write_mover_readout(model_copy, entry)
    after = json.loads(model_copy.with_suffix(".json").read_text())
    assert after["mover_readout"] == entry and {k: v for k, v in after.items() if k != "mover_readout"} == before
    assert entry["clips"] == 12 and entry["hops"]["mover"] > 0 and entry["hops"]["person"] > 0
    settled = fit_mover_readout(model_copy, [tmp_path / "data"], max_clips=12, progress=False)  # the default
    assert settled["settled"] and settled["hops"] == {k: 2 * v for k, v in entry["hops"].items()}  # cold + settled
    assert settled["weights"] != entry["weights"]  # the settled states are other states
    # on clips it was not fitted on, the evidence is high while the pet moves and low while the person does
    det = NeuralDetector(model_copy)
    held_out = {who: _clip(np.random.default_rng(99), who) for who in ("pet", "person")}
    evidence = {}
    for who, clip in held_out.items():
        det.reset()
        s = det.process_bands(clip["x"].astype(np.float32), clip["e"].astype(np.float32))
        evidence[who] = float(np.median(s.mover[120:160]))
        assert s.mover.shape == s.score.shape and np.all((s.mover >= 0) & (s.mover <= 1))
    assert evidence["pet"] > 0.5 > evidence["person"]
    # it is a readout of the state after each hop, and any chunking gives the same values
    clip = held_out["pet"]
    det.reset()
    _, states = det.states(clip["x"].astype(np.float32), clip["e"].astype(np.float32))
    w, b = np.array(entry["weights"]), entry["bias"]
    det.reset()
    whole = det.process_bands(clip["x"].astype(np.float32), clip["e"].astype(np.float32)).mover
    np.testing.assert_allclose(whole, 1 / (1 + np.exp(-(states @ w + b))), rtol=1e-5)
    det.reset()
    parts = [det.process_bands(clip["x"][a:b_].astype(np.float32), clip["e"][a:b_].astype(np.float32)).mover
             for a, b_ in ((0, 1), (1, 77), (77, 240))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    # the readout is a manifest entry: a model without one gives no evidence, a malformed one is refused
    assert NeuralDetector().process_bands(clip["x"][:5].astype(np.float32),
                                          clip["e"][:5].astype(np.float32)).mover is None
    write_mover_readout(model_copy, {**entry, "weights": entry["weights"][:-1]})
    with pytest.raises(UspdError, match="mover_readout needs 56 finite weights"):
        NeuralDetector(model_copy)
    write_mover_readout(model_copy, entry)


def test_readout_refuses_tuning_sets_and_the_cli_fits_it(tmp_path, model_copy, capsys):
    from uspd.cli import main

    rng = np.random.default_rng(6)
    clips = [_clip(rng, "pet" if i % 2 else "person", n_hops=120) for i in range(4)]
    _write_set(tmp_path / "tune", clips, seed=1021)
    with pytest.raises(UspdError, match="a tune seed; only training seeds"):
        fit_mover_readout(model_copy, [tmp_path / "tune"], progress=False)
    _write_set(tmp_path / "data", clips)
    assert main(["-q", "train", "--mover-readout", "--out", str(model_copy), "--data", str(tmp_path / "data"),
                 "--readout-clips", "3"]) == 0
    assert "wrote the mover readout into" in capsys.readouterr().out
    assert json.loads(model_copy.with_suffix(".json").read_text())["mover_readout"]["clips"] == 3
    assert main(["train", "--mover-readout", "--out", str(model_copy)]) == 2
    assert "--mover-readout needs --data" in capsys.readouterr().err


def test_batches_carry_the_mover_target_as_a_third_output_only_with_the_second_task():
    pytest.importorskip("torch")  # the train extra
    from uspd.train.trainer import TrainConfig, _Batcher, add_model_inputs

    rng = np.random.default_rng(8)
    clips = [_clip(rng, who, n_hops=120) for who in ("pet", "person")]
    clips[1]["edge"][40:45] = True
    add_model_inputs(clips, NeuralDetector().spec)  # band features -> model inputs, as training does
    plain = _Batcher(clips, TrainConfig(batch=4, crop_hops=120), np.random.default_rng(0))
    _, _, y0, w0, _ = plain.batch()
    assert y0.shape[-1] == 2
    batcher = _Batcher(clips, TrainConfig(batch=4, crop_hops=120, mover_weight=0.5), np.random.default_rng(0))
    _, _, y, w, _ = batcher.batch()
    assert y.shape == w.shape == (4, 120, 3)
    np.testing.assert_array_equal(batcher.last_idx, plain.last_idx)  # the same crops,
    np.testing.assert_array_equal(y[..., :2].numpy(), y0.numpy())  # the same detection targets and weights
    np.testing.assert_array_equal(w[..., :2].numpy(), w0.numpy())
    for b, i in enumerate(batcher.last_idx):  # crops as long as the clips start at their first hop
        used, target = mover_targets(clips[i])
        np.testing.assert_array_equal(w[b, :, 2].numpy(), used.astype(np.float32))
        np.testing.assert_array_equal(y[b, :, 2].numpy(), target.astype(np.float32))


def test_the_mover_head_trains_with_the_model_and_becomes_its_readout(tmp_path, capsys):
    """``uspd train --mover-weight``: a head on the state learns pet-alone against person; its weights go into the
    manifest as the mover readout, which the detector runs on the int8 model's state like a fitted one."""
    torch = pytest.importorskip("torch")  # the train extra

    from uspd.cli import main
    from uspd.train.export import load_checkpoint
    from uspd.train.trainer import add_model_inputs

    rng = np.random.default_rng(11)
    _write_set(tmp_path / "data", [_clip(rng, "pet" if i % 2 else "person") for i in range(16)])
    common = ["-q", "train", "--data", str(tmp_path / "data"), "--epochs", "8", "--hidden", "12", "--enc", "8",
              "--crop-s", "10", "--batch", "8", "--lr", "0.01", "--seed", "1"]
    assert main([*common, "--mover-weight", "1", "--out", str(tmp_path / "m" / "nn.onnx")]) == 0
    entry = json.loads((tmp_path / "m" / "nn.json").read_text())["mover_readout"]
    assert entry["source"] == "trained with the model as a second task" and entry["mover_weight"] == 1.0
    assert len(entry["weights"]) == 12
    det = NeuralDetector(tmp_path / "m" / "nn.onnx")
    net = load_checkpoint(tmp_path / "m" / "nn.pt")
    evidence = {}
    for who in ("pet", "person"):
        clip = _clip(np.random.default_rng(99), who)  # not trained on
        det.reset()
        mover = det.process_bands(clip["x"].astype(np.float32), clip["e"].astype(np.float32)).mover
        evidence[who] = float(np.median(mover[100:160]))
        add_model_inputs([clip], det.spec)  # the inputs training gave the float network
        with torch.no_grad():
            logits, _ = net(torch.from_numpy(clip["x"].astype(np.float32))[None],
                            e=torch.from_numpy(clip["e"].astype(np.float32))[None])
        assert logits.shape[-1] == 3  # [score, major, mover]; the int8 state read by the same head is close to it
        assert np.max(np.abs(torch.sigmoid(logits[0, :, 2]).numpy() - mover)) < 0.1
    assert evidence["pet"] > 0.5 > evidence["person"]
    # without the second task: no head, no readout
    assert main([*common, "--epochs", "1", "--out", str(tmp_path / "p" / "nn.onnx")]) == 0
    assert "mover_readout" not in json.loads((tmp_path / "p" / "nn.json").read_text())
    assert load_checkpoint(tmp_path / "p" / "nn.pt").mover is None
    capsys.readouterr()
    assert main([*common, "--mover-weight", "-1", "--out", str(tmp_path / "q" / "nn.onnx")]) == 2
    assert capsys.readouterr().err.strip() == "uspd: error: --mover-weight -1.0: must not be negative"
