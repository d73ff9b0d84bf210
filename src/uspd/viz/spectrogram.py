"""Doppler-band spectrogram of a recording, computed chunk by chunk (an hour-long file is never loaded whole).

For each carrier f0: mix the mics to complex baseband (x·exp(-j2π·f0·t)), low-pass and decimate to about four times
the band (FIR, polyphase: :class:`uspd.features.demodulator.CarrierDemodulator`, the front end's demodulator), then a
Hann STFT; keep the bins within ±band_hz of the carrier. Neighbouring columns are averaged (linear power) so there
are at most ``max_columns`` of them. Power is in dBFS: a full-scale sine at a bin centre reads 0 dB. Plotting needs
matplotlib (the ``plot`` extra), imported only when a picture is drawn.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from uspd.errors import UspdError
from uspd.features.demodulator import CarrierDemodulator, decimation_lowpass
from uspd.recording import Labels, RecordingReader

log = logging.getLogger(__name__)

#: Stop-band attenuation of the decimation filter (dB).
DECIMATION_ATTENUATION_DB = 80.0
#: Baseband samples per product of the demodulator (a few hundred: fast, and single-threaded in BLAS).
DEMODULATOR_BLOCK = 256
#: Speed of sound used for the speed axis of the picture (m/s, air at 20 °C).
SPEED_OF_SOUND_M_S = 343.2


@dataclass
class BandSpectrogram:
    """The Doppler band around one carrier.

    times_s (T,): audio time of each column's centre, seconds from the start of the file.
    doppler_hz (B,): offset from the carrier in Hz, ascending (negative = receding).
    power_db (B, T): power per bin in dBFS (mean over the selected mics).
    """

    carrier_hz: float
    times_s: np.ndarray
    doppler_hz: np.ndarray
    power_db: np.ndarray


@dataclass
class _Plan:
    """What every carrier shares: decimation factor ``d``, FIR ``h`` (len d·q+1, centred d·q/2 samples back),
    STFT window and bins."""

    fs: int
    d: int
    h: np.ndarray
    q: int
    n_win: int
    hop: int
    window: np.ndarray
    bins: np.ndarray  # FFT bin indices inside the band, ordered by frequency
    doppler_hz: np.ndarray
    group: int  # STFT columns averaged into one output column

    @property
    def fs_dec(self) -> float:
        return self.fs / self.d


def _make_plan(fs: int, band_hz: float, window_s: float, n_frames: int, max_columns: int) -> _Plan:
    d = max(1, int(fs // (4.0 * band_hz)))
    fs_dec = fs / d
    if d > 1:
        # Pass up to band_hz; everything that would alias into ±band_hz (beyond fs_dec - band_hz) is stopped.
        h = decimation_lowpass(fs, d, band_hz, DECIMATION_ATTENUATION_DB, extra_tap=True)
        q = (len(h) - 1) // d
    else:
        q, h = 0, np.ones(1)
    n_win = int(round(window_s * fs_dec))
    if n_win < 8:
        raise UspdError(f"--window-s {window_s:g}: too short, it must span at least 8 samples at {fs_dec:g} Hz")
    hop = max(1, n_win // 2)
    # Decimated samples after the filter's warm-up (the first q have zeros, not audio, in their history).
    n_dec = (max(0, n_frames - 1) // d + 1 if n_frames else 0) - q
    if n_dec < n_win:
        raise UspdError(
            f"--window-s {window_s:g}: the selected audio ({n_frames / fs:g} s) is shorter than one window"
        )
    n_cols = 1 + (n_dec - n_win) // hop
    freqs = np.fft.fftfreq(n_win, 1 / fs_dec)
    order = np.argsort(freqs)
    bins = order[np.abs(freqs[order]) <= band_hz * (1 + 1e-9)]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_win) / n_win)  # periodic Hann
    return _Plan(fs=fs, d=d, h=h, q=q, n_win=n_win, hop=hop, window=window.astype(np.float32), bins=bins,
                 doppler_hz=freqs[bins], group=max(1, math.ceil(n_cols / max_columns)))


class _BandColumns:
    """STFT columns of one carrier's baseband (mean power over mics), averaged in groups of ``plan.group``."""

    def __init__(self, plan: _Plan, carrier_hz: float, start_frame: int, n_mics: int):
        self.plan, self.carrier_hz, self.start_frame = plan, carrier_hz, start_frame
        self._dec = np.zeros((0, n_mics), np.complex64)  # decimated samples not yet in a column
        self._dec_i0 = -plan.q  # decimated index of _dec[0], counted from the end of the filter's warm-up
        self._col = 0  # next STFT column
        self._acc_p: list[np.ndarray] = []
        self._acc_t: list[float] = []
        self._out_p: list[np.ndarray] = []
        self._out_t: list[float] = []
        scale = 0.5 * float(plan.window.sum())  # a full-scale real sine mixes down to amplitude 0.5
        self._norm = 1.0 / (scale * scale)

    def add(self, y: np.ndarray) -> None:
        """Append baseband samples ``(m, n_mics)`` and turn every complete window into a column."""
        p = self.plan
        self._dec = np.concatenate([self._dec, y])
        first = self._col * p.hop - self._dec_i0
        n_cols = (len(self._dec) - first - p.n_win) // p.hop + 1
        if n_cols > 0:
            frames = sliding_window_view(self._dec, p.n_win, axis=0)[first:first + (n_cols - 1) * p.hop + 1:p.hop]
            spec = np.fft.fft(frames * p.window, axis=-1)[..., p.bins]  # (cols, mics, bins)
            power = (spec.real ** 2 + spec.imag ** 2).mean(axis=1) * self._norm  # (cols, bins)
            cols = self._col + np.arange(n_cols)
            centre = p.q + cols * p.hop + (p.n_win - 1) / 2  # decimated index of each window's centre
            times = (self.start_frame + centre * p.d - (len(p.h) - 1) / 2) / p.fs
            for pw, t in zip(power, times):
                self._acc_p.append(pw)
                self._acc_t.append(float(t))
                if len(self._acc_p) == p.group:
                    self._flush()
            self._col += n_cols
        drop = min(self._col * p.hop - self._dec_i0, len(self._dec))
        if drop > 0:
            self._dec = self._dec[drop:]
            self._dec_i0 += drop

    def _flush(self) -> None:
        if self._acc_p:
            self._out_p.append(np.mean(self._acc_p, axis=0))
            self._out_t.append(float(np.mean(self._acc_t)))
            self._acc_p, self._acc_t = [], []

    def result(self) -> BandSpectrogram:
        self._flush()
        power = np.array(self._out_p, dtype=np.float64).T.reshape(len(self.plan.bins), -1)
        return BandSpectrogram(
            carrier_hz=float(self.carrier_hz),
            times_s=np.array(self._out_t),
            doppler_hz=self.plan.doppler_hz.copy(),
            power_db=10 * np.log10(np.maximum(power, 1e-30)),
        )


