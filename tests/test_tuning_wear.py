"""benchmarks/tuning_wear.py: pooled figures over sets and the fresh / used alarm-rate ratio with its interval."""
from __future__ import annotations

import json
import sys

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def wear():
    return load_benchmark("tuning_wear")


def rows(alarms, negative_s=None, majors=None, detected=None, kind="negative"):
    n = len(alarms)
    negative_s = negative_s or [300.0] * n
    majors = majors or [0] * n
    detected = detected or majors
    return [{"clip": f"/sets/{kind}/{kind}_{i:04d}.wav", "negative_s": s, "alarms": a, "major": m,
             "major_detected": d} for i, (a, s, m, d) in enumerate(zip(alarms, negative_s, majors, detected))]


def test_pooled_figures_are_sums_over_recordings_not_means_of_rates(wear):
    rs = rows([6, 0], negative_s=[3600.0, 360.0]) + rows([1], majors=[4], detected=[1], kind="late_walk") \
        + rows([0], majors=[6], detected=[6], kind="walk")
    p = wear.pooled(rs)
    assert p["alarms"] == 7
    assert p["negative_h"] == pytest.approx((3600 + 360 + 300 + 300) / 3600)
    assert p["fa_per_h"] == pytest.approx(7 / p["negative_h"])      # the mean of per-clip rates would be ~4.2
    assert p["major_recall"] == pytest.approx(7 / 10)
    assert p["late_recall"] == pytest.approx(1 / 4)                   # only the late walk-in clip's movements
    assert wear.pooled(rows([1]))["late_recall"] is None


def test_twice_the_alarms_in_every_recording_is_a_ratio_of_two_whatever_the_draw(wear):
    used = rows([1, 2, 1, 2] * 10, negative_s=[300.0, 600.0] * 20)
    fresh = rows([2, 4] * 15, negative_s=[300.0, 600.0] * 15)         # another set, other size, same mix x2
    point, lo, hi = wear.rate_ratio(used, fresh)
    assert point == pytest.approx(2.0)
    assert lo == pytest.approx(2.0) and hi == pytest.approx(2.0)


def test_one_recording_full_of_alarms_leaves_the_ratio_open(wear):
    """Sixty recordings each side alike but one fresh recording with 30 alarms: the point doubles, yet a third of
    the draws leave that recording out, so the interval must reach down to about 1."""
    used = rows([1, 0] * 30)
    fresh = rows([30] + [0] + [1, 0] * 29)
    point, lo, hi = wear.rate_ratio(used, fresh)
    assert point == pytest.approx(59 / 30)
    assert lo < 1.3 and hi > 2.5


def test_no_alarm_among_the_used_sets_has_no_ratio(wear):
    assert wear.rate_ratio(rows([0, 0]), rows([1, 0])) is None
    assert wear.rate_ratio([], rows([1])) is None


def test_a_group_without_negative_time_prints_dashes_not_a_traceback(wear):
    walkers = rows([0], negative_s=[0.0], majors=[2], detected=[1], kind="walk")
    (line,) = wear.table({"classic": walkers}, {"classic": walkers})[1:]
    assert line.split()[:2] == ["classic", "-"] and "50.0 /     50.0" in line


def _set(tmp_path, name, per_detector):
    d = tmp_path / name
    d.mkdir()
    (d / "manifest.json").write_text("{}")
    js = {"detectors": {det: {"per_clip": r} for det, r in per_detector.items()}}
    (tmp_path / "js" / f"{name}.json").write_text(json.dumps(js))
    return d


def test_main_pools_the_used_sets_and_prints_each_detectors_ratio(wear, tmp_path, monkeypatch, capsys):
    (tmp_path / "js").mkdir()
    a = _set(tmp_path, "tuneA", {"classic": rows([2] * 12), "hybrid": rows([1, 0] * 6)})
    b = _set(tmp_path, "tuneB", {"classic": rows([2] * 12), "hybrid": rows([0] * 12)})
    c = _set(tmp_path, "tuneC", {"classic": rows([2] * 12), "hybrid": rows([2] * 12)})
    monkeypatch.setattr(sys, "argv", ["tuning_wear.py", "--used", str(a), str(b), "--fresh", str(c),
                                      "--json-dir", str(tmp_path / "js"), "--reuse"])
    assert wear.main() == 0
    out = capsys.readouterr().out
    line = {ln.split()[0]: ln for ln in out.splitlines() if ln.split()}
    assert "1.00x (1.00 .. 1.00)" in line["classic"]                  # the control: same rate everywhere
    assert line["hybrid"].split()[1] == "3.00"                        # 6 alarms in 2 h of used negative time
    assert "8.00x" in line["hybrid"]                                  # 24 in 1 h fresh: eight times that
    assert "nn" not in line


def test_a_folder_without_a_set_is_refused_in_one_line(wear, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["tuning_wear.py", "--used", str(tmp_path), "--fresh", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        wear.main()
    assert exc.value.code == 2
    assert "no evaluation set there" in capsys.readouterr().err


def test_a_malformed_config_is_refused_before_anything_runs(wear, tmp_path, monkeypatch, capsys):
    (tmp_path / "js").mkdir()
    a = _set(tmp_path, "tuneA", {"classic": rows([1])})
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [\n")
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["tuning_wear.py", "--used", str(a), "--fresh", str(a), "--config", str(bad),
                                      "--json-dir", str(out)])
    with pytest.raises(SystemExit) as exc:
        wear.main()
    assert exc.value.code == 2
    assert "malformed TOML" in capsys.readouterr().err and not out.exists()
