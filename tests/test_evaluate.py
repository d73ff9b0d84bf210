"""Evaluation metrics on synthetic decision streams, the matched-FA sweep, seeds, and `uspd evaluate` end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from uspd.evaluate import metrics as M
from uspd.evaluate.runner import misses_and_alarms
from uspd.evaluate.seeds import SeedError, check_not_training, clip_seed, seed_role
from uspd.recording.labels import LabelInterval, Labels

HOP_S = 0.05


def clip(duration_s, intervals, motion_spans=(), presence_spans=(), name="c", processing_s=0.0, score=None):
    """A ClipResult with hops every 50 ms; motion/presence true inside the given [a, b) spans."""
    t = HOP_S * np.arange(1, int(round(duration_s / HOP_S)) + 1)

    def spans(sp):
        m = np.zeros(len(t), bool)
        for a, b in sp:
            m |= (t >= a - 1e-9) & (t < b - 1e-9)
        return m

    motion = spans(motion_spans)
    labels = Labels(duration_s, [LabelInterval(*iv) if isinstance(iv, tuple) else iv for iv in intervals])
    sc = motion.astype(float) * 0.9 if score is None else score
    return M.ClipResult(name, labels, t, sc, sc.copy(), motion, spans(presence_spans), duration_s, processing_s)


def iv(a, b, kind, distance_m=None, action=None):
    return LabelInterval(a, b, kind, distance_m, action)


def test_interval_delay_and_grace():
    t = HOP_S * np.arange(1, 201)
    motion = (t >= 3.2) & (t < 4.0)
    assert M.interval_delay(t, motion, 3.0, 6.0, 1.0) == pytest.approx(0.2)
    assert M.interval_delay(t, motion, 4.5, 6.0, 1.0) is None           # motion before the interval only
    # a 0.1 s interval detected 0.7 s after its start: outside the interval, inside the 1 s grace
    assert M.interval_delay(t, motion, 2.5, 2.6, 1.0) == pytest.approx(0.7)
    assert M.interval_delay(t, motion, 2.5, 2.6, 0.5) is None
    # motion already on at the start: delay 0
    assert M.interval_delay(t, motion, 3.5, 5.0, 1.0) == pytest.approx(0.0)


def test_major_recall_by_distance_and_delay_stats():
    clips = [
        clip(20, [iv(2, 8, "major", 1.0)], motion_spans=[(2.3, 9)]),
        clip(20, [iv(2, 8, "major", 3.0)], motion_spans=[(2.5, 9)]),
        clip(20, [iv(2, 8, "major", 4.5)], motion_spans=[]),                     # missed at 4.5 m
        clip(20, [iv(2, 8, "major", 5.5), iv(12, 16, "far", 5.5)], motion_spans=[(3, 4), (13, 14)]),
        clip(20, [iv(2, 8, "far", 7.0)], motion_spans=[]),
    ]
    r = M.major_metrics(clips, M.MetricsConfig())
    assert (r["n"], r["detected"]) == (4, 3) and r["recall"] == pytest.approx(0.75)
    assert r["by_distance"]["0-2m"]["recall"] == 1.0
    assert r["by_distance"]["2-4m"]["recall"] == 1.0
    assert (r["by_distance"]["4-6m"]["n"], r["by_distance"]["4-6m"]["detected"]) == (2, 1)
    assert r["far"] == {"n": 2, "detected": 1, "recall": 0.5}
    assert r["delay_s"]["median"] == pytest.approx(0.5)
    assert r["delay_s"]["p95"] == pytest.approx(np.percentile([0.3, 0.5, 1.0], 95))
    assert r["settled"]["n"] == 0 and r["settled"]["recall"] is None      # every walk-in starts in the first 30 s


def test_settled_major_recall_counts_only_movements_starting_after_settled_s():
    late = clip(150, [iv(5, 10, "major", 2.0), iv(60, 70, "major", 2.0), iv(100, 110, "major", 3.0),
                      iv(29.9, 35, "major", 1.0)], motion_spans=[(5.4, 6), (61, 62)])
    r = M.major_metrics([late], M.MetricsConfig())
    assert (r["n"], r["detected"]) == (4, 2)
    assert (r["settled"]["n"], r["settled"]["detected"], r["settled"]["settled_s"]) == (2, 1, 30.0)
    assert r["settled"]["delay_s"]["median"] == pytest.approx(1.0)
    s60 = M.major_metrics([late], M.MetricsConfig(settled_s=60.0))["settled"]
    assert (s60["n"], s60["detected"]) == (2, 1)
    assert M.major_metrics([late], M.MetricsConfig(settled_s=61.0))["settled"]["n"] == 1
    late.labels.extra["set_kind"] = "late_walk"
    early = clip(20, [iv(2, 8, "major", 1.0)], motion_spans=[(2.5, 9)])
    early.labels.extra["set_kind"] = "walk"
    by_kind = M.major_metrics([late, early, clip(20, [iv(2, 8, "major", 1.0)])], M.MetricsConfig())["by_set_kind"]
    assert by_kind == {"late_walk": {"n": 4, "detected": 2, "recall": 0.5},
                       "walk": {"n": 1, "detected": 1, "recall": 1.0}}


def test_major_recall_by_what_came_before_and_whether_a_confuser_ran():
    """by_context: a person still in the room who gets up, someone coming in from beyond 5 m beside a fan, a walk-in
    into an empty room after a pet (a confuser only within context_confuser_s), and a movement after another."""
    still = clip(40, [iv(0, 20, "presence", 2.0), iv(20, 23, "major", 2.0), iv(23, 25, "major", 1.5)],
                 motion_spans=[(20.5, 22)])
    far = clip(40, [iv(0, 20, "far", 6.0), iv(20, 23, "major", 3.0), iv(0, 40, "fan")], motion_spans=[])
    empty = clip(40, [iv(0, 2, "pet", 1.0), iv(30, 33, "major", 2.0)], motion_spans=[(30.2, 31)])
    r = M.major_metrics([still, far, empty], M.MetricsConfig())["by_context"]
    assert r == {"another movement, no confuser": {"n": 1, "detected": 0, "recall": 0.0},
                 "empty room, confuser": {"n": 1, "detected": 1, "recall": 1.0},
                 "person beyond 5 m, confuser": {"n": 1, "detected": 0, "recall": 0.0},
                 "person still in the room, no confuser": {"n": 1, "detected": 1, "recall": 1.0}}
    short = M.major_metrics([empty], M.MetricsConfig(context_confuser_s=20.0))["by_context"]
    assert list(short) == ["empty room, no confuser"]  # the pet stopped 28 s before


def test_minor_recall_by_action():
    clips = [clip(30, [iv(5, 6, "minor", 1.0, "reach"), iv(10, 11, "minor", 1.0, "page"),
                       iv(15, 15.5, "minor", 1.0, "typing"), iv(20, 21, "minor", 1.0, "reach")],
                  motion_spans=[(5.4, 6.5), (10.2, 10.4), (20.9, 22)])]
    r = M.minor_metrics(clips, M.MetricsConfig())
    assert (r["n"], r["detected"]) == (4, 3)
    assert r["by_action"]["reach"] == {"n": 2, "detected": 2, "recall": 1.0}
    assert r["by_action"]["page"]["recall"] == 1.0
    assert r["by_action"]["typing"] == {"n": 1, "detected": 0, "recall": 0.0}
    assert r["by_action"]["cup"]["recall"] is None
    assert r["most_missed_clips"] == [{"clip": clips[0].name, "missed": 1, "n": 4}]


def test_minor_recall_by_set_kind_and_the_clips_that_hold_the_misses():
    """A long visit that misses everything holds most misses: by_set_kind and most_missed_clips show it."""
    seated = [clip(30, [iv(5, 6, "minor", 1.0, "reach")], motion_spans=[(5.2, 6)], name=f"s{i}") for i in range(4)]
    visit = clip(60, [iv(5 + 10 * k, 6 + 10 * k, "minor", 2.0, "page") for k in range(5)], motion_spans=[(6, 7)],
                 name="v")
    other = clip(30, [iv(5, 6, "minor", 1.0, "cup"), iv(15, 16, "minor", 1.0, "reach")], motion_spans=[(5.1, 6)],
                 name="o")
    for c, kind in [*((c, "seated") for c in seated), (visit, "visit"), (other, "seated")]:
        c.labels.extra["set_kind"] = kind
    r = M.minor_metrics([*seated, visit, other], M.MetricsConfig())
    assert r["by_set_kind"] == {"seated": {"n": 6, "detected": 5, "recall": 5 / 6},
                                "visit": {"n": 5, "detected": 1, "recall": 0.2}}
    assert r["most_missed_clips"] == [{"clip": "v", "missed": 4, "n": 5}, {"clip": "o", "missed": 1, "n": 2}]


def test_per_clip_rows_add_up_to_the_set_figures_recording_by_recording():
    """The per-recording rows a bootstrap resamples: their sums are the set's alarms, negative time and majors."""
    noisy = clip(600, [iv(0, 600, "fan")], motion_spans=[(100, 101), (300, 301), (302, 303), (400, 401)], name="fan")
    walk = clip(60, [iv(20, 30, "major", 2.0), iv(40, 45, "major", 3.0)], motion_spans=[(20, 25), (50, 51)],
                name="walk")
    quiet = clip(120, [], name="quiet")
    cfg = M.MetricsConfig()
    rows = misses_and_alarms([noisy, walk, quiet], cfg)["per_clip"]
    assert [(r["clip"], r["alarms"], r["major"], r["major_detected"]) for r in rows] == [
        ("fan", 3, 0, 0), ("walk", 1, 2, 1), ("quiet", 0, 0, 0)]             # 302 s is inside 300 s's cooldown
    fa = M.false_alarm_metrics([noisy, walk, quiet], cfg)
    assert sum(r["alarms"] for r in rows) == fa["alarms"]
    assert sum(r["negative_s"] for r in rows) == pytest.approx(fa["negative_h"] * 3600)
    assert rows[2]["negative_s"] == pytest.approx(120 - 5 + HOP_S)               # all but the warm-up
    assert sum(r["major_detected"] for r in rows) == M.major_metrics([noisy, walk, quiet], cfg)["detected"]