def doppler_spectrogram(
    recording: str | os.PathLike | RecordingReader,
    band_hz: float = 1000.0,
    mic: int | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
    window_s: float = 0.1,
    max_columns: int = 2000,
    chunk_s: float = 1.0,
    progress: bool = False,
) -> list[BandSpectrogram]:
    """Doppler-band spectrogram of ``recording``, one :class:`BandSpectrogram` per carrier (sidecar order).

    band_hz: half-width of the band shown around each carrier (Hz). mic: channel index, or None for the mean power
    over all mics. start_s/end_s: segment of the file (s; end None = to the end). window_s: STFT window (s); the
    frequency resolution is about 1/window_s Hz, columns overlap by half. max_columns: more columns than this are
    averaged in groups. chunk_s: audio read per step (s). Raises UspdError for options that do not fit the file.
    """
    reader = recording if isinstance(recording, RecordingReader) else RecordingReader(recording)
    fs = reader.sample_rate
    nyquist = fs / 2
    for option, value in (("--band-hz", band_hz), ("--window-s", window_s)):
        if not (math.isfinite(value) and value > 0):
            raise UspdError(f"{option} {value:g}: must be a positive number")
    if end_s is not None and math.isnan(end_s):
        raise UspdError("--end-s nan: must be a number of seconds")
    for f0 in reader.sidecar.carrier_hz:
        if f0 - band_hz <= 0 or f0 + band_hz >= nyquist:
            raise UspdError(f"--band-hz {band_hz:g}: carrier {f0:g} Hz ± {band_hz:g} Hz does not fit between 0 and "
                            f"half the sample rate ({nyquist:g} Hz) of {reader.path}")
    if mic is not None and not 0 <= mic < reader.n_mics:
        raise UspdError(f"--mic {mic}: {reader.path} has mics 0..{reader.n_mics - 1}")
    if max_columns < 1:
        raise UspdError(f"--max-columns {max_columns}: must be at least 1")
    if not (0 <= start_s < reader.duration_s):
        raise UspdError(f"--start-s {start_s:g}: must be in [0, {reader.duration_s:g}) s for {reader.path}")
    start = int(round(start_s * fs))
    stop = reader.n_frames if end_s is None else min(reader.n_frames, int(round(end_s * fs)))
    if stop <= start:
        raise UspdError(f"--end-s {end_s:g}: must be after --start-s {start_s:g}")
    plan = _make_plan(fs, band_hz, window_s, stop - start, max_columns)
    log.debug("spectrogram: decimate by %d to %.1f Hz with %d taps, %d-point window, %d columns per output column",
              plan.d, plan.fs_dec, len(plan.h), plan.n_win, plan.group)
    n_sel = 1 if mic is not None else reader.n_mics
    carriers = reader.sidecar.carrier_hz
    # Output j is the low-pass output at sample j·d of the selection (lead d - 1), as the time axis assumes.
    demod = CarrierDemodulator(fs, carriers, n_sel, plan.d, plan.h, lead=plan.d - 1, block=DEMODULATOR_BLOCK)
    bands = [_BandColumns(plan, f0, start, n_sel) for f0 in carriers]
    chunk = max(plan.d, int(chunk_s * fs))
    from tqdm import tqdm

    with tqdm(total=round((stop - start) / fs, 1), unit="s", disable=not progress, desc="spectrogram") as bar:
        for block in reader.chunks(chunk, start, stop):
            _add(bands, demod.feed(block if mic is None else block[:, mic:mic + 1]))
            bar.update(round(len(block) / fs, 1))
        _add(bands, demod.flush())
    return [b.result() for b in bands]


