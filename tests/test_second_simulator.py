"""The second simulator (benchmarks/second_simulator.py): its motion model and its rendering, checked against what
they claim, so a detector's failure on its recordings is the detector's and not a renderer bug."""
import json
import math

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def sim():
    return load_benchmark("second_simulator")


def test_path_motion_walks_the_polyline_at_its_speed_and_holds_its_pauses(sim):
    wps = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 2.0]])
    t = np.arange(0.0, 12.0, 0.005)
    xy, speed, heading, s = sim.path_motion(wps, 1.2, [2.0, 0.0], 1.0, 0.5, t)
    assert np.allclose(xy[t < 1.0], [0.0, 0.0]) and np.allclose(xy[-1], [3.0, 2.0], atol=1e-6)
    assert s[-1] == pytest.approx(5.0, abs=1e-6)
    assert speed.max() == pytest.approx(1.2, rel=0.01)
    at_corner = np.flatnonzero(np.isclose(s, 3.0, atol=1e-9))
    assert (at_corner[-1] - at_corner[0]) * 0.005 == pytest.approx(2.0, abs=0.02)  # the 2 s pause at the corner
    assert np.allclose(heading[(s > 0.5) & (s < 2.5)], [1.0, 0.0]) and np.allclose(heading[s > 3.5], [0.0, 1.0])


def test_walker_feet_are_planted_in_stance_and_swing_fast(sim):
    """A foot's world position (body + its offset) stands still for 60 % of the stride and peaks at
    pi/2 / 0.4 ~ 3.9x the walking speed in swing (a raised cosine)."""
    room = sim.Room(size_m=np.array([8.0, 6.0, 2.6]), device_m=np.array([4.0, 0.2, 1.0]),
                    door_m=np.array([0.15, 5.0]))
    w = sim.Walker(np.random.default_rng(3), room, 1.0, 20.0)
    w.waypoints, w.pauses, w.leaves = np.array([[0.5, 3.0], [7.5, 3.0]]), [0.0, 0.0], False
    w.path_m = 7.0
    t = np.arange(0.0, 20.0, 0.002)
    pts, present = w.points(t)
    _, speed, _, _ = w.motion(t)
    cruise = np.abs(speed - w.speed) < 1e-6
    foot_v = np.abs(np.gradient(pts[6, :, 0], t))  # the first foot, along x (the walking direction)
    planted = foot_v[cruise] < 0.02 * w.speed
    assert planted.mean() == pytest.approx(0.6, abs=0.03)
    assert foot_v[cruise].max() == pytest.approx(math.pi / 2 / 0.4 * w.speed, rel=0.03)
    assert np.abs(np.gradient(pts[0, :, 0], t)[cruise]).max() < 1.05 * w.speed  # the torso moves with the body
    assert present[t >= 1.0].all() and not present[t < 1.0].any()  # in through the door at its start time


