"""`uspd dataset eval`: the set plan, seeds, resumable rendering with the real simulator (tiny scale)."""
from __future__ import annotations

import collections
import json

import pytest

from uspd.cli import main
from uspd.evaluate import dataset as D
from uspd.evaluate.seeds import clip_seed


def test_full_plan_meets_the_brief():
    plan = D.eval_set_plan(9000, 1.0)
    kinds = collections.Counter(j.kind for j in plan)
    assert kinds["walk"] >= 40 and kinds["seated"] >= 40 and kinds["music_motion"] >= 20
    neg_s = sum(j.duration_s for j in plan if j.kind == "negative")
    assert neg_s - 5.0 * kinds["negative"] >= 2 * 3600          # >= 2 h of negative time after warm-ups
    assert all(j.max_mics is not None and j.max_mics <= 4 for j in plan if j.kind == "negative")
    rates = collections.Counter(j.sample_rate for j in plan)
    assert rates[48000] >= 20 and rates[96000] >= 80
    assert {j.kind for j in plan if j.sample_rate == 48000} == set(kinds)
    names = [j.name for j in plan]
    assert len(set(names)) == len(names)
    assert len({j.scene_seed for j in plan} | {j.render_seed for j in plan}) == 2 * len(plan)
    assert all(j.extra["dataset_seed"] == 9000 for j in plan)


def test_plan_is_deterministic_and_scales():
    a, b = D.eval_set_plan(9001, 0.05), D.eval_set_plan(9001, 0.05)
    assert [vars(j) for j in a] == [vars(j) for j in b]
    assert a[3].scene_seed == clip_seed(9001, 3, 0) and a[3].render_seed == clip_seed(9001, 3, 1)
    assert D.eval_set_plan(9002, 0.05)[0].scene_seed != a[0].scene_seed
    tiny = D.eval_set_plan(9000, 0.0005)
    assert collections.Counter(j.kind for j in tiny) == {k: 1 for k in D.EVAL_SET if k not in D.OPTIONAL_KINDS}
    neg = [j for j in tiny if j.kind == "negative"]
    assert neg[0].duration_s == D.MIN_CLIP_S                    # scaled down, but not below the minimum
    assert any(j.sample_rate == 48000 for j in tiny)
    half = D.eval_set_plan(9000, 0.5)
    assert sum(j.duration_s for j in half if j.kind == "negative") == pytest.approx(
        0.5 * sum(j.duration_s for j in D.eval_set_plan(9000, 1.0) if j.kind == "negative"), rel=0.05)


def test_scene_specs_follow_the_job():
    for job in D.eval_set_plan(9000, 0.2):
        spec = D.scene_spec_for(job)
        assert spec["sample_rate"] == job.sample_rate
        lo, hi = (18000, 22000) if job.sample_rate == 48000 else (32000, 45000)
        assert len(spec["carrier_hz"]) == 1 and lo <= spec["carrier_hz"][0] <= hi
        assert spec["duration_s"] == job.duration_s
        if job.kind in ("negative", "visit", "late_walk"):
            assert 2 <= spec["device"]["n_mics"] <= 4
        if job.kind == "visit":
            (person,) = [m for m in spec["movers"] if m.get("type") == "person"]
            assert person["route"] == "seated" and person["leave_s"] + 300 + 20 < spec["duration_s"]
        elif job.kind == "late_walk":  # the room runs for a while before the person walks in
            (person,) = [m for m in spec["movers"] if m.get("type") == "person"]
            assert D.LATE_ENTRY_S[0] <= person["start_s"] <= D.LATE_ENTRY_S[1] and person["route"] != "seated"
        elif job.kind == "negative":
            assert not any(m.get("type") == "person" for m in spec["movers"])
        elif job.kind in ("walk", "seated", "far"):
            assert any(m.get("type") == "person" for m in spec["movers"])
        if job.kind == "music_motion":
            assert "music" in spec
        assert spec == D.scene_spec_for(job)                     # deterministic
    visits = [D.scene_spec_for(j) for j in D.eval_set_plan(9000, 1.0) if j.kind == "visit"]
    leave = sorted(m["leave_s"] for v in visits for m in v["movers"] if m.get("type") == "person")
    assert len(leave) == 4 and leave[0] < 300 < leave[-1]      # short and longer-than-timeout seated spells
    late = [D.scene_spec_for(j) for j in D.eval_set_plan(9000, 1.0) if j.kind == "late_walk"]
    enter = sorted(m["start_s"] for v in late for m in v["movers"] if m.get("type") == "person")
    assert len(enter) == 16 and enter[0] < 60 and enter[-1] > 100   # entries spread over the late window