def test_a_walker_crossing_the_5_m_range_is_not_a_false_alarm_but_people_staying_beyond_it_are():
    """A ``far`` stretch touching a person's near interval (walking in from beyond 5 m, or out past it) is neither
    negative time nor in the far rate; a far stretch on its own, or one more than approach_gap_s away, is both."""
    walk_in = clip(60, [iv(0, 10, "far", 5.1), iv(10, 14, "major", 2.0), iv(14.3, 20, "far", 5.2),
                        iv(31, 40, "far", 6.0)],
                   motion_spans=[(7, 15), (17, 18), (32, 33)])  # found 3 s early; the leaver; a passer-by at 6 m
    r = M.false_alarm_metrics([walk_in], M.MetricsConfig())
    assert r["alarms"] == 1 and r["by_confuser"]["far"]["alarms"] == 1                  # the passer-by only
    assert r["negative_h"] * 3600 == pytest.approx(60 - 23, abs=2 * HOP_S)  # the leaver's far stretch + 3 s margin
    assert M.major_metrics([walk_in], M.MetricsConfig())["far"] == {"n": 1, "detected": 1, "recall": 1.0}
    assert M.major_metrics([walk_in], M.MetricsConfig())["recall"] == 1.0              # motion on at 10 s: delay 0
    apart = clip(60, [iv(0, 9, "far", 5.1), iv(10, 14, "major", 2.0)], motion_spans=[(7, 15)])
    r2 = M.false_alarm_metrics([apart], M.MetricsConfig())
    assert r2["alarms"] == 1 and r2["by_confuser"]["far"]["alarms"] == 1                # 1 s apart: someone else
    assert M.false_alarm_metrics([apart], M.MetricsConfig(approach_gap_s=1.0))["alarms"] == 0


