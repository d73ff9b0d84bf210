"""Carrier demodulation shared by the front end and the spectrogram: real mic audio in, decimated complex baseband
of every carrier out (streaming, numpy only).

Per carrier the decimation low-pass ``h`` is shifted up to the carrier, ``g[m] = h[m] exp(+i w0 m)``, evaluated on
the real input only at the decimated instants ``n_j`` and multiplied by ``exp(-i w0 n_j)``: the same numbers as
mixing down, low-passing and decimating, without mixing at the full rate. The oscillator phase comes from integer
sample counters (exact after hours of audio). Polyphase: with blocks ``B[c] = x[cD : (c+1)D]``, output ``j`` is
``sum_p B[j - p] . G_p`` with ``G_p[i] = g[pD + D - 1 - i]``; the products of every phase are one float32 matrix
product per block of outputs, kept for the next ``n_phases - 1`` blocks, then summed phase by phase in float32.
"""
from __future__ import annotations

import math

import numpy as np

from uspd.features.filters import kaiser_lowpass, kaiser_order


def decimation_lowpass(sample_rate: float, decimation: int, band_hz: float, atten_db: float,
                       extra_tap: bool = False) -> np.ndarray:
    """Kaiser low-pass (taps,) at ``sample_rate`` for decimating by ``decimation`` (D): cutoff at half the decimated
    rate fb = sample_rate / D, transition from ``band_hz`` to ``fb - band_hz`` (what would alias into ±band_hz is
    attenuated by ``atten_db`` dB). Length: the smallest multiple of D at or above Kaiser's estimate (at least D),
    or with ``extra_tap`` that plus one (D q + 1 taps, q >= 1: a delay of D q / 2 samples)."""
    d = int(decimation)
    fb = sample_rate / d
    numtaps, beta = kaiser_order(atten_db, (fb - 2.0 * band_hz) / (sample_rate / 2.0))
    taps = d * max(1, math.ceil((numtaps - 1) / d)) + 1 if extra_tap else d * max(1, math.ceil(numtaps / d))
    return kaiser_lowpass(taps, fb / 2.0, sample_rate, beta)


