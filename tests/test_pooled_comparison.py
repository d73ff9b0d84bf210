"""benchmarks/pooled_comparison.py: a candidate against the base over several seeds' evaluate JSONs, pooled."""
from __future__ import annotations

import json
import sys

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def pooled_cmp():
    return load_benchmark("pooled_comparison")


def run(tmp_path, name, seed, rows_by_kind):
    """An evaluate JSON with hybrid per_clip rows: {kind: [(negative_s, alarms, majors, detected), ...]}."""
    rows = [{"clip": f"/tmp/eval{seed}/{kind}/{kind}_{i:04d}.wav", "negative_s": s, "alarms": a, "major": m,
             "major_detected": d}
            for kind, rs in rows_by_kind.items() for i, (s, a, m, d) in enumerate(rs)]
    path = tmp_path / name
    path.write_text(json.dumps({"detectors": {"hybrid": {"per_clip": rows}}}))
    return path


def main(pooled_cmp, monkeypatch, capsys, *argv):
    monkeypatch.setattr(sys, "argv", ["pooled_comparison.py", *argv, "--detectors", "hybrid"])
    code = pooled_cmp.main()
    return code, capsys.readouterr().out


def test_pools_sums_over_seeds_and_pairs_each_recording_with_itself(pooled_cmp, tmp_path, monkeypatch, capsys):
    # seed 1: an hour with 10 alarms (candidate 5); 10 movements of which 9 / 8 found, 2 alarms (1) around them
    b1 = run(tmp_path, "b1.json", 1, {"negative": [(3600.0, 10, 0, 0)], "walk": [(600.0, 2, 10, 9)]})
    c1 = run(tmp_path, "c1.json", 1, {"negative": [(3600.0, 5, 0, 0)], "walk": [(600.0, 1, 10, 8)]})
    # seed 2: three hours with 4 alarms (2); 2 late walk-ins the base misses and the candidate finds
    b2 = run(tmp_path, "b2.json", 2, {"negative": [(10800.0, 4, 0, 0)], "late_walk": [(600.0, 2, 2, 0)]})
    c2 = run(tmp_path, "c2.json", 2, {"negative": [(10800.0, 2, 0, 0)], "late_walk": [(600.0, 1, 2, 2)]})
    code, out = main(pooled_cmp, monkeypatch, capsys, "--base", str(b1), str(b2), "--candidate", str(c1), str(c2))
    assert code == 0
    lines = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("hybrid ")}
    # sums over recordings: 9 of 12 and 10 of 12 movements; 18 and 9 alarms in 4.33 h (the mean of the two seeds'
    # rates would be 6.09 / 3.05 an hour)
    assert lines["pooled"][2:5] == ["75.0", "/", "83.3"]
    assert lines["pooled"][5:8] == ["0.0", "/", "100.0"]
    assert lines["pooled"][8:11] == ["4.15", "/", "2.08"]
    assert lines["b1.json"][2:5] == ["90.0", "/", "80.0"] and lines["b2.json"][8:11] == ["1.89", "/", "0.95"]
    # every recording's alarms halved: the ratio is 0.5 whatever the draw
    assert "alarms candidate / base 0.50x (0.50 .. 0.50)" in out
    assert "paired bootstrap over the 4 recordings" in out


@pytest.mark.parametrize("case, message", [
    ("counts", "--base has 2 files and --candidate 1; one pair per seed"),
    ("different", "c2.json hold different recordings"),
    ("twice", "b1.json: holds recordings of another seed's run too"),
    ("missing", "nothing.json: no such file or directory"),
    ("not evaluate", "c1.json: not a uspd evaluate --json file (no 'detectors')"),
])
def test_bad_input_is_refused_in_one_line(pooled_cmp, tmp_path, monkeypatch, capsys, case, message):
    b1 = run(tmp_path, "b1.json", 1, {"negative": [(3600.0, 1, 0, 0)]})
    c1 = run(tmp_path, "c1.json", 1, {"negative": [(3600.0, 1, 0, 0)]})
    c2 = run(tmp_path, "c2.json", 2, {"negative": [(3600.0, 1, 0, 0)]})
    argv = {"counts": ["--base", str(b1), str(b1), "--candidate", str(c1)],
            "different": ["--base", str(b1), "--candidate", str(c2)],
            "twice": ["--base", str(b1), str(b1), "--candidate", str(c1), str(c1)],
            "missing": ["--base", str(tmp_path / "nothing.json"), "--candidate", str(c1)],
            "not evaluate": ["--base", str(b1), "--candidate", str(c1)]}[case]
    if case == "not evaluate":
        c1.write_text(json.dumps({"metrics": {}}))
    with pytest.raises(SystemExit) as exc:
        main(pooled_cmp, monkeypatch, capsys, *argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err
