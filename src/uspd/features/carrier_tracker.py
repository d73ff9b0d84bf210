"""Carrier tracking: follow the received carrier's frequency offset and remove it from the baseband (numpy only).

When the capture clock runs apart from the playback clock (a USB microphone and a separate loudspeaker, or two
crystals 20 ppm apart), the whole received field, direct path and every static echo, sits ``f0 * ppm * 1e-6`` Hz
off the carrier the demodulator mixes with: 0.8 Hz at 40 kHz for 20 ppm, 4 Hz for 100 ppm. The clutter high-pass
(3 Hz corner) then leaves the static field only ~46 dB down at 0.8 Hz and passes it at 4 Hz, far above the echoes of
a walker: phantom energy in the lowest Doppler bins and false alarms.

The tracker measures the rotation of the carrier phasor and derotates the baseband by it, before the high-pass.
Every hop is cut in two halves; with c[j, m] the mean baseband of mic m over half-hop j and P[j, m] its mean
power, hop h (halves 2h and 2h + 1) measures::

    r[h] = sum over its two half-to-half steps j of sum_m c[j, m] conj(c[j-1, m])
           / sum over the same of sum_m sqrt(P[j, m] P[j-1, m])                   (|r| <= 1; 1 for a steady tone)
    R[h] = a_h R[h-1] + (1 - a_h) r[h],   a_h = min(exp(-hop_s / time_s), h / (h + 1))
    estimate[h] = angle(R[h]) / (pi hop_s)  if |R[h]| >= MIN_COHERENCE, else 0; then shrunk towards 0 by a firm
                  threshold (0 within t, in full beyond 2 t) at
                  t = DEADBAND_HZ + NOISE_SCALE_HZ sqrt(1 - coherence[h]) / sqrt(min(h + 1, time_s / hop_s))
    coherence[h] = |R[h]| / sinc(estimate x hop_s / 2)^2   (<= 1; the half-hop means of a steady tone off by the
                  estimate lose sinc(...) each, so a true offset alone does not count as incoherence)
    offset_hz[h] = b offset_hz[h-1] + (1 - b) estimate[h],   b = exp(-hop_s / SMOOTHING_S)

The half-hop means keep only what changes slower than ~1/hop_s (moving echoes mostly average out), the power
normalisation makes stretches with little carrier (silence, the tone off, a moving echo alone) count for little, R is
a running mean over the first hops (a good estimate within a hop or two) and then an exponential one of ``time_s``,
and the second smoothing keeps the jitter that slow echoes leave in the estimate from phase-modulating the static
field into the Doppler bins; offsets within DEADBAND_HZ are left to the high-pass, and while few hops are averaged
the estimate's own noise is too (a shared clock's frames are exactly the untracked ones). That noise grows with the
share of the received power that is not the steady carrier (music, a person close by: sqrt(1 - coherence)), so a
clean carrier off by 4 Hz is followed in full from the first hop, while a noisy one is held back as long as it
needs; the firm threshold leaves nothing of a clear offset in the baseband. The stream's first hop measures within
itself after the demodulator's warm-up (``skip``) and starts the offset there. Within a hop the
offset moves linearly from the last hop's value (the derotation phase is smooth). Unambiguous offsets: below 1 /
hop_s, 20 Hz at the 50 ms hop (500 ppm at 40 kHz).

Streaming: one step per hop in a fixed order, so any chunking of the input gives the same output; the state is R,
the last half-hop's c and P, the hop count, the offset and the phase.
"""
from __future__ import annotations

import math

import numpy as np

#: Below this mean coherence (|R|) the carrier is not steady enough to measure (no carrier, or a moving echo
#: stronger than it); the offset is then taken as zero.
MIN_COHERENCE = 0.5
#: Time constant (s) of the second smoothing of the offset the baseband is derotated with: the hop-to-hop jitter that
#: moving echoes leave in the estimate would otherwise phase-modulate the static field into the Doppler bins.
SMOOTHING_S = 0.5
#: Offsets this small (Hz; 1.2 ppm at 40 kHz) the clutter high-pass removes by itself (a 4th-order 3 Hz high-pass
#: leaves a 0.05 Hz tone 142 dB down), so estimates this small are taken as zero (firm threshold, continuous): a
#: shared clock's few-mHz estimate jitter then derotates nothing and its frames are exactly the untracked ones.
DEADBAND_HZ = 0.05
#: Noise of the estimate from one hop (Hz) per unit of sqrt(1 - coherence): with c = S + n over a half-hop (S the
#: steady carrier), the rotation's angle strays by about |n| / |S| while 1 - coherence grows as |n|^2 / |S|^2. On the
#: shared-clock recordings of tuning set 1021 the estimate strays by at most 1.79 Hz x sqrt(1 - coherence) x
#: sqrt(hops averaged) beyond DEADBAND_HZ (music clips, in their first hops; a clean room's carrier has
#: sqrt(1 - coherence) ~ 4e-4); 2.5 leaves 40 % to spare. The threshold is DEADBAND_HZ + NOISE_SCALE_HZ x
#: sqrt(1 - coherence) / sqrt(n): a shared clock derotates nothing, a true offset is followed once it stands out.
NOISE_SCALE_HZ = 2.5