def test_render_puts_the_carrier_where_the_capture_clock_says_and_keeps_images_out(sim, tmp_path):
    """An empty room recorded with a capture clock off by some ppm: the tone sits at f0 (1 + ppm 1e-6), the
    upsampling leaves no image within 2 kHz of it above -100 dB, and the sidecar and labels are what uspd reads."""
    import soundfile as sf

    from uspd.recording.io import RecordingReader
    from uspd.recording.labels import read_labels

    spec = {"name": "negative_0000", "kind": "negative", "duration_s": 4.0, "movers": [], "sample_rate": 48000,
            "seed": 11, "clock_ppm": 40.0, "coupling_db": 10.0, "beam_p": (0.5, 2.0), "bounces": True,
            "reflection": (0.5, 0.9)}
    wav = tmp_path / "negative_0000.wav"
    sim.render_clip(spec, wav)
    rec = RecordingReader(wav)
    sidecar, labels = json.loads(wav.with_suffix(".json").read_text()), read_labels(wav)
    assert sidecar["reference"] is None and len(sidecar["mic_positions_m"]) == labels.extra["device"]["n_mics"]
    assert labels.duration_s == 4.0 and labels.intervals == []
    assert rec.sample_rate == 48000
    x = sf.read(str(wav))[0][:, 0]
    n = len(x)
    spec_db = 20 * np.log10(np.abs(np.fft.rfft(x * np.blackman(n))) + 1e-12)
    f = np.fft.rfftfreq(n, 1 / 48000)
    f0 = sidecar["carrier_hz"][0]
    ppm = labels.extra["device"]["clock_ppm"]
    assert abs(ppm) > 1.0
    k = np.argmax(spec_db)
    fine = f[k] + 0.5 * (f[1] - f[0]) * (spec_db[k - 1] - spec_db[k + 1]) / (
        spec_db[k - 1] - 2 * spec_db[k] + spec_db[k + 1])  # parabolic peak
    assert fine - f0 == pytest.approx(f0 * ppm * 1e-6, abs=0.05)
    near = (np.abs(f - f0) > 20) & (np.abs(f - f0) < 2000)
    noise_db = np.median(spec_db[near])
    assert spec_db[near].max() < max(spec_db[k] - 100, noise_db + 20)


def test_recall_by_factor_counts_each_walker_in_its_device_bin_and_misses_per_detector(sim, tmp_path):
    walk = tmp_path / "walk"
    walk.mkdir()
    devices = [{"n_mics": 2, "coupling_db": 8.0, "beam_p": 1.8, "noise_dbfs": -88.0, "direct_dbfs": -10.0},  # 70 dB
               {"n_mics": 4, "coupling_db": 0.5, "beam_p": 0.7, "noise_dbfs": -76.0, "direct_dbfs": -12.5}]  # 63 dB
    for k, (device, rate) in enumerate(zip(devices, (48000, 96000))):
        (walk / f"walk_{k}.wav").touch()  # only its name matters here
        angles = 2 * math.pi * np.arange(device["n_mics"]) / device["n_mics"]
        mics = [[0.04 * math.cos(a), 0.04 * math.sin(a), 0.0] for a in angles]  # a valid sidecar; its rate is read
        (walk / f"walk_{k}.json").write_text(json.dumps({"sample_rate": rate, "carrier_hz": [rate / 2.4],
                                                         "mic_positions_m": mics}))
        intervals = [{"start_s": 2.0, "end_s": 5.0, "kind": "major", "distance_m": 1.5},
                     {"start_s": 7.0, "end_s": 9.0, "kind": "major", "distance_m": 3.5},
                     {"start_s": 10.0, "end_s": 12.0, "kind": "major", "distance_m": 6.0},  # beyond 5 m: not counted
                     {"start_s": 5.0, "end_s": 7.0, "kind": "presence", "distance_m": 2.0}]
        if k == 0:  # a fan and a pet while the first walker moves, both gone before the second
            intervals += [{"start_s": 0.0, "end_s": 4.0, "kind": "fan"}, {"start_s": 4.5, "end_s": 6.5, "kind": "pet"}]
        (walk / f"walk_{k}.labels.json").write_text(json.dumps({"intervals": intervals, "device": device}))
    wav0, wav1 = str(walk / "walk_0.wav"), str(walk / "walk_1.wav")
    metrics = {"detectors": {
        "classic": {"missed_intervals": [{"clip": wav0, "kind": "major", "start_s": 7.0}]},
        "nn": {"missed_intervals": [{"clip": wav0, "kind": "major", "start_s": 2.0},
                                    {"clip": wav0, "kind": "major", "start_s": 7.0},
                                    {"clip": wav1, "kind": "major", "start_s": 7.0},
                                    {"clip": wav1, "kind": "minor", "start_s": 2.0}]}}}  # a minor miss: not a walker
    walkers = sim.walkers_found(tmp_path, metrics)
    rows = {(name, label): (n, recall) for name, label, n, recall in sim.recall_by_factor(walkers)}
    assert rows[("direct coupling", ">= 3 dB")] == (2, {"classic": 0.5, "nn": 0.0})
    assert rows[("direct coupling", "-3 to < 3 dB")] == (2, {"classic": 1.0, "nn": 0.5})
    assert ("direct coupling", "< -3 dB") not in rows  # empty bins are left out
    assert rows[("mics", "< 3")][0] == 2 and rows[("mics", "3 to < 5")][0] == 2
    assert rows[("sample rate", "< 60000 Hz")] == (2, {"classic": 0.5, "nn": 0.0})
    assert rows[("self-noise", ">= -79 dBFS")] == (2, {"classic": 1.0, "nn": 0.5})
    assert rows[("room re noise", "< 70 dB")] == (2, {"classic": 1.0, "nn": 0.5})
    assert rows[("room re noise", "70 to < 76 dB")] == (2, {"classic": 0.5, "nn": 0.0})
    assert rows[("distance", "< 2 m")] == (2, {"classic": 1.0, "nn": 0.5})
    assert rows[("distance", ">= 3 m")] == (2, {"classic": 0.5, "nn": 0.0})
    assert rows[("confusers", ">= 2")] == (1, {"classic": 1.0, "nn": 0.0})  # the fan and the pet, during the movement
    assert rows[("confusers", "< 1")][0] == 3 and ("confusers", "1 to < 2") not in rows
    assert sim.walkers_found(tmp_path / "no_walk_ins", metrics) == []  # a set rendered with --walks 0
    ours = {"n_mics": 3, "coupling_db": 0.0, "noise_dbfs": -84.0, "direct_dbfs": -20.0, "room_re_noise_db": 64.0,
            "sample_rate": 96000, "distance_m": 1.0}  # a device of uspd's simulator: no beam exponent
    rows = {(name, label): (n, recall) for name, label, n, recall in
            sim.recall_by_factor(walkers + [(ours, {"classic": True, "nn": True})])}
    assert rows[("beam exponent p", ">= 1.5")] == (2, {"classic": 0.5, "nn": 0.0})  # counted where it has the factor
    assert rows[("mics", "3 to < 5")][0] == 3 and rows[("distance", "< 2 m")] == (3, {"classic": 1.0, "nn": 2 / 3})


