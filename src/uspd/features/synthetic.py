"""Synthetic Doppler test signals: a carrier, static clutter, moving point echoes and noise (no room acoustics).

For unit tests and benchmarks that must not depend on the room simulator (``uspd.simulate``): each echo is a
sinusoid at the carrier frequency shifted by Δf(t) = 2·v(t)·f0/c (v > 0 approaching), with its phase integrated
sample by sample, so a velocity profile gives exactly the Doppler track the front end should show.
Rendering is streaming: ``SyntheticScene.render(n)`` continues where the previous call stopped.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SOUND_SPEED_M_S = 343.2

VelocityFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Echo:
    """A moving reflector: amplitude re the carrier (linear, at full presence), velocity(t_s) in m/s (radial,
    > 0 approaching), active between start_s and end_s (with 50 ms raised-cosine fades). Each mic sees it with its
    own phase, and its path rate differs by up to ±2 % between mics (so the phase differences drift)."""

    amplitude: float
    velocity: VelocityFn
    start_s: float = 0.0
    end_s: float = math.inf
    phase: float = 0.0


def constant(v_m_s: float) -> VelocityFn:
    return lambda t: np.full_like(t, v_m_s, dtype=np.float64)


def walker(start_s: float, end_s: float, speed_m_s: float = 1.2, amplitude: float = 3e-3,
           stride_hz: float = 0.9) -> list[Echo]:
    """A walker: torso (with bob at twice the stride rate), two arms and two legs swinging around the torso speed;
    walks towards the device for the first half and away for the second."""
    mid = 0.5 * (start_s + end_s)

    def part(swing_m_s: float, rate: float, ph: float) -> VelocityFn:
        def v(t: np.ndarray) -> np.ndarray:
            direction = np.where(t < mid, 1.0, -1.0)
            return direction * speed_m_s + swing_m_s * np.sin(2 * np.pi * rate * t + ph)
        return v

    return [
        Echo(amplitude, part(0.1, 2 * stride_hz, 0.0), start_s, end_s, 0.1),
        Echo(0.3 * amplitude, part(0.9, stride_hz, 0.0), start_s, end_s, 1.3),
        Echo(0.3 * amplitude, part(0.9, stride_hz, np.pi), start_s, end_s, 2.1),
        Echo(0.2 * amplitude, part(1.3, stride_hz, np.pi / 2), start_s, end_s, 0.7),
        Echo(0.2 * amplitude, part(1.3, stride_hz, -np.pi / 2), start_s, end_s, 2.9),
    ]


def reach(start_s: float, duration_s: float = 0.8, distance_m: float = 0.3, amplitude: float = 3e-4) -> list[Echo]:
    """A seated reach: minimum-jerk movement of ``distance_m`` in ``duration_s`` (peak speed 1.875·d/T), out and
    back (two strokes)."""

    def v(t: np.ndarray) -> np.ndarray:
        tau = (t - start_s) / duration_s
        out = np.zeros_like(t, dtype=np.float64)
        for k, sign in ((0, 1.0), (1, -1.0)):
            u = tau - k
            inside = (u >= 0) & (u <= 1)
            out[inside] += sign * distance_m / duration_s * 30.0 * u[inside] ** 2 * (1 - u[inside]) ** 2
        return out

    return [Echo(amplitude, v, start_s, start_s + 2 * duration_s)]


@dataclass
class SyntheticScene:
    """Streaming synthetic recording.

    sample_rate (Hz), carriers_hz, n_mics; carrier_amplitude (full scale); clutter: static echoes (amplitude re
    carrier, random phase per mic); echoes: moving reflectors; noise_rms: white noise (full scale) per mic;
    mic_gains: per-mic gain (default 1, 0.9, 0.8, ...). ``render(n) -> (n, n_mics) float32``.
    """

    sample_rate: int
    carriers_hz: list[float]
    n_mics: int = 1
    carrier_amplitude: float = 0.1
    clutter: list[float] = field(default_factory=lambda: [0.5, 0.2])
    echoes: list[Echo] = field(default_factory=list)
    noise_rms: float = 1e-4
    seed: int = 0
    mic_gains: list[float] | None = None

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self._rng = np.random.default_rng(self.seed + 1)
        self._n = 0
        k, m = len(self.carriers_hz), self.n_mics
        gains = self.mic_gains or [1.0 - 0.1 * i for i in range(m)]
        # static field per carrier and mic: direct path + clutter, a fixed complex amplitude
        static = np.ones((k, m), complex)
        for a in self.clutter:
            static = static + a * np.exp(2j * np.pi * rng.random((k, m)))
        self._static = static * np.asarray(gains)[None, :]
        self._echo_phase = np.zeros((len(self.echoes), k, m))
        self._echo_mic = np.exp(2j * np.pi * rng.random((len(self.echoes), k, m))) * np.asarray(gains)
        # the path to each mic changes at a slightly different rate (mics a few cm apart): the echo's phase
        # difference between mics drifts as the reflector moves, as it does in a room
        self._echo_rate = 1.0 + rng.uniform(-0.02, 0.02, (len(self.echoes), m))

    def render(self, n: int) -> np.ndarray:
        fs = self.sample_rate
        idx = np.arange(self._n, self._n + n, dtype=np.int64)
        t = idx / fs
        out = np.zeros((n, self.n_mics))
        for ki, f0 in enumerate(self.carriers_hz):
            # exact carrier phase from integer counters (f0 in Hz, possibly fractional)
            cyc = np.mod(float(f0) * (idx % fs) / fs + np.mod(float(f0) * (idx // fs), 1.0), 1.0)
            base = np.exp(2j * np.pi * cyc)
            field_ = base[:, None] * self._static[ki][None, :]
            for ei, e in enumerate(self.echoes):
                if e.end_s <= t[0] or e.start_s >= t[-1] + 1.0 / fs:
                    continue
                df = 2.0 * e.velocity(t) * f0 / SOUND_SPEED_M_S
                ph = self._echo_phase[ei, ki][None, :] + 2 * np.pi * np.cumsum(df)[:, None] / fs * self._echo_rate[ei]
                self._echo_phase[ei, ki] = ph[-1] % (2 * np.pi)
                env = np.clip(np.minimum(t - e.start_s, e.end_s - t) / 0.05, 0.0, 1.0)
                env = 0.5 - 0.5 * np.cos(np.pi * env)
                sig = (e.amplitude * env * base)[:, None] * np.exp(1j * (ph + e.phase))
                field_ += sig * self._echo_mic[ei, ki][None, :]
            out += self.carrier_amplitude * field_.real
        out += self.noise_rms * self._rng.standard_normal((n, self.n_mics))
        self._n += n
        return out.astype(np.float32)


__all__ = ["SyntheticScene", "Echo", "walker", "reach", "constant", "SOUND_SPEED_M_S"]
