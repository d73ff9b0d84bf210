"""The hybrid detector: classic and nn on the same frames, logits averaged per hop, streaming like both."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import load_benchmark

from uspd.config import load_config
from uspd.detector.base import DetectorConfig, HybridConfig, make_detector
from uspd.detector.hybrid import CLASSIC_FIRES, NN_QUIET, distrust_weights, fuse_scores, hybrid_score, mover_weights
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
    np.testing.assert_array_equal(fuse_scores(nn, classic, 0.5, 0.2, classic_floor=0.0),
                                  fuse_scores(nn, classic, 0.5, 0.2))
    plain = fuse_scores(nn, classic, 0.5)
    assert floored[0] > plain[0] and floored[1] > plain[1]  # a quiet classic detector pulls the score down less
    np.testing.assert_array_equal(floored[2:], plain[2:])  # above the floor nothing changes
    assert floored[0] < 0.7  # it still pulls down: the floor is 0.1, not 0.5


def test_distrust_moves_the_weight_to_the_model_where_the_classic_detector_fires_alone():
    # 100 hops of a pet (classic fires, the model stays quiet), 100 of a walker (both fire), 300 of nothing
    classic = np.r_[np.full(100, 0.99), np.full(100, 0.9), np.full(300, 0.1)]
    nn = np.r_[np.full(100, 0.02), np.full(100, 0.8), np.full(300, 0.02)]
    w, state = distrust_weights(nn, classic, 0.5, memory_hops=50.0, share=0.5)
    s, want = 0.0, []
    for c, n in zip(classic, nn):  # the definition, hop by hop
        want.append(0.5 + 0.5 * min(1.0, s / 0.5))
        s += (float(c > CLASSIC_FIRES and n < NN_QUIET) - s) / 50.0
    np.testing.assert_allclose(w, want, rtol=1e-12)
    assert state == pytest.approx(s)
    assert w[0] == 0.5 and w[99] == 1.0  # no history yet; after 100 hops of the classic firing alone: the model's score
    assert 0.5 < w[199] < w[150] < 1.0 and w[-1] < 0.51  # the walker and the quiet room let the trust come back
    parts, st = [], 0.0
    for a, b in ((0, 1), (1, 137), (137, 138), (138, 500)):  # any chunking, with the carried state
        part, st = distrust_weights(nn[a:b], classic[a:b], 0.5, 50.0, 0.5, st)
        parts.append(part)
    np.testing.assert_array_equal(np.concatenate(parts), w)
    fused, plain = fuse_scores(nn, classic, w), fuse_scores(nn, classic, 0.5)
    assert fused[0] == pytest.approx(plain[0]) and fused[99] < 0.05 < 0.5 < plain[99]  # the pet no longer fires
    assert fused[100] > 0.6  # a walker beside it still does (the model sees it)


def test_mover_trust_moves_the_weight_to_the_model_where_it_says_a_pet_moves():
    # 100 hops of a pet alone (the model's mover evidence high), 100 of a walker beside it (low), 100 of nothing
    mover = np.r_[np.full(100, 0.95), np.full(100, 0.1), np.full(100, 0.3)]
    w, state = mover_weights(mover, 0.5, memory_hops=10.0, trust_from=0.4, trust_full=0.8)
    m, want = mover[0], []
    for v in mover:  # the definition, hop by hop (the first hop starts the average)
        m += (v - m) / 10.0
        want.append(0.5 + 0.5 * min(1.0, max(0.0, (m - 0.4) / 0.4)))
    np.testing.assert_allclose(w, want, rtol=1e-12)
    assert state == pytest.approx(m)
    assert w[0] == 1.0 and w[99] == 1.0 and w[130] == 0.5 and w[-1] == 0.5  # trust follows the evidence, and returns
    parts, st = [], None
    for a, b in ((0, 1), (1, 137), (137, 138), (138, 300)):  # any chunking, with the carried state
        part, st = mover_weights(mover[a:b], 0.5, 10.0, 0.4, 0.8, st)
        parts.append(part)
    np.testing.assert_array_equal(np.concatenate(parts), w)
    per_hop = np.linspace(0.2, 0.9, 300)  # on top of per-hop weights (the distrust's): moved towards 1 alike
    np.testing.assert_allclose(mover_weights(mover, per_hop, 10.0, 0.4, 0.8)[0],
                               per_hop + (1 - per_hop) * (np.array(want) - 0.5) / 0.5, rtol=1e-12)
    nn, classic = np.full(300, 0.02), np.full(300, 0.99)  # the classic detector fires on the pet, the model does not
    cfg = HybridConfig(nn_weight=0.5, score_logit_offset=0.0, classic_score_floor=0.0, mover_trust_s=0.5,
                       mover_trust_from=0.4, mover_trust_full=0.8)
    fused, _, _ = hybrid_score(nn, classic, cfg, 0.05, mover=mover)
    plain = fuse_scores(nn, classic, 0.5)
    assert fused[50] == pytest.approx(0.02, rel=1e-4) and plain[50] > 0.55  # the pet no longer fires
    np.testing.assert_allclose(fused[130:], plain[130:])  # no evidence: the classic detector counts as before
    np.testing.assert_array_equal(hybrid_score(nn, classic, cfg, 0.05)[0], plain)  # a model without a readout


def test_classic_gate_lets_the_model_decide_alone_below_it():
    nn = np.array([0.02, 0.09, 0.1, 0.3, 0.8])
    classic = np.full(5, 0.99)  # the classic detector fires throughout (a pet it cannot reject)
    cfg = HybridConfig(nn_weight=0.5, score_logit_offset=0.2, classic_score_floor=0.0, classic_gate=0.1)
    fused, _, _ = hybrid_score(nn, classic, cfg, 0.05)
    plain = fuse_scores(nn, classic, 0.5, 0.2)
    np.testing.assert_allclose(fused[:2], fuse_scores(nn[:2], classic[:2], 1.0, 0.2), rtol=1e-6)  # the model alone
    assert fused[1] < 0.12 and plain[1] > 0.75  # what the gate silences
    np.testing.assert_array_equal(fused[2:], plain[2:])  # at and above the gate: the fusion as before
    np.testing.assert_array_equal(hybrid_score(nn, classic, HybridConfig(nn_weight=0.5, score_logit_offset=0.2,
                                                                         classic_score_floor=0.0), 0.05)[0], plain)
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError, match=r"hybrid.classic_gate: must be in \[0, 1\)"):
            load_config(None, {"detector": {"hybrid": {"classic_gate": bad}}})
    assert load_config(None, {"detector": {"hybrid": {"classic_gate": 0.2}}}).detector.hybrid.classic_gate == 0.2


def _scores(pipe: Pipeline, x: np.ndarray, chunk: int):
    rows = []
    for i in range(0, len(x), chunk):
        rows += pipe.process(x[i:i + chunk])
    rows += pipe.flush()
    return np.array([d.score for d in rows])


def _both_detectors(wav: str, labels, t_s: np.ndarray, nn: np.ndarray, classic: np.ndarray) -> dict:
    """{"nn": ClipResult, "classic": ClipResult} of one 60 s recording with these per-hop scores, as hybrid_tuning's
    detector_clips gives them (no motion, presence or mover decided yet)."""
    from uspd.evaluate.metrics import ClipResult

    return {k: ClipResult(wav, labels, t_s, s, np.ones(len(t_s)), np.zeros(len(t_s), bool), np.zeros(len(t_s), bool),
                          60.0) for k, s in (("nn", nn), ("classic", classic))}


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


def test_hybrid_with_distrust_streams_and_equals_its_definition(walk_audio):
    cfg = load_config(None, {"detector": {"hybrid": {"nn_weight": 0.5, "classic_distrust_s": 1.0,
                                                     "classic_distrust_share": 0.05}}})
    whole = _scores(Pipeline(_sidecar(), cfg, "hybrid"), walk_audio, len(walk_audio))
    for chunk in (2400, 777):
        np.testing.assert_array_equal(_scores(Pipeline(_sidecar(), cfg, "hybrid"), walk_audio, chunk), whole)
    classic = _scores(Pipeline(_sidecar(), cfg, "classic"), walk_audio, 4800)
    nn = _scores(Pipeline(_sidecar(), cfg, "nn"), walk_audio, 4800)
    w, _ = distrust_weights(nn, classic, 0.5, 1.0 / 0.05, 0.05)
    assert w.min() == 0.5 and w.max() > 0.9  # the classic detector leads the walker's onset: the weight moves
    np.testing.assert_allclose(whole, fuse_scores(nn, classic, w, cfg.detector.hybrid.score_logit_offset, 0.05),
                               atol=1e-6)


def test_hybrid_with_a_mover_readout_streams_and_equals_its_definition(walk_audio, tmp_path):
    import shutil

    from uspd.detector.neural import shipped_model_path
    from uspd.train.readout import write_mover_readout

    src = shipped_model_path()
    model = tmp_path / src.name
    shutil.copy(src, model)
    shutil.copy(src.with_suffix(".json"), tmp_path / (src.stem + ".json"))
    rng = np.random.default_rng(4)
    write_mover_readout(model, {"weights": rng.normal(0.0, 1.0, 56).tolist(), "bias": 0.5})
    cfg = load_config(None, {"detector": {"model": str(model),
                                          "hybrid": {"nn_weight": 0.5, "mover_trust_s": 0.5, "mover_trust_from": 0.3,
                                                     "mover_trust_full": 0.7}}})

    def run(name: str, chunk: int):
        pipe, rows = Pipeline(_sidecar(), cfg, name), []
        for i in range(0, len(walk_audio), chunk):
            rows += pipe.process(walk_audio[i:i + chunk])
        rows += pipe.flush()
        return np.array([d.score for d in rows]), np.array([d.mover for d in rows], float)

    whole, mover = run("hybrid", len(walk_audio))
    for chunk in (2400, 777):
        np.testing.assert_array_equal(run("hybrid", chunk)[0], whole)
    nn, nn_mover = run("nn", 4800)
    classic = run("classic", 4800)[0]
    np.testing.assert_array_equal(mover, nn_mover)  # the decisions carry the model's evidence
    w, _ = mover_weights(mover, 0.5, 0.5 / 0.05, 0.3, 0.7)
    assert w.min() < 0.9 and w.max() == 1.0  # this random readout moves the weight on some hops, not all
    np.testing.assert_allclose(whole, fuse_scores(nn, classic, w, cfg.detector.hybrid.score_logit_offset, 0.05),
                               atol=1e-6)


def test_hybrid_config_is_validated():
    with pytest.raises(ConfigError, match=r"hybrid.nn_weight: must be in \[0, 1\], got 1.5"):
        load_config(None, {"detector": {"hybrid": {"nn_weight": 1.5}}})
    with pytest.raises(ConfigError, match="score_logit_offset: must be finite"):
        DetectorConfig(hybrid=HybridConfig(score_logit_offset=float("nan"))).validate()
    with pytest.raises(ConfigError, match=r"classic_score_floor: must be in \[0, 1\), got 1.0"):
        load_config(None, {"detector": {"hybrid": {"classic_score_floor": 1.0}}})
    with pytest.raises(ConfigError, match="classic_score_floor"):
        load_config(None, {"detector": {"hybrid": {"classic_score_floor": -0.1}}})
    with pytest.raises(ConfigError, match=r"classic_distrust_s: must be a finite number >= 0 \(s\), got -1.0"):
        load_config(None, {"detector": {"hybrid": {"classic_distrust_s": -1.0}}})
    with pytest.raises(ConfigError, match="classic_distrust_s"):
        load_config(None, {"detector": {"hybrid": {"classic_distrust_s": float("inf")}}})
    for share in (0.0, 1.5):
        with pytest.raises(ConfigError, match=r"classic_distrust_share: must be in \(0, 1\]"):
            load_config(None, {"detector": {"hybrid": {"classic_distrust_share": share}}})
    with pytest.raises(ConfigError, match=r"mover_trust_s: must be a finite number >= 0 \(s\), got -2.0"):
        load_config(None, {"detector": {"hybrid": {"mover_trust_s": -2.0}}})
    for lo, hi in ((0.5, 0.5), (0.8, 0.6), (-0.1, 0.5), (0.2, 1.1)):
        with pytest.raises(ConfigError, match=r"mover_trust_from / mover_trust_full: need 0 <= from < full <= 1"):
            load_config(None, {"detector": {"hybrid": {"mover_trust_from": lo, "mover_trust_full": hi}}})
    det = make_detector("hybrid")
    assert det.config.hybrid == HybridConfig()


def test_hybrid_tuning_writes_its_pick_as_a_config_that_loads_back(tmp_path, monkeypatch):
    """benchmarks/hybrid_tuning.py --write-config: the --config file's sections stay, its relative model path becomes
    absolute (the pick may be used from elsewhere), and the pick's [detector.hybrid] / [presence] values win."""
    import importlib.util

    from uspd.config import load_config

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "hybrid_tuning.py"
    spec = importlib.util.spec_from_file_location("hybrid_tuning", path)
    tuning = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tuning)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m dir").mkdir()
    base = tmp_path / "base.toml"
    base.write_text('[detector]\nmodel = "m dir/nn \\"q\\".onnx"\n[detector.hybrid]\nnn_weight = 0.8\n'
                    'classic_distrust_s = 120.0\n[presence]\nthreshold = 0.7\nvacancy_timeout_s = 300.0\n')
    out = tmp_path / "pick.toml"
    tuning.write_pick(out, str(base), {"nn_weight": 0.5, "score_logit_offset": 0.4055, "classic_score_floor": 0.05},
                      {"sensitive_threshold": 0.2508})
    cfg = load_config(out)
    assert cfg.detector.model == str(tmp_path / "m dir" / 'nn "q".onnx')
    h = cfg.detector.hybrid
    assert (h.nn_weight, h.score_logit_offset, h.classic_score_floor) == (0.5, 0.4055, 0.05)
    assert h.classic_distrust_s == 120.0  # the base file's key, not the pick's
    p = cfg.presence
    assert (p.threshold, p.sensitive_threshold, p.vacancy_timeout_s) == (0.7, 0.2508, 300.0)