def test_false_alarms_are_events_with_cooldown_warmup_and_margins():
    # 1 h empty clip with a fan: motion bursts at 2 s (warm-up), 100, 102 (cooldown), 108, 500, 1000 s
    bursts = [(2, 2.5), (100, 100.5), (102, 102.5), (108, 108.5), (500, 501), (1000, 1010)]
    c_empty = clip(3600, [iv(0, 3600, "fan"), iv(400, 600, "music")], motion_spans=bursts)
    r = M.false_alarm_metrics([c_empty], M.MetricsConfig())
    assert r["alarms"] == 4                                   # 100, 108, 500, 1000
    neg_h = (3600 - 5 + HOP_S) / 3600                         # warm-up excluded (hops from 5.0 s)
    assert r["negative_h"] == pytest.approx(neg_h, rel=1e-3)
    assert r["fa_per_h"] == pytest.approx(4 / neg_h, rel=1e-3)
    motion_s = 0.5 * 3 + 1 + 10
    assert r["motion_fraction"] == pytest.approx(motion_s / (neg_h * 3600), rel=0.02)
    assert r["by_confuser"]["fan"]["alarms"] == 4
    assert r["by_confuser"]["music"]["alarms"] == 1 and r["by_confuser"]["music"]["negative_h"] == pytest.approx(
        200 / 3600, rel=1e-3)
    assert "curtain" not in r["by_confuser"]
    assert r["empty_clips"]["alarms"] == 4
    assert (r["clips_alarmed"], r["clips_negative"]) == (1, 1)  # 4 alarms, one clip
    quiet = clip(600, [iv(0, 600, "fan")], motion_spans=[])
    r4 = M.false_alarm_metrics([c_empty, quiet, quiet], M.MetricsConfig())
    assert (r4["clips_alarmed"], r4["clips_negative"]) == (1, 3)
    # a walk-in: motion inside the label and within the margins is not a false alarm
    c_walk = clip(60, [iv(20, 30, "major", 2.0)], motion_spans=[(19.5, 32.9), (40, 41)])
    r2 = M.false_alarm_metrics([c_walk], M.MetricsConfig())
    assert r2["alarms"] == 1
    assert r2["negative_h"] * 3600 == pytest.approx(55 - 14, abs=2 * HOP_S)  # 5-60 s minus 19-33 s
    assert r2["empty_clips"]["negative_h"] == 0 and r2["empty_clips"]["fa_per_h"] is None
    r3 = M.false_alarm_metrics([c_walk], M.MetricsConfig(margin_before_s=0.2))
    assert r3["alarms"] == 2                                  # the early start at 19.5 s now counts
    # motion stuck on past the label's margin counts once, where negative time begins (30 + 3 s)
    c_stuck = clip(60, [iv(20, 30, "major", 2.0)], motion_spans=[(20, 60)])
    idx = M.false_alarm_indices(c_stuck.t_s, c_stuck.motion, M.negative_mask(c_stuck, M.MetricsConfig()), 5.0)
    assert [round(c_stuck.t_s[i], 2) for i in idx] == [33.05]
    # ... and so does a detector on from the start, at the end of the warm-up
    c_on = clip(60, [iv(0, 60, "hvac")], motion_spans=[(0, 60)])
    assert M.false_alarm_metrics([c_on], M.MetricsConfig())["alarms"] == 1
    # settled: only alarms and negative time from settled_s (30 s) after each recording's start
    assert r["settled"]["alarms"] == 4 and r["settled"]["negative_h"] == pytest.approx((3600 - 30 + HOP_S) / 3600,
                                                                                      rel=1e-3)
    c_cold = clip(300, [iv(0, 300, "pet")], motion_spans=[(8, 9), (20, 21), (29.5, 31), (200, 201)])
    rc = M.false_alarm_metrics([c_cold], M.MetricsConfig())
    assert rc["alarms"] == 4 and rc["settled"]["alarms"] == 1  # the edge at 29.5 s is before 30 s
    assert rc["settled"]["fa_per_h"] == pytest.approx(1 / ((300 - 30 + HOP_S) / 3600), rel=1e-3)
    assert M.false_alarm_metrics([c_cold], M.MetricsConfig(settled_s=5.0))["settled"]["alarms"] == 4
    assert M.false_alarm_metrics([c_walk], M.MetricsConfig())["settled"]["alarms"] == 1  # the burst at 40 s


def test_presence_metrics_on_off_and_empty_room():
    timeout = 10.0
    # person 5-20 s, presence on at 5.3 until 31 s (off 11 s after leaving), clip 40 s
    c1 = clip(40, [iv(5, 12, "major", 2.0), iv(12, 20, "presence")], motion_spans=[(5.3, 12), (20, 21)],
              presence_spans=[(5.3, 31)])
    # person 5-20 s, presence never turns off within timeout + grace (on until the end)
    c2 = clip(40, [iv(5, 20, "major", 2.0)], motion_spans=[(5.1, 20)], presence_spans=[(5.1, 40.1)])
    # presence drops in the middle of the person's span (10-15 s)
    c3 = clip(40, [iv(5, 20, "major", 2.0)], motion_spans=[(5.2, 20)], presence_spans=[(5.2, 10), (15, 25)])
    # empty room: presence turns on twice (false)
    c4 = clip(100, [iv(0, 100, "curtain")], presence_spans=[(20, 30), (60, 65)])
    # presence never on for this person: a miss for "on", and no "off" to judge (the room was never occupied)
    c5 = clip(40, [iv(5, 10, "major", 2.0)])
    r = M.presence_metrics([c1, c2, c3, c4, c5], M.MetricsConfig(off_grace_s=5.0), timeout)
    assert r["spans"] == 4 and r["on_rate"] == 0.75
    assert r["on_latency_s"]["median"] == pytest.approx(0.2)
    assert r["off_evaluable"] == 3
    assert r["off_rate"] == pytest.approx(2 / 3)
    assert r["off_latency_s"]["median"] == pytest.approx(8.0)      # off 11 s (c1) and 5 s (c3) after leaving
    held_expected = (14.7 + 14.9 + (4.8 + 5)) / (14.75 + 14.95 + 14.85)
    assert r["held_fraction"] == pytest.approx(held_expected, rel=0.02)
    assert r["departure_tail_s"]["p95"] == pytest.approx(np.percentile([0.95, 0.0, 0.0], 95), abs=0.06)
    assert r["empty_presence_on_per_h"] == pytest.approx(2 / ((100 - 5 + HOP_S) / 3600), rel=1e-3)
    assert r["empty_presence_fraction"] == pytest.approx(15 / 95, rel=0.01)


