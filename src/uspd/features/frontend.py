"""Streaming Doppler front end: mic audio in, per-hop Doppler spectra out (the ``[frontend]`` config section).

Per carrier and mic: a complex band-pass FIR centred on the carrier, evaluated only at the decimated instants
(polyphase, = mixing to complex baseband + low-pass + decimation) with an exact oscillator phase from integer sample
counters (no drift on hour-long files), both in :class:`uspd.features.demodulator.CarrierDemodulator`; the
carrier's frequency offset when playback and capture clocks differ, tracked and derotated
(:class:`uspd.features.carrier_tracker.CarrierTracker`); a high-pass
on the baseband that removes the static (zero-Doppler) clutter, and every hop a Hann-windowed FFT over the last
``window_s`` of baseband, keeping ``±band_hz``. Power is given in dB relative to the carrier's own received level in
the same window (so emission level and mic gain cancel).

Audio is consumed in whole hops (the rest waits in a carried remainder) and every hop goes through exactly the same
arithmetic (the polyphase products are one fixed-shape matrix product per hop and mic, the high-pass runs on
hop-aligned segments), so ANY chunking of the input gives bit-identical frames; big chunks are processed vectorised
(offline speed) by the very same code. Frame ``k`` (0-based) uses the audio up to ``(k + 1) * hop_s``; audio before
the first sample is silence, so the first ``window_s`` are a warm-up. The high-pass starts in steady state for the
static field, so a recording does not begin with a clutter transient.

Numerics: the polyphase products are float32 (rounding noise ~-140 dB re carrier per Doppler bin, below the
quantisation noise of any 16-bit recording), everything after them float64. Only numpy is used at run time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from uspd.errors import ConfigError
from uspd.features.carrier_tracker import CarrierTracker
from uspd.features.demodulator import CarrierDemodulator, decimation_lowpass
from uspd.features.filters import SegmentedHighPass, butter_highpass_zpk

#: Power floor: relative Doppler power below -150 dB re carrier is numerical noise and is clipped there; also the
#: floor of level_db (dBFS) for silence.
_POWER_FLOOR = 1e-15


@dataclass
class FrontEndConfig:
    """The ``[frontend]`` section.

    hop_s: time between frames (s), at most 0.05. window_s: FFT window length (s) over the baseband (sets the Doppler
    resolution, ~1/window_s Hz). band_hz: Doppler half-band kept around each carrier (Hz).
    baseband_rate_hz: minimum complex baseband rate (Hz); the actual rate is sample_rate / D with D an integer that
    divides the hop. n_fft: FFT size (0 = next power of two >= window samples). clutter_cutoff_hz: corner of the
    high-pass that removes static clutter (Hz; keep well below the ~12 Hz of a 0.1 m/s page edge at 20 kHz).
    clutter_order: order of that high-pass (Butterworth). antialias_db: stop-band attenuation of the decimation
    filter (dB). carrier_tracking_s: time constant (s) of the carrier-offset tracker that removes a playback/capture
    clock offset before the high-pass (:mod:`uspd.features.carrier_tracker`); 0 = off.
    """

    hop_s: float = 0.05
    window_s: float = 0.128
    band_hz: float = 1000.0
    baseband_rate_hz: float = 4000.0
    n_fft: int = 0
    clutter_cutoff_hz: float = 3.0
    clutter_order: int = 4
    antialias_db: float = 80.0
    carrier_tracking_s: float = 10.0

    def validate(self, where: str = "[frontend]") -> None:
        """Raise a one-line :class:`ConfigError` naming ``where`` and the bad key."""
        if not (0.0 < self.hop_s <= 0.05):
            raise ConfigError(f"{where}.hop_s: must be in (0, 0.05] s, got {self.hop_s}")
        if not (self.hop_s <= self.window_s <= 2.0):
            raise ConfigError(f"{where}.window_s: must be between hop_s ({self.hop_s}) and 2 s, got {self.window_s}")
        if not (10.0 <= self.band_hz <= 10000.0):
            raise ConfigError(f"{where}.band_hz: must be in [10, 10000] Hz, got {self.band_hz}")
        if not (self.baseband_rate_hz > 2.0 * self.band_hz):
            raise ConfigError(f"{where}.baseband_rate_hz: must exceed 2 * band_hz ({2 * self.band_hz:g} Hz), "
                              f"got {self.baseband_rate_hz}")
        if self.n_fft < 0 or self.n_fft > 1 << 16:
            raise ConfigError(f"{where}.n_fft: must be 0 (auto) or a positive size <= 65536, got {self.n_fft}")
        if not (0.0 < self.clutter_cutoff_hz <= 50.0):
            raise ConfigError(f"{where}.clutter_cutoff_hz: must be in (0, 50] Hz, got {self.clutter_cutoff_hz}")
        if not (1 <= self.clutter_order <= 8):
            raise ConfigError(f"{where}.clutter_order: must be 1..8, got {self.clutter_order}")
        if not (20.0 <= self.antialias_db <= 140.0):
            raise ConfigError(f"{where}.antialias_db: must be in [20, 140] dB, got {self.antialias_db}")
        if not (self.carrier_tracking_s == 0.0 or 1.0 <= self.carrier_tracking_s <= 3600.0):
            raise ConfigError(f"{where}.carrier_tracking_s: must be 0 (off) or in [1, 3600] s, "
                              f"got {self.carrier_tracking_s}")


@dataclass
class Frames:
    """Doppler frames.

    t_s (F,): audio time (s) of the end of the audio each frame used. spectra_db (F, n_carriers, n_mics, n_bins):
    Doppler power per bin in dB relative to that carrier's received level at that mic. level_db (F, n_carriers,
    n_mics): received carrier level in dBFS (0 dB = a full-scale sine). freqs_hz (n_bins,): Doppler offsets (Hz),
    negative = receding. carriers_hz (n_carriers,): the carrier frequencies (Hz), to map Doppler to velocity.
    echo_db (F, n_carriers, n_bins): Doppler power per bin (dB re carrier) with the part common to all mics removed
    (what the loudspeaker emits around the carrier, e.g. music distortion): the echoes of moving things
    (see DopplerFrontEnd._echo_db); None in hand-built frames.
    """

    t_s: np.ndarray
    spectra_db: np.ndarray
    level_db: np.ndarray
    freqs_hz: np.ndarray
    carriers_hz: np.ndarray | None = None
    echo_db: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.t_s)

    @staticmethod
    def concat(frames: list["Frames"]) -> "Frames":
        """Join frames along time (all from the same front end); needs at least one element."""
        if not frames:
            raise ValueError("Frames.concat needs at least one Frames")
        first = frames[0]
        return Frames(
            t_s=np.concatenate([f.t_s for f in frames]),
            spectra_db=np.concatenate([f.spectra_db for f in frames]),
            level_db=np.concatenate([f.level_db for f in frames]),
            freqs_hz=first.freqs_hz,
            carriers_hz=first.carriers_hz,
            echo_db=None if any(f.echo_db is None for f in frames) else np.concatenate([f.echo_db for f in frames]),
        )


def _largest_divisor_at_most(n: int, limit: float) -> int:
    """Largest integer d <= limit that divides n (>= 1)."""
    for d in range(max(1, int(math.floor(limit))), 0, -1):
        if n % d == 0:
            return d
    return 1


class DopplerFrontEnd:
    """Chunk-in, frames-out Doppler front end (see the module doc).

    sample_rate: Hz. carriers_hz: carrier frequencies (Hz). n_mics: channels of every chunk.
    ``.process(chunk (n, n_mics) float) -> Frames`` (zero or more new frames). Attributes after construction:
    ``hop_samples`` (input samples per hop), ``decimation``, ``baseband_rate_hz``, ``window_samples`` (baseband),
    ``n_fft``, ``freqs_hz``, ``hop_s`` (exact), ``demodulator`` (the :class:`CarrierDemodulator`, one hop per block).
    """

    def __init__(self, sample_rate: int, carriers_hz, n_mics: int, config: FrontEndConfig | None = None):
        cfg = config if config is not None else FrontEndConfig()
        cfg.validate()
        self.config = cfg
        self.sample_rate = int(sample_rate)
        self.carriers_hz = np.atleast_1d(np.asarray(carriers_hz, dtype=np.float64))
        self.n_mics = int(n_mics)
        fs = self.sample_rate
        if self.n_mics < 1 or self.carriers_hz.size < 1:
            raise ConfigError("front end: needs at least one mic and one carrier")
        for f0 in self.carriers_hz:
            if f0 - cfg.band_hz <= 0 or f0 + cfg.band_hz >= fs / 2:
                raise ConfigError(f"[frontend].band_hz: carrier {f0:g} Hz ± {cfg.band_hz:g} Hz does not fit below "
                                  f"half the sample rate ({fs / 2:g} Hz)")
        self.hop_samples = int(round(cfg.hop_s * fs))
        if self.hop_samples < 1:
            raise ConfigError(f"[frontend].hop_s: {cfg.hop_s} s is shorter than one sample at {fs} Hz")
        self.decimation = _largest_divisor_at_most(self.hop_samples, fs / cfg.baseband_rate_hz)
        self.baseband_rate_hz = fs / self.decimation
        self.hop_s = self.hop_samples / fs
        self._hop_bb = self.hop_samples // self.decimation
        self.window_samples = max(2, int(round(cfg.window_s * self.baseband_rate_hz)))
        self.n_fft = cfg.n_fft or 1 << (self.window_samples - 1).bit_length()
        if self.n_fft < self.window_samples:
            raise ConfigError(f"[frontend].n_fft: {self.n_fft} is shorter than the window "
                              f"({self.window_samples} baseband samples)")
        # Doppler bins kept: FFT indices -B..B with |f| <= band_hz.
        df = self.baseband_rate_hz / self.n_fft
        n_side = min(int(math.floor(cfg.band_hz / df + 1e-9)), self.n_fft // 2 - 1)
        self._bins = np.arange(-n_side, n_side + 1) % self.n_fft
        self.freqs_hz = np.arange(-n_side, n_side + 1) * df
        self._window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(self.window_samples) / self.window_samples)
        self._window_sum = float(self._window.sum())
        self._build_filters()
        self.reset()

    # ------------------------------------------------------------------------------------------------------------
    def _build_filters(self) -> None:
        cfg = self.config
        lowpass = decimation_lowpass(self.sample_rate, self.decimation, cfg.band_hz, cfg.antialias_db)
        self.demodulator = CarrierDemodulator(self.sample_rate, self.carriers_hz, self.n_mics, self.decimation,
                                              lowpass, block=self._hop_bb)
        skip = min(self.demodulator.warmup, (self._hop_bb - 1) // 2)
        self.tracker = (CarrierTracker(len(self.carriers_hz), self.n_mics, self._hop_bb, self.baseband_rate_hz,
                                       cfg.carrier_tracking_s, skip=skip) if cfg.carrier_tracking_s > 0 else None)
        poles, _ = butter_highpass_zpk(cfg.clutter_order, cfg.clutter_cutoff_hz, self.baseband_rate_hz)
        self._hp_segment = SegmentedHighPass.segment_for(poles, self._hop_bb)

    def reset(self) -> None:
        """Forget all history (as if audio started now, preceded by silence)."""
        k, m, cfg = len(self.carriers_hz), self.n_mics, self.config
        self.demodulator.reset()                                       # remainder, filter history, sample count
        if self.tracker is not None:
            self.tracker.reset()                                       # clock offset, removed before the high-pass
        self._hp = SegmentedHighPass(cfg.clutter_order, cfg.clutter_cutoff_hz, self.baseband_rate_hz, k * m,
                                     self._hp_segment)
        n_hist = self.window_samples - 1
        self._hist_pre = np.zeros((k * m, n_hist), complex)            # baseband before clutter removal
        self._hist_hp = np.zeros((k * m, n_hist), complex)             # baseband after clutter removal

    def process(self, chunk: np.ndarray) -> Frames:
        """chunk (n, n_mics) float samples (full scale 1.0) -> Frames for every hop completed by this chunk."""
        chunk = np.asarray(chunk)
        if chunk.ndim == 1 and self.n_mics == 1:
            chunk = chunk[:, None]
        if chunk.ndim != 2 or chunk.shape[1] != self.n_mics:
            raise ValueError(f"chunk must be (n, {self.n_mics}), got {chunk.shape}")
        bb0 = self.demodulator.produced
        f_first = bb0 // self._hop_bb
        pre = self.demodulator.feed(chunk)  # (K, M, n_hops * hop_bb): whole hops only
        n_hops = pre.shape[2] // self._hop_bb
        if n_hops == 0:
            return self._frames(self._hist_pre, self._hist_hp, f_first, 0)
        if self.tracker is not None:
            pre = self.tracker.derotate(pre)
        pre = pre.reshape(-1, pre.shape[2])  # rows (carrier, mic)
        if bb0 == 0:
            # Start the clutter high-pass in steady state for the static field seen by the first baseband sample
            # whose decimation filter saw only real audio; before it, the high-pass sees that same value (output 0).
            first = self.demodulator.warmup
            self._hp.start(pre[:, first])
            hp_in = pre.copy()
            hp_in[:, :first] = pre[:, first, None]
            hp = self._hp.process(hp_in)
        else:
            hp = self._hp.process(pre)
        hist_pre = np.concatenate([self._hist_pre, pre], axis=1)
        hist_hp = np.concatenate([self._hist_hp, hp], axis=1)
        keep = self.window_samples - 1
        self._hist_pre = hist_pre[:, hist_pre.shape[1] - keep:].copy()
        self._hist_hp = hist_hp[:, hist_hp.shape[1] - keep:].copy()
        return self._frames(hist_pre, hist_hp, f_first, n_hops)

    def _windows(self, hist: np.ndarray, n_frames: int) -> np.ndarray:
        """Read-only view (rows, F, Nw) of the last n_frames windows (hop_bb apart) of hist (rows, L), C-contiguous,
        whose last column is the last frame's last sample."""
        item, nw = hist.itemsize, self.window_samples
        start = hist.shape[1] - nw - (n_frames - 1) * self._hop_bb
        return np.lib.stride_tricks.as_strided(hist[:, start:], shape=(hist.shape[0], n_frames, nw),
                                               strides=(hist.strides[0], self._hop_bb * item, item), writeable=False)

    def _frames(self, hist_pre: np.ndarray, hist_hp: np.ndarray, f_first: int, n_frames: int) -> Frames:
        """Spectra for frames f_first..f_first+n_frames-1, ending at the last columns of hist_* (K*M, L)."""
        k, m = len(self.carriers_hz), self.n_mics
        t_s = (np.arange(f_first, f_first + n_frames) + 1) * self.hop_s
        if n_frames == 0:
            nb = len(self.freqs_hz)
            return Frames(t_s=t_s, spectra_db=np.zeros((0, k, m, nb)), level_db=np.zeros((0, k, m)),
                          freqs_hz=self.freqs_hz, carriers_hz=self.carriers_hz, echo_db=np.zeros((0, k, nb)))
        seg_hp = self._windows(hist_hp, n_frames) * self._window  # (K*M, F, Nw)
        # Carrier level: coherent (windowed mean) baseband amplitude before clutter removal, |y| = A / 2.
        # Carrier phasor per mic: coherent (windowed mean) baseband before clutter removal, |c| = A / 2.
        carrier = self._windows(hist_pre, n_frames) @ self._window / self._window_sum  # (K*M, F) complex
        level = carrier.real ** 2 + carrier.imag ** 2
        spec = np.fft.fft(seg_hp, n=self.n_fft, axis=-1)[:, :, self._bins] / self._window_sum
        power = spec.real ** 2 + spec.imag ** 2
        rel = power / np.maximum(level, _POWER_FLOOR)[:, :, None]
        spectra_db = 10.0 * np.log10(np.maximum(rel, _POWER_FLOOR))
        level_db = 10.0 * np.log10(np.maximum(4.0 * level, _POWER_FLOOR))
        spectra_db = np.transpose(spectra_db.reshape(k, m, n_frames, -1), (2, 0, 1, 3))
        level_db = np.transpose(level_db.reshape(k, m, n_frames), (2, 0, 1))
        echo_db = self._echo_db(spec, carrier, level, rel)
        return Frames(t_s=t_s, spectra_db=spectra_db, level_db=level_db, freqs_hz=self.freqs_hz,
                      carriers_hz=self.carriers_hz, echo_db=echo_db)

    def _echo_db(self, spec: np.ndarray, carrier: np.ndarray, level: np.ndarray, rel: np.ndarray) -> np.ndarray:
        """Doppler power not common to all mics, (F, K, B) dB re carrier.

        spec (K*M, F, B) complex bin amplitudes; carrier (K*M, F) carrier phasors; level = |carrier|^2; rel the
        per-mic relative power. Relative to each mic's carrier phasor, whatever the loudspeaker itself emits around
        the carrier (music intermodulation, cone "Doppler") reaches every mic through the same direct path and is
        identical at all mics, while echoes of moving things arrive over paths that differ by many wavelengths
        between mics (random phases). The spread across mics, M/(M-1) mean|Y_m - mean Y|^2, keeps the echoes' power
        and rejects the common part. One mic: the plain relative power.
        """
        k, m = len(self.carriers_hz), self.n_mics
        n_frames = spec.shape[1]
        if m == 1:
            p = rel.reshape(k, n_frames, -1)
        else:
            # mean|Y_m - mean Y|^2 = mean|Y_m|^2 - |mean Y|^2, with |Y_m|^2 = rel
            inv_c = 1.0 / np.where(level > _POWER_FLOOR, carrier, math.sqrt(_POWER_FLOOR))  # as in rel
            y_mean = (spec * inv_c[:, :, None]).reshape(k, m, n_frames, -1).mean(axis=1)
            p = rel.reshape(k, m, n_frames, -1).mean(axis=1) - (y_mean.real ** 2 + y_mean.imag ** 2)
            p *= m / (m - 1.0)
        return np.transpose(10.0 * np.log10(np.maximum(p, _POWER_FLOOR)), (1, 0, 2))


__all__ = ["FrontEndConfig", "Frames", "DopplerFrontEnd"]