class CarrierDemodulator:
    """Streaming polyphase demodulator (see the module doc).

    sample_rate: Hz (integer). carriers_hz (K,): Hz. n_channels: C, the columns of every chunk. decimation: D.
    lowpass (L,): FIR at the input rate, unit gain at 0 Hz (e.g. :func:`decimation_lowpass`). lead: output j is the
    filter output at input sample ``n_j = (j + 1) D - 1 - lead`` (0 <= lead < D; 0 = the last sample of block j, D - 1
    = its first). block: outputs per matrix product; with block > 0 only whole blocks are produced (the rest of the
    input waits; ``flush()`` at the end of a stream gives it) and every block gets the same arithmetic, so any
    chunking gives bit-identical output; block = 0 produces every output the input allows in one product per call
    (results then depend on the chunking within float32 rounding, and products of thousands of outputs can be slow
    when a multi-threaded BLAS contends for busy cores; a block of a few hundred is not).

    ``.feed(chunk (n, C) float) -> (K, C, J) complex128`` baseband, amplitude A/2 for a cosine of amplitude A at the
    carrier, its phase at sample 0 of the stream. Input before the first sample is silence: the first ``warmup``
    (= n_phases - 1) outputs have filters reaching before it. ``produced``: outputs so far. ``reset()`` starts over.
    ``oscillator(j0, n) -> (K, n)``: the mixing phasors exp(-i w0 n_j) of outputs j0..j0+n-1.
    """

    def __init__(self, sample_rate: int, carriers_hz, n_channels: int, decimation: int, lowpass: np.ndarray,
                 lead: int = 0, block: int = 0):
        self.sample_rate = int(sample_rate)
        self.carriers_hz = np.atleast_1d(np.asarray(carriers_hz, dtype=np.float64))
        self.n_channels, self.decimation, self.block = int(n_channels), int(decimation), int(block)
        self.lead = int(lead)
        d, fs = self.decimation, self.sample_rate
        if d < 1 or not 0 <= self.lead < d or self.block < 0:
            raise ValueError(f"demodulator: need decimation >= 1, 0 <= lead < {d} and block >= 0")
        h = np.asarray(lowpass, dtype=np.float64)
        self.n_phases = max(1, math.ceil((self.lead + len(h)) / d))
        taps = self.n_phases * d
        if self.lead or taps != len(h):
            # output at (j + 1) D - 1 - lead = the padded filter's output at (j + 1) D - 1
            h = np.concatenate([np.zeros(self.lead), h, np.zeros(taps - self.lead - len(h))])
        self.warmup = self.n_phases - 1
        m = np.arange(taps) - self.lead  # tap index of the unpadded filter
        # g[m] = h[m] exp(+i w0 m); baseband = (sum_m g[m] x[n - m]) exp(-i w0 n), with exact phase (oscillator).
        g = h[None, :] * np.exp(2j * np.pi * np.outer(self.carriers_hz / fs, m))  # (K, taps)
        gp = g.reshape(len(self.carriers_hz), self.n_phases, d)[:, :, ::-1]  # (K, P, D): [k, p, i] = g[pD + D-1-i]
        gp = np.transpose(gp, (2, 1, 0))  # (D, P, K)
        # Rows ordered (p, k, re/im): (P * K * 2, D), applied as gmat @ blocks.T.
        self._gmat = np.ascontiguousarray(np.stack([gp.real, gp.imag], axis=3).reshape(d, -1).T, dtype=np.float32)
        # Integer carrier parts for the exact oscillator phase; exp(-2 pi i m / fs) for every integer m < fs.
        self._f0_int = np.floor(self.carriers_hz).astype(np.int64)
        self._f0_frac = self.carriers_hz - self._f0_int
        self._unit_table = np.exp(-2j * np.pi * np.arange(fs) / fs)
        self.reset()

    def reset(self) -> None:
        """Forget all history (as if audio started now, preceded by silence)."""
        c = self.n_channels
        self._rem = np.zeros((c, 0), np.float32)                                   # input not filling a block
        self._zhist = np.zeros((c, self._gmat.shape[0], self.n_phases - 1), np.float32)  # last P - 1 products
        self.produced = 0

    def oscillator(self, j0: int, n: int) -> np.ndarray:
        """exp(-i w0 n_j) for outputs j0..j0+n-1, shape (K, n), exact phase."""
        fs = self.sample_rate
        idx = (np.arange(j0, j0 + n, dtype=np.int64) + 1) * self.decimation - 1 - self.lead
        # f0 n / fs with n = q fs + r: (f0_int r mod fs) / fs + f0_frac r / fs + f0_frac q  (mod 1 cycle).
        q, r = idx // fs, idx % fs
        osc = self._unit_table[(self._f0_int[:, None] * r[None, :]) % fs]
        if np.any(self._f0_frac):
            cycles = self._f0_frac[:, None] * r[None, :] / fs + np.mod(np.outer(self._f0_frac, q), 1.0)
            osc = osc * np.exp(-2j * np.pi * cycles)
        return osc

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        """chunk (n, C) float samples -> baseband (K, C, J) complex128 of every output this chunk completed."""
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or chunk.shape[1] != self.n_channels:
            raise ValueError(f"chunk must be (n, {self.n_channels}), got {chunk.shape}")
        x = np.ascontiguousarray(chunk.T, dtype=np.float32)
        if self._rem.shape[1]:
            x = np.concatenate([self._rem, x], axis=1)
        n_avail = x.shape[1] // self.decimation
        jh = self.block or n_avail
        return self._outputs(x, n_avail // jh if jh else 0, jh)

    def flush(self) -> np.ndarray:
        """End of stream: (K, C, J) the outputs still waiting for a whole ``block`` (J < block), in one product."""
        n = self._rem.shape[1] // self.decimation
        return self._outputs(self._rem, 1 if n else 0, n)

    def _outputs(self, x: np.ndarray, n_units: int, jh: int) -> np.ndarray:
        """Outputs for the first n_units * jh blocks of D samples of x (C, n) float32 (one product per jh); the
        rest of x waits for the next call."""
        d, p_n, k, m = self.decimation, self.n_phases, len(self.carriers_hz), self.n_channels
        n_blocks = n_units * jh
        self._rem = x[:, n_blocks * d:].copy()
        if n_blocks == 0:
            return np.zeros((k, m, 0), complex)
        x = x[:, : n_blocks * d]
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        width = self._gmat.shape[0]
        # One (W, D) @ (D, block) product per block and channel: the same arithmetic whatever the chunking.
        z = np.empty((m, width, p_n - 1 + n_blocks), np.float32)
        z[:, :, : p_n - 1] = self._zhist
        out = z[:, :, p_n - 1:].reshape(m, width, n_units, jh).transpose(0, 2, 1, 3)  # (C, units, W, jh) view
        np.matmul(self._gmat, x.reshape(m, n_units, jh, d).swapaxes(2, 3), out=out)
        self._zhist = z[:, :, n_blocks:].copy()
        # y[j] = sum_p (phase p products of block j - p), in a fixed order.
        y = z[:, : 2 * k, p_n - 1:].copy()
        for p in range(1, p_n):
            y += z[:, 2 * k * p: 2 * k * (p + 1), p_n - 1 - p: p_n - 1 - p + n_blocks]
        osc = self.oscillator(self.produced, n_blocks)  # (K, J)
        self.produced += n_blocks
        yc = np.empty((k, m, n_blocks), complex)
        yc.real = y[:, 0::2].transpose(1, 0, 2)
        yc.imag = y[:, 1::2].transpose(1, 0, 2)
        yc *= osc[:, None, :]
        return yc


__all__ = ["CarrierDemodulator", "decimation_lowpass"]