def test_person_spans_merge_short_gaps():
    lab = Labels(100, [iv(0, 10, "major"), iv(12, 20, "presence"), iv(50, 60, "minor", action="reach"),
                       iv(0, 100, "fan")])
    assert M.person_spans(lab, 5.0) == [(0, 20), (50, 60)]
    assert M.person_spans(lab, 40.0) == [(0, 60)]


def test_real_time_factor_and_evaluate_clips_json_ready():
    import json
    clips = [clip(20, [iv(2, 8, "major", 1.0)], motion_spans=[(2.3, 9)], processing_s=0.1),
             clip(30, [iv(0, 30, "hvac")], processing_s=0.15)]
    assert M.real_time_factor(clips) == pytest.approx(50 / 0.25)
    res = M.evaluate_clips(clips, vacancy_timeout_s=300.0)
    json.dumps(M.nan_to_none(res), allow_nan=False)
    assert res["major"]["recall"] == 1.0 and res["false_alarms"]["alarms"] == 0
    assert res["audio_h"] == pytest.approx(50 / 3600)


def test_seed_roles():
    assert [seed_role(s) for s in (0, 999, 1000, 1999, 2000, 8999, 9000, 123456)] == \
        ["train", "train", "tune", "tune", "other", "other", "eval", "eval"]
    with pytest.raises(SeedError, match="training range"):
        check_not_training(5, "--seed")
    assert check_not_training(9001, "--seed") == "eval"
    assert clip_seed(9000, 1) == clip_seed(9000, 1)
    assert len({clip_seed(9000, i) for i in range(100)} | {clip_seed(9001, i) for i in range(100)}) == 200
    assert clip_seed(9000, 1, stream=0) != clip_seed(9000, 1, stream=1)


# --- the harness end to end with a stand-in pipeline (burst energy -> score); the real pipeline is tested below ---
SR = 96000


def _write_clip(path, duration_s, intervals, bursts, dataset_seed=9000):
    """A 2-mic 96 kHz recording: faint noise plus loud noise bursts at `bursts` [(a, b)], labelled `intervals`."""
    from uspd.recording.format import Sidecar
    from uspd.recording.io import RecordingWriter
    from uspd.recording.labels import write_labels

    rng = np.random.default_rng(len(str(path)))
    x = rng.normal(0, 0.001, (int(duration_s * SR), 2)).astype(np.float32)
    for a, b in bursts:
        x[int(a * SR):int(b * SR)] *= 300
    sc = Sidecar(SR, [40000.0], [[0.03, 0, 0], [-0.03, 0, 0]])
    with RecordingWriter(path, sc) as w:
        w.write(x)
    write_labels(path, Labels(duration_s, [LabelInterval(*i) for i in intervals], {"dataset_seed": dataset_seed}))


