"""Procedurally synthesised music (no external files) and the loudspeaker nonlinearity it excites.

The song: a bass line (40-150 Hz, eighth notes, three harmonics), a kick drum (pitch sweep 150 -> 50 Hz), chords
(three notes 180-700 Hz with a harmonic) and hi-hats (metallic partials 5.5-8 kHz). Bars are drawn lazily from
rng(seed, 5, bar), so any time range can be evaluated directly (endless scenes too). Audio content stays below
8 kHz, so the polynomial's products stay below Nyquist at 48 kHz as well.

Loudspeaker model (Klippel, "Tutorial: Loudspeaker nonlinearities - causes, parameters, symptoms", JAES 54(10),
2006, reduced to a static polynomial plus the moving-cone phase modulation): the driven signal d = T + m (T the
tone, m the music) comes out as y = d + a2 d^2 + a3 d^3, and the tone is phase modulated by the cone excursion
x(t) = k * m_lf(t) (m_lf: bass + kick, the part that moves the cone): phase 2 pi f0 x / c, so 1 mm gives
sidebands about -8 dB re the tone at 40 kHz. The polynomial is expanded analytically and split into

- the carrier part (complex envelope around f0): A env e^{j 2 pi f0 x/c} (1 + 3/4 a3 A^2 env^2 + 2 a2 m_lf +
  3 a3 m_lf^2) -- the intermodulation sidebands at f0 +- k f_bass;
- the audio part: m + a2 m_lf^2 + a3 m_lf^3 + 3/2 a3 A^2 env^2 m_lf.

Terms at 2 f0 and 3 f0 lie above Nyquist and are left out, which is what evaluating the polynomial at high
oversampling and then decimating gives (no products alias). Only the excursion-driving low band enters the
nonlinear terms (the cone moves with the bass). The reference file holds the DRIVE signal d (tone + music, before
the nonlinearity): "what was played" as a playback application knows it.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from uspd.simulate.kinematics import smooth_window
from uspd.simulate.scene import MusicSpec

PROGRESSIONS = ([0, 7, 9, 5], [0, 5, 7, 5], [9, 5, 0, 7], [0, 3, 5, 3], [0, 8, 3, 10])


class Music:
    """A song: ``audio(t)`` (full mix, drive units) and ``low(t)`` (bass + kick) for any times t (T,) seconds."""

    def __init__(self, spec: MusicSpec, seed: int, duration_s: float):
        rng = np.random.default_rng([seed, 5])
        self.spec = spec
        self.seed = seed
        self.start_s = spec.start_s
        self.end_s = min(spec.end_s if spec.end_s is not None else math.inf, duration_s)
        self.tempo = spec.tempo_bpm or float(rng.uniform(80, 140))
        self.beat_s = 60.0 / self.tempo
        self.bar_s = 4 * self.beat_s
        self.root_hz = 41.2 * 2 ** (int(rng.integers(0, 12)) / 12)  # E1 .. D#2
        self.prog = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
        self.hat_hz = rng.uniform(5500, 8000, 6)
        self.level = 10 ** (spec.level_dbfs / 20)
        self._bar = lru_cache(maxsize=64)(self._make_bar)

    def _make_bar(self, k: int) -> dict:
        rng = np.random.default_rng([self.seed, 5, k + 1_000_000])
        deg = self.prog[k % len(self.prog)]
        root = self.root_hz * 2 ** (deg / 12)
        while root > 75:
            root /= 2
        steps = rng.choice([0, 0, 0, 12, 7, 12, 0, 5], size=8)
        bass = root * 2 ** (steps / 12)
        bass = np.where(bass > 150, bass / 2, bass)
        vel = np.where(rng.random(8) < 0.15, 0.0, rng.uniform(0.7, 1.0, 8))
        if self.spec.bass_hz:
            bass, vel = np.full(8, float(self.spec.bass_hz)), np.ones(8)
        kick = np.array([1.0, 0.0, 1.0, 0.0]) if rng.random() < 0.6 else np.ones(4)
        third = 3 if deg in (9, 3) else 4
        chord = 4 * root * 2 ** (np.array([0, third, 7]) / 12)
        chord = np.where(chord < 180, chord * 2, chord)
        hats = (rng.random(8) < 0.8) * rng.uniform(0.5, 1.0, 8)
        return {"bass": bass, "vel": vel, "kick": kick, "chord": chord, "hats": hats}

    def _grid(self, t: np.ndarray, step_s: float, per_bar: int):
        """(index within bar, bar index, time since the step started) per sample."""
        rel = t - self.start_s
        n = np.floor(rel / step_s).astype(np.int64)
        return n % per_bar, n // per_bar, rel - n * step_s

    def _gate(self, t: np.ndarray) -> np.ndarray:
        return smooth_window(t, self.start_s, self.end_s, 0.05)

    def _voices(self, t: np.ndarray, full: bool) -> tuple[np.ndarray, np.ndarray]:
        """(low band: bass + kick, full mix or None) at times t."""
        out = np.zeros(len(t))
        gate = self._gate(t)
        on = gate > 0
        if not on.any():
            return out, (out.copy() if full else None)
        tt = t[on]
        j8, bar8, tau8 = self._grid(tt, self.beat_s / 2, 8)
        j4, bar4, tau4 = self._grid(tt, self.beat_s, 4)
        jb, barb, taub = self._grid(tt, self.bar_s, 1)
        f_b = np.empty(len(tt))
        v_b = np.empty(len(tt))
        k_on = np.empty(len(tt))
        for b in _span(bar8):
            m = bar8 == b
            bar = self._bar(int(b))
            f_b[m] = bar["bass"][j8[m]]
            v_b[m] = bar["vel"][j8[m]]
        for b in _span(bar4):
            m = bar4 == b
            k_on[m] = self._bar(int(b))["kick"][j4[m]]
        if self.spec.bass_hz:  # a steady drone: one continuous note
            w = 2 * math.pi * self.spec.bass_hz * (tt - self.start_s)
            env_b = np.ones(len(tt))
        else:
            w = 2 * math.pi * f_b * tau8
            env_b = v_b * (1 - np.exp(-tau8 / 0.005)) * np.exp(-tau8 / 0.35) * _release(tau8, self.beat_s / 2)
        y = env_b * (np.sin(w) + 0.5 * np.sin(2 * w) + 0.25 * np.sin(3 * w)) / 1.4
        kick_phase = 2 * math.pi * (50 * tau4 + 100 * 0.03 * (1 - np.exp(-tau4 / 0.03)))
        if self.spec.bass_hz:
            k_on = np.zeros(len(tt))
        y += k_on * np.exp(-tau4 / 0.15) * (1 - np.exp(-tau4 / 0.002)) * np.sin(kick_phase) \
            * _release(tau4, self.beat_s)
        low = out.copy()
        low[on] = self.level * gate[on] * y
        if full:
            ch = np.zeros(len(tt))
            hat = np.zeros(len(tt))
            for b in _span(barb):
                m = barb == b
                bar = self._bar(int(b))
                env = (1 - np.exp(-taub[m] / 0.03)) * np.exp(-taub[m] / 2.0) * _release(taub[m], self.bar_s)
                for f in bar["chord"]:
                    ph = 2 * math.pi * f * taub[m]
                    ch[m] += env * (np.sin(ph) + 0.3 * np.sin(2 * ph))
            for b in _span(bar8):
                m = bar8 == b
                amp = self._bar(int(b))["hats"][j8[m]]
                env = amp * np.exp(-tau8[m] / 0.03) * (1 - np.exp(-tau8[m] / 0.0005))
                hat[m] = env * np.sum(np.sin(2 * math.pi * self.hat_hz[:, None] * tau8[m][None, :]), axis=0)
            out[on] = low[on] + self.level * gate[on] * (0.1 * ch + 0.015 * hat)
            return low, out
        return low, None

    def mix(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(full mix, low band) at times t (drive units, full scale 1)."""
        low, full = self._voices(np.asarray(t, float), full=True)
        return full, low

    def audio(self, t: np.ndarray) -> np.ndarray:
        """Full mix at times t (drive units, full scale 1)."""
        return self.mix(t)[0]

    def low(self, t: np.ndarray) -> np.ndarray:
        """Bass + kick (the cone-moving band) at times t."""
        return self._voices(np.asarray(t, float), full=False)[0]

    def active(self, t0: float, t1: float) -> bool:
        return t1 > self.start_s and t0 < self.end_s

    def carrier_factor(self, m_lf: np.ndarray, amp_env: np.ndarray, f0_hz: float, c_m_s: float) -> np.ndarray:
        """Complex factor on the tone's envelope: phase modulation by the cone and polynomial IMD terms."""
        s = self.spec
        if not s.nonlinearity:
            return np.ones(len(m_lf), complex)
        x_m = s.excursion_mm_per_fs * 1e-3 * m_lf
        return np.exp(2j * math.pi * f0_hz * x_m / c_m_s) * (
            1 + 0.75 * s.a3 * amp_env ** 2 + 2 * s.a2 * m_lf + 3 * s.a3 * m_lf ** 2)

    def speaker_audio(self, m: np.ndarray, m_lf: np.ndarray, amp_env: np.ndarray) -> np.ndarray:
        """Audio-band loudspeaker output for the music m (with the nonlinear terms when enabled)."""
        s = self.spec
        if not s.nonlinearity:
            return m
        return m + s.a2 * m_lf ** 2 + s.a3 * m_lf ** 3 + 1.5 * s.a3 * amp_env ** 2 * m_lf


def _span(idx: np.ndarray) -> range:
    """All integers between the smallest and largest of ``idx`` (bars or notes touched by a frame)."""
    return range(int(idx.min()), int(idx.max()) + 1) if len(idx) else range(0)


def _release(tau: np.ndarray, length_s: float, fade_s: float = 0.01) -> np.ndarray:
    """1, then a raised-cosine fade to 0 over the last ``fade_s`` of a note of ``length_s``."""
    u = np.clip((length_s - tau) / fade_s, 0, 1)
    return np.sin(0.5 * math.pi * u) ** 2