def test_hybrid_tuning_sweeps_the_mover_trust_and_needs_a_model_with_a_readout(tmp_path, monkeypatch, capsys):
    """benchmarks/hybrid_tuning.py --mover-trust: where only the mover trust keeps a pet from alarming, the pick has
    it (and writes it); scores without a readout are refused in one line."""
    import importlib.util
    import sys

    from uspd.evaluate.metrics import ClipResult
    from uspd.recording.labels import LabelInterval, Labels

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "hybrid_tuning.py"
    spec = importlib.util.spec_from_file_location("hybrid_tuning_m", path)
    tuning = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tuning)
    t = 0.05 * np.arange(1, 1201)  # 60 s
    burst = (t >= 20) & (t < 26)

    def clip(name, kind, nn, classic, mover, distance_m=2.0):
        label = LabelInterval(20.0, 26.0, kind, distance_m)
        res = {k: ClipResult(f"{name}.wav", Labels(60.0, [label]), t, s, np.ones(len(t)), np.zeros(len(t), bool),
                             np.zeros(len(t), bool), 60.0, mover=mover) for k, s in (("nn", nn), ("classic", classic))}
        return res

    quiet = np.full(len(t), 0.02)
    # the model's readout has said "a pet moves" for 10 s when the classic detector fires on it
    pet = clip("pet", "pet", quiet, np.where(burst, 0.999, 0.02), np.where((t >= 10) & (t < 26), 0.97, 0.05))
    # a walker both detectors half see: fused 0.55, found at threshold 0.5, not at 0.6
    walker = clip("walk", "major", np.where(burst, 0.6, 0.02), np.where(burst, 0.5, 0.02), np.full(len(t), 0.05))
    # a passer-by who stays beyond 5 m: the model alone sees them (0.7), the fusion with a quiet classic does not
    far = clip("far", "far", np.where(burst, 0.7, 0.02), quiet, np.full(len(t), 0.05), distance_m=6.0)
    clips = {k: [pet[k], walker[k], far[k]] for k in ("nn", "classic")}
    monkeypatch.setattr(tuning, "detector_clips", lambda *a, **k: clips)
    out = tmp_path / "pick.toml"
    argv = ["hybrid_tuning.py", str(tmp_path), "--weights", "0.5", "--max-fa-per-h", "0", "--thresholds", "0.5,0.6",
            "--workers", "1", "--mover-trust", "0,0.5:0.5:0.9", "--write-config", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):  # the shipped model has no readout: refused before the detectors run
        tuning.main()
    assert "has no mover readout" in capsys.readouterr().err
    import shutil

    from uspd.detector.neural import shipped_model_path
    from uspd.train.readout import write_mover_readout

    src = shipped_model_path()
    shutil.copy(src, tmp_path / src.name)
    shutil.copy(src.with_suffix(".json"), tmp_path / (src.stem + ".json"))
    write_mover_readout(tmp_path / src.name, {"weights": [0.0] * 56, "bias": 0.0})
    (tmp_path / "r.toml").write_text(f'[detector]\nmodel = "{tmp_path / src.name}"\n')
    argv[1:1] = ["--config", str(tmp_path / "r.toml")]
    assert tuning.main() == 0
    printed = capsys.readouterr().out
    assert "chosen: w = 0.5, classic floor 0, distrust 0 s / 0.1, mover trust 0.5 s from 0.5 to 0.9 at 0.5" in printed
    assert "note: the pick is at the lowest threshold tried (0.5)" in printed  # the grid may have cut it off
    assert ("people who stay beyond 5 m detected (lower is better): the pick 0 of 1 (0.0 %), "
            "nn at its threshold 1 of 1 (100.0 %)\n") in printed
    # the readout's evidence where the classic detector fires alone: only on the pet's burst (the walker is seen)
    assert ("percentiles 25 / 50 / 75: a pet or a vacuum alone 0.97 / 0.97 / 0.97 (120 hops)\n" in printed)
    h = load_config(out).detector.hybrid
    assert (h.mover_trust_s, h.mover_trust_from, h.mover_trust_full) == (0.5, 0.5, 0.9)
    for c in clips["nn"]:
        c.mover = None
    monkeypatch.setattr(sys, "argv", argv[:-2])
    with pytest.raises(Exception, match="--mover-trust: the model has no mover readout"):  # scores cached before
        tuning.main()


