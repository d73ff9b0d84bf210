"""Simulator speed: seconds of 4-mic 96 kHz audio rendered per second, on one core.

Usage: python benchmarks/simulate_speed.py [--seconds 20] [--repeats 3] [--scenes walk-in music+fan+walk ...]

For each scene: the real-time factor on the wall clock and on this process's CPU time (the machine may be shared:
CPU time is what one core actually spent), best of ``--repeats``. A reference measured in the same run puts the
numbers in context: the "floor" is the least any renderer must do for the same audio (white noise for every mic
and one inverse FFT per mic and 0.5 s block); ``x floor`` is the render time in units of that floor, which is
independent of how fast or busy the machine is. Target: >= 20x real time (CPU time) for walk-in and a
music+fan+walk scene. Exit status 1 if a target is missed.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy.fft as sfft  # noqa: E402

TARGET_X_REALTIME = 20.0
TARGET_SCENES = ("walk-in", "music+fan+walk")


def _pin_one_core() -> None:
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
    except (AttributeError, OSError):
        pass


def _timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def floor_time(seconds: float, fs: int = 96000, n_mics: int = 4, repeats: int = 3) -> tuple[float, float]:
    """(wall, cpu) seconds of the reference workload for ``seconds`` of audio (best of ``repeats``)."""
    block = fs // 2
    n_fft = sfft.next_fast_len(block + block // 4, real=True)

    def work():
        rng = np.random.default_rng(0)
        spec = np.zeros((n_mics, n_fft // 2 + 1), np.complex64)
        spec[:, n_fft * 40000 // fs] = 1.0
        for _ in range(int(seconds * 2)):
            y = sfft.irfft(spec, n=n_fft, axis=-1)
            y[:, :block] += rng.standard_normal((n_mics, block), dtype=np.float32)

    runs = [_timed(work) for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def scene_time(name: str, seconds: float, repeats: int) -> tuple[float, float]:
    from uspd.simulate import SceneRenderer, load_scene

    scene = load_scene(name, duration_s=seconds + 1.0, sample_rate=96000, device={"n_mics": 4})
    fs = scene.sample_rate
    runs = []
    for _ in range(repeats):
        r = SceneRenderer(scene, seed=1)
        r.render(fs // 2)  # warm-up: first frames include the pre-roll
        runs.append(_timed(lambda: r.render(int(seconds * fs))))
    return min(x[0] for x in runs), min(x[1] for x in runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="audio seconds rendered per scene and repeat")
    ap.add_argument("--repeats", type=int, default=3, help="repeats per scene (best is reported)")
    ap.add_argument("--scenes", nargs="+", default=["empty", "walk-in", "fan", "music", "music+fan+walk",
                                                      "seated", "everything"])
    args = ap.parse_args(argv)
    _pin_one_core()
    fw, fc = floor_time(args.seconds, repeats=args.repeats)
    print(f"one core, 4 mics, 96 kHz, {args.seconds:g} s of audio per run, best of {args.repeats}")
    print(f"floor (noise + one irfft per mic and block): {args.seconds / fc:7.1f}x real time (cpu)")
    print(f"{'scene':<16} {'wall s':>7} {'cpu s':>7} {'x RT wall':>10} {'x RT cpu':>9} {'x floor':>8}  target")
    ok = True
    for name in args.scenes:
        w, c = scene_time(name, args.seconds, args.repeats)
        target = ""
        if name in TARGET_SCENES:
            passed = args.seconds / c >= TARGET_X_REALTIME
            ok &= passed
            target = f">= {TARGET_X_REALTIME:g}x {'ok' if passed else 'MISSED'}"
        print(f"{name:<16} {w:7.2f} {c:7.2f} {args.seconds / w:10.1f} {args.seconds / c:9.1f} {c / fc:8.1f}  {target}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