def _add(bands: list[_BandColumns], y: np.ndarray) -> None:
    """Baseband y (K, n_mics, J) from the demodulator to each carrier's columns."""
    for i, b in enumerate(bands):
        b.add(y[i].T.astype(np.complex64))


# --- picture -------------------------------------------------------------------------------------------------------

#: Colours of label kinds in the interval strip (anything else is grey).
KIND_COLOURS = {"major": "#d62728", "minor": "#ff7f0e", "presence": "#2ca02c", "pet": "#9467bd", "far": "#7f7f7f",
                "fan": "#1f77b4", "curtain": "#17becf", "hvac": "#8c9fb1", "keys": "#bcbd22", "music": "#e377c2",
                "vacuum": "#8c564b", "door": "#555555"}


def require_matplotlib():
    """(Figure, FigureCanvasAgg) from matplotlib (no pyplot, no global backend); UspdError if it is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UspdError("drawing needs matplotlib: pip install 'uspd[plot]'") from None
    return Figure, FigureCanvasAgg


def plot_spectrogram(
    specs: list[BandSpectrogram],
    out_path: str | os.PathLike,
    title: str,
    labels: Labels | None = None,
    range_db: float = 60.0,
    db_limits: tuple[float | None, float | None] = (None, None),
    speed_of_sound_m_s: float = SPEED_OF_SOUND_M_S,
) -> Path:
    """Draw one panel per carrier (time on x, Doppler shift on y, dB colour) and save to ``out_path``.

    Colour scale (dBFS): see :func:`colour_limits_db`; ``db_limits`` (low, high) fixes either end (to compare
    pictures). The carrier line itself usually saturates. Label intervals (display only), if given, are drawn
    as bars in a strip under the panels, one row per kind. The format follows the file extension (png, svg, pdf).
    """
    Figure, FigureCanvasAgg = require_matplotlib()
    out_path = Path(out_path)
    t_lo, t_hi = _time_extent(specs[0])
    shown = []
    if labels is not None:
        shown = [iv for iv in labels.intervals if iv.end_s >= t_lo and iv.start_s <= t_hi]
    kinds = list(dict.fromkeys(iv.kind for iv in sorted(shown, key=lambda iv: list(KIND_COLOURS).index(iv.kind)
                                                         if iv.kind in KIND_COLOURS else 99)))
    n = len(specs)
    ratios = [3.0] * n + ([0.25 + 0.22 * len(kinds)] if kinds else [])
    fig = Figure(figsize=(11, sum(ratios) * 0.9 + 0.9), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios}, squeeze=False)[:, 0]
    vmin, vmax = colour_limits_db(specs, range_db)
    vmin = vmin if db_limits[0] is None else db_limits[0]
    vmax = vmax if db_limits[1] is None else db_limits[1]
    image = None
    for ax, s in zip(axes, specs):
        df = float(s.doppler_hz[1] - s.doppler_hz[0]) if len(s.doppler_hz) > 1 else 1.0
        extent = (*_time_extent(s), s.doppler_hz[0] - df / 2, s.doppler_hz[-1] + df / 2)
        # Clipped first: matplotlib's resampling of far out-of-range values can drop the carrier line.
        image = ax.imshow(np.clip(s.power_db, vmin, vmax), aspect="auto", origin="lower", extent=extent,
                          interpolation="nearest", cmap="magma", vmin=vmin, vmax=vmax)
        ax.set_ylabel("Doppler shift (Hz)")
        ax.set_title(f"carrier {s.carrier_hz:g} Hz", fontsize=10, loc="left")
        f0 = s.carrier_hz
        sec = ax.secondary_yaxis("right", functions=(lambda f, f0=f0: f * speed_of_sound_m_s / (2 * f0),
                                                     lambda v, f0=f0: v * 2 * f0 / speed_of_sound_m_s))
        sec.set_ylabel("radial speed (m/s)")
    if kinds:
        _draw_label_strip(axes[-1], shown, kinds)
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(t_lo, t_hi)
    cbar = fig.colorbar(image, ax=list(axes[:n]), pad=0.01, fraction=0.04)
    cbar.set_label("power (dBFS per bin)")
    fig.suptitle(title, fontsize=11)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out_path)
    except (ValueError, OSError) as exc:
        raise UspdError(f"{out_path}: cannot write the picture ({str(exc).splitlines()[0]})") from None
    return out_path


def colour_limits_db(specs: list[BandSpectrogram], range_db: float = 60.0) -> tuple[float, float]:
    """(low, high) of the colour scale in dBFS, from the Doppler content away from the carrier line.

    Away from the carrier means at least 3 bins off 0 Hz (outside the window's main lobe). low: 3 dB under the
    median there (the noise floor); high: 6 dB over its 99.9th percentile, but at least ``range_db`` above low, so an
    empty room shows dark noise rather than noise stretched over the whole scale. The carrier line is far stronger
    than any echo and saturates.
    """
    off = []
    for s in specs:
        df = float(s.doppler_hz[1] - s.doppler_hz[0]) if len(s.doppler_hz) > 1 else 1.0
        rows = np.abs(s.doppler_hz) >= 3 * df
        off.append((s.power_db[rows] if rows.any() else s.power_db).ravel())
    values = np.concatenate(off)
    low = float(np.median(values)) - 3.0
    high = max(float(np.percentile(values, 99.9)) + 6.0, low + range_db)
    return low, high


def _time_extent(s: BandSpectrogram) -> tuple[float, float]:
    """(first, last) time edge of the columns (s)."""
    dt = float(np.median(np.diff(s.times_s))) if len(s.times_s) > 1 else 0.1
    return float(s.times_s[0]) - dt / 2, float(s.times_s[-1]) + dt / 2


def _draw_label_strip(ax, intervals, kinds: list[str]) -> None:
    """Bars for labelled intervals, one row per kind (minor motion bars carry their action)."""
    for row, kind in enumerate(kinds):
        for iv in intervals:
            if iv.kind != kind:
                continue
            ax.broken_barh([(iv.start_s, max(iv.end_s - iv.start_s, 1e-3))], (row - 0.38, 0.76),
                           color=KIND_COLOURS.get(kind, "#999999"))
            if iv.action:
                ax.text((iv.start_s + iv.end_s) / 2, row, iv.action, ha="center", va="center", fontsize=7,
                        color="white", clip_on=True)
    ax.set_yticks(range(len(kinds)), kinds, fontsize=8)
    ax.set_ylim(len(kinds) - 0.5, -0.5)
    ax.set_ylabel("labels", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
