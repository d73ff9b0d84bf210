"""Sound devices for ``uspd run``: a real full-duplex sound card or the room simulator, behind one interface.

Both yield blocks of microphone audio, (n, n_mics) float32 full scale, and honour ``set_tone(on)``; audio time is
the count of samples read divided by the sample rate, never the wall clock. ``sounddevice`` (the ``live`` extra,
which needs the PortAudio library) is imported only when a sound card is used; a missing package or library is a
one-line :class:`~uspd.errors.DeviceError`.
"""
from __future__ import annotations

import logging
import math
import queue
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from uspd.errors import DeviceError
from uspd.live.config import DeviceConfig, EmissionConfig
from uspd.live.tone import ToneGenerator
from uspd.recording.format import Sidecar

log = logging.getLogger(__name__)

#: Upper bound of the simulator's playback -> capture latency (s).
SIMULATED_LATENCY_MAX_S = 0.01
#: Sample rates ``uspd devices`` probes (Hz).
PROBE_RATES_HZ = (48000, 96000, 192000)


class AudioDevice(ABC):
    """A source of microphone blocks with a switchable tone. Use as a context manager (start/stop)."""

    sidecar: Sidecar
    block_frames: int

    def __init__(self) -> None:
        self.samples_read = 0  # audio time of the end of the last block = samples_read / sample_rate

    @property
    def sample_rate(self) -> int:
        return int(self.sidecar.sample_rate)

    @property
    def n_mics(self) -> int:
        return self.sidecar.n_mics

    @property
    def t_s(self) -> float:
        """Audio time (s) of the end of the last block read."""
        return self.samples_read / self.sample_rate

    @property
    def duration_s(self) -> float:
        """Length of the stream in seconds (``math.inf`` for a live device)."""
        return math.inf

    @property
    def description(self) -> str:
        return type(self).__name__

    @property
    def tone_delay_s(self) -> float:
        """Longest time (s) from ``set_tone`` until the change reaches the captured audio (excluding the fade)."""
        return 0.0

    def start(self) -> None:
        """Open the stream (the tone starts as configured)."""

    def stop(self) -> None:
        """Fade the tone out and close the stream."""

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """Next block (n, n_mics) float32, or None at the end of a finite stream."""

    @abstractmethod
    def set_tone(self, on: bool) -> None:
        """Switch the emitted tone on or off (ramped by the device)."""

    def __enter__(self) -> "AudioDevice":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------- simulated device
class SimulatedDevice(AudioDevice):
    """The room simulator as a device: renders ``scene`` with ``seed`` in blocks of ``block_s``.

    speed: 1 = real time, 10 = ten times faster, 0 = as fast as possible (no pacing). Pacing sleeps on the wall
    clock, but every time reported is audio time. ``duration_s`` overrides the scene's duration (inf = endless
    when the scene allows it). ``render_cpu_s`` accumulates the CPU time spent rendering (for cost benchmarks).
    """

    def __init__(self, scene: Any, seed: int = 0, speed: float = 1.0, block_s: float = 0.05,
                 duration_s: float | None = None, renderer: Any = None):
        super().__init__()
        if speed < 0 or math.isnan(speed):
            raise DeviceError(f"--speed: must be >= 0 (0 = as fast as possible), got {speed!r}")
        if renderer is None:
            from uspd.simulate.render import SceneRenderer

            renderer = SceneRenderer(scene, seed)
        self.renderer = renderer
        self.sidecar = renderer.sidecar
        self.speed = float(speed)
        self.block_frames = max(1, int(round(block_s * self.sample_rate)))
        scene_s = float(getattr(renderer, "duration_s", math.inf))
        self._duration_s = scene_s if duration_s is None else min(float(duration_s), scene_s)
        self._total = math.inf if math.isinf(self._duration_s) else int(round(self._duration_s * self.sample_rate))
        self.render_cpu_s = 0.0
        self.last_reference: np.ndarray | None = None
        self._wall0: float | None = None
        self._tone_on = True

    @property
    def duration_s(self) -> float:
        return self._duration_s

    @property
    def description(self) -> str:
        return "simulated device"

    @property
    def tone_on(self) -> bool:
        return self._tone_on

    @property
    def tone_delay_s(self) -> float:
        # the renderer starts a tone ramp after what it has already rendered internally (up to one block ahead),
        # then the simulated playback -> capture latency (a few ms) applies
        block = getattr(self.renderer, "block", 0)
        return block / self.sample_rate + SIMULATED_LATENCY_MAX_S

    def start(self) -> None:
        self._wall0 = time.monotonic()

    def set_tone(self, on: bool) -> None:
        self._tone_on = bool(on)
        self.renderer.set_tone(bool(on))

    def read(self) -> np.ndarray | None:
        n = self.block_frames
        if self._total is not math.inf:
            n = int(min(n, self._total - self.samples_read))
            if n <= 0:
                return None
        c0 = time.process_time()
        mics, reference = self.renderer.render(n)
        self.render_cpu_s += time.process_time() - c0
        self.last_reference = reference
        self.samples_read += n
        if self.speed > 0:
            if self._wall0 is None:
                self._wall0 = time.monotonic()
            ahead_s = self._wall0 + self.t_s / self.speed - time.monotonic()
            if ahead_s > 0:
                time.sleep(ahead_s)
        return np.asarray(mics, dtype=np.float32)


