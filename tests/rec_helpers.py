"""Test recordings made directly with numpy + RecordingWriter: tones at known frequencies (shared by the
recording, spectrogram and CLI tests)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from uspd.recording import RecordingWriter, Sidecar

RING_2 = [[0.035, 0.0, 0.05], [-0.035, 0.0, 0.05]]


def ring(n_mics: int, radius_m: float = 0.035) -> list[list[float]]:
    """Mic positions (m) on a ring above the loudspeaker."""
    a = 2 * np.pi * np.arange(n_mics) / n_mics
    return [[round(radius_m * np.cos(x), 6), round(radius_m * np.sin(x), 6), 0.05] for x in a]


def tones(fs: int, n: int, freqs_hz, amps, start: int = 0) -> np.ndarray:
    """Sum of cosines ``(n,)`` float64 at ``freqs_hz`` with amplitudes ``amps`` (full scale = 1)."""
    t = (start + np.arange(n)) / fs
    return sum(a * np.cos(2 * np.pi * f * t) for f, a in zip(freqs_hz, amps))


def write_tones(path: Path, freqs_hz=(40000.0,), amps=(0.5,), fs: int = 96000, duration_s: float = 1.0,
                carriers_hz=(40000.0,), n_mics: int = 2, sample_format: str = "int16", with_reference: bool = False,
                mic_gains=None, extra: dict | None = None, block: int = 30000) -> Path:
    """Write ``path`` (+ sidecar, + reference): every mic gets the same tones times its gain, written in blocks."""
    sc = Sidecar(sample_rate=fs, carrier_hz=list(carriers_hz), mic_positions_m=ring(n_mics), extra=dict(extra or {}))
    gains = np.ones(n_mics) if mic_gains is None else np.asarray(mic_gains, float)
    n_total = int(round(duration_s * fs))
    with RecordingWriter(path, sc, sample_format=sample_format, with_reference=with_reference) as w:
        for s in range(0, n_total, block):
            x = tones(fs, min(block, n_total - s), freqs_hz, amps, start=s)
            ref = tones(fs, len(x), carriers_hz, [0.25] * len(carriers_hz), start=s) if with_reference else None
            w.write(x[:, None] * gains[None, :], ref)
    return path


def write_signal(path: Path, x: np.ndarray, fs: int = 96000, carriers_hz=(40000.0,),
                 sample_format: str = "int16") -> Path:
    """Write the mic signal ``x`` (n, n_mics) with a sidecar (mics on a ring, no reference)."""
    sc = Sidecar(sample_rate=fs, carrier_hz=list(carriers_hz), mic_positions_m=ring(x.shape[1]))
    with RecordingWriter(path, sc, sample_format=sample_format) as w:
        w.write(x)
    return path


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))
