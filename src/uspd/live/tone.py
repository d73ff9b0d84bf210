"""The emitted tone: a phase-continuous oscillator with raised-cosine fades (never a click).

Switching a tone on or off abruptly puts a broadband transient into the loudspeaker, which is audible as a click.
:class:`ToneGenerator` instead moves its gain along ``g(x) = (1 - cos(pi x)) / 2`` with ``x`` ramping between 0 and 1
over ``fade_s``; a request in the middle of a fade reverses the ramp from where it is. The oscillator's phase comes
from an integer sample counter, so it never jumps, also across off periods and after days of running.
"""
from __future__ import annotations

import math

import numpy as np


class ToneGenerator:
    """Sine tone of ``carrier_hz`` at ``amplitude`` (peak, full scale = 1) with fades of ``fade_s`` seconds.

    ``generate(n)`` returns the next ``n`` samples, (n,) float32; ``set_on(bool)`` requests a fade in or out.
    Starts silent and off unless ``on=True``.
    """

    def __init__(self, sample_rate: int, carrier_hz: float, amplitude: float, fade_s: float, on: bool = False):
        if sample_rate <= 0 or not (0 < carrier_hz < sample_rate / 2):
            raise ValueError(f"carrier {carrier_hz} Hz must lie between 0 and Nyquist of {sample_rate} Hz")
        self.sample_rate = int(sample_rate)
        self.carrier_hz = float(carrier_hz)
        self.amplitude = float(amplitude)
        self.fade_samples = max(1, int(round(fade_s * sample_rate)))
        self._n = 0  # samples generated so far (audio time of the next sample * sample_rate)
        self._x = 1.0 if on else 0.0  # fade position 0 (silent) .. 1 (full)
        self._on = bool(on)
        # An integer carrier uses exact integer phase arithmetic: phase = 2 pi ((n * f0) mod fs) / fs.
        self._int_f0 = int(self.carrier_hz) if float(self.carrier_hz).is_integer() else None

    @property
    def on(self) -> bool:
        """The requested state (the gain may still be fading towards it)."""
        return self._on

    @property
    def gain(self) -> float:
        """Current envelope gain 0..1 (before ``amplitude``)."""
        return 0.5 - 0.5 * math.cos(math.pi * self._x)

    @property
    def silent(self) -> bool:
        """True when off and fully faded out."""
        return not self._on and self._x <= 0.0

    @property
    def settled(self) -> bool:
        """True when the gain has reached the requested state (no fade in progress)."""
        return self._x == (1.0 if self._on else 0.0)

    @property
    def samples_generated(self) -> int:
        return self._n

    def set_on(self, on: bool) -> None:
        """Request the tone on or off; the change happens as a fade over the next ``fade_s``."""
        self._on = bool(on)

    def _phase(self, n: int) -> np.ndarray:
        idx = np.arange(self._n, self._n + n, dtype=np.int64)
        if self._int_f0 is not None:
            return (2 * np.pi / self.sample_rate) * ((idx * self._int_f0) % self.sample_rate)
        cycles = (idx.astype(np.float64) * (self.carrier_hz / self.sample_rate)) % 1.0
        return 2 * np.pi * cycles

    def envelope(self, n: int) -> np.ndarray:
        """Advance the fade by ``n`` samples; (n,) float64 gains 0..1."""
        step = 1.0 / self.fade_samples
        target = 1.0 if self._on else 0.0
        if self._x == target:
            return np.full(n, self.gain)
        direction = 1.0 if self._on else -1.0
        x = np.clip(self._x + direction * step * np.arange(1, n + 1), 0.0, 1.0)
        self._x = float(x[-1])
        return 0.5 - 0.5 * np.cos(np.pi * x)

    def generate(self, n: int) -> np.ndarray:
        """The next ``n`` samples of the tone, (n,) float32 in full scale."""
        if n <= 0:
            return np.zeros(0, np.float32)
        env = self.envelope(n)
        if not env.any():
            out = np.zeros(n, np.float32)
        else:
            out = (self.amplitude * env * np.sin(self._phase(n))).astype(np.float32)
        self._n += n
        return out
