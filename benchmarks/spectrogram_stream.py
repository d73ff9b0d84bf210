"""Speed and memory of the streaming Doppler spectrogram (`uspd spectrogram`) on a long 4-mic 96 kHz file.

Reports, against references measured in the same run:
- speed: seconds of audio per wall-clock second, and relative to simply decoding the file (RecordingReader.chunks);
- memory: peak Python-heap allocation (tracemalloc) while computing, as a fraction of the decoded file size
  (what loading it whole would take). Streaming means this fraction shrinks as the file gets longer.

    python benchmarks/spectrogram_stream.py [--seconds 120] [--mics 4]
"""
from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from uspd.recording import RecordingReader, RecordingWriter, Sidecar
from uspd.viz import doppler_spectrogram


def make_file(path: Path, seconds: float, n_mics: int, fs: int = 96000) -> Path:
    """Carrier + a slow Doppler sweep + noise, written block by block (int16)."""
    rng = np.random.default_rng(0)
    mics = [[0.035 * np.cos(a), 0.035 * np.sin(a), 0.0] for a in np.linspace(0, 2 * np.pi, n_mics, endpoint=False)]
    sc = Sidecar(fs, [40000.0], mics)
    block = fs
    phase = 0.0
    with RecordingWriter(path, sc) as w:
        for s in range(0, int(seconds * fs), block):
            t = (s + np.arange(block)) / fs
            f = 40000 + 200 * np.sin(2 * np.pi * t / 10)
            ph = phase + 2 * np.pi * np.cumsum(f) / fs
            phase = ph[-1]
            x = 0.3 * np.cos(2 * np.pi * 40000 * t) + 0.003 * np.cos(ph)
            w.write(x[:, None] + 1e-4 * rng.standard_normal((block, n_mics)))
    return path


def timed(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, dt, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120.0, help="length of the test file (s)")
    ap.add_argument("--mics", type=int, default=4, help="number of mic channels")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wav = make_file(Path(tmp) / "long.wav", args.seconds, args.mics)
        reader = RecordingReader(wav)
        decoded_bytes = reader.n_frames * reader.n_mics * 4

        def decode_only():
            for _ in reader.chunks(96000):
                pass

        _, t_decode, _ = timed(decode_only)
        (spec,), t_spec, peak = timed(lambda: doppler_spectrogram(reader))
    audio_s = reader.duration_s
    print(f"file: {audio_s:.0f} s, {args.mics} mics, 96 kHz int16 ({decoded_bytes / 1e6:.0f} MB as float32)")
    print(f"decode only:  {t_decode:6.2f} s  ({audio_s / t_decode:7.1f}x real time)")
    print(f"spectrogram:  {t_spec:6.2f} s  ({audio_s / t_spec:7.1f}x real time, {t_spec / t_decode:.1f}x the decode "
          f"time), {spec.power_db.shape[1]} columns")
    print(f"peak memory:  {peak / 1e6:6.1f} MB = {peak / decoded_bytes:.3f} of the decoded file")


if __name__ == "__main__":
    main()