def test_alarm_anatomy_counts_alarms_at_the_sensitive_threshold_and_in_bursts():
    """benchmarks/alarm_anatomy.py: a false major alarm opens the sensitive window; later bursts that only the
    sensitive threshold passes are counted as such (after a person's movement or not, minor or not), and those within
    --burst-s of an earlier alarm as bursts; the alarms that turn presence on, those in the cold start, and the
    alarms and negative time by the set's clip kind."""
    import importlib.util

    from uspd.evaluate.metrics import ClipResult, MetricsConfig
    from uspd.presence.tracker import PresenceConfig
    from uspd.recording.labels import LabelInterval, Labels

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "alarm_anatomy.py"
    spec = importlib.util.spec_from_file_location("alarm_anatomy", path)
    anatomy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(anatomy)
    t = 0.05 * np.arange(1, 4001)  # 200 s of a pet
    score, major = np.full(len(t), 0.02), np.full(len(t), 0.9)
    score[(t >= 10) & (t < 11)] = 0.9  # strict threshold passed: presence on, sensitive window opens
    for start in (20, 40, 120):  # only the sensitive threshold (0.35) passes these
        score[(t >= start) & (t < start + 1)] = 0.45
    major[(t >= 40) & (t < 41)] = 0.1  # this one is minor motion

    def clip(name, person):
        labels = [LabelInterval(0.0, 200.0, "pet", 2.0)] + ([LabelInterval(1.0, 3.0, "major", 1.5)] if person else [])
        return ClipResult(name, Labels(200.0, labels), t, score, major, np.zeros(len(t), bool),
                          np.zeros(len(t), bool), 200.0)

    clips = [clip("pet.wav", False), clip("walk_then_pet.wav", True)]  # someone walked out in the second one
    presence = PresenceConfig(threshold=0.6, sensitive_threshold=0.35, sensitive_window_s=600.0)
    _, counts = anatomy.alarm_classes(clips, presence, MetricsConfig(), burst_s=60.0)
    assert (counts["alarms"], counts["sensitive"], counts["burst"]) == (8, 6, 4)  # 120 s is 80 s after 40 s
    assert (counts["after_person"], counts["minor"]) == (3, 2)
    assert counts["by_clip"] == {"pet.wav": 4, "walk_then_pet.wav": 4}
    assert (counts["presence_on"], counts["cold_on"]) == (2, 2)  # each clip's alarm at 10 s; the others come after
    assert counts["by_kind"]["-"][0::2] == [8, 4]  # no set kind in these labels; 10 and 20 s are in the first 30 s
    late = clip("late_pet.wav", False)
    late.score = np.where((t >= 10) & (t < 11), 0.02, late.score)
    late.score[(t >= 50) & (t < 51)] = 0.9  # the strict alarm past the cold start, then the bursts at 120 s
    late.labels.extra["set_kind"] = "negative"
    _, counts = anatomy.alarm_classes([late], presence, MetricsConfig(), burst_s=60.0)
    assert (counts["alarms"], counts["presence_on"], counts["cold_on"]) == (2, 1, 0)
    alarms, negative_h, cold = counts["by_kind"]["negative"]
    assert (alarms, cold) == (2, 0) and negative_h == pytest.approx((200.0 - 5.0) / 3600.0, abs=1e-4)  # after warm-up
    short = PresenceConfig(threshold=0.6, sensitive_threshold=0.35, sensitive_window_s=15.0)
    _, counts = anatomy.alarm_classes(clips, short, MetricsConfig(), burst_s=60.0)
    assert (counts["alarms"], counts["sensitive"]) == (4, 2)  # the window closes at 36 s: 40 and 120 s stay quiet
    with pytest.raises(ValueError):
        anatomy.parse_seconds_list("300,-1")