def firm_threshold(x: float, t: float) -> float:
    """0 for |x| <= t, 2 (|x| - t) with x's sign up to |x| = 2 t, x beyond: continuous, and unbiased once x clearly
    stands out (a soft threshold would leave t of a true offset in the baseband, whose slow rotation the clutter
    high-pass then rings on for a second after the stream starts)."""
    m = abs(x)
    return 0.0 if m <= t else (math.copysign(2.0 * (m - t), x) if m < 2.0 * t else x)


class CarrierTracker:
    """Streaming carrier-offset tracker and derotator (see the module doc).

    n_carriers: K. n_mics: M. hop_samples: baseband samples per hop. baseband_rate_hz: Hz. time_s: time constant
    of the offset average (s, > 0). skip: baseband samples at the start of the stream to leave out of the estimate
    (the demodulator's warm-up, whose filters reach before the first sample: their smaller amplitude would pull the
    first hop's estimate), < hop_samples / 2.

    ``.derotate(bb (K, M, n) complex) -> (K, M, n) complex``, n a multiple of hop_samples: the baseband with each
    carrier's tracked offset removed. ``offset_hz`` (K,): the offset used for the last hop (Hz, received minus
    nominal carrier). ``reset()`` starts over.
    """

    def __init__(self, n_carriers: int, n_mics: int, hop_samples: int, baseband_rate_hz: float, time_s: float,
                 skip: int = 0):
        if time_s <= 0 or hop_samples < 2 or not 0 <= 2 * skip < hop_samples:
            raise ValueError("carrier tracker: need time_s > 0, hop_samples >= 2 and 0 <= skip < hop_samples / 2")
        self.skip = int(skip)
        self.n_carriers, self.n_mics, self.hop_samples = int(n_carriers), int(n_mics), int(hop_samples)
        self.hop_s = self.hop_samples / float(baseband_rate_hz)
        self._alpha = math.exp(-self.hop_s / float(time_s))
        self._beta = math.exp(-self.hop_s / SMOOTHING_S)
        self._n_avg = max(1.0, float(time_s) / self.hop_s)  # hops the steady average spans
        # phase of baseband sample i (1-based) within a hop, per Hz of a steady offset (2 pi i / fb) and per Hz of an
        # offset that changes linearly over the hop (2 pi i (i + 1) / (2 hop fb)): the phase stays smooth (C1)
        i = np.arange(1, self.hop_samples + 1)
        self._ramp = 2.0 * math.pi * i / float(baseband_rate_hz)
        self._ramp_change = 2.0 * math.pi * i * (i + 1) / (2.0 * self.hop_samples * float(baseband_rate_hz))
        self.reset()

    def reset(self) -> None:
        """Forget all history."""
        k = self.n_carriers
        self._r_avg = [0j] * k                    # R: mean half-hop rotation
        self._prev_c = None                        # (K, M) last half-hop's mean baseband
        self._prev_p = None                        # (K, M) last half-hop's mean power
        self._hops = 0
        self._phase = [0.0] * k                    # derotation phase at the end of the last hop (rad)
        self._offset = [0.0] * k                   # offset at the end of the last hop (Hz)

    @property
    def offset_hz(self) -> np.ndarray:
        """(K,) the offset used at the end of the last hop (Hz, received minus nominal carrier)."""
        return np.array(self._offset)

    def _first_rotation(self, hop: np.ndarray) -> np.ndarray:
        """(K,) the rotation within the stream's first hop (K, M, hop_samples) between two equal stretches after
        ``skip`` samples, scaled to the half-hop spacing and normalised (|.| <= 1) like r."""
        q = (self.hop_samples - self.skip) // 2
        a = hop[:, :, self.skip: self.skip + q]
        b = hop[:, :, self.skip + q: self.skip + 2 * q]
        z = (b.mean(axis=2) * np.conj(a.mean(axis=2))).sum(axis=1)                       # (K,)
        norm = np.sqrt((np.abs(a) ** 2).mean(axis=2) * (np.abs(b) ** 2).mean(axis=2)).sum(axis=1)
        z = np.where(norm > 0, z / np.where(norm > 0, norm, 1.0), 0.0)
        return np.abs(z) * np.exp(1j * np.angle(z) * (self.hop_samples / 2) / q)

    def derotate(self, bb: np.ndarray) -> np.ndarray:
        """bb (K, M, n) complex, n a multiple of hop_samples -> (K, M, n) with the tracked offset removed."""
        k, m, n = bb.shape
        hb = self.hop_samples
        if n % hb:
            raise ValueError(f"carrier tracker: {n} samples is not a whole number of hops of {hb}")
        n_hops = n // hb
        if n_hops == 0:
            return bb
        half = hb // 2
        hops = bb.reshape(k, m, n_hops, hb)
        # mean baseband and power over the two halves of every hop, in time order: (K, M, 2H)
        halves = np.stack([hops[..., :half], hops[..., hb - half:]], axis=3)
        c = halves.mean(axis=4).reshape(k, m, 2 * n_hops)
        p = (halves.real ** 2 + halves.imag ** 2).mean(axis=4).reshape(k, m, 2 * n_hops)
        num = c[:, :, 1:] * np.conj(c[:, :, :-1])                    # (K, M, 2H - 1) half-to-half rotations
        den = np.sqrt(p[:, :, 1:] * p[:, :, :-1])
        if self._prev_c is not None:                                  # the previous hop's second half
            num = np.concatenate([c[:, :, :1] * np.conj(self._prev_c[:, :, None]), num], axis=2)
            den = np.concatenate([np.sqrt(p[:, :, :1] * self._prev_p[:, :, None]), den], axis=2)
        else:  # the stream's first hop: its within-hop pair is replaced by the rotation after the warm-up
            num = np.concatenate([np.zeros_like(num[:, :, :1]), num], axis=2)
            den = np.concatenate([np.zeros_like(den[:, :, :1]), den], axis=2)
            num[:, :, 1], den[:, :, 1] = 0.0, 0.0
            num[:, 0, 0], den[:, 0, 0] = self._first_rotation(hops[:, :, 0]), 1.0
        num = num.sum(axis=1).reshape(k, n_hops, 2).sum(axis=2)      # (K, H)
        den = den.sum(axis=1).reshape(k, n_hops, 2).sum(axis=2)
        r = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0).tolist()
        self._prev_c, self._prev_p = c[:, :, -1].copy(), p[:, :, -1].copy()
        two_pi_step = math.pi * self.hop_s  # 2 pi x the half-hop spacing (s)
        offsets = np.zeros((k, n_hops))
        before = np.zeros((k, n_hops))             # offset at the end of the hop before
        starts = np.zeros((k, n_hops))
        for h in range(n_hops):
            count = self._hops + h
            for kk in range(k):
                a = min(self._alpha, count / (count + 1))
                self._r_avg[kk] = a * self._r_avg[kk] + (1.0 - a) * r[kk][h]
                ravg = self._r_avg[kk]
                est = math.atan2(ravg.imag, ravg.real) / two_pi_step if abs(ravg) >= MIN_COHERENCE else 0.0
                x = math.pi * est * self.hop_s / 2.0
                steady = (math.sin(x) / x) ** 2 if x else 1.0   # |R| of a clean tone off by est
                incoherence = max(1.0 - abs(ravg) / steady, 0.0)
                threshold = DEADBAND_HZ + NOISE_SCALE_HZ * math.sqrt(incoherence / min(count + 1, self._n_avg))
                est = firm_threshold(est, threshold)
                if count == 0:  # the stream starts at the first estimate (no ramp from 0)
                    self._offset[kk] = est
                off = self._beta * self._offset[kk] + (1.0 - self._beta) * est
                offsets[kk, h], before[kk, h], starts[kk, h] = off, self._offset[kk], self._phase[kk]
                end = (self._phase[kk] + self._offset[kk] * self._ramp[-1]
                       + (off - self._offset[kk]) * self._ramp_change[-1])
                self._phase[kk], self._offset[kk] = math.remainder(end, 2.0 * math.pi), off
        self._hops += n_hops
        if not (offsets.any() or before.any() or starts.any()):  # nothing to derotate (a shared clock)
            return bb
        phase = (starts[:, :, None] + before[:, :, None] * self._ramp
                 + (offsets - before)[:, :, None] * self._ramp_change)                      # (K, H, hb)
        rot = np.exp(-1j * phase).reshape(k, 1, n)
        return bb * rot


__all__ = ["CarrierTracker", "DEADBAND_HZ", "MIN_COHERENCE", "NOISE_SCALE_HZ", "firm_threshold"]
