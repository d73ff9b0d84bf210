"""Shared helpers for tests/test_neural.py and tests/test_train.py: synthetic Doppler frames and training clips."""
from __future__ import annotations

import numpy as np

N_BANDS = 32


def synthetic_spectra(rng, n_frames: int, n_mics: int, f0_hz: float, motion: np.ndarray, n_bins: int = 129,
                      band_hz: float = 1000.0):
    """Noise-floor spectra (F, 1, n_mics, n_bins) dB with a +35 dB bump around a walking-speed Doppler shift on
    hops where ``motion`` is true. Returns (spectra_db, freqs_hz)."""
    freqs = np.linspace(-band_hz, band_hz, n_bins)
    spec = -90.0 + 3.0 * rng.standard_normal((n_frames, 1, n_mics, n_bins))
    shift = 2 * 1.0 * f0_hz / 343.2
    bump = 35.0 * np.exp(-0.5 * ((freqs - shift) / 40.0) ** 2)
    spec[motion] += bump
    return spec.astype(np.float32), freqs


def synthetic_clip(rng, n_hops: int = 200, n_mics: int = 4, major: bool = True) -> dict:
    """A training clip dict as the trainer takes it (features without the background rise, ``e`` averaged over
    carriers: (F, B)): motion in the middle third. ``load_shards`` gives ``e`` per carrier, (F, 1, B) here."""
    from uspd.detector.neural import band_features, echo_band_features

    motion = np.zeros(n_hops, bool)
    motion[n_hops // 3: 2 * n_hops // 3] = True
    spec, freqs = synthetic_spectra(rng, n_hops, n_mics, 40000.0, motion)
    x = band_features(spec, freqs, [40000.0]).astype(np.float16)
    e = echo_band_features(spec.mean(axis=2), freqs, [40000.0])[:, 0].astype(np.float16)
    zeros = np.zeros(n_hops, bool)
    return {"x": x, "e": e, "t": np.arange(1, n_hops + 1, dtype=np.float32) * 0.05,
            "motion": np.where(motion, 2 if major else 1, 0).astype(np.int8),
            "action": np.zeros(n_hops, np.int8), "distance_m": np.full(n_hops, np.nan, np.float32),
            "presence": zeros, "pet": zeros, "far": zeros, "confusers": np.zeros(n_hops, np.uint16),
            "edge": zeros.copy(), "meta": {"n_mics": n_mics}}