def test_hybrid_tuning_refuses_a_cache_of_other_sets(tmp_path):
    """benchmarks/hybrid_tuning.py --cache: the cached scores are used only for the sets they were made of (all of
    each set's recordings, nothing else); a set deleted since may still be scored from its cache."""
    import pickle
    import shutil
    from types import SimpleNamespace

    from uspd.errors import UspdError

    tuning = load_benchmark("hybrid_tuning")

    def recording(d: Path, name: str) -> Path:
        (d / "walk").mkdir(parents=True, exist_ok=True)
        for suffix in (".wav", ".json", ".labels.json"):
            (d / "walk" / f"{name}{suffix}").write_bytes(b"")
        return d / "walk" / f"{name}.wav"

    a, b, c = tmp_path / "tuneA", tmp_path / "tuneB", tmp_path / "tuneC"
    wavs = [recording(a, "walk_0000"), recording(a, "walk_0001"), recording(b, "walk_0000")]
    recording(c, "walk_0000")
    cache = tmp_path / "c.pkl"
    scores = {k: [SimpleNamespace(name=str(w)) for w in wavs] for k in ("classic", "nn")}
    cache.write_bytes(pickle.dumps(scores))
    assert len(tuning.detector_clips([a, b], 1, cache)["nn"]) == 3
    with pytest.raises(UspdError, match="outside the sets given"):
        tuning.detector_clips([a], 1, cache)
    with pytest.raises(UspdError, match="holds no recording of .*tuneC"):
        tuning.detector_clips([a, b, c], 1, cache)
    recording(a, "walk_0002")
    with pytest.raises(UspdError, match="holds 2 recordings of .*tuneA, which has 3 now"):
        tuning.detector_clips([a, b], 1, cache)
    shutil.rmtree(a)  # deleted for disk space: its cache still stands for it
    assert [x.name for x in tuning.detector_clips([a, b], 1, cache)["classic"]] == list(map(str, wavs))