def test_refuses_training_seed_and_foreign_folders(tmp_path, capsys):
    assert main(["dataset", "eval", "--seed", "3", "--out", str(tmp_path / "a")]) == 2
    assert "training range" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    other = tmp_path / "b"
    other.mkdir()
    (other / "x.txt").write_text("mine")
    assert main(["dataset", "eval", "--seed", "9000", "--out", str(other)]) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:                     # argparse usage error
        main(["dataset", "eval", "--seed", "9000", "--out", str(tmp_path / "c"), "--scale", "0"])
    assert exc.value.code == 2 and "--scale" in capsys.readouterr().err


def _digest(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_render_tiny_set_resume_and_determinism(tmp_path, capsys):
    from uspd.recording.labels import read_labels

    out = tmp_path / "ev"
    assert main(["-q", "dataset", "eval", "--seed", "9000", "--out", str(out), "--scale", "0.0005",
                 "--workers", "2"]) == 0
    assert "5 rendered now" in capsys.readouterr().out
    man = json.loads((out / D.MANIFEST).read_text())
    assert man["complete"] and man["dataset_seed"] == 9000 and man["role"] == "eval"
    assert man["counts"] == {k: 1 for k in D.EVAL_SET if k not in D.OPTIONAL_KINDS}
    assert man["sample_rates"] == {"48000": 1, "96000": 4}
    assert not (out / D.TMP_DIR).exists()
    wavs = sorted(out.rglob("*.wav"))
    clips = [w for w in wavs if not w.name.endswith(".ref.wav")]
    assert [str(w.relative_to(out)) for w in clips] == sorted(e["name"] for e in man["clips"])
    for w in clips:
        lab = read_labels(w)
        assert lab.extra["dataset_seed"] == 9000 and lab.extra["set_kind"] == w.parent.name
    neg = read_labels(out / "negative" / "negative_0000.wav")
    assert not neg.has_people() and neg.duration_s == D.MIN_CLIP_S
    assert read_labels(out / "walk" / "walk_0000.wav").of_kind("major")
    # interrupt: one clip lost its labels (render died before the final rename) plus a stale temp folder
    victim = out / "seated" / "seated_0000.wav"
    before = _digest(victim)
    (out / "seated" / "seated_0000.labels.json").unlink()
    (out / D.TMP_DIR / "00001").mkdir(parents=True)
    (out / D.TMP_DIR / "00001" / "junk.wav").write_bytes(b"partial")
    mtimes = {w: w.stat().st_mtime_ns for w in clips if w != victim}
    assert main(["-q", "dataset", "eval", "--seed", "9000", "--out", str(out), "--scale", "0.0005",
                 "--workers", "1"]) == 0
    assert "1 rendered now" in capsys.readouterr().out
    assert _digest(victim) == before                          # same seeds -> bit-identical in another process
    assert all(w.stat().st_mtime_ns == m for w, m in mtimes.items())  # complete clips untouched
    assert not (out / D.TMP_DIR).exists()
    # the folder belongs to seed 9000 at this scale
    assert main(["dataset", "eval", "--seed", "9001", "--out", str(out), "--scale", "0.0005"]) == 2
    assert "seed 9000" in capsys.readouterr().err


def test_reflection_option_changes_only_the_walls_and_guards_the_folder(tmp_path):
    """``uspd dataset eval --reflection LO,HI``: each clip's walls drawn in the range, everything else as in the set
    without it; a folder rendered with another range is refused before anything is rendered; bad ranges exit 2."""
    from uspd.cli import main

    plain = D.eval_set_plan(9000, 0.1)
    absorb = D.eval_set_plan(9000, 0.1, reflection=(0.2, 0.5))
    assert [(j.name, j.scene_seed, j.render_seed) for j in plain] == [(j.name, j.scene_seed, j.render_seed)
                                                                      for j in absorb]
    for a, b in zip(plain[:12], absorb[:12]):
        sa, sb = D.scene_spec_for(a), D.scene_spec_for(b)
        refl = sb["room"].pop("reflection")
        assert len(refl) == 6 and all(0.2 <= r <= 0.5 for r in refl)
        assert "reflection" not in (sa.get("room") or {}) and sa == sb
    out = tmp_path / "set"
    out.mkdir()
    (out / D.MANIFEST).write_text(json.dumps({"dataset_seed": 9000, "scale": 0.1, "reflection": [0.2, 0.5]}))
    with pytest.raises(D.DatasetError, match="rendered with --reflection 0.2,0.5 and one shared clock; use another --out for the sim"):
        D.build_eval_set(out, 9000, 0.1, progress=False)
    with pytest.raises(SystemExit) as exc:                     # argparse usage error: one line, exit 2
        main(["dataset", "eval", "--seed", "9000", "--out", str(tmp_path / "y"), "--reflection", "0.5,1"])
    assert exc.value.code == 2 and not (tmp_path / "y").exists()


def test_clock_ppm_option_changes_only_the_device_clock_and_guards_the_folder(tmp_path):
    """``uspd dataset eval --clock-ppm X|LO,HI``: each clip's clock offset drawn in the range, everything else as in
    the set without it (walls too, when both options are given); a folder rendered otherwise is refused."""
    from uspd.cli import main

    plain = D.eval_set_plan(9000, 0.1)
    both = D.eval_set_plan(9000, 0.1, reflection=(0.2, 0.5), clock_ppm=(-100.0, 100.0))
    walls = D.eval_set_plan(9000, 0.1, reflection=(0.2, 0.5))
    offsets = []
    for a, b, w in zip(plain[:12], both[:12], walls[:12]):
        sa, sb, sw = D.scene_spec_for(a), D.scene_spec_for(b), D.scene_spec_for(w)
        offsets.append(sb["device"].pop("clock_ppm"))
        assert "clock_ppm" not in sa.get("device", {}) and sb == sw and sb != sa
    assert all(-100.0 <= p <= 100.0 for p in offsets) and len(set(offsets)) == len(offsets)
    out = tmp_path / "set"
    out.mkdir()
    (out / D.MANIFEST).write_text(json.dumps({"dataset_seed": 9000, "scale": 0.1, "reflection": None}))
    with pytest.raises(D.DatasetError, match="one shared clock; use another --out for the simulator's own walls and "
                                             "--clock-ppm -20,20"):
        D.build_eval_set(out, 9000, 0.1, progress=False, clock_ppm=(-20.0, 20.0))
    with pytest.raises(SystemExit) as exc:
        main(["dataset", "eval", "--seed", "9000", "--out", str(tmp_path / "y"), "--clock-ppm", "2000"])
    assert exc.value.code == 2 and not (tmp_path / "y").exists()


def test_loudspeaker_options_change_only_the_loudspeaker_and_guard_the_folder(tmp_path, capsys):
    """``uspd dataset eval --speaker-radius-mm LO,HI --coupling-db X``: each clip's piston radius and direct coupling
    drawn in the ranges, every other detail (walls and clock too) as without them; one option leaves the other factor
    as it was; a folder rendered otherwise is refused, naming both variants; bad ranges exit 2."""
    from uspd.cli import main

    plain = D.eval_set_plan(9000, 0.1, reflection=(0.2, 0.5))
    both = D.eval_set_plan(9000, 0.1, reflection=(0.2, 0.5), speaker_radius_mm=(0.0, 8.0), coupling_db=(-10.0, 10.0))
    radius_only = D.eval_set_plan(9000, 0.1, reflection=(0.2, 0.5), speaker_radius_mm=(0.0, 8.0))
    radii, couplings = [], []
    for a, b, r in zip(plain[:12], both[:12], radius_only[:12]):
        sa, sb, sr = D.scene_spec_for(a), D.scene_spec_for(b), D.scene_spec_for(r)
        radii.append(sb["device"].pop("speaker_radius_m"))
        couplings.append(sb["device"].pop("coupling_db"))
        assert sr["device"].pop("speaker_radius_m") == radii[-1] and "coupling_db" not in sr["device"]
        assert sa == sb == sr
    assert all(0.0 <= x <= 0.008 for x in radii) and len(set(radii)) == len(radii)
    assert all(-10.0 <= x <= 10.0 for x in couplings) and len(set(couplings)) == len(couplings)
    out = tmp_path / "set"
    out.mkdir()
    (out / D.MANIFEST).write_text(json.dumps({"dataset_seed": 9000, "scale": 0.1, "reflection": None,
                                              "speaker_radius_mm": [0.0, 8.0]}))
    with pytest.raises(D.DatasetError, match="own walls, one shared clock, --speaker-radius-mm 0,8 and free-field "
                                             "coupling; use another --out for the simulator's own walls, one shared "
                                             "clock, a point-source loudspeaker and --coupling-db -5,5"):
        D.build_eval_set(out, 9000, 0.1, progress=False, coupling_db=(-5.0, 5.0))
    for bad in (["--speaker-radius-mm", "60"], ["--speaker-radius-mm", "5,2"], ["--coupling-db", "40"],
                ["--coupling-db", "a"]):
        with pytest.raises(SystemExit) as exc:
            main(["dataset", "eval", "--seed", "9000", "--out", str(tmp_path / "y"), *bad])
        assert exc.value.code == 2 and not (tmp_path / "y").exists()
        err = capsys.readouterr().err.strip().splitlines()
        assert "--speaker-radius-mm" in err[-1] or "--coupling-db" in err[-1]


def test_swing_share_option_changes_only_the_gait_and_guards_the_folder(tmp_path, capsys):
    """``uspd dataset eval --swing-share LO,HI``: every person of every clip gets a stance/swing gait with a share in
    the range, every other detail as without it; a folder rendered without it is refused, naming both variants; bad
    ranges exit 2 with one line, for ``uspd dataset train`` too."""
    plain = D.eval_set_plan(9000, 0.1)
    gait = D.eval_set_plan(9000, 0.1, swing_share=(0.36, 0.44))
    shares = []
    for a, b in zip(plain[:12], gait[:12]):
        sa, sb = D.scene_spec_for(a), D.scene_spec_for(b)
        for m in sb.get("movers", []):
            if m["type"] == "person":
                shares.append(m.pop("swing_share"))
        assert sa == sb
    assert shares and all(0.36 <= s <= 0.44 for s in shares) and len(set(shares)) == len(shares)
    out = tmp_path / "set"
    out.mkdir()
    (out / D.MANIFEST).write_text(json.dumps({"dataset_seed": 9000, "scale": 0.1, "reflection": None}))
    with pytest.raises(D.DatasetError, match="sinusoidally swinging feet; use another --out for the simulator's own "
                                             "walls, one shared clock and --swing-share 0.36,0.44"):
        D.build_eval_set(out, 9000, 0.1, progress=False, swing_share=(0.36, 0.44))
    for cmd in (["eval", "--seed", "9000"], ["train", "--hours", "0.1", "--seed", "7"]):
        for bad in ("0.1,0.4", "0.5,0.4", "a"):
            with pytest.raises(SystemExit) as exc:
                main(["dataset", *cmd, "--out", str(tmp_path / "y"), "--swing-share", bad])
            assert exc.value.code == 2 and not (tmp_path / "y").exists()
            err = capsys.readouterr().err.strip().splitlines()
            assert "--swing-share" in err[-1]
