"""Scene specs, presets, the random sampler, the renderer contract and `uspd simulate`."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from uspd.cli import main
from uspd.recording import RecordingReader, read_labels
from uspd.recording.labels import CONFUSER_KINDS, MINOR_ACTIONS
from uspd.simulate import PRESETS, SceneError, SceneRenderer, load_scene, random_scene_spec
from uspd.simulate.scene import CARRIER_RANGE_HZ, CONFUSER_TYPES, RANDOM_KINDS

PEOPLE = {"major", "minor", "presence"}


def _carrier_level_dbfs(x: np.ndarray, fs: int, f0: float) -> float:
    n = np.arange(len(x))
    return 20 * math.log10(2 * abs(np.mean(x * np.exp(-2j * np.pi * f0 * n / fs))))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_renders_with_plausible_levels_and_labels(name):
    r = SceneRenderer(load_scene(name, duration_s=1.0), seed=11)
    mics, ref = r.render(r.sample_rate // 2)
    assert mics.shape == (r.sample_rate // 2, r.n_mics) and mics.dtype == np.float32
    assert ref.shape == (r.sample_rate // 2,) and np.isfinite(mics).all()
    # the direct-path tone sits at -8..-26 dBFS on every mic (speaker/mic spread, 3-5 cm ring)
    for m in range(r.n_mics):
        assert -26 < _carrier_level_dbfs(mics[:, m].astype(float), r.sample_rate, r.carriers[0]) < -8
    # 16-bit capture: every sample on the int16 grid
    assert np.array_equal(mics * 32768, np.round(mics * 32768))
    full = SceneRenderer(load_scene(name), seed=11).labels
    kinds = {iv.kind for iv in full.intervals}
    movers = {m["type"] for m in PRESETS[name].get("movers", [])}
    for confuser in ("fan", "hvac", "keys", "vacuum", "door"):
        assert (confuser in kinds) == (confuser in movers)
    assert ("music" in kinds) == ("music" in PRESETS[name])
    if "person" not in movers:
        assert not kinds & PEOPLE


def test_sidecar_has_device_facts_but_no_ground_truth():
    r = SceneRenderer(load_scene("fan+walk"), seed=2)
    d = r.sidecar.to_dict()
    text = json.dumps(d)
    for leak in ("person", "fan", "movers", "labels", "route", "intervals", "scene"):
        assert leak not in text
    assert d["sample_rate"] == 96000 and d["carrier_hz"] == [40000.0]
    pos = np.array(d["mic_positions_m"])
    assert pos.shape == (4, 3)
    assert np.allclose(np.hypot(pos[:, 0], pos[:, 1]), np.hypot(pos[0, 0], pos[0, 1]))   # a ring
    assert 0.03 <= np.hypot(pos[0, 0], pos[0, 1]) <= 0.05
    assert {"temperature_c", "emission_dbfs"} <= set(d)


@pytest.mark.parametrize("kind", sorted(set(RANDOM_KINDS) | set(CONFUSER_TYPES)))
def test_random_scene_kinds_give_the_promised_labels(kind):
    rng = np.random.default_rng(123)
    for i in range(4):
        spec = random_scene_spec(rng, kind)
        scene = load_scene(spec)
        lab = SceneRenderer(scene, seed=i).labels
        kinds = {iv.kind for iv in lab.intervals}
        assert scene.sample_rate in CARRIER_RANGE_HZ
        lo, hi = CARRIER_RANGE_HZ[scene.sample_rate]
        assert lo <= scene.carriers_hz[0] <= hi
        assert 2 <= scene.device.n_mics <= 8
        if kind in ("walk", "music_motion"):
            assert "major" in kinds or "minor" in kinds
        if kind == "seated":
            assert "major" in kinds and "presence" in kinds
        if kind == "still":
            assert "presence" in kinds and not kinds & {"major", "minor"}
        if kind == "far":
            assert "far" in kinds and not kinds & PEOPLE
        if kind in ("negative", "empty", *CONFUSER_TYPES):
            assert not kinds & (PEOPLE | {"far"})
        if kind in CONFUSER_TYPES:
            expected = "curtain" if kind == "plant" else kind
            assert expected in kinds and expected in CONFUSER_KINDS
        if kind == "music_motion":
            assert "music" in kinds


@pytest.mark.parametrize("base", ["walk", "seated"])
def test_person_kind_with_confusers_always_mixes_confusers_in(base):
    from uspd.simulate.scene import CONFUSER_SUFFIX

    rng = np.random.default_rng(7)
    for i in range(6):
        spec = random_scene_spec(rng, base + CONFUSER_SUFFIX)
        types = [m["type"] for m in spec["movers"]]
        assert "person" in types
        assert len([t for t in types if t != "person"]) + ("music" in spec) >= 1
    lab = SceneRenderer(load_scene(spec), seed=0).labels
    assert {iv.kind for iv in lab.intervals} & PEOPLE


def test_a_confuser_kind_with_confusers_runs_others_beside_it_and_nobody_is_there():
    """music+confusers: music always, plus one or two other confusers (seen in the labels), never a person; and
    from the same seed both draw the same room, device and carrier: the suffix only adds the others."""
    from uspd.simulate.scene import CONFUSER_SUFFIX

    rng = np.random.default_rng(11)
    counts = set()
    for i in range(8):
        spec = random_scene_spec(rng, "music" + CONFUSER_SUFFIX, duration_s=6.0)
        others = [m["type"] for m in spec["movers"]]
        assert "music" in spec and "person" not in others
        counts.add(len(others))
    assert counts <= {1, 2} and len(counts) == 2           # keys / doors are movers too: every other confuser is
    lab = SceneRenderer(load_scene(spec), seed=0).labels
    kinds = {iv.kind for iv in lab.intervals}
    assert "music" in kinds and len(kinds & set(CONFUSER_KINDS)) >= 2 and not kinds & (PEOPLE | {"far"})
    a = random_scene_spec(np.random.default_rng(3), "music")
    b = random_scene_spec(np.random.default_rng(3), "music" + CONFUSER_SUFFIX)
    assert a["movers"] == [] and b["movers"]
    assert all(a[k] == b[k] for k in ("room", "device", "carrier_hz", "sample_rate", "temperature_c"))


def test_random_sampler_is_diverse():
    rng = np.random.default_rng(5)
    specs = [random_scene_spec(rng) for _ in range(200)]
    rates = [s["sample_rate"] for s in specs]
    assert 0.12 < rates.count(48000) / len(rates) < 0.4
    mics = {s["device"]["n_mics"] for s in specs}
    assert mics == set(range(2, 9))
    temps = [s["temperature_c"] for s in specs]
    assert min(temps) < 17 and max(temps) > 28
    sizes = np.array([s["room"]["size_m"] for s in specs])
    assert sizes[:, 0].min() < 3.5 and sizes[:, 0].max() > 7
    movers = {m["type"] for s in specs for m in s["movers"]}
    assert {"person", "fan", "curtain", "pet", "keys", "hvac", "vacuum", "door"} <= movers
    assert any("music" in s for s in specs)
    with pytest.raises(SceneError, match="unknown"):
        random_scene_spec(rng, "disco")


def test_seated_actions_cover_every_kind():
    scene = load_scene({"duration_s": 300.0, "movers": [{"type": "person", "route": "seated",
                                                          "action_gap_s": [1.0, 3.0]}]})
    minors = SceneRenderer(scene, seed=3).labels.of_kind("minor")
    assert {iv.action for iv in minors} == set(MINOR_ACTIONS)
    assert all(iv.distance_m is not None and iv.distance_m < 4.0 for iv in minors)


def test_48k_scene_and_endless_scene():
    r = SceneRenderer(load_scene("walk-in", sample_rate=48000), seed=1)
    assert r.sample_rate == 48000 and r.carriers[0] == 20000.0
    mics, _ = r.render(48000)
    assert -26 < _carrier_level_dbfs(mics[:, 0].astype(float), 48000, 20000.0) < -8
    live = SceneRenderer(load_scene("fan", duration_s="inf"), seed=1)
    assert math.isinf(live.duration_s) and math.isinf(live.labels.duration_s)
    for _ in range(3):
        block, _ = live.render(20000)
        assert block.shape == (20000, live.n_mics)


def test_spec_files_and_one_line_errors(tmp_path):
    toml = tmp_path / "room.toml"
    toml.write_text('duration_s = 3.0\ncarrier_hz = 38000.0\n[room]\nsize_m = [4.0, 3.0, 2.5]\n'
                    '[[movers]]\ntype = "person"\nroute = "approach"\nstart_s = 0.5\n', encoding="utf-8")
    scene = load_scene(toml)
    assert scene.carriers_hz == [38000.0] and scene.room.size_m == [4.0, 3.0, 2.5]
    assert scene.movers[0].params["route"] == "approach"
    js = tmp_path / "s.json"
    js.write_text(json.dumps({"duration_s": 2, "music": {"bass_hz": 50}}), encoding="utf-8")
    assert load_scene(js).music.bass_hz == 50
    bad = [
        ({"room": {"colour": "red"}}, "colour"),
        ({"movers": [{"type": "dragon"}]}, "dragon"),
        ({"movers": [{"type": "person", "speed": 1}]}, "speed"),
        ({"sample_rate": 44100}, "sample_rate"),
        ({"carrier_hz": 47500.0}, "carrier"),
        ({"device": {"n_mics": 2, "mic_gain_db": [0, 0, 0]}}, "mic_gain_db"),
        ({"room": {"size_m": [4, 3, 2.5], "device_position_m": [5, 1, 1]}}, "device_position_m"),
        ({"duration_s": "long"}, "duration_s"),
    ]
    for spec, word in bad:
        with pytest.raises(SceneError, match=word) as exc:
            load_scene(spec)
        assert "\n" not in str(exc.value)
    with pytest.raises(SceneError, match="route"):
        SceneRenderer(load_scene({"movers": [{"type": "person", "route": "moonwalk"}]}), seed=0)
    broken = tmp_path / "broken.toml"
    broken.write_text("duration_s = = 3", encoding="utf-8")
    with pytest.raises(SceneError, match="broken.toml"):
        load_scene(broken)


def test_cli_simulate_writes_a_valid_recording(tmp_path, capsys):
    out = tmp_path / "walk.wav"
    assert main(["simulate", "walk-in", "--seed", "4", "--duration", "2", "--out", str(out), "--no-progress"]) == 0
    rec = RecordingReader(out)
    assert rec.n_mics == 4 and rec.duration_s == pytest.approx(2.0)
    assert rec.reference_path is not None and rec.reference_path.exists()
    labels = read_labels(out)
    assert labels is not None and labels.duration_s == pytest.approx(2.0)
    assert labels.extra["seed"] == 4 and labels.extra["scene"]["name"] == "walk-in"
    data = rec.read_all()
    # the scene is re-creatable from the labels' resolved spec (every seeded choice written out): same samples
    again, _ = SceneRenderer(load_scene(labels.extra["scene"]), seed=4).render(len(data))
    first, _ = SceneRenderer(load_scene("walk-in", duration_s=2.0), seed=4).render(len(data))
    assert np.array_equal(again, first)
    assert np.abs(again - data).max() <= 2.0 / 32768      # int16 file round trip
    f32 = tmp_path / "f.wav"
    assert main(["simulate", "empty", "--duration", "1", "--format", "float32", "--sample-rate", "48000",
                 "--out", str(f32), "--no-progress"]) == 0
    assert RecordingReader(f32).sample_rate == 48000


def test_cli_random_and_errors(tmp_path, capsys):
    d = tmp_path / "rand"
    assert main(["simulate", "--random", "2", "--kind", "fan", "--duration", "1", "--out-dir", str(d),
                 "--no-progress"]) == 0
    names = sorted(p.name for p in d.glob("*.wav") if not p.name.endswith(".ref.wav"))
    assert names == ["rec0000.wav", "rec0001.wav"]
    assert all(read_labels(d / n).of_kind("fan") for n in names)
    capsys.readouterr()
    assert main(["simulate", "no-such-preset", "--out", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("uspd: error:") and "no-such-preset" in err and err.count("\n") == 1
    assert main(["simulate", "--random", "1", "--duration", "1"]) == 2
    assert "--out-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    help_text = capsys.readouterr().out
    assert "seconds" in help_text and "default: 0" in help_text and "walk-in" in help_text


def test_people_alone_keeps_the_people_and_silences_everything_else():
    """The people-alone scene (benchmarks/confuser_masking.py) renders exactly as the scene with the people only:
    the placeholders echo nothing and every mover keeps its index, so the person draws the same details; the
    person's labels are the original's."""
    from uspd.simulate.scene import people_alone

    spec = {"duration_s": 3.0, "sample_rate": 48000, "carrier_hz": 20000.0, "reference": True, "music": {},
            "movers": [{"type": "person", "route": "cross", "start_s": 0.2, "speed_m_s": 1.2},
                       {"type": "fan"}, {"type": "pet"}, {"type": "hvac"}]}
    original = SceneRenderer(load_scene(spec), seed=5)
    resolved = original.resolved_spec()
    alone = SceneRenderer(people_alone(resolved), seed=5)
    only = SceneRenderer({**{k: v for k, v in resolved.items() if k != "music"}, "movers": resolved["movers"][:1]},
                         seed=5)
    n = 48000 * 2
    (x_alone, ref_alone), (x_only, ref_only), (x_orig, _) = alone.render(n), only.render(n), original.render(n)
    assert np.array_equal(x_alone, x_only) and np.array_equal(ref_alone, ref_only)
    assert np.abs(x_orig - x_alone).max() > 0.01            # the confusers and the music were there
    kinds = {iv.kind for iv in alone.labels.intervals}
    assert kinds == {"presence", "major"}

    def people(labels):
        return [(iv.kind, iv.start_s, iv.end_s) for iv in labels.intervals if iv.kind in PEOPLE]

    assert people(alone.labels) == people(original.labels)
    # a random scene (people after the confusers): the person still keeps its path
    rnd = SceneRenderer(load_scene(random_scene_spec(np.random.default_rng(3), "walk+confusers")), seed=9)
    rnd_alone = SceneRenderer(people_alone(rnd.resolved_spec()), seed=9)
    assert {iv.kind for iv in rnd_alone.labels.intervals} <= PEOPLE
    assert people(rnd_alone.labels) == people(rnd.labels)


def test_with_wall_reflection_redraws_only_the_walls():
    """``uspd dataset --reflection``: six coefficients in the range from a generator of their own, every other detail
    of the scene as drawn; the renderer uses them; without it the resolver keeps drawing in WALL_REFLECTION_RANGE."""
    from uspd.simulate.scene import WALL_REFLECTION_RANGE, with_wall_reflection

    spec = random_scene_spec(np.random.default_rng(4), "walk")
    assert "reflection" not in (spec.get("room") or {})
    out = with_wall_reflection(spec, (0.2, 0.4), seed=7)
    refl = out["room"]["reflection"]
    assert len(refl) == 6 and all(0.2 <= r <= 0.4 for r in refl)
    assert {k: v for k, v in out.items() if k != "room"} == {k: v for k, v in spec.items() if k != "room"}
    assert {k: v for k, v in out["room"].items() if k != "reflection"} == (spec.get("room") or {})
    assert with_wall_reflection(spec, (0.2, 0.4), seed=7) == out and with_wall_reflection(spec, (0.2, 0.4), 8) != out
    assert with_wall_reflection(out, (0.6, 0.7), seed=1) is out  # a scene that sets its walls keeps them
    with pytest.raises(SceneError, match="reflection range"):
        with_wall_reflection(spec, (0.5, 1.0), seed=1)
    np.testing.assert_allclose(SceneRenderer(load_scene(out), 3).world.reflection, refl)
    drawn = SceneRenderer(load_scene(spec), 3).world.reflection
    assert np.all((drawn >= WALL_REFLECTION_RANGE[0]) & (drawn <= WALL_REFLECTION_RANGE[1]))


def test_clock_offset_moves_the_recorded_tone_not_the_sidecar():
    """A playback clock ``clock_ppm`` off the capture clock: the recorded tone (direct path and every static echo)
    sits at carrier x (1 + ppm 1e-6), the sidecar still gives the nominal carrier; 0 ppm renders bit-identically
    to a scene that does not mention the clock. ``with_clock_offset`` redraws only the device's clock."""
    from uspd.simulate.scene import with_clock_offset

    base = {"duration_s": 1.0, "sample_rate": 96000, "carrier_hz": 40000.0, "movers": []}
    fs, f0 = 96000, 40000.0
    for ppm in (100.0, -60.0):
        r = SceneRenderer(load_scene({**base, "device": {"clock_ppm": ppm}}), seed=5)
        assert r.sidecar.to_dict()["carrier_hz"] == [f0]
        x = r.render(fs)[0][:, 0].astype(float)
        # phase of the tone against the nominal carrier, every 10 ms (after the 20 ms tone ramp): its slope
        n = np.arange(len(x))
        z = (x * np.exp(-2j * np.pi * f0 * n / fs)).reshape(100, -1).mean(axis=1)[5:]
        slope_hz = np.polyfit(np.arange(len(z)) * 0.01, np.unwrap(np.angle(z)), 1)[0] / (2 * np.pi)
        assert slope_hz == pytest.approx(f0 * ppm * 1e-6, abs=0.02)
    plain = SceneRenderer(load_scene(base), seed=5).render(fs // 4)[0]
    zero = SceneRenderer(load_scene({**base, "device": {"clock_ppm": 0.0}}), seed=5).render(fs // 4)[0]
    np.testing.assert_array_equal(plain, zero)
    spec = random_scene_spec(np.random.default_rng(4), "walk")
    out = with_clock_offset(spec, (-100.0, 100.0), seed=7)
    assert -100.0 <= out["device"]["clock_ppm"] <= 100.0
    assert {k: v for k, v in out["device"].items() if k != "clock_ppm"} == spec["device"]
    assert {k: v for k, v in out.items() if k != "device"} == {k: v for k, v in spec.items() if k != "device"}
    assert with_clock_offset(spec, (-100.0, 100.0), seed=8) != out
    with pytest.raises(SceneError, match="clock offset range"):
        with_clock_offset(spec, (-5.0, 2000.0), seed=1)
    with pytest.raises(SceneError, match="clock_ppm"):
        load_scene({**base, "device": {"clock_ppm": 5000.0}})


def test_loudspeaker_factors_in_the_scene():
    """``with_loudspeaker`` redraws only the device's piston radius and direct coupling (its own generator); the beam
    axis is drawn into the room and kept by the resolved spec (re-rendering it is exact); bad values are one-line
    SceneErrors; a point source (radius 0) renders exactly as before the loudspeaker had a beam."""
    from uspd.simulate.scene import SceneError, random_scene_spec, with_loudspeaker

    spec = random_scene_spec(np.random.default_rng(3), "walk", 4.0)
    out = with_loudspeaker(spec, (2.0, 6.0), (-10.0, 10.0), seed=7)
    dev, dev0 = dict(out["device"]), dict(spec.get("device") or {})
    assert 0.002 <= dev.pop("speaker_radius_m") <= 0.006 and -10 <= dev.pop("coupling_db") <= 10 and dev == dev0
    assert {k: v for k, v in out.items() if k != "device"} == {k: v for k, v in spec.items() if k != "device"}
    assert with_loudspeaker(spec, (2.0, 6.0), None, seed=7)["device"]["speaker_radius_m"] == out["device"][
        "speaker_radius_m"]
    assert with_loudspeaker(spec, (2.0, 6.0), (-10.0, 10.0), seed=8) != out
    r = SceneRenderer(out, seed=5)
    w = r.world
    inward = w.size_m[:2] / 2 - w.device_position_m[:2]
    assert w.speaker_axis @ np.r_[inward / np.linalg.norm(inward), 0.0] > -0.2   # faces into the room, not the wall
    x, _ = r.render(4 * r.sample_rate)
    y, _ = SceneRenderer(r.resolved_spec()).render(4 * r.sample_rate)
    assert np.array_equal(x, y)
    z, _ = SceneRenderer(with_loudspeaker(spec, (0.0, 0.0), None, seed=7), seed=5).render(4 * r.sample_rate)
    z0, _ = SceneRenderer(spec, seed=5).render(4 * r.sample_rate)
    assert np.array_equal(z, z0) and not np.array_equal(x, z0)
    for bad, key in (({"speaker_radius_m": 0.2}, "speaker_radius_m"), ({"coupling_db": 40.0}, "coupling_db"),
                     ({"speaker_axis_deg": [10.0]}, "speaker_axis_deg")):
        with pytest.raises(SceneError, match=key):
            SceneRenderer({**spec, "device": {**(spec.get("device") or {}), **bad}}, seed=1)
    with pytest.raises(SceneError, match="--speaker-radius-mm"):
        with_loudspeaker(spec, (5.0, 2.0), None, seed=1)


def _walk_speeds(swing_share, speed_m_s=1.2):
    """Speeds (m/s) of the torso, a foot and a knee of a person walking a straight 7 m line at ``speed_m_s``, sampled
    every ms over whole gait cycles of steady walking (2-5 s); and the person's stride length (m)."""
    from uspd.simulate.movers import FOOT_L, KNEE_L, TORSO

    m = {"type": "person", "waypoints_m": [[0.5, 1.0], [7.5, 1.0]], "speed_m_s": speed_m_s, "start_s": 0.2}
    if swing_share is not None:
        m["swing_share"] = swing_share
    spec = {"duration_s": 8.0, "sample_rate": 48000, "carrier_hz": 20000.0, "room": {"size_m": [8, 4, 2.7]},
            "movers": [m]}
    person = SceneRenderer(load_scene(spec), seed=1).movers[0]
    t = np.arange(2.0, 2.0 + math.floor(3.0 * person.stride_hz) / person.stride_hz, 0.001)
    xy = person.positions(t)[:, :, :2]  # horizontal: the lift is not a Doppler speed along the path
    v = np.linalg.norm(np.gradient(xy, t, axis=1), axis=2)
    return v[TORSO], v[FOOT_L], v[KNEE_L], speed_m_s / person.stride_hz


def test_stance_swing_gait_plants_the_feet_and_swings_them_at_the_measured_speed():
    """``swing_share`` s: a foot stands still for 1 - s of the gait cycle and covers the stride in the rest on a
    half-sine speed profile, peak v pi / (2 s) (3.9 v at s = 0.4; measured feet peak at 3-4x walking speed), mean v
    over the cycle; the knee moves at half the foot's speed relative to the body; the torso walks as before. Without
    it the feet swing sinusoidally about the torso, never still and never faster than about 2 v."""
    from uspd.simulate.movers import stance_swing

    v = 1.2
    torso, foot, knee, stride_m = _walk_speeds(0.4, v)
    torso0, foot0, _, _ = _walk_speeds(None, v)
    np.testing.assert_allclose(torso, torso0)                                  # only the legs change
    assert abs(torso.mean() - v) < 0.02
    assert np.mean(foot < 0.02 * v) == pytest.approx(0.6, abs=0.02)            # planted for 1 - s of the cycle
    assert foot.max() == pytest.approx(v * math.pi / (2 * 0.4), rel=0.02)      # half-sine swing peak
    assert foot.mean() == pytest.approx(v, rel=0.02)                           # one stride per cycle
    assert np.allclose(knee, 0.5 * (torso + foot), atol=0.02 * v)             # half the foot's motion about the hip
    assert np.mean(foot0 < 0.02 * v) < 0.02 and foot0.max() < 2.3 * v          # the sinusoidal feet
    # the offset has zero mean over the cycle and the foot covers the stride during the swing only
    psi = np.linspace(0, 2 * math.pi, 4001)[:-1]
    off, lift = stance_swing(psi, 0.3, 1.5)
    planted = psi / (2 * math.pi) >= 0.3
    assert abs(off.mean()) < 1e-3 and np.all(lift[planted] == 0) and lift.max() == pytest.approx(1)
    adv = off + 1.5 * psi / (2 * math.pi)                                      # foot position along the path
    assert np.ptp(adv[planted]) < 1e-9 and adv[-1] - adv[0] == pytest.approx(1.5, abs=1e-3)


def test_swing_share_factor_sets_only_the_people_and_is_checked():
    """``with_swing_share`` gives every person (and nothing else) a swing share drawn in the range from a generator of
    its own; the rest of the scene is as drawn, a person who has one keeps it; bad values are one-line
    SceneErrors."""
    from uspd.simulate.scene import check_scene_factors, with_scene_factors, with_swing_share

    spec = random_scene_spec(np.random.default_rng(5), "walk+confusers")
    out = with_swing_share(spec, (0.36, 0.44), seed=7)
    shares = [m.pop("swing_share") for m in out["movers"] if m["type"] == "person"]
    assert shares and all(0.36 <= s <= 0.44 for s in shares)
    assert out == spec and "swing_share" not in str(spec)
    assert with_swing_share(spec, (0.36, 0.44), seed=7) == with_scene_factors(spec, 7, swing_share=(0.36, 0.44))
    set_already = {**spec, "movers": [{**m, "swing_share": 0.5} if m["type"] == "person" else m
                                      for m in spec["movers"]]}
    assert with_swing_share(set_already, (0.36, 0.44), seed=7) == set_already
    with pytest.raises(SceneError, match="--swing-share 0.1,0.4: a swing share range needs 0.2 <= LO"):
        check_scene_factors(swing_share=(0.1, 0.4))
    with pytest.raises(SceneError, match="person.swing_share: must be a number in 0.2..0.6"):
        SceneRenderer(load_scene({"movers": [{"type": "person", "swing_share": 0.9}]}), seed=1)
