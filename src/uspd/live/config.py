"""The ``[device]`` and ``[emission]`` config sections used by ``uspd run`` (see :mod:`uspd.config`).

Example::

    [device]
    input = "USB Audio"        # name substring or index; "" = system default
    output = "USB Audio"
    sample_rate = 96000        # Hz: 96000 (carrier 32-45 kHz) or 48000 (carrier 18-22 kHz)
    channels = 4               # microphones recorded
    ring_radius_m = 0.035      # mics on a ring around the loudspeaker, unless mic_positions_m is given
    carrier_hz = 0             # 0 = 40 kHz at >= 96 kHz, 20 kHz at 48 kHz

    [emission]
    level_dbfs = -20.0
    fade_s = 0.03
    duty_cycle = true
    off_after_presence_s = 60
    recheck_s = 5
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from uspd.errors import ConfigError

#: Sample rates ``uspd run`` accepts (Hz).
SUPPORTED_RATES_HZ = (48000, 96000, 192000)
#: Half-width of the Doppler band that must fit between the carrier and Nyquist (Hz).
_DOPPLER_MARGIN_HZ = 1000.0
#: Lowest carrier we call inaudible enough for an always-on tone (Hz).
_MIN_CARRIER_HZ = 17000.0


def default_carrier_hz(sample_rate: int) -> float:
    """40 kHz on 96 kHz (or faster) hardware, 20 kHz on 48 kHz hardware (Hz)."""
    return 40000.0 if sample_rate >= 96000 else 20000.0


def ring_positions_m(n_mics: int, radius_m: float, z_m: float = 0.0) -> list[list[float]]:
    """``n_mics`` positions (n_mics, 3) in metres evenly spaced on a ring around the loudspeaker, first on +x."""
    return [
        [radius_m * math.cos(2 * math.pi * i / n_mics), radius_m * math.sin(2 * math.pi * i / n_mics), z_m]
        for i in range(n_mics)
    ]


def _check_range(where: str, name: str, value: float, lo: float, hi: float, unit: str) -> None:
    if not (lo <= value <= hi) or math.isnan(value):
        raise ConfigError(f"{where}.{name}: must be between {lo:g} and {hi:g} {unit}, got {value!r}")


@dataclass
class DeviceConfig:
    """``[device]``: which sound card, at what rate, with which microphone geometry and carrier.

    input/output: device name substring or index ("" or -1 = system default). sample_rate: Hz. channels: number of
    microphones recorded (input channels 1..channels). mic_positions_m: (channels, 3) metres relative to the
    loudspeaker; empty = a ring of ``ring_radius_m`` at height ``ring_z_m``. carrier_hz: tone frequency (Hz), 0 =
    automatic. block_s: audio block length (s). latency: PortAudio latency, "low", "high" or seconds.
    output_channels: output channels opened (the tone goes to every one).
    """

    input: str | int = ""
    output: str | int = ""
    sample_rate: int = 96000
    channels: int = 4
    mic_positions_m: list[list[float]] = field(default_factory=list)
    ring_radius_m: float = 0.035
    ring_z_m: float = 0.0
    carrier_hz: float = 0.0
    block_s: float = 0.05
    latency: str | float = "high"
    output_channels: int = 1

    def validate(self, where: str = "[device]") -> None:
        if self.sample_rate not in SUPPORTED_RATES_HZ:
            rates = ", ".join(str(r) for r in SUPPORTED_RATES_HZ)
            raise ConfigError(f"{where}.sample_rate: must be one of {rates} Hz, got {self.sample_rate!r}")
        _check_range(where, "channels", self.channels, 1, 32, "microphones")
        _check_range(where, "output_channels", self.output_channels, 1, 32, "channels")
        if self.mic_positions_m:
            if len(self.mic_positions_m) != self.channels:
                raise ConfigError(
                    f"{where}.mic_positions_m: {len(self.mic_positions_m)} positions for channels = {self.channels}"
                )
            for i, p in enumerate(self.mic_positions_m):
                if len(p) != 3:
                    raise ConfigError(f"{where}.mic_positions_m[{i}]: expected [x, y, z] in metres, got {p!r}")
        _check_range(where, "ring_radius_m", self.ring_radius_m, 0.0, 1.0, "m")
        _check_range(where, "block_s", self.block_s, 0.001, 0.5, "s")
        carrier = self.carrier()
        hi = self.sample_rate / 2 - _DOPPLER_MARGIN_HZ
        if not (_MIN_CARRIER_HZ <= carrier <= hi):
            raise ConfigError(
                f"{where}.carrier_hz: {carrier:g} Hz is outside {_MIN_CARRIER_HZ:g}..{hi:g} Hz "
                f"for sample_rate {self.sample_rate} Hz (0 = automatic)"
            )
        if isinstance(self.latency, str):
            if self.latency not in ("low", "high"):
                raise ConfigError(f"{where}.latency: must be \"low\", \"high\" or seconds, got {self.latency!r}")
        else:
            _check_range(where, "latency", float(self.latency), 0.0, 2.0, "s")

    def carrier(self) -> float:
        """The carrier frequency in Hz (``carrier_hz`` or the default for the sample rate)."""
        return float(self.carrier_hz) if self.carrier_hz else default_carrier_hz(self.sample_rate)

    def positions_m(self) -> list[list[float]]:
        """Microphone positions (channels, 3) in metres."""
        if self.mic_positions_m:
            return [[float(x) for x in p] for p in self.mic_positions_m]
        return ring_positions_m(self.channels, self.ring_radius_m, self.ring_z_m)

    def block_frames(self) -> int:
        """Samples per audio block."""
        return max(1, int(round(self.block_s * self.sample_rate)))


@dataclass
class EmissionConfig:
    """``[emission]``: the tone's level and ramps, and the duty cycle that saves emission and compute.

    level_dbfs: tone amplitude (peak) in dB re full scale. fade_s: raised-cosine fade in/out (s).
    Duty cycle (``duty_cycle = true``): when presence is confirmed (the room is occupied and a motion episode has
    just ended) the tone goes off for ``off_after_presence_s``; detection pauses and presence holds. The tone then
    comes back on to re-check: detection resumes after ``settle_s`` (front end settling). If motion confirms presence
    again the tone goes off again; otherwise it stays on (normal sensing, vacancy countdown) — at least ``recheck_s``
    before the next off period. ``vacant_off_s`` > 0 also pulses the tone while the room is vacant: on for
    ``vacant_on_s``, off for ``vacant_off_s`` (saves more, delays entry detection; 0 = always on while vacant).
    """

    level_dbfs: float = -20.0
    fade_s: float = 0.03
    duty_cycle: bool = True
    off_after_presence_s: float = 60.0
    recheck_s: float = 5.0
    settle_s: float = 1.0
    vacant_on_s: float = 3.0
    vacant_off_s: float = 0.0

    def validate(self, where: str = "[emission]") -> None:
        _check_range(where, "level_dbfs", self.level_dbfs, -80.0, 0.0, "dBFS")
        _check_range(where, "fade_s", self.fade_s, 0.005, 0.5, "s")
        _check_range(where, "off_after_presence_s", self.off_after_presence_s, 0.0, 86400.0, "s")
        _check_range(where, "recheck_s", self.recheck_s, 0.0, 86400.0, "s")
        _check_range(where, "settle_s", self.settle_s, 0.0, 60.0, "s")
        _check_range(where, "vacant_off_s", self.vacant_off_s, 0.0, 86400.0, "s")
        _check_range(where, "vacant_on_s", self.vacant_on_s, 0.1, 86400.0, "s")
        if self.vacant_off_s and self.vacant_on_s <= self.settle_s + self.fade_s:
            raise ConfigError(
                f"{where}.vacant_on_s: {self.vacant_on_s:g} s leaves no listening time after fade_s + settle_s"
            )

    @property
    def amplitude(self) -> float:
        """Tone peak amplitude (full scale = 1)."""
        return 10.0 ** (self.level_dbfs / 20.0)