def test_hybrid_tuning_min_late_walk_keeps_the_late_walk_ins(tmp_path, monkeypatch, capsys):
    """benchmarks/hybrid_tuning.py --min-late-walk: a point below that recall in late walk-ins does not qualify, so
    the pick moves to the weight that finds them though it finds fewer movements overall."""
    from uspd.recording.labels import LabelInterval, Labels

    tuning = load_benchmark("hybrid_tuning")
    t = 0.05 * np.arange(1, 1201)  # 60 s

    def clip(name, set_kind, bursts, nn_level, classic_level):
        labels = Labels(60.0, [LabelInterval(a, a + 5.0, "major", 2.0) for a in bursts], {"set_kind": set_kind})
        on = np.zeros(len(t), bool)
        for a in bursts:
            on |= (t >= a) & (t < a + 5.0)
        return _both_detectors(f"{name}.wav", labels, t, np.where(on, nn_level, 0.02),
                               np.where(on, classic_level, 0.02))

    # the model sees the walk-ins (w 0.9 fuses to 0.83, w 0.5 to 0.30); only the classic detector the late one
    # (w 0.9: 0.16, w 0.5: 0.59); an empty room gives the negative time
    parts = [clip("walk", "walk", [10.0, 30.0], 0.9, 0.02), clip("late", "late_walk", [40.0], 0.1, 0.95),
             clip("empty", "negative", [], 0.02, 0.02)]
    _check_min_recall_flag(tuning, parts, "--min-late-walk", "late walk-ins", parts[::2], "no late walk-ins",
                           tmp_path, monkeypatch, capsys)