def test_device_tags_of_a_uspd_clip_give_its_rendered_direct_path_level(sim):
    """For a clip of uspd's own simulator the breakdown works the device factors out of the resolved scene in its
    labels: the direct path's level is what the renderer's static field gives it (emission x spreading x
    speaker gain x coupling, at the mic ring), so both simulators' clips land in comparable bins."""
    from uspd.simulate.render import SceneRenderer
    from uspd.simulate.room import resolve_world, static_paths
    from uspd.simulate.scene import load_scene, random_scene_spec, with_loudspeaker

    for seed in (3, 4):
        spec = with_loudspeaker(random_scene_spec(np.random.default_rng(seed), "walk", 4.0), None, (-8.0, 8.0), seed)
        resolved = SceneRenderer(spec, seed=seed).resolved_spec()
        world = resolve_world(load_scene(resolved), np.random.default_rng(0))
        paths = static_paths(world)
        direct = paths.amplitude[:, paths.order == 0][:, 0] / world.mic_gain  # (n_mics,) before each mic's gain
        tags = sim.device_tags({"scene": resolved})
        assert tags["direct_dbfs"] == pytest.approx(float(np.mean(20 * np.log10(world.emission_amplitude * direct))),
                                                    abs=0.1)
        dev = resolved["device"]
        assert tags["coupling_db"] == dev["coupling_db"] != 0 and tags["n_mics"] == dev["n_mics"]
        assert tags["room_re_noise_db"] == pytest.approx(tags["direct_dbfs"] - dev["coupling_db"]
                                                         - dev["self_noise_dbfs"])
    assert sim.device_tags({"intervals": []}) == {}  # a recording from elsewhere: no device factors
