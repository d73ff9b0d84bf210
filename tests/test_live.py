"""Live service parts: [device]/[emission] config, the tone ramps, sound-card capability errors (a fake sounddevice),
the duty cycle (presence holds while the tone is off), the terminal view."""
from __future__ import annotations

import io
import json
import math
import sys
import threading
import time
import types

import numpy as np
import pytest
from scipy import signal

from uspd.config import load_config
from uspd.errors import ConfigError
from uspd.live.config import DeviceConfig, EmissionConfig
from uspd.live.duty import DutyCycle
from uspd.live.tone import ToneGenerator

FS = 96000


# ------------------------------------------------------------------------------------------------ config
def _write(tmp_path, text):
    p = tmp_path / "uspd.toml"
    p.write_text(text)
    return p


def test_device_and_emission_config_load_and_derive(tmp_path):
    cfg = load_config(_write(tmp_path, "[device]\nsample_rate = 48000\nchannels = 3\nring_radius_m = 0.04\n"
                                       "[emission]\nlevel_dbfs = -26\noff_after_presence_s = 30\n"))
    dev, em = cfg.device, cfg.emission
    assert dev.carrier() == 20000.0  # automatic carrier at 48 kHz
    pos = np.array(dev.positions_m())
    assert pos.shape == (3, 3)
    np.testing.assert_allclose(np.hypot(pos[:, 0], pos[:, 1]), 0.04)
    assert em.amplitude == pytest.approx(10 ** (-26 / 20))
    assert em.off_after_presence_s == 30.0
    assert DeviceConfig().carrier() == 40000.0 and DeviceConfig().block_frames() == 4800


@pytest.mark.parametrize("text, needle", [
    ("[device]\nsample_rate = 44100\n", "sample_rate"),
    ("[device]\nsample_rate = 48000\ncarrier_hz = 40000\n", "carrier_hz"),
    ("[device]\nchannels = 2\nmic_positions_m = [[0, 0, 0]]\n", "mic_positions_m"),
    ("[device]\nlatency = \"medium\"\n", "latency"),
    ("[device]\nbogus = 1\n", "bogus"),
    ("[emission]\nfade_s = 0\n", "fade_s"),
    ("[emission]\nlevel_dbfs = 6\n", "level_dbfs"),
    ("[emission]\nvacant_off_s = 5\nvacant_on_s = 0.5\n", "vacant_on_s"),
])
def test_bad_live_config_is_one_line_error(tmp_path, text, needle):
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, text))
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg and "uspd.toml" in msg


# ------------------------------------------------------------------------------------------------ tone
def audible_peak_db(x: np.ndarray, fs: int, amplitude: float, cutoff_hz: float = 18000.0) -> float:
    """Peak of ``x`` below ``cutoff_hz`` (zero-phase 10th-order low-pass), in dB re the tone amplitude.

    ``x`` is tapered over its first and last 5 ms so the cut edges of the excerpt do not count as clicks.
    """
    x = np.asarray(x, float) * signal.windows.tukey(len(x), alpha=2 * 0.005 * fs / len(x))
    sos = signal.butter(10, cutoff_hz, fs=fs, output="sos")
    low = signal.sosfiltfilt(sos, x)
    return 20 * np.log10(np.max(np.abs(low)) / amplitude + 1e-300)


def splatter_db(x: np.ndarray, fs: int, amplitude: float, below_hz: float = 20000.0) -> float:
    """Strongest bin below ``below_hz`` of a Hann-windowed ``x``, in dB re the line of a full tone over ``x``."""
    w = signal.windows.hann(len(x))
    spec = np.abs(np.fft.rfft(x * w)) / (w.sum() / 2)
    f = np.fft.rfftfreq(len(x), 1 / fs)
    return 20 * np.log10(spec[(f > 20) & (f < below_hz)].max() / amplitude)


def _switch_on_segment(gen: ToneGenerator, pre_s: float = 0.03, post_s: float = 0.07) -> np.ndarray:
    silent = gen.generate(int(pre_s * FS))
    gen.set_on(True)
    return np.concatenate([silent, gen.generate(int(post_s * FS))])