def _check_min_recall_flag(tuning, parts: list[dict], flag: str, said: str, without: list[dict], refusal: str,
                           tmp_path, monkeypatch, capsys) -> None:
    """hybrid_tuning.py over ``parts`` (weights 0.5 and 0.9, threshold 0.5, a zero budget), where w 0.9 finds more of
    the major movements and w 0.5 more of what ``flag`` guards: the pick is w 0.9 without the flag, w 0.5 with
    ``flag 50``, none with w 0.9 alone; over ``without`` (none of it left) the tool refuses with ``refusal``."""
    import sys

    clips = {k: [p[k] for p in parts] for k in ("nn", "classic")}
    monkeypatch.setattr(tuning, "detector_clips", lambda *a, **k: clips)
    argv = ["hybrid_tuning.py", str(tmp_path), "--weights", "0.5,0.9", "--thresholds", "0.5", "--max-fa-per-h", "0",
            "--workers", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    assert tuning.main() == 0
    assert "chosen: w = 0.9, " in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", argv + [flag, "50"])
    assert tuning.main() == 0
    printed = capsys.readouterr().out
    assert f"budget 0.00 FA/h, {said} >= 50 %" in printed
    assert "chosen: w = 0.5, " in printed
    monkeypatch.setattr(sys, "argv", argv + ["--weights", "0.9", flag, "50"])
    assert tuning.main() == 0
    assert f"no hybrid point raises at most 0.00 FA/h with {said} >= 50 %" in capsys.readouterr().out
    clips["nn"], clips["classic"] = [p["nn"] for p in without], [p["classic"] for p in without]
    monkeypatch.setattr(sys, "argv", argv + [flag, "50"])
    with pytest.raises(Exception, match=f"{flag}: the sets have {refusal}"):
        tuning.main()


def test_hybrid_tuning_debounces_drop_brief_spikes_and_are_written(tmp_path, monkeypatch, capsys):
    """benchmarks/hybrid_tuning.py --debounces: a confuser that spikes for 3 hops at a time alarms at the [presence]
    debounce (2 hops) at every threshold, so within a zero budget only a debounce of 4 finds the walker; the pick
    writes it to [presence] and prints its delay (4 hops = 0.15 s after the walker's first hop)."""
    import sys

    from uspd.recording.labels import LabelInterval, Labels

    tuning = load_benchmark("hybrid_tuning")
    t = 0.05 * np.arange(1, 1201)  # 60 s

    def clip(name, label, score):
        return _both_detectors(f"{name}.wav", Labels(60.0, [label]), t, score, score)

    spikes = np.full(len(t), 0.02)
    for a in range(40, 1200, 200):  # 3 hops at 0.99 every 10 s
        spikes[a:a + 3] = 0.99
    walk = np.where((t >= 20.0) & (t < 25.0), 0.9, 0.02)
    parts = [clip("fan", LabelInterval(0.0, 60.0, "fan", 2.0), spikes),
             clip("walk", LabelInterval(20.0, 25.0, "major", 2.0), walk)]
    clips = {k: [p[k] for p in parts] for k in ("nn", "classic")}
    monkeypatch.setattr(tuning, "detector_clips", lambda *a, **k: clips)
    out = tmp_path / "pick.toml"
    argv = ["hybrid_tuning.py", str(tmp_path), "--weights", "0.5", "--thresholds", "0.5,0.8", "--max-fa-per-h", "0",
            "--workers", "1", "--debounces", "2,4", "--write-config", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    assert tuning.main() == 0
    printed = capsys.readouterr().out
    assert ", debounce 4 hops at 0.8: " in printed
    assert "median major delay 0.15 s" in printed
    assert load_config(out).presence.debounce_hops == 4
    monkeypatch.setattr(sys, "argv", argv[:-4] + ["--debounces", "2"])
    assert tuning.main() == 0
    assert "no hybrid point raises at most 0.00 FA/h" in capsys.readouterr().out
    for bad, message in (("0", "between 1 and 200 hops"), ("2,x", "comma-separated whole numbers of hops")):
        monkeypatch.setattr(sys, "argv", argv[:-3] + [bad])
        with pytest.raises(SystemExit) as exc:
            tuning.main()
        assert exc.value.code == 2
        assert f"error: --debounces must be {message}" in capsys.readouterr().err.strip().splitlines()[-1]


def test_hybrid_tuning_sweep_over_worker_processes_prints_what_one_process_does(tmp_path):
    """benchmarks/hybrid_tuning.py runs the sweep's rows over --workers processes: from the same cached scores, two
    workers print exactly what one does (every row in grid order, the pick, its table)."""
    import pickle
    import subprocess
    import sys

    from uspd.recording.labels import LabelInterval, Labels

    t = 0.05 * np.arange(1, 1201)  # 60 s
    gone = tmp_path / "tune_gone"  # a set deleted once scored: its cache stands for it
    rng = np.random.default_rng(0)

    def clip(name, label, nn, classic):
        return _both_detectors(str(gone / f"{name}.wav"), Labels(60.0, [label]), t, nn, classic)

    parts = [clip(f"walk_{i}", LabelInterval(20.0, 25.0, "major", 2.0),
                  np.where((t >= 20) & (t < 25), rng.uniform(0.3, 0.9), 0.02) + rng.uniform(0, 0.05, len(t)),
                  np.where((t >= 21) & (t < 24), rng.uniform(0.3, 0.9), 0.02)) for i in range(4)]
    parts += [clip(f"fan_{i}", LabelInterval(0.0, 60.0, "fan", 2.0), rng.uniform(0.0, 0.7, len(t)) ** 2,
                   rng.uniform(0.0, 0.9, len(t)) ** 2) for i in range(3)]
    cache = tmp_path / "c.pkl"
    cache.write_bytes(pickle.dumps({k: [p[k] for p in parts] for k in ("nn", "classic")}))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "hybrid_tuning.py"
    argv = [sys.executable, str(script), str(gone), "--cache", str(cache), "--weights", "0.5,0.7",
            "--sensitive-gaps", "1.02,2", "--debounces", "2,3", "--thresholds", "0.4,0.6,0.8", "--max-fa-per-h", "60"]
    outs = [subprocess.run(argv + ["--workers", w], capture_output=True, text=True, timeout=120) for w in ("1", "2")]
    assert [o.returncode for o in outs] == [0, 0], outs[1].stderr[-500:]
    assert outs[0].stdout == outs[1].stdout
    assert outs[0].stdout.count("\nhybrid w=") == 8 and "chosen: w = " in outs[0].stdout


def test_hybrid_tuning_classic_gates_silence_a_pet_the_model_rejects(tmp_path, monkeypatch, capsys):
    """benchmarks/hybrid_tuning.py --classic-gates: a pet the classic detector fires on and the model scores 0.05
    alarms at every ungated point (w 0.5 fuses it to 0.70), so within a zero budget only the gate 0.1 finds the
    walker (the model 0.5, the classic detector 0.95: 0.81); the pick writes the gate to [detector.hybrid]."""
    import sys

    from uspd.recording.labels import LabelInterval, Labels

    tuning = load_benchmark("hybrid_tuning")
    t = 0.05 * np.arange(1, 1201)  # 60 s
    walk = (t >= 20.0) & (t < 25.0)
    parts = [_both_detectors("pet.wav", Labels(60.0, [LabelInterval(0.0, 60.0, "pet", 2.0)]), t,
                             np.full(len(t), 0.05), np.full(len(t), 0.99)),
             _both_detectors("walk.wav", Labels(60.0, [LabelInterval(20.0, 25.0, "major", 2.0)]), t,
                             np.where(walk, 0.5, 0.02), np.where(walk, 0.95, 0.02))]
    clips = {k: [p[k] for p in parts] for k in ("nn", "classic")}
    monkeypatch.setattr(tuning, "detector_clips", lambda *a, **k: clips)
    out = tmp_path / "pick.toml"
    argv = ["hybrid_tuning.py", str(tmp_path), "--weights", "0.5", "--thresholds", "0.5", "--max-fa-per-h", "0",
            "--workers", "1", "--write-config", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    assert tuning.main() == 0
    assert "no hybrid point raises at most 0.00 FA/h" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", argv + ["--classic-gates", "0,0.1"])
    assert tuning.main() == 0
    printed = capsys.readouterr().out
    assert "hybrid w=0.5 c=0.1 " in printed
    assert "chosen: w = 0.5, classic floor 0, classic gate 0.1, distrust 0 s" in printed
    assert load_config(out).detector.hybrid.classic_gate == 0.1
    for flag, bad, message in (("--classic-gates", "1", "classic_gate: must be in [0, 1)"),
                               ("--classic-gates", "0,x", "--classic-gates must be comma-separated numbers"),
                               ("--min-typing", "150", "--min-typing must be a percentage in [0, 100]")):
        monkeypatch.setattr(sys, "argv", argv + [flag, bad])
        with pytest.raises(SystemExit) as exc:
            tuning.main()
        assert exc.value.code == 2
        assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_hybrid_tuning_min_typing_keeps_the_typing(tmp_path, monkeypatch, capsys):
    """benchmarks/hybrid_tuning.py --min-typing: a point that finds less of the typing does not qualify, so the pick
    moves to the weight that finds it though it finds fewer movements overall."""
    from uspd.recording.labels import LabelInterval, Labels

    tuning = load_benchmark("hybrid_tuning")
    t = 0.05 * np.arange(1, 1201)  # 60 s
    walk, typing = (t >= 5.0) & (t < 10.0), (t >= 30.0) & (t < 40.0)
    seated = Labels(60.0, [LabelInterval(5.0, 10.0, "major", 2.0), LabelInterval(30.0, 40.0, "minor", 1.0, "typing")])
    # the typing only the classic detector sees (w 0.9 fuses it to 0.16, w 0.5 to 0.68); the second walker only the
    # model (w 0.9: 0.83, w 0.5: 0.30, in a recording of its own: no sensitive window)
    parts = [_both_detectors("seated.wav", seated, t, np.where(walk, 0.9, np.where(typing, 0.1, 0.02)),
                             np.where(walk | typing, 0.95, 0.02)),
             _both_detectors("walk.wav", Labels(60.0, [LabelInterval(20.0, 25.0, "major", 2.0)]), t,
                             np.where((t >= 20.0) & (t < 25.0), 0.9, 0.02), np.full(len(t), 0.02)),
             _both_detectors("empty.wav", Labels(60.0, []), t, np.full(len(t), 0.02), np.full(len(t), 0.02))]
    _check_min_recall_flag(tuning, parts, "--min-typing", "typing", parts[1:], "no typing", tmp_path, monkeypatch,
                           capsys)
