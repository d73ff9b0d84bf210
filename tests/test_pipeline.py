"""The one pipeline: chunk-size agnostic, wires front end -> detector -> presence tracker, streams files."""
from __future__ import annotations

import math

import numpy as np
import pytest

from uspd.config import load_config
from uspd.detector.base import Scores
from uspd.errors import ConfigError, RecordingError
from uspd.features.synthetic import SyntheticScene, walker
from uspd.pipeline import Pipeline, run_file
from uspd.recording import RecordingWriter, Sidecar

FS = 48000
F0 = 20000.0


def sidecar(n_mics: int = 2) -> Sidecar:
    return Sidecar(FS, [F0], [[0.03 * i, 0.0, 0.0] for i in range(n_mics)])


def audio(dur_s: float, echoes=(), n_mics: int = 2, seed: int = 0) -> np.ndarray:
    return SyntheticScene(FS, [F0], n_mics, echoes=list(echoes), noise_rms=1e-4, seed=seed).render(int(dur_s * FS))


def write_recording(path, x: np.ndarray) -> None:
    with RecordingWriter(path, sidecar(x.shape[1])) as w:
        w.write(x)


def as_rows(decisions):
    return [d.to_dict() for d in decisions]


@pytest.fixture(scope="module")
def walk_audio():
    return audio(7.0, walker(3.0, 6.0))


def test_any_chunk_size_gives_the_same_decisions(walk_audio):
    ref = Pipeline(sidecar(), load_config(None)).process(walk_audio)
    assert len(ref) == 140
    for chunk in (2400, 777, 48000):
        pipe = Pipeline(sidecar(), load_config(None))
        got = []
        for i in range(0, len(walk_audio), chunk):
            got += pipe.process(walk_audio[i:i + chunk])
        got += pipe.flush()
        assert as_rows(got) == as_rows(ref)


def test_walk_in_turns_presence_on(walk_audio):
    decisions = Pipeline(sidecar(), load_config(None)).process(walk_audio)
    t = np.array([d.t for d in decisions])
    motion = np.array([d.motion for d in decisions])
    presence = np.array([d.presence for d in decisions])
    assert not motion[t < 2.9].any() and not presence[t < 2.9].any()
    assert motion[(t > 3.5) & (t < 5.5)].all()
    events = [e for d in decisions for e in d.events]
    on = [e for e in events if e.type == "presence_on"]
    assert len(on) == 1 and 3.0 < on[0].t < 4.0
    starts = [e for e in events if e.type == "motion_start"]
    assert starts and starts[0].t > 3.0
    assert any(d.kind == "major" for d in decisions)


class StandIn:
    """A stand-in detector: score 1 (major) between 1 and 2 s, else 0."""

    def __init__(self):
        self.calls = 0

    def process(self, frames) -> Scores:
        self.calls += 1
        on = ((frames.t_s > 1.0) & (frames.t_s <= 2.0)).astype(float)
        return Scores(score=on, major=on)

    def reset(self) -> None:
        pass


def test_detector_instance_name_or_config_default():
    cfg = load_config(None)
    det = StandIn()
    pipe = Pipeline(sidecar(), cfg, det)
    out = pipe.process(audio(3.0))
    assert det.calls == 1 and len(out) == 60
    motion_t = [d.t for d in out if d.motion]
    assert motion_t and 1.0 < min(motion_t) < 1.2
    assert any(e.type == "presence_on" for d in out for e in d.events)
    alt = Pipeline(sidecar(), cfg, "classic")
    assert alt.detector_name == "classic" and alt.config is cfg and alt.detector is not det
    assert Pipeline(sidecar(), None, None).detector_name == "hybrid"  # the default detector
    with pytest.raises(TypeError, match="config"):
        Pipeline(sidecar(), "classic", cfg)  # the old swapped order is gone


def test_config_reaches_every_stage(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[frontend]\nhop_s = 0.025\n[presence]\nthreshold = 0.9\nsensitive_threshold = 0.5\n")
    cfg = load_config(p)
    pipe = Pipeline(sidecar(), cfg)
    out = pipe.process(audio(1.0))
    assert len(out) == 40 and pipe.hop_s == 0.025
    assert pipe.tracker.config.threshold == 0.9
    assert all(d.threshold == 0.9 for d in out)


def test_run_file_streams_and_never_reads_labels(tmp_path, walk_audio):
    wav = tmp_path / "walk.wav"
    write_recording(wav, walk_audio)
    (tmp_path / "walk.labels.json").write_text("this is not JSON: detection must never read it")
    got = []
    summary = run_file(wav, load_config(None), "classic", got.append, chunk_s=0.3)
    assert summary.decisions == len(got) == 140
    assert summary.audio_s == pytest.approx(7.0)
    t = np.array([d.t for d in got])
    assert np.all(np.diff(t) > 0) and summary.audio_s - t[-1] < 0.05 + 1e-9
    # int16 file vs float audio in memory: the same motion picture (quantisation may flip a borderline hop)
    ref = Pipeline(sidecar(), load_config(None), "classic").process(walk_audio)
    agree = np.mean([a.motion == b.motion for a, b in zip(got, ref)])
    assert agree > 0.95
    assert np.abs(np.array([d.score for d in got]) - [d.score for d in ref]).mean() < 0.05


def test_run_file_errors(tmp_path):
    with pytest.raises(RecordingError, match="not found"):
        run_file(tmp_path / "missing.wav")
    wav = tmp_path / "a.wav"
    write_recording(wav, audio(0.5))
    with pytest.raises(ConfigError, match="chunk"):
        run_file(wav, chunk_s=0.0)
    with pytest.raises(ConfigError, match="chunk"):
        run_file(wav, chunk_s=math.nan)


@pytest.mark.parametrize("clock_ppm", [30.0, -100.0])
def test_a_device_with_its_clocks_apart_raises_no_motion_from_a_fan(clock_ppm):
    """A simulated room with a ceiling fan, recorded by a device whose playback clock runs ``clock_ppm`` off its
    capture clock (the tone 1.2-4 Hz off the sidecar's carrier): through the default pipeline (carrier tracking on)
    no motion; with tracking off the static field leaking past the clutter high-pass is taken for motion."""
    from uspd.features.frontend import FrontEndConfig
    from uspd.simulate import SceneRenderer, load_scene

    r = SceneRenderer(load_scene("fan", duration_s=20.0, device={"clock_ppm": clock_ppm}), seed=3)
    x, _ = r.render(r.sample_rate * 20)
    tracked = Pipeline(r.sidecar, load_config(None)).process(x)
    assert len(tracked) == 400 and not any(d.motion for d in tracked)
    cfg = load_config(None)
    cfg.frontend = FrontEndConfig(carrier_tracking_s=0.0)
    assert sum(d.motion for d in Pipeline(r.sidecar, cfg).process(x)) > 50