def _standin_pipeline(wav, config, detector):
    """Per-50 ms-hop RMS -> score 0.9/0.05 -> the real PresenceTracker (what run_file does with a real detector)."""
    from types import SimpleNamespace

    from uspd.presence.tracker import PresenceTracker
    from uspd.recording.io import RecordingReader

    x = RecordingReader(wav).read_all()
    hop = SR // 20
    rms = np.sqrt(np.mean(x[: len(x) // hop * hop].reshape(-1, hop, x.shape[1]) ** 2, axis=(1, 2)))
    score = np.where(rms > 0.05, 0.9, 0.05) if detector == "classic" else np.where(rms > 0.05, 0.7, 0.5)
    t = hop / SR * np.arange(1, len(rms) + 1)
    return PresenceTracker(config.presence).update(t, SimpleNamespace(score=score, major=np.full(len(t), 0.8)))


@pytest.fixture
def tiny_set(tmp_path):
    d = tmp_path / "set"
    d.mkdir()
    _write_clip(d / "walk" / "w1.wav", 8.0, [(2.0, 4.0, "major", 1.5)], [(2.2, 4.0)])
    _write_clip(d / "walk" / "w2.wav", 8.0, [(2.0, 4.0, "major", 4.5)], [])
    _write_clip(d / "neg" / "n1.wav", 20.0, [(0.0, 20.0, "fan")], [(8.0, 8.5), (15.0, 15.3)])
    (d / "walk" / "w1.ref.wav").write_bytes(b"")      # reference files and hidden folders are not recordings
    (d / ".tmp").mkdir()
    return d


def test_evaluate_command_with_standin_pipeline(tiny_set, tmp_path, monkeypatch, capsys):
    import json

    from uspd.cli import main
    from uspd.evaluate import runner

    monkeypatch.setattr(runner, "_run_pipeline", _standin_pipeline)
    out = tmp_path / "r.json"
    rc = main(["-q", "evaluate", str(tiny_set), "--detector", "both", "--workers", "1", "--json", str(out),
               "--matched-fa", "0"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "classic" in text and "nn" in text and "major recall" in text and "during fan" in text
    res = json.loads(out.read_text())
    assert res["recordings"] == 3 and res["seed_roles"] == {"eval": 3}
    c = res["detectors"]["classic"]
    assert (c["major"]["n"], c["major"]["detected"]) == (2, 1)
    assert c["major"]["by_distance"]["4-6m"]["recall"] == 0.0
    assert c["major"]["delay_s"]["median"] == pytest.approx(0.3, abs=0.051)   # burst at 2.2 s + 2 hops debounce
    assert c["false_alarms"]["alarms"] == 2 and c["false_alarms"]["by_confuser"]["fan"]["alarms"] == 2
    assert [round(a["t"], 2) for a in c["false_alarm_events"]] == [8.1, 15.1]
    assert c["false_alarm_events"][0]["active"] == ["fan"]
    assert [m["clip"].endswith("w2.wav") for m in c["missed_intervals"]] == [True]
    per_clip = {Path(r["clip"]).name: (r["alarms"], r["major"], r["major_detected"]) for r in c["per_clip"]}
    assert per_clip == {"w1.wav": (0, 1, 1), "w2.wav": (0, 1, 0), "n1.wav": (2, 0, 0)}
    # matched FA 0/h: confuser bursts of 6 and 10 hops, a walk-in of 36 at the same score: a 12-hop debounce keeps
    # the walk-in and drops both alarms (the threshold alone could not: all score 0.9)
    (m0,) = c["matched_fa"]
    assert m0["reachable"] and m0["alarms"] == 0 and m0["major_recall"] == 0.5 and m0["debounce_hops"] == 12
    assert 0.05 < m0["threshold"] <= 0.9 and m0["delay_median_s"] == pytest.approx(0.75, abs=0.051)
    assert [e["major_recall_level"] for e in c["fa_at_recall"]] == [0.8, 0.9, 0.95]   # defaults with --matched-fa
    assert not any(e["reachable"] for e in c["fa_at_recall"])                        # one walk-in of two is missed
    assert [r["major_recall_level"] for r in res["fa_at_recall_ratio"]] == [0.8, 0.9, 0.95]
    assert res["metric_definitions"]["sweep"]["debounce_grid"] == [1, 2, 3, 4, 6, 8, 12, 16, 24]
    assert "ratio classic/nn" in text
    # nn stand-in: 0.7 on bursts, 0.5 elsewhere. The first false alarm turns presence on, the sensitive threshold
    # (0.35) then sees the 0.5 floor as motion: one long event per clip (the walk-in's motion never ends either and
    # counts once its label's margin is over), and the motion share of negative time shows it
    n = res["detectors"]["nn"]
    assert n["major"]["detected"] == 1 and n["false_alarms"]["alarms"] == 2
    assert sorted(round(a["t"], 2) for a in n["false_alarm_events"]) == [7.05, 8.1]
    assert n["false_alarms"]["motion_fraction"] > 0.6 > 0.3 > c["false_alarms"]["motion_fraction"]
    assert n["presence"]["empty_presence_on_per_h"] > 0 and c["presence"]["empty_presence_on_per_h"] > 0


def test_matched_fa_sweep_finds_operating_points():
    from uspd.evaluate.runner import matched_fa
    from uspd.presence.tracker import PresenceConfig

    # negative clip: alarms with scores 0.5, 0.6, 0.7, 0.8 (10 s apart); positive clip: major motion at score 0.65
    t = HOP_S * np.arange(1, 1201)
    neg_score = np.full(len(t), 0.05)
    for k, s in enumerate((0.5, 0.6, 0.7, 0.8)):
        neg_score[(t > 10 + 10 * k) & (t < 11 + 10 * k)] = s
    neg = M.ClipResult("n", Labels(60, [LabelInterval(0, 60, "fan")]), t, neg_score, np.ones(len(t)),
                       np.zeros(len(t), bool), np.zeros(len(t), bool), 60.0)
    pos_score = np.where((t > 20) & (t < 25), 0.65, 0.05)
    pos = M.ClipResult("p", Labels(60, [LabelInterval(20, 25, "major", 2.0)]), t, pos_score, np.ones(len(t)),
                       np.zeros(len(t), bool), np.zeros(len(t), bool), 60.0)
    neg_h = M.false_alarm_metrics([neg, pos], M.MetricsConfig())["negative_h"]
    pts = matched_fa([neg, pos], PresenceConfig(), [2.5 / neg_h, 1.5 / neg_h, 0.0], debounce_grid=(2,))
    # <= 2 alarms allowed: threshold just above 0.6 -> the 0.65 walk is still detected
    assert pts[0]["alarms"] == 2 and 0.6 < pts[0]["threshold"] <= 0.65 and pts[0]["major_recall"] == 1.0
    # <= 1 alarm: threshold above 0.7 -> the walk is missed
    assert pts[1]["alarms"] == 1 and 0.7 < pts[1]["threshold"] <= 0.8 and pts[1]["major_recall"] == 0.0
    assert pts[2]["alarms"] == 0 and pts[2]["threshold"] > 0.8


def scored(duration_s, intervals, bursts=(), base=0.02, name="c"):
    """A ClipResult whose score is ``base`` except ``value`` inside each burst (a, b, value); major = 1."""
    t = HOP_S * np.arange(1, int(round(duration_s / HOP_S)) + 1)
    score = np.full(len(t), base)
    for a, b, value in bursts:
        score[(t >= a - 1e-9) & (t < b - 1e-9)] = value
    return M.ClipResult(name, Labels(duration_s, list(intervals)), t, score, np.ones(len(t)), np.zeros(len(t), bool),
                        np.zeros(len(t), bool), duration_s)


def test_rescore_from_the_first_possible_motion_equals_the_full_tracker():
    from uspd.evaluate.runner import _Scores, first_run_start, rescore, with_threshold
    from uspd.presence.tracker import PresenceConfig, PresenceTracker, decisions_to_arrays

    rng = np.random.default_rng(5)
    n = 3000                                         # 150 s: presence goes on, stays (sensitive), and times out
    t = HOP_S * np.arange(1, n + 1)
    score = np.clip(rng.normal(0.2, 0.15, n), 0, 1)
    for a in rng.integers(0, n - 40, 25):
        score[a:a + rng.integers(1, 40)] = rng.uniform(0.3, 1.0)
    major = np.where(rng.random(n) < 0.7, 1.0, 0.0)
    base = PresenceConfig(vacancy_timeout_s=20.0, sensitive_window_s=30.0, hangover_s=0.5)
    skipped = 0
    for thr in (0.3, 0.5, 0.8, 0.95, 0.999):
        for d in (1, 2, 5, 12, 30):
            cfg = with_threshold(base, thr, d)
            c = M.ClipResult("r", Labels(n * HOP_S, []), t, score, major, np.zeros(n, bool), np.zeros(n, bool),
                             n * HOP_S)
            full = decisions_to_arrays(PresenceTracker(cfg).update(t, _Scores(score, major)))
            fast = rescore(c, cfg)
            np.testing.assert_array_equal(fast.motion, full["motion"])
            np.testing.assert_array_equal(fast.presence, full["presence"])
            start = first_run_start(score, thr, d)
            skipped += start > 0
            assert not full["motion"][:start].any() and (start == n or full["motion"].any())
    assert skipped > 10                              # the shortcut was exercised, not only the plain path
    assert first_run_start(np.array([0.9, 0.1, 0.9, 0.9, 0.1]), 0.5, 2) == 2
    assert first_run_start(np.array([0.9, 0.9]), 0.5, 3) == 2


def test_operating_points_reuse_rescored_clips_exactly():
    from uspd.evaluate.runner import OperatingPoints, rescore, with_threshold
    from uspd.presence.tracker import PresenceConfig

    clips = [scored(60, [iv(0, 60, "fan")], [(10, 10.3, 0.7), (30, 31, 0.9)]),
             scored(30, [iv(10, 15, "major", 2.0)], [(10, 15, 0.8)])]
    pts = OperatingPoints(clips, PresenceConfig(), sensitive="cap")
    a = pts.at(0.65, 2)
    runs = pts.tracker_runs
    b = pts.at(0.66, 2)                               # no score between 0.65 and 0.66: nothing re-run
    assert pts.tracker_runs == runs and {**a, "threshold": 0} == {**b, "threshold": 0}
    c = pts.at(0.75, 2)                               # the 0.7 burst drops out: only the fan clip is re-run
    assert pts.tracker_runs == runs + 1 and c["alarms"] == a["alarms"] - 1 == 1
    plain = [rescore(x, with_threshold(PresenceConfig(), 0.75, 2, sensitive="cap")) for x in clips]
    assert c["alarms"] == M.false_alarm_metrics(plain, M.MetricsConfig())["alarms"]
    assert c["major_recall"] == 1.0 and c["debounce_hops"] == 2
    assert c["delay_median_s"] == pytest.approx(HOP_S, abs=1e-6)     # motion on the 2nd hop of the walk
    assert pts.at(0.7, 2)["alarms"] == 2              # a threshold equal to a score keeps that hop (score >= thr)
    assert pts.at(0.65, 1) != a and pts.tracker_runs > runs + 1       # another debounce is re-run, not reused


def test_sweep_debounce_finds_recall_where_saturated_scores_defeat_the_threshold():
    from uspd.evaluate.runner import matched_fa
    from uspd.presence.tracker import PresenceConfig

    # confusers: 30 bursts of 3 hops at 0.9999; walks: 5 s at the same 0.9999
    neg = scored(600, [iv(0, 600, "fan")], [(20 * k + 10, 20 * k + 10.15, 0.9999) for k in range(30)], name="n")
    walks = [scored(30, [iv(10, 15, "major", 2.0)], [(10, 15, 0.9999)], name=f"w{k}") for k in range(4)]
    clips = [neg, *walks]
    (old,) = matched_fa(clips, PresenceConfig(), [1.0], debounce_grid=(2,))
    assert old["reachable"] and old["threshold"] > 0.9999 and old["major_recall"] == 0.0
    (new,) = matched_fa(clips, PresenceConfig(), [1.0])
    assert new["reachable"] and new["major_recall"] == 1.0 and new["alarms"] == 0
    assert new["debounce_hops"] == 4                  # the shortest debounce longer than the bursts
    assert new["delay_median_s"] == pytest.approx(3 * HOP_S, abs=HOP_S / 2)
    assert [g["debounce_hops"] for g in new["by_debounce"]] == [1, 2, 3, 4, 6, 8, 12, 16, 24]
    assert [g["major_recall"] for g in new["by_debounce"]] == [0.0] * 3 + [1.0] * 6
    # the logit-scale bisection resolves scores near 1: confusers at 0.9999, walks at 0.99999 -> a threshold between
    walks_hi = [scored(30, [iv(10, 15, "major", 2.0)], [(10, 15, 0.99999)], name=f"v{k}") for k in range(4)]
    (sep,) = matched_fa([neg, *walks_hi], PresenceConfig(), [1.0], debounce_grid=(2,))
    assert sep["major_recall"] == 1.0 and 0.9999 < sep["threshold"] <= 0.99999


def test_fa_at_recall_takes_the_lowest_fa_and_skips_stuck_on_points():
    from uspd.evaluate.runner import fa_at_recall, sweep
    from uspd.presence.tracker import PresenceConfig

    # bursts of 3 hops (x10), 6 hops (x3) and 10 hops (x1): alarms fall with the debounce; walks of 100 hops
    bursts = [(20 * k + 10, 20 * k + 10 + 0.05 * n, 0.9999) for k, n in enumerate([3] * 10 + [6] * 3 + [10])]
    neg = scored(600, [iv(0, 600, "fan")], bursts, name="n")
    walks = [scored(30, [iv(10, 15, "major", 2.0)], [(10, 15, 0.9999)], name=f"w{k}") for k in range(4)]
    res = sweep([neg, *walks], PresenceConfig(), [], [1.0], debounce_grid=(1, 4, 8, 12, 16))
    (e,) = res["fa_at_recall"]
    assert e["reachable"] and e["major_recall_level"] == 1.0 and e["major_recall"] == 1.0
    assert e["alarms"] == 0 and e["debounce_hops"] == 12 and 0.999 < e["threshold"] <= 0.9999
    assert [g["alarms"] for g in e["by_debounce"]] == [14, 4, 1, 0, 0]
    assert res["matched_fa"] == []
    # a walk scoring below the empty room's floor: recall 1.0 only with motion stuck on -> not admissible
    floor = scored(600, [iv(0, 600, "hvac")], base=0.3, name="f")
    faint = [scored(30, [iv(10, 15, "major", 2.0)], [(10, 15, 0.25)], base=0.01, name=f"f{k}") for k in range(2)]
    (stuck,) = fa_at_recall([floor, *faint], PresenceConfig(), [1.0], debounce_grid=(2,))
    assert not stuck["reachable"] and stuck["fa_per_h"] is None and stuck["by_debounce"][0]["reachable"] is False
    (allowed,) = fa_at_recall([floor, *faint], PresenceConfig(), [1.0], debounce_grid=(2,), max_motion_fraction=1.0)
    assert allowed["reachable"] and allowed["motion_fraction"] > 0.9 and allowed["alarms"] <= 3


def test_sweep_in_worker_processes_gives_the_same_points_in_debounce_order():
    from uspd.evaluate.runner import sweep
    from uspd.presence.tracker import PresenceConfig

    bursts = [(20 * k + 10, 20 * k + 10 + 0.05 * n, 0.9999) for k, n in enumerate([3] * 10 + [6] * 3 + [10])]
    clips = [scored(600, [iv(0, 600, "fan")], bursts, name="n"),
             *(scored(30, [iv(10, 15, "major", 2.0)], [(10, 15, 0.99 + 0.002 * k)], name=f"w{k}") for k in range(4))]
    kw = {"debounce_grid": (12, 1, 4, 8, 16), "progress": False}
    alone = sweep(clips, PresenceConfig(), [1.0, 0.1], [0.75, 1.0], **kw)
    two = sweep(clips, PresenceConfig(), [1.0, 0.1], [0.75, 1.0], workers=2, **kw)
    assert two == alone
    assert [g["debounce_hops"] for g in two["fa_at_recall"][1]["by_debounce"]] == [1, 4, 8, 12, 16]
    assert [g["alarms"] for g in two["fa_at_recall"][1]["by_debounce"]] == [14, 4, 1, 0, 0]


def test_sensitive_threshold_cap_or_follow():
    from uspd.evaluate.runner import with_threshold
    from uspd.presence.tracker import PresenceConfig

    cfg = PresenceConfig(threshold=0.6, sensitive_threshold=0.35)
    assert with_threshold(cfg, 0.9, sensitive="cap").sensitive_threshold == 0.35
    assert with_threshold(cfg, 0.2, sensitive="cap").sensitive_threshold == 0.2
    assert with_threshold(cfg, 0.9).sensitive_threshold > 0.35  # "follow" is the default
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    follow = with_threshold(cfg, 0.99, 6, sensitive="follow")
    assert logit(0.99) - logit(follow.sensitive_threshold) == pytest.approx(logit(0.6) - logit(0.35))
    assert follow.debounce_hops == 6 and follow.threshold == 0.99
    assert with_threshold(cfg, 0.6, sensitive="follow").sensitive_threshold == pytest.approx(0.35)
    assert with_threshold(cfg, 1.0, sensitive="follow").sensitive_threshold == 1.0


def test_report_prints_matched_points_and_the_fa_ratio_at_equal_recall():
    from uspd.evaluate.report import fa_ratios, format_table
    from uspd.evaluate.runner import sweep
    from uspd.presence.tracker import PresenceConfig

    walks = [scored(30, [iv(10, 15, "major", 2.0)], [(10, 15, 0.9)], name=f"w{k}") for k in range(2)]

    def result(n_bursts):
        neg = scored(600, [iv(0, 600, "fan")], [(20 * k + 10, 20 * k + 10.5, 0.95) for k in range(n_bursts)])
        cs = [neg, *walks]
        return {**M.evaluate_clips(cs, 300.0),
                **sweep(cs, PresenceConfig(), [1.0], [1.0], debounce_grid=(1, 2))}

    results = {"classic": result(10), "nn": result(2)}
    text = format_table(results)
    assert "recall at 1 FA/h (major / minor / entry)" in text and "x 1 hops" in text
    assert "FA/h at major recall >= 100.0%" in text
    (ratio,) = fa_ratios(results)
    fa = ratio["fa_per_h"]
    assert fa["classic"] == pytest.approx(5 * fa["nn"]) and ratio["ratio"] == pytest.approx(5.0)
    assert "ratio classic/nn" in text and "5.0x" in text
    # no alarm at all for the second detector: a lower bound, as if it had raised one
    results["nn"] = result(0)
    (bound,) = fa_ratios(results)
    assert bound["ratio"] is None and bound["ratio_at_least"] == pytest.approx(10.0)
    assert ">= 10.0x (nn: 0 alarms)" in format_table(results)
    # three detectors: the first one's FA/h over each other's
    results = {"classic": result(10), "nn": result(2), "hybrid": result(1)}
    (three,) = fa_ratios(results)
    assert three["ratio"] == pytest.approx(5.0) and three["ratios"]["hybrid"]["ratio"] == pytest.approx(10.0)
    text = format_table(results)
    assert "ratio classic/nn" in text and "ratio classic/hybrid" in text and "10.0x" in text
    # one detector: no ratio column, still its FA/h per level
    single = format_table({"classic": results["classic"]})
    assert "classic FA/h" in single and "ratio" not in single


def test_a_missing_model_fails_before_any_recording_is_run(tiny_set, tmp_path, monkeypatch, capsys):
    """A [detector] model that cannot load is a one-line error up front, not after every classic clip has run."""
    from uspd.cli import main
    from uspd.evaluate import runner

    def must_not_run(*args):
        raise AssertionError("a recording was run before the model was checked")

    monkeypatch.setattr(runner, "_run_pipeline", must_not_run)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[detector]\nmodel = "{tmp_path / "missing.onnx"}"\n')
    assert main(["evaluate", str(tiny_set), "--detector", "both", "--workers", "1", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "missing.onnx: neural model not found" in err and err.count("\n") == 1


def test_evaluate_cli_sweep_defaults_match_the_runner():
    from uspd.cli import build_parser
    from uspd.evaluate import runner

    args = build_parser().parse_args(["evaluate", "somewhere"])
    assert tuple(args.debounce_grid) == runner.DEBOUNCE_GRID_HOPS
    assert args.max_motion_fraction == runner.MAX_MOTION_FRACTION
    assert args.sweep_sensitive == runner.SENSITIVE_MODES[0]
    assert args.matched_fa is None and args.recall_levels is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "x", "--recall-levels", "0.9,1.5"])


def test_evaluate_refuses_training_seeds_and_empty_dirs(tmp_path, capsys):
    from uspd.cli import main

    d = tmp_path / "train"
    _write_clip(d / "a.wav", 1.0, [(0.0, 1.0, "fan")], [], dataset_seed=12)
    assert main(["evaluate", str(d), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "training dataset seed 12" in err and "a.wav" in err and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", str(tmp_path / "empty")]) == 2
    assert "no recordings with labels" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_entry_recall_uses_the_first_major_interval_of_each_visit():
    # one visit with three major intervals (pauses between), then a second visit 60 s later
    labels = [iv(2, 4, "major", 2.0), iv(4, 6, "presence"), iv(6, 8, "major", 2.0), iv(8, 10, "major", 1.0),
              iv(70, 75, "major", 3.0)]
    c = clip(100, labels, motion_spans=[(3.0, 12), (71.0, 76)])
    r = M.major_metrics([c], M.MetricsConfig())
    assert (r["n"], r["detected"]) == (4, 4)
    assert r["delay_s"]["median"] == pytest.approx(0.5)        # delays 1, 0, 0, 1: later intervals had motion on
    assert (r["entry"]["n"], r["entry"]["detected"]) == (2, 2)
    assert r["entry"]["delay_s"]["median"] == pytest.approx(1.0)
    # with a long merge gap the two visits are one: a single entry
    assert M.major_metrics([c], M.MetricsConfig(entry_gap_s=100))["entry"]["n"] == 1


# --- end to end: simulator -> `uspd dataset eval` (tiny) -> `uspd evaluate` with the real pipeline -------------------
@pytest.fixture(scope="module")
def sim_set(tmp_path_factory):
    from uspd.evaluate.dataset import build_eval_set

    out = tmp_path_factory.mktemp("sim") / "ev"
    build_eval_set(out, 9000, scale=0.0005, workers=1, progress=False)
    return out


def test_evaluate_end_to_end_on_simulated_set(sim_set, tmp_path, capsys):
    import json

    from uspd.cli import main
    from uspd.recording.labels import read_labels

    out = tmp_path / "e.json"
    assert main(["-q", "evaluate", str(sim_set), "--workers", "1", "--json", str(out), "--matched-fa", "100"]) == 0
    text = capsys.readouterr().out
    assert "major recall" in text and "real-time factor" in text
    res = json.loads(out.read_text())
    assert res["recordings"] == 5 and res["seed_roles"] == {"eval": 5}
    c = res["detectors"]["hybrid"]  # the default detector
    labels = [read_labels(w) for w in sim_set.rglob("*_0000.wav")]
    assert c["major"]["n"] == sum(len(lab.of_kind("major")) for lab in labels) > 0
    assert c["minor"]["n"] == sum(len(lab.of_kind("minor")) for lab in labels)
    staying = [iv for lab in labels for iv in lab.of_kind("far") if iv not in M.approaches(lab, 0.5)]
    assert c["major"]["far"]["n"] == len(staying) > 0  # people who stay beyond 5 m, not walkers crossing it
    assert 0 < c["false_alarms"]["negative_h"] * 3600 < sum(lab.duration_s for lab in labels)
    assert c["real_time_factor"] > 1
    assert c["matched_fa"][0]["reachable"] in (True, False)
    assert res["presence"]["vacancy_timeout_s"] == 300.0


def test_rescoring_stored_scores_reproduces_the_pipeline(sim_set):
    from uspd.config import load_config
    from uspd.evaluate.runner import rescore, run_clip

    cfg = load_config(None)
    wav = sim_set / "walk" / "walk_0000.wav"
    clip_ = run_clip(wav, cfg, "classic")
    assert clip_.t_s[-1] == pytest.approx(clip_.audio_s, abs=0.05 + 1e-6)   # last decision within a hop of the end
    again = rescore(clip_, cfg.presence)
    np.testing.assert_array_equal(again.motion, clip_.motion)
    np.testing.assert_array_equal(again.presence, clip_.presence)


def test_parallel_render_exits_without_leaked_semaphores(tmp_path):
    """``uspd dataset eval --workers 2`` on a tiny set: every clip is rendered, and at exit Python reports no leaked
    semaphores (killing the finished workers instead of closing the pool printed one such warning after every
    parallel render of this set)."""
    import json
    import subprocess
    import sys

    out = tmp_path / "tiny"
    proc = subprocess.run([sys.executable, "-m", "uspd", "-q", "dataset", "eval", "--seed", "9999", "--scale",
                           "0.03", "--out", str(out), "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and sum(manifest["counts"].values()) == 5
    assert "leaked semaphore" not in proc.stderr, proc.stderr
