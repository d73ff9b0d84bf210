"""Does the neural model's velocity-band resolution hide walkers beside a confuser? The classic detector, run as
shipped (per-bin echo spectrum) and again with each bin replaced by its band's mean power over the model's 32
geometric velocity bands (:class:`uspd.detector.neural.FeatureSpec`) before its adaptive floor, on the same tuning
sets, same presence tracker: FA/h, major recall, and recall in late walk-ins (``late_walk`` clips) and from 30 s, per
strict threshold.

If the banded classic detector still finds the late walk-ins at the same false alarms, the bands carry what the
classic detector uses there, and the model's misses come from how it normalises them, not from the resolution.

    python benchmarks/band_resolution.py /tmp/tune1021 /tmp/tune1022 [--thresholds 0.5,0.7,0.9]

Runs in this process (the band average is patched into the classic detector for the second pass), about 2-3 minutes
per pass for 14 h of audio.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from unittest import mock

import numpy as np


def band_average_db(x_db: np.ndarray, freqs_hz: np.ndarray, carriers_hz) -> np.ndarray:
    """(F, K, B) dB -> the same with every bin inside one of the model's velocity bands replaced by the band's mean
    power (dB); bins outside every band (|v| < v_min or > v_max) are kept."""
    from uspd.detector.neural import SOUND_SPEED_M_S, FeatureSpec

    edges_m_s = FeatureSpec().edges_m_s()
    out = np.array(x_db, dtype=np.float64, copy=True)
    f = np.asarray(freqs_hz, dtype=np.float64)
    for k, f0 in enumerate(np.atleast_1d(carriers_hz)):
        power = 10.0 ** (out[:, k, :] / 10.0)
        for lo, hi in edges_m_s * 2.0 * float(f0) / SOUND_SPEED_M_S:
            inside = (f >= lo) & (f < hi)
            if inside.any():
                out[:, k, inside] = 10.0 * np.log10(power[:, inside].mean(axis=1, keepdims=True))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", type=Path, help="tuning sets (uspd dataset eval --seed 1000-1999)")
    ap.add_argument("--thresholds", default="0.5,0.6,0.7,0.8,0.9", help="strict thresholds (default: %(default)s)")
    args = ap.parse_args()
    try:
        thresholds = [float(t) for t in args.thresholds.split(",")]
    except ValueError:
        ap.error("--thresholds must be comma-separated numbers")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hybrid_tuning import _fmt, point

    from uspd.config import load_config
    from uspd.detector.classic import ClassicDetector
    from uspd.errors import UspdError
    from uspd.evaluate.runner import check_seeds, find_recordings, run_all

    per_bin = ClassicDetector._features

    def banded(self, frames, spectra_db):
        return band_average_db(per_bin(self, frames, spectra_db), frames.freqs_hz, self._carriers(frames))

    try:
        wavs = [w for d in args.dirs for w in find_recordings(d)]
        if set(check_seeds(wavs)) != {"tune"}:
            raise UspdError("tuning sets only (seeds 1000-1999)")
        presence = load_config(None).presence
        rows = {"classic, per bin": run_all(wavs, ["classic"], workers=1)["classic"]}
        with mock.patch.object(ClassicDetector, "_features", banded):
            rows["classic, 32 bands"] = run_all(wavs, ["classic"], workers=1)["classic"]
    except UspdError as exc:
        print(f"band_resolution.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(wavs)} recordings in {', '.join(map(str, args.dirs))}")
    print("per threshold: FA/h, major recall %, in late_walk clips %, from 30 s %, typing found %")
    print(f"{'detector':19s} " + " | ".join(f"{t:^32.2f}" for t in thresholds))
    for name, clips in rows.items():
        print(f"{name:19s} " + " | ".join(_fmt(point(clips, presence, t)) for t in thresholds), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
