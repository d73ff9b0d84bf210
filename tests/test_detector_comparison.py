"""benchmarks/detector_comparison.py: the paired bootstrap over recordings that compares two runs on one set."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def comparison():
    return load_benchmark("detector_comparison")


def rows(alarms, majors=None, detected=None, prefix="n"):
    majors = majors if majors is not None else [0] * len(alarms)
    detected = detected if detected is not None else majors
    return [{"clip": f"{prefix}{i}", "negative_s": 300.0, "alarms": a, "major": m, "major_detected": d}
            for i, (a, m, d) in enumerate(zip(alarms, majors, detected))]


def test_the_point_estimates_are_the_runs_own_sums(comparison):
    base = rows([3, 0, 1, 0], majors=[0, 4, 2, 4], detected=[0, 3, 2, 4])
    cand = rows([1, 0, 1, 2], majors=[0, 4, 2, 4], detected=[0, 4, 2, 4])
    b = comparison.paired_bootstrap(base, cand)
    assert b["recordings"] == 4
    assert b["recall_diff_points"][0] == pytest.approx(100 * (10 - 9) / 10)
    assert b["alarm_ratio"][0] == pytest.approx(4 / 4)
    lo, hi = b["recall_diff_points"][1:]
    assert lo <= 0.0 < hi                                     # one more major found in 10: not a sure gain


def test_pairing_keeps_a_recording_that_alarms_in_both_runs_from_deciding_the_ratio(comparison):
    """The base raises 20 alarms in one recording and a few elsewhere; the candidate the same plus one. Unpaired
    resampling would swing the ratio from far below to far above 1 as that recording comes and goes."""
    alarms = [20] + [1] * 9 + [0] * 90
    base, cand = rows(alarms), rows(alarms)
    cand[5]["alarms"] += 1
    point, lo, hi = comparison.paired_bootstrap(base, cand)["alarm_ratio"]
    assert point == pytest.approx(30 / 29)
    assert 1.0 <= lo and hi < 1.4


def test_an_alarm_rate_set_by_one_recording_gets_a_wide_interval(comparison):
    """22 of the candidate's alarms in one recording where the base raises none (seed 11100's negative_0040):
    resamples without that recording tie, so the interval reaches down to about 1."""
    alarms = [4] * 10 + [0] * 140
    base, cand = rows(alarms), rows(alarms)
    cand[50]["alarms"] = 22
    point, lo, hi = comparison.paired_bootstrap(base, cand)["alarm_ratio"]
    assert point == pytest.approx(62 / 40)
    assert lo <= 1.0 + 1e-9 and hi > 2.0


def test_no_alarms_in_either_run_is_a_ratio_of_one_and_only_the_candidates_is_infinite(comparison):
    b = comparison.paired_bootstrap(rows([0, 0, 0]), rows([0, 0, 0]))
    assert b["alarm_ratio"] == (1.0, 1.0, 1.0) and b["recall_diff_points"] is None   # no majors: no recall
    assert comparison.paired_bootstrap(rows([0, 0]), rows([0, 1]))["alarm_ratio"][0] == np.inf
    assert comparison.paired_bootstrap(rows([1]), rows([1], prefix="other")) is None   # no shared recording


def test_bootstrap_lines_compare_each_detector_and_skip_jsons_without_per_clip_rows(comparison):
    run = {"detectors": {"nn": {"per_clip": rows([2, 0], [3, 1], [2, 1])}, "hybrid": {}}}
    cand = {"detectors": {"nn": {"per_clip": rows([1, 0], [3, 1], [3, 1])}, "hybrid": {}}}
    lines = comparison.bootstrap_lines(run, cand, ["nn", "hybrid"], n_resamples=200)
    assert len(lines) == 2 and "over the 2 recordings" in lines[0]
    assert lines[1].startswith("  nn: major recall candidate - base +25.0 points") and "0.50x" in lines[1]
    assert comparison.bootstrap_lines(run, cand, ["hybrid"]) == []


def test_the_target_check_reads_a_set_without_minor_movements_or_detections(comparison):
    """The other simulator renders walkers only: no reach or page to score, and a detector may find nothing."""
    def det(recall, delay):
        return {"major": {"recall": recall, "delay_s": {"median": delay}},
                "minor": {"by_action": {"reach": {"n": 0, "recall": None}, "page": {"n": 0, "recall": None}}},
                "false_alarms": {"negative_h": 1.5, "fa_per_h": 2.0}}
    res = {"detectors": {"classic": det(0.9, 0.3), "nn": det(0.0, None)}}
    rows = {name: (value, met) for name, value, _, met in comparison.targets(res)}
    assert rows["nn minor recall reach / page"] == ("- / -", False)
    assert rows["nn major delay median (s)"] == ("-", False)
    assert rows["nn major recall (<= 5 m)"] == ("0.0%", False)