# --------------------------------------------------------------------------------------------- sound card
def import_sounddevice() -> ModuleType:
    """Import ``sounddevice`` or raise a one-line DeviceError saying what to install."""
    try:
        import sounddevice as sd  # noqa: PLC0415 (optional dependency, the `live` extra)
    except ImportError:
        raise DeviceError(
            "sound card support needs the 'live' extra: pip install 'uspd[live]' "
            "(or try without hardware: uspd run --simulate walk-in)"
        ) from None
    except OSError as exc:
        raise DeviceError(
            f"sounddevice cannot load the PortAudio library ({exc}): install it (Debian/Ubuntu: "
            "apt install libportaudio2; macOS: brew install portaudio), or try: uspd run --simulate walk-in"
        ) from None
    return sd


@dataclass
class DeviceInfo:
    """One sound device as PortAudio reports it, with the probed sample rates (Hz) per direction."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    input_rates_hz: list[int]
    output_rates_hz: list[int]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _probe(check: Any, index: int, channels: int, rates: tuple[int, ...]) -> list[int]:
    ok = []
    if channels <= 0:
        return ok
    for rate in rates:
        try:
            check(device=index, channels=channels, samplerate=rate)
        except Exception:  # sounddevice raises PortAudioError / ValueError for unsupported settings
            continue
        ok.append(int(rate))
    return ok


def list_devices(sd: ModuleType | None = None, rates: tuple[int, ...] = PROBE_RATES_HZ) -> list[DeviceInfo]:
    """Every PortAudio device with its channel counts and which of ``rates`` it accepts (probed with 1 channel)."""
    sd = sd or import_sounddevice()
    try:
        devices = list(sd.query_devices())
        hostapis = list(sd.query_hostapis())
    except Exception as exc:
        raise DeviceError(f"cannot query sound devices: {exc}") from None
    out = []
    for i, d in enumerate(devices):
        index = int(d.get("index", i))
        api = d.get("hostapi", 0)
        api_name = hostapis[api]["name"] if isinstance(api, int) and 0 <= api < len(hostapis) else str(api)
        n_in, n_out = int(d.get("max_input_channels", 0)), int(d.get("max_output_channels", 0))
        out.append(DeviceInfo(
            index=index, name=str(d.get("name", f"device {index}")), hostapi=api_name,
            max_input_channels=n_in, max_output_channels=n_out,
            default_samplerate=float(d.get("default_samplerate", 0.0)),
            input_rates_hz=_probe(sd.check_input_settings, index, min(n_in, 1), rates),
            output_rates_hz=_probe(sd.check_output_settings, index, min(n_out, 1), rates),
        ))
    return out


def _resolve(devices: list[DeviceInfo], spec: str | int, kind: str, default_index: int | None) -> DeviceInfo:
    """The device meant by ``spec`` (index, digits, name substring, or ""/-1 for the default) for ``kind``."""
    channels_of = (lambda d: d.max_input_channels) if kind == "input" else (lambda d: d.max_output_channels)
    candidates = [d for d in devices if channels_of(d) > 0]
    if not candidates:
        raise DeviceError(f"no sound {kind} device found (see: uspd devices)")
    if isinstance(spec, str) and spec.strip().lstrip("-").isdigit():
        spec = int(spec.strip())
    if spec == "" or spec == -1:
        if default_index is not None and default_index >= 0:
            for d in candidates:
                if d.index == default_index:
                    return d
        return candidates[0]
    if isinstance(spec, int):
        for d in devices:
            if d.index == spec:
                if channels_of(d) <= 0:
                    raise DeviceError(f"[device].{kind}: device #{spec} '{d.name}' has no {kind} channels")
                return d
        raise DeviceError(f"[device].{kind}: no device #{spec} (see: uspd devices)")
    matches = [d for d in candidates if spec.lower() in d.name.lower()]
    if not matches:
        names = "; ".join(f"#{d.index} {d.name}" for d in candidates)
        raise DeviceError(f"[device].{kind}: no {kind} device matches '{spec}' (available: {names})")
    return matches[0]


def _default_indices(sd: ModuleType) -> tuple[int | None, int | None]:
    try:
        dev = sd.default.device
        return int(dev[0]), int(dev[1])
    except Exception:
        return None, None


def check_device(cfg: DeviceConfig, sd: ModuleType | None = None) -> tuple[DeviceInfo, DeviceInfo]:
    """Resolve the input and output devices of ``cfg`` and check they can do its rate and channels.

    Raises a one-line DeviceError that says what the device can do when it cannot do what is needed.
    """
    sd = sd or import_sounddevice()
    devices = list_devices(sd, rates=tuple(sorted(set(PROBE_RATES_HZ) | {cfg.sample_rate})))
    d_in, d_out = _default_indices(sd)
    dev_in = _resolve(devices, cfg.input, "input", d_in)
    dev_out = _resolve(devices, cfg.output, "output", d_out)
    for kind, dev, need, have, check in (
        ("input", dev_in, cfg.channels, dev_in.max_input_channels, sd.check_input_settings),
        ("output", dev_out, cfg.output_channels, dev_out.max_output_channels, sd.check_output_settings),
    ):
        rates = dev.input_rates_hz if kind == "input" else dev.output_rates_hz
        can = f"it can do up to {have} {kind} channel(s) at {', '.join(map(str, rates)) or 'none of'} Hz"
        if need > have:
            raise DeviceError(
                f"{kind} device #{dev.index} '{dev.name}' cannot {'record' if kind == 'input' else 'play'} "
                f"{need} channel(s) ([device].{'channels' if kind == 'input' else 'output_channels'}): {can}"
            )
        try:
            check(device=dev.index, channels=need, samplerate=cfg.sample_rate)
        except Exception:
            raise DeviceError(
                f"{kind} device #{dev.index} '{dev.name}' cannot do {need} channel(s) at {cfg.sample_rate} Hz "
                f"([device].sample_rate): {can}"
            ) from None
    return dev_in, dev_out


class SoundcardDevice(AudioDevice):
    """A full-duplex sound card through sounddevice: the stream callback writes the tone and queues the mic blocks.

    The callback only generates the tone and copies the input (no processing there); the service reads blocks
    from a bounded queue. Blocks dropped because the reader fell behind are counted (``dropped_blocks``) and the
    audio time still advances over them.
    """

    def __init__(self, device: DeviceConfig, emission: EmissionConfig, sd: ModuleType | None = None,
                 queue_blocks: int = 200, read_timeout_s: float = 5.0):
        super().__init__()
        self.sd = sd or import_sounddevice()
        self.cfg = device
        self.dev_in, self.dev_out = check_device(device, self.sd)
        self.block_frames = device.block_frames()
        self.sidecar = Sidecar(
            sample_rate=device.sample_rate,
            carrier_hz=[device.carrier()],
            mic_positions_m=device.positions_m(),
            reference=None,
            extra={"device": {"input": self.dev_in.name, "output": self.dev_out.name},
                   "emission_level_dbfs": emission.level_dbfs},
        )
        self.tone = ToneGenerator(device.sample_rate, device.carrier(), emission.amplitude, emission.fade_s)
        self.fade_s = emission.fade_s
        self._queue: queue.Queue = queue.Queue(maxsize=queue_blocks)
        self._stream: Any = None
        self.read_timeout_s = read_timeout_s
        self.dropped_blocks = 0
        self.status_flags = 0
        self._captured = 0  # samples captured by the callback so far

    @property
    def description(self) -> str:
        if self.dev_in.index == self.dev_out.index:
            return f"#{self.dev_in.index} {self.dev_in.name}"
        return f"in #{self.dev_in.index} {self.dev_in.name} / out #{self.dev_out.index} {self.dev_out.name}"

    @property
    def tone_delay_s(self) -> float:
        # the next callback starts the fade; it reaches the mics after the output + input latency
        latency = getattr(self._stream, "latency", None) if self._stream is not None else None
        try:
            return self.block_frames / self.sample_rate + float(sum(latency))
        except TypeError:
            return self.block_frames / self.sample_rate + 0.2

    def _callback(self, indata: np.ndarray, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.status_flags += 1
        outdata[:] = self.tone.generate(frames)[:, None]
        start = self._captured
        self._captured += frames
        try:
            self._queue.put_nowait((start, np.array(indata[:, : self.cfg.channels], dtype=np.float32)))
        except queue.Full:
            self.dropped_blocks += 1

    def start(self) -> None:
        self.tone.set_on(True)
        try:
            self._stream = self.sd.Stream(
                samplerate=self.cfg.sample_rate, blocksize=self.block_frames,
                device=(self.dev_in.index, self.dev_out.index),
                channels=(self.cfg.channels, self.cfg.output_channels), dtype="float32",
                latency=self.cfg.latency, callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:
            raise DeviceError(f"cannot open the sound device {self.description}: {exc}") from None

    def stop(self) -> None:
        if self._stream is None:
            return
        self.tone.set_on(False)
        deadline = time.monotonic() + self.fade_s + 0.5
        while not self.tone.silent and time.monotonic() < deadline:  # let the callback play the fade out
            time.sleep(0.01)
        try:
            self._stream.stop()
            self._stream.close()
        finally:
            self._stream = None

    def set_tone(self, on: bool) -> None:
        self.tone.set_on(on)

    def read(self) -> np.ndarray | None:
        try:
            item = self._queue.get(timeout=self.read_timeout_s)
        except queue.Empty:
            raise DeviceError(
                f"no audio from {self.description} for {self.read_timeout_s:g} s (device busy or disconnected?)"
            ) from None
        start, block = item
        if start != self.samples_read:
            log.warning("audio processing fell behind: %.2f s of audio dropped (%d block(s) so far)",
                        (start - self.samples_read) / self.sample_rate, self.dropped_blocks)
        self.samples_read = start + len(block)
        return block