def test_tone_fade_in_has_no_click_unlike_a_hard_switch():
    amp = 0.1
    soft = _switch_on_segment(ToneGenerator(FS, 40000, amp, fade_s=0.03))
    hard = _switch_on_segment(ToneGenerator(FS, 40000, amp, fade_s=1 / FS))  # one-sample "fade": a click
    # audible band (< 18 kHz) of the emitted signal around the switch-on
    assert audible_peak_db(soft, FS, amp) < -70
    assert audible_peak_db(hard, FS, amp) > -40
    # spectrum of the transient (50 ms around the switch-on): no broadband splatter below 20 kHz
    around = slice(int(0.01 * FS), int(0.06 * FS))
    assert splatter_db(soft[around], FS, amp) < -120
    assert splatter_db(hard[around], FS, amp) > -90


def test_tone_envelope_steps_are_small_and_reversal_is_continuous():
    amp, fade_s = 0.5, 0.02
    gen = ToneGenerator(FS, 40000, amp, fade_s)
    n_fade = int(fade_s * FS)
    gen.set_on(True)
    env_on = gen.envelope(n_fade // 2)
    gen.set_on(False)  # reverse in the middle of the fade
    env_off = gen.envelope(n_fade)
    env = np.concatenate([[0.0], env_on, env_off])
    max_step = np.max(np.abs(np.diff(env)))
    assert max_step <= math.pi / (2 * n_fade) * 1.001  # raised cosine: max slope pi/2 per fade length
    assert env[-1] == 0.0 and gen.silent
    assert np.max(env) == pytest.approx(0.5, abs=0.01)  # turned round at half way, no jump to full or zero


def test_tone_phase_is_continuous_across_off_periods():
    amp = 0.25
    gen = ToneGenerator(FS, 40000, amp, fade_s=0.01, on=True)
    a = gen.generate(1000)
    gen.set_on(False)
    gen.generate(5 * FS + 7)  # long off period
    gen.set_on(True)
    gen.generate(int(0.01 * FS) + 10)  # fade back in
    n0 = gen.samples_generated
    b = gen.generate(1000)
    n = np.arange(n0, n0 + 1000)
    np.testing.assert_allclose(b, amp * np.sin(2 * np.pi * 40000 * n / FS), atol=1e-6)
    np.testing.assert_allclose(a, amp * np.sin(2 * np.pi * 40000 * np.arange(1000) / FS), atol=1e-6)
    # a non-integer carrier uses the float phase path: same waveform as the analytic sine
    g2 = ToneGenerator(FS, 38123.5, amp, 0.01, on=True)
    g2.generate(12345)
    np.testing.assert_allclose(g2.generate(500), amp * np.sin(2 * np.pi * 38123.5 * np.arange(12345, 12845) / FS),
                               atol=1e-5)


# ------------------------------------------------------------------------------------------------ fake sounddevice
class FakeStream:
    """Calls the callback from a thread, like PortAudio; records what was played."""

    def __init__(self, owner, samplerate, blocksize, device, channels, dtype, latency, callback):
        self.owner, self.blocksize, self.channels, self.callback = owner, blocksize, channels, callback
        self.played: list[np.ndarray] = []
        self._run = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        owner.streams.append(self)

    def _loop(self):
        k = 0
        while self._run.is_set():
            indata = np.full((self.blocksize, self.channels[0]), 0.01 * (k % 100), np.float32)
            out = np.zeros((self.blocksize, self.channels[1]), np.float32)
            self.callback(indata, out, self.blocksize, None, None)
            self.played.append(out.copy())
            k += 1
            time.sleep(0.0005)

    def start(self):
        self._run.set()
        self._thread.start()

    def stop(self):
        self._run.clear()
        self._thread.join(2)

    def close(self):
        pass


def fake_sounddevice(devices, supported):
    """A stand-in ``sounddevice`` module: ``supported[index]`` = (max_in, max_out, set of rates)."""
    sd = types.ModuleType("sounddevice")
    sd.streams = []

    def check(kind):
        def _check(device=None, channels=None, samplerate=None, **kw):
            max_in, max_out, rates = supported[device]
            limit = max_in if kind == "in" else max_out
            if channels > limit or samplerate not in rates:
                raise ValueError("Invalid number of channels" if channels > limit else "Invalid sample rate")
        return _check

    sd.query_devices = lambda: devices
    sd.query_hostapis = lambda: [{"name": "ALSA"}]
    sd.check_input_settings = check("in")
    sd.check_output_settings = check("out")
    sd.default = types.SimpleNamespace(device=(0, 0))
    sd.Stream = lambda **kw: FakeStream(sd, **kw)
    return sd


def _dev(i, name, n_in, n_out):
    return {"index": i, "name": name, "hostapi": 0, "max_input_channels": n_in, "max_output_channels": n_out,
            "default_samplerate": 48000.0}


@pytest.fixture
def fake_sd(monkeypatch):
    devices = [_dev(0, "Laptop Analog", 2, 2), _dev(1, "UMA-8 USB array", 8, 2), _dev(2, "HDMI out", 0, 8)]
    supported = {0: (2, 2, {44100, 48000}), 1: (8, 2, {48000, 96000}), 2: (0, 8, {48000, 96000, 192000})}
    sd = fake_sounddevice(devices, supported)
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    return sd


def test_devices_lists_rates_and_channels(fake_sd, capsys):
    from uspd.cli import main
    from uspd.live.audio import list_devices

    info = {d.index: d for d in list_devices()}
    assert info[0].input_rates_hz == [48000] and info[1].input_rates_hz == [48000, 96000]
    assert info[2].input_rates_hz == [] and info[2].output_rates_hz == [48000, 96000, 192000]
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    uma = next(line for line in out.splitlines() if "UMA-8" in line)
    assert "48,96" in uma and "yes (96 kHz)" in uma
    assert "48 kHz only" in next(line for line in out.splitlines() if "Laptop" in line)


@pytest.mark.parametrize("device_toml, needle", [
    ("input = \"Laptop\"\noutput = \"Laptop\"\n", "cannot record 4 channel(s)"),       # 2-channel laptop mic
    ("input = \"Laptop\"\noutput = \"Laptop\"\nchannels = 2\n", "at 96000 Hz"),     # 2 ch OK, but 48 kHz max
    ("input = \"UMA\"\noutput = \"HDMI\"\noutput_channels = 9\n", "cannot play 9"),  # HDMI has 8 outputs
    ("input = \"nothing like this\"\n", "no input device matches"),
    ("input = 7\n", "no device #7"),
    ("input = 2\n", "has no input channels"),
])
def test_device_that_cannot_do_it_says_what_it_can(fake_sd, tmp_path, capsys, device_toml, needle):
    from uspd.cli import main

    cfg = _write(tmp_path, "[device]\n" + device_toml)
    assert main(["run", "--config", str(cfg), "--duration-s", "1", "--no-view"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err
    if "cannot" in needle:
        assert "it can do up to" in err  # says what the device can do


def test_missing_portaudio_is_one_line(monkeypatch, capsys):
    from uspd.cli import main

    class Broken(types.ModuleType):
        pass

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert main(["devices"]) == 2
    err = capsys.readouterr().err
    assert "PortAudio" in err and "libportaudio2" in err and len(err.strip().splitlines()) == 1


def test_soundcard_device_plays_a_ramped_tone_and_reads_blocks(fake_sd):
    from uspd.live.audio import SoundcardDevice

    dev_cfg = DeviceConfig(input="UMA", output="UMA", channels=4, sample_rate=96000, block_s=0.01)
    em = EmissionConfig(level_dbfs=-20, fade_s=0.02)
    dev = SoundcardDevice(dev_cfg, em, sd=fake_sd)
    assert dev.sidecar.n_mics == 4 and dev.sidecar.carrier_hz == [40000.0]
    with dev:
        blocks = [dev.read() for _ in range(10)]
        assert all(b.shape == (960, 4) and b.dtype == np.float32 for b in blocks)
        assert dev.t_s == pytest.approx(10 * 0.01)
    played = np.concatenate(fake_sd.streams[0].played)[:, 0]
    amp = 10 ** (-20 / 20)
    assert played[0] == 0.0 and np.max(np.abs(played)) == pytest.approx(amp, rel=1e-3)
    assert abs(played[-1]) < 1e-6  # stop() faded the tone out before closing
    assert audible_peak_db(played, FS, amp) < -70  # neither start nor stop clicks


# ------------------------------------------------------------------------------------------------ duty cycle
def _drive(duty, decisions_at, t_end, dt=0.05):
    """Step ``duty`` in hops; decisions_at(t) -> (motion, presence); returns the tone changes."""
    changes = []
    t = 0.0
    while t < t_end - 1e-9:
        t = round(t + dt, 6)
        if duty.listening(t - dt):
            duty.observe(*decisions_at(t))
        ch = duty.step(t)
        if ch:
            changes.append(ch)
    return changes


def test_duty_cycle_switches_off_after_confirmed_presence_and_rechecks():
    cfg = EmissionConfig(off_after_presence_s=20, recheck_s=5, settle_s=0.5, fade_s=0.02)
    duty = DutyCycle(cfg)
    # motion 2-6 s (presence on from 2 s), then a seated person moving briefly every 30 s
    def state(t):
        motion = 2 <= t < 6 or (t % 30) < 1.0 and t > 10
        return motion, t >= 2
    ch = _drive(duty, state, 120)
    offs = [c for c in ch if not c.on]
    ons = [c for c in ch if c.on]
    assert offs and offs[0].t >= 6 and offs[0].t <= 6 + 5 + 0.6  # after motion ended and >= recheck_s listening
    assert offs[0].until_t == pytest.approx(offs[0].t + 20)
    assert ons[0].t == pytest.approx(offs[0].until_t, abs=0.051)
    assert 0.2 < duty.on_fraction < 0.8
    # never off while vacant (without vacant pulsing) and never off in the middle of motion
    duty2 = DutyCycle(cfg)
    assert _drive(duty2, lambda t: (False, False), 60) == [] and duty2.on_fraction == 1.0
    duty3 = DutyCycle(cfg)
    assert _drive(duty3, lambda t: (True, t > 1), 60) == []


def test_duty_cycle_vacant_pulsing_and_disabled():
    cfg = EmissionConfig(vacant_on_s=3, vacant_off_s=7, settle_s=0.5, fade_s=0.02)
    duty = DutyCycle(cfg)
    _drive(duty, lambda t: (False, False), 100)
    assert duty.on_fraction == pytest.approx(0.3, abs=0.02)
    off = DutyCycle(EmissionConfig(duty_cycle=False))
    assert _drive(off, lambda t: (t % 30 < 2, True), 100) == []


# ------------------------------------------------------------------------------------------------ service + duty
class ScriptedDevice:
    """A stand-in AudioDevice: channel 0 carries the 'motion score' script(t); zeros while the tone is off."""

    def __init__(self, script, duration_s, fs=1000, block_s=0.05, lost=None):
        from uspd.recording.format import Sidecar

        self.sidecar = Sidecar(sample_rate=fs, carrier_hz=[400.0], mic_positions_m=[[0.03, 0, 0]])
        self.script, self.duration_s, self.block = script, duration_s, int(block_s * fs)
        self.samples_read, self.tone_on, self.tone_log = 0, True, []
        self.lost = lost  # (from_s, to_s): audio that never arrives (the reader fell behind)

    sample_rate = property(lambda self: self.sidecar.sample_rate)
    t_s = property(lambda self: self.samples_read / self.sample_rate)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tone_log.append(("stop", self.t_s))

    def set_tone(self, on):
        self.tone_on = on
        self.tone_log.append((on, self.t_s))

    def read(self):
        if self.t_s >= self.duration_s - 1e-9:
            return None
        if self.lost and abs(self.t_s - self.lost[0]) < 1e-9:
            self.samples_read += int(round((self.lost[1] - self.lost[0]) * self.sample_rate))
        value = self.script(self.t_s) if self.tone_on else 0.0
        self.samples_read += self.block
        return np.full((self.block, 1), value, np.float32)


class HopFrontEnd:
    """Stand-in front end: one frame per 50 ms block, its value the block mean; counts fed samples."""

    hop_s = 0.05

    def __init__(self, fs):
        self.fs, self.n, self.fed = fs, 0, 0

    def process(self, chunk):
        self.n += len(chunk)
        self.fed += len(chunk)
        return types.SimpleNamespace(t_s=np.array([self.n / self.fs]), value=np.array([chunk.mean()]))

    def reset(self):
        self.n = 0


class StandInPipeline:
    """Front end -> score = frame value, major = 1 -> the real PresenceTracker."""

    def __init__(self, fs, presence_cfg):
        from uspd.presence.tracker import PresenceTracker

        self.frontend = HopFrontEnd(fs)
        self.tracker = PresenceTracker(presence_cfg)
        self.scored = []

    def process(self, chunk):
        frames = self.frontend.process(chunk)
        self.scored.extend(frames.t_s.tolist())
        scores = types.SimpleNamespace(score=frames.value, major=np.ones_like(frames.value))
        return self.tracker.update(frames.t_s, scores)


def _run_service(duty_cycle, script, duration_s, vacancy_s=10.0, lost=None):
    from uspd.live.service import LiveService
    from uspd.presence.tracker import PresenceConfig

    dev = ScriptedDevice(script, duration_s, lost=lost)
    pipe = StandInPipeline(dev.sample_rate, PresenceConfig(vacancy_timeout_s=vacancy_s, hangover_s=0.5))
    em = EmissionConfig(duty_cycle=duty_cycle, off_after_presence_s=20, recheck_s=2, settle_s=0.5, fade_s=0.02)
    events = []

    class Collect:
        def decision(self, d):
            pass

        def event(self, ev, d):
            events.append(ev)

        def close(self):
            events.append({"type": "closed", "t": dev.t_s})

    stats = LiveService(dev, pipe, em, sinks=[Collect()]).run()
    return events, stats, dev, pipe


def test_duty_cycle_holds_presence_while_the_tone_is_off_and_pauses_detection():
    walk = lambda t: 0.9 if 2.0 <= t < 5.0 else 0.0  # noqa: E731 -- a walk-in at 2-5 s, then nobody moves
    ev_off, stats_off, _, _ = _run_service(False, walk, 40)
    ev_on, stats_on, dev, pipe = _run_service(True, walk, 40)
    by_type = lambda evs, k: [e["t"] for e in evs if e["type"] == k]  # noqa: E731
    # without the duty cycle: presence off 10 s after the last motion (~5.5 s)
    (p_on,), (p_off,) = by_type(ev_off, "presence_on"), by_type(ev_off, "presence_off")
    assert 2.0 <= p_on < 2.3 and 15.0 <= p_off <= 16.0
    # with it: the tone goes off after the walk; presence HOLDS during the off period (20 s)
    (t_off,), (t_on,) = by_type(ev_on, "tone_off"), by_type(ev_on, "tone_on")
    assert 5.0 < t_off < 8.0 and t_on == pytest.approx(t_off + 20, abs=0.06)
    (p_off_duty,) = by_type(ev_on, "presence_off")
    assert p_off_duty > t_on  # not while the tone was off
    # the countdown was frozen: the quiet time before the off period + after listening resumed = 10 s
    quiet_before = t_off - 5.5
    listen_from = t_on + 0.02 + 0.5
    assert p_off_duty == pytest.approx(listen_from + (10 - quiet_before), abs=0.2)
    # detection paused: no hop was scored while the tone was off or settling
    scored = np.array(pipe.scored)
    assert not np.any((scored > t_off + 0.05) & (scored < listen_from))
    assert stats_on.blocks_paused >= 19 / 0.05 and stats_on.tone_on_fraction < 0.6 < stats_off.tone_on_fraction
    assert pipe.frontend.fed < dev.samples_read * 0.6  # compute skipped while off
    assert ev_on[-1]["type"] == "closed" and dev.tone_log[-1][0] == "stop"


def test_motion_during_the_off_period_is_seen_at_the_recheck():
    # walk-in at 2-5 s; the person walks again at 15-35 s, inside the off period (~6-26 s)
    script = lambda t: 0.9 if (2.0 <= t < 5.0 or 15.0 <= t < 35.0) else 0.0  # noqa: E731
    events, _, _, _ = _run_service(True, script, 45)
    starts = [e["t"] for e in events if e["type"] == "motion_start"]
    (t_on,) = [e["t"] for e in events if e["type"] == "tone_on"][:1]
    assert len(starts) == 2 and starts[1] >= t_on + 0.5  # seen once listening resumed, not before
    assert [e["type"] for e in events].count("presence_off") == 0


# ------------------------------------------------------------------------------------------------ view
def test_view_lines_when_not_a_terminal():
    from uspd.live.view import TerminalView

    out = io.StringIO()
    view = TerminalView(stream=out)  # StringIO is not a TTY: one line per event, no escapes
    view.update(t_s=3.0, score=0.9, motion=True, kind="major", presence=True)
    view.event({"type": "presence_on", "t": 3.05, "kind": None, "data": {}})
    view.event({"type": "tone_off", "t": 70.0, "kind": None, "data": {"reason": "presence confirmed",
                                                                        "until_t": 130.0}})
    view.close()
    lines = out.getvalue().splitlines()
    assert lines == ["0:00:03.0  presence ON",
                     "0:01:10.0  tone off (presence confirmed; back on at 0:02:10.0)"]
    assert "\x1b" not in out.getvalue()


def test_view_panel_redraws_in_place():
    from uspd.live.view import TerminalView

    out = io.StringIO()
    view = TerminalView(stream=out, live=True, color=False, refresh_s=0.0, title="T")
    view.unicode = False
    view.update(t_s=1.0, score=0.25, threshold=0.6, presence=False)
    first = out.getvalue()
    n_lines = first.count("\n")
    view.update(t_s=2.0, score=0.8, motion=True, kind="major", presence=True, presence_since_s=1.9)
    second = out.getvalue()[len(first):]
    assert second.startswith(f"\x1b[{n_lines}F")  # cursor back to the top of the panel, then redrawn
    assert "score       0.25 " + "#" * 8 + "-" * 10 + "|" + "-" * 11 + "   threshold 0.60" in first  # bar of 30 cells, threshold marker at 0.6
    assert "MOTION (major)" in second and "OCCUPIED since 0:00:01.9" in second
    assert "vacant" in first and "still" in first
    view.close()
    assert out.getvalue().endswith("\x1b[?25h")  # cursor shown again


def test_simulated_device_honours_tone_switches_without_clicks():
    from uspd.live.audio import SimulatedDevice

    dev = SimulatedDevice("empty", seed=1, speed=0, block_s=0.05, duration_s=3.0)
    refs, mics = [], []
    with dev:
        while (block := dev.read()) is not None:
            if dev.t_s == pytest.approx(0.5):
                dev.set_tone(False)
            if dev.t_s == pytest.approx(1.6):
                dev.set_tone(True)
            refs.append(dev.last_reference)
            mics.append(block)
    ref = np.concatenate(refs).astype(float)
    mic = np.concatenate(mics).astype(float)
    fs = dev.sample_rate
    assert len(ref) == 3 * fs and dev.t_s == pytest.approx(3.0)
    amp = np.max(np.abs(ref[: fs // 2]))
    rms = lambda x: np.sqrt(np.mean(x ** 2))  # noqa: E731
    quiet = slice(int(1.1 * fs), int(1.5 * fs))  # the off period (the switch lags by at most tone_delay_s)
    assert rms(ref[quiet]) < 1e-4 * amp and rms(mic[quiet, 0]) < 0.02 * rms(mic[: fs // 2, 0])
    assert rms(ref[int(2.4 * fs):]) == pytest.approx(rms(ref[: fs // 2]), rel=0.01)  # back on, same level
    assert audible_peak_db(ref, fs, amp) < -70  # both switches ramped: nothing audible in what was played


def test_simulated_device_paces_audio_time_at_speed():
    from uspd.live.audio import SimulatedDevice

    dev = SimulatedDevice("empty", seed=2, speed=4.0, block_s=0.05, duration_s=0.6)
    w0 = time.monotonic()
    n = 0
    with dev:
        while (block := dev.read()) is not None:
            n += len(block)
    assert n == int(0.6 * dev.sample_rate) and dev.t_s == pytest.approx(0.6)
    assert time.monotonic() - w0 >= 0.6 / 4 - 0.01  # never ahead of real time x speed


def test_lost_audio_restarts_detection_in_audio_time_and_holds_presence():
    walk = lambda t: 0.9 if 2.0 <= t < 5.0 else 0.0  # noqa: E731
    events, stats, dev, pipe = _run_service(False, walk, 30, vacancy_s=10.0, lost=(8.0, 12.0))
    assert stats.gaps == 1 and dev.t_s == pytest.approx(30.0)
    scored = np.array(pipe.scored)
    assert not np.any((scored > 8.0) & (scored < 12.0 + 0.5))  # nothing scored in the gap or while settling
    assert scored[-1] == pytest.approx(30.0)  # frame times are audio time after the restart
    (p_off,) = [e["t"] for e in events if e["type"] == "presence_off"]
    # the countdown froze over the gap + settling (4.5 s): last motion ~5.5 s + 10 s + 4.5 s
    assert p_off == pytest.approx(5.5 + 10 + 4.5, abs=0.2)


def test_uspd_run_on_a_sound_card_end_to_end(fake_sd, tmp_path, capsys):
    """`uspd run` through the sound-card path (fake PortAudio): tone played and faded out, stops at --duration-s."""
    from uspd.cli import main

    cfg = _write(tmp_path, f'[device]\ninput = "UMA"\noutput = "UMA"\nblock_s = 0.02\n'
                           f'[log]\npath = "{tmp_path / "ev.sqlite3"}"\n')
    out = tmp_path / "ev.jsonl"
    assert main(["run", "--config", str(cfg), "--duration-s", "1.5", "--no-view", "--jsonl", str(out),
                 "--decisions"]) == 0
    err = capsys.readouterr().err
    assert "0:00:01.5 of audio (duration)" in err
    decisions = [json.loads(line) for line in out.read_text().splitlines() if '"decision"' in line]
    assert decisions and decisions[-1]["t"] <= 1.5 + 1e-6
    played = np.concatenate(fake_sd.streams[0].played)[:, 0]
    assert np.max(np.abs(played)) == pytest.approx(0.1, rel=1e-3) and abs(played[-1]) < 1e-6


def test_restarts_of_the_real_pipeline_after_tone_off_raise_no_false_motion():
    """Empty room, tone pulsed 3 s on / 2 s off: every re-start of the real front end settles without a false alarm."""
    from uspd.live.audio import SimulatedDevice
    from uspd.live.service import LiveService, MemorySink
    from uspd.pipeline import Pipeline

    cfg = load_config(None, overrides={"emission": {"vacant_on_s": 3.0, "vacant_off_s": 2.0}})
    dev = SimulatedDevice("empty", seed=3, speed=0)  # 20 s
    sink = MemorySink(decisions=True)
    stats = LiveService(dev, Pipeline(dev.sidecar, cfg), cfg.emission, sinks=[sink]).run()
    assert len(sink.times("tone_on")) == 4 and 0.5 < stats.tone_on_fraction < 0.75
    assert sink.times("motion_start") == []
    t, score = np.array([r[0] for r in sink.rows]), np.array([r[1] for r in sink.rows])
    assert np.max(score) < cfg.presence.threshold
    for t_on in sink.times("tone_on")[:-1]:  # decisions resume in audio time, after the settle time
        first = t[t > t_on].min()
        assert t_on + cfg.emission.settle_s < first < t_on + cfg.emission.settle_s + dev.tone_delay_s + 0.2
