"""Numpy-only filter design and a vectorised streaming high-pass, for the front end.

scipy.signal is not imported at run time on purpose: importing it takes ~0.5 s, which alone would cost a 10-minute
``uspd detect`` run a sixth of its time budget. The designs follow the textbook formulas (Kaiser window FIR design;
Butterworth via the bilinear transform with pre-warping) and are checked against scipy.signal in the tests.
"""
from __future__ import annotations

import math

import numpy as np


def kaiser_order(atten_db: float, width: float) -> tuple[int, float]:
    """Kaiser's estimates: taps and beta for stop-band attenuation ``atten_db`` (dB) and transition ``width``
    (fraction of Nyquist). Same as scipy.signal.kaiserord."""
    a = abs(atten_db)
    if a > 50:
        beta = 0.1102 * (a - 8.7)
    elif a > 21:
        beta = 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    else:
        beta = 0.0
    numtaps = (a - 7.95) / 2.285 / (math.pi * width) + 1
    return int(math.ceil(numtaps)), beta


def kaiser_lowpass(numtaps: int, cutoff_hz: float, fs: float, beta: float) -> np.ndarray:
    """Windowed-sinc low-pass FIR (numtaps,), unit gain at 0 Hz (as scipy.signal.firwin with a Kaiser window)."""
    n = np.arange(numtaps) - (numtaps - 1) / 2.0
    c = 2.0 * cutoff_hz / fs
    h = c * np.sinc(c * n) * np.kaiser(numtaps, beta)
    return h / h.sum()


def butter_highpass_zpk(order: int, cutoff_hz: float, fs: float) -> tuple[np.ndarray, float]:
    """Digital Butterworth high-pass: ``order`` zeros at z = 1, poles (order,) complex and gain k, so that
    H(z) = k (1 - z^-1)^order / prod(1 - p z^-1) (as scipy.signal.butter(..., "highpass", output="zpk"))."""
    wo = 2.0 * fs * math.tan(math.pi * cutoff_hz / fs)  # pre-warped analog corner (rad/s)
    proto = -np.exp(1j * np.pi * np.arange(-order + 1, order, 2) / (2 * order))  # analog low-pass poles, wc = 1
    analog = wo / proto  # low-pass -> high-pass
    fs2 = 2.0 * fs
    poles = (fs2 + analog) / (fs2 - analog)
    k = float(np.real(1.0 / np.prod(-proto)))  # high-pass transform gain (prototype gain 1)
    k *= float(np.real(fs2 ** order / np.prod(fs2 - analog)))  # bilinear transform gain
    return poles, k


class SegmentedHighPass:
    """Streaming Butterworth high-pass on complex rows, vectorised: H(z) = k prod_i (1 - z^-1) / (1 - p_i z^-1).

    Each section is a zero at z = 1 (a first difference with one carried sample) followed by one pole; pairing them
    keeps every intermediate signal high-passed, so rounding errors are never amplified by the poles' large
    low-frequency gain. Each pole's recursion v[n] = u[n] + p v[n-1] runs on segments of ``segment`` samples with a
    cumulative sum (the carried value chains the segments): a few numpy passes, not a Python loop per sample.
    Feed lengths that are multiples of ``segment`` so the arithmetic does not depend on how the stream is cut.
    """

    def __init__(self, order: int, cutoff_hz: float, fs: float, n_rows: int, segment: int):
        self.poles, self.gain = butter_highpass_zpk(order, cutoff_hz, fs)
        self.order, self.segment, self.n_rows = order, int(segment), n_rows
        j = np.arange(self.segment)
        self._p_neg = self.poles[:, None] ** -j[None, :]          # (N, S) p^-j
        self._p_cum = self.poles[:, None] ** j[None, :]           # (N, S) p^j
        self._p_seg = self.poles ** self.segment                   # (N,) p^S
        self.reset()

    @staticmethod
    def segment_for(poles: np.ndarray, length: int, max_growth: float = 1e3) -> int:
        """Largest divisor S of ``length`` with |p|^-S <= max_growth for every pole (numerical safety)."""
        r = float(np.min(np.abs(poles)))
        limit = length if r >= 1.0 else max(1, int(math.log(max_growth) / -math.log(r)))
        for s in range(min(length, limit), 0, -1):
            if length % s == 0:
                return s
        return 1

    def reset(self) -> None:
        self._prev = np.zeros((self.order, self.n_rows), complex)   # last input of each section's zero
        self._state = np.zeros((self.order, self.n_rows), complex)  # last output of each section's pole

    def start(self, x0: np.ndarray) -> None:
        """Steady state for a constant input x0 (n_rows,): the output is 0 until the input changes."""
        self.reset()
        self._prev[0] = np.asarray(x0) * self.gain

    def process(self, x: np.ndarray) -> np.ndarray:
        """x (n_rows, n) complex, n a multiple of ``segment`` -> filtered (n_rows, n) complex."""
        n = x.shape[1]
        if n == 0:
            return np.array(x, dtype=complex, copy=True)
        if n % self.segment:
            raise ValueError(f"SegmentedHighPass: length {n} is not a multiple of the segment {self.segment}")
        n_seg, s = n // self.segment, self.segment
        u = x * self.gain
        d = np.empty_like(u)
        for k in range(self.order):
            d[:, 0] = u[:, 0] - self._prev[k]
            np.subtract(u[:, 1:], u[:, :-1], out=d[:, 1:])
            self._prev[k] = u[:, -1]
            # within a segment: v[j] = p^j (sum_{i<=j} p^-i d[i] + p c), c = the value before the segment
            acc = np.cumsum(d.reshape(self.n_rows, n_seg, s) * self._p_neg[k], axis=2)
            # chain the segments: carry_i = value before segment i; plain complex scalars (few rows, few segments)
            p_seg, p_last = complex(self._p_seg[k]), complex(self._p_cum[k, -1])
            carry = []
            for r, (row, c) in enumerate(zip(acc[:, :, -1].tolist(), self._state[k].tolist())):
                out = []
                for v in row:
                    out.append(c)
                    c = v * p_last + p_seg * c
                carry.append(out)
                self._state[k, r] = c
            acc += np.array(carry, dtype=complex)[:, :, None] * self.poles[k]
            acc *= self._p_cum[k]
            u = acc.reshape(self.n_rows, n)
        return u


__all__ = ["kaiser_order", "kaiser_lowpass", "butter_highpass_zpk", "SegmentedHighPass"]
