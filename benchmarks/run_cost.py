"""What `uspd run` costs: CPU share of one core at real time (excluding the simulator's rendering) and memory over
an accelerated multi-hour run.

1. CPU: the service (``SimulatedDevice`` at speed 1 -> ``Pipeline`` -> routine engine with the SQLite event log ->
   terminal view drawing to /dev/null) on ``walk-in-then-leave`` (4 mics, 96 kHz), with and without the duty cycle.
   CPU = ``time.process_time`` of the whole process (all threads) minus the CPU spent inside the renderer's
   ``render`` calls; share = CPU / audio seconds. Target: < 5 % of one core. Reference measured in the same run:
   the bare Pipeline fed the same 50 ms blocks from memory (the service's overhead is the difference).
2. Memory: the same service at full speed for ``--hours`` of audio from a pre-rendered scene looped in memory
   (``walk-in-then-leave``: empty at both ends, an integer number of carrier periods long, so the loop is seamless;
   tone switches apply the fade envelope to the recording); resident set size sampled every 10 simulated minutes.
   Target: flat (the last sample within 5 % + 5 MB of the first).

Usage: ``python benchmarks/run_cost.py [--cpu-s 60] [--hours 3] [--json OUT]``. One thread per math library.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

from uspd.config import load_config  # noqa: E402
from uspd.live.audio import AudioDevice, SimulatedDevice  # noqa: E402
from uspd.live.service import LiveService  # noqa: E402
from uspd.live.tone import ToneGenerator  # noqa: E402
from uspd.live.view import TerminalView  # noqa: E402
from uspd.pipeline import Pipeline  # noqa: E402
from uspd.routines.engine import RoutineEngine  # noqa: E402
from uspd.simulate.render import SceneRenderer  # noqa: E402

SCENE = "walk-in-then-leave"
BLOCK_S = 0.05
TARGET_CPU_SHARE = 0.05


def rss_mb() -> float:
    """Current resident set size (MB) from /proc (max RSS from getrusage where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class LoopDevice(AudioDevice):
    """Replays ``mics`` (n, n_mics) in a loop as fast as possible; tone switches scale it by the fade envelope."""

    def __init__(self, mics: np.ndarray, sidecar, duration_s: float, fade_s: float, on_block=None):
        super().__init__()
        self.mics, self.sidecar = mics, sidecar
        self.block_frames = int(round(BLOCK_S * sidecar.sample_rate))
        self._total = int(round(duration_s * sidecar.sample_rate))
        self._env = ToneGenerator(sidecar.sample_rate, sidecar.carrier_hz[0], 1.0, fade_s, on=True)
        self.on_block = on_block

    def set_tone(self, on: bool) -> None:
        self._env.set_on(on)

    def read(self) -> np.ndarray | None:
        n = min(self.block_frames, self._total - self.samples_read)
        if n <= 0:
            return None
        i0 = self.samples_read % len(self.mics)
        idx = (np.arange(i0, i0 + n)) % len(self.mics)
        block = self.mics[idx] * self._env.envelope(n)[:, None].astype(np.float32)
        self.samples_read += n
        if self.on_block is not None:
            self.on_block(self.t_s)
        return block


def service(device: AudioDevice, cfg, log_dir: str) -> LiveService:
    """The service as `uspd run` wires it: engine (event log) as sink, the live view drawing to /dev/null."""
    cfg.sections["log"].path = os.path.join(log_dir, f"events-{time.monotonic_ns()}.sqlite3")
    pipeline = Pipeline(device.sidecar, cfg)
    engine = RoutineEngine.from_config(cfg)
    engine.register_no_motion(pipeline.tracker)
    view = TerminalView(stream=open(os.devnull, "w"), live=True, refresh_s=0.15)  # noqa: SIM115
    return LiveService(device, pipeline, cfg.emission, sinks=[engine], view=view)


def cpu_at_real_time(cfg, seconds: float, seed: int, log_dir: str, speed: float) -> dict:
    device = SimulatedDevice(SCENE, seed=seed, speed=speed, block_s=BLOCK_S, duration_s=seconds)
    svc = service(device, cfg, log_dir)
    c0, w0 = time.process_time(), time.monotonic()
    stats = svc.run()
    cpu = time.process_time() - c0
    return {"audio_s": stats.audio_s, "wall_s": time.monotonic() - w0, "cpu_s": cpu,
            "render_cpu_s": device.render_cpu_s, "share": (cpu - device.render_cpu_s) / stats.audio_s,
            "tone_on": stats.tone_on_fraction}


def pipeline_reference(mics: np.ndarray, sidecar, cfg) -> float:
    """CPU share of the bare Pipeline on the same audio in 50 ms blocks (no service, no pacing)."""
    pipe = Pipeline(sidecar, cfg)
    n = int(round(BLOCK_S * sidecar.sample_rate))
    c0 = time.process_time()
    for i in range(0, len(mics) - n + 1, n):
        pipe.process(mics[i:i + n])
    return (time.process_time() - c0) / (len(mics) / sidecar.sample_rate)


def render_scene(seed: int, seconds: float) -> tuple[np.ndarray, object]:
    r = SceneRenderer(SCENE, seed)
    mics, _ = r.render(int(round(seconds * r.sample_rate)))
    return np.ascontiguousarray(mics), r.sidecar


def memory_run(mics: np.ndarray, sidecar, cfg, hours: float, log_dir: str) -> list[tuple[float, float]]:
    samples: list[tuple[float, float]] = []
    next_t = [600.0]

    def on_block(t_s: float) -> None:
        if t_s >= next_t[0]:
            samples.append((t_s, rss_mb()))
            next_t[0] += 600.0

    device = LoopDevice(mics, sidecar, hours * 3600.0, cfg.emission.fade_s, on_block)
    service(device, cfg, log_dir).run()
    return samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-s", type=float, default=60.0, help="audio seconds per CPU measurement (at --speed)")
    ap.add_argument("--speed", type=float, default=1.0, help="pace of the CPU measurement (1 = real time)")
    ap.add_argument("--hours", type=float, default=3.0, help="audio hours of the memory run (as fast as possible)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    out: dict = {"scene": SCENE, "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="uspd-run-cost-") as log_dir:
        base = {"presence": {"vacancy_timeout_s": 10.0}}
        cfg_duty = load_config(None, overrides={**base, "emission": {"off_after_presence_s": 10.0}})
        cfg_on = load_config(None, overrides={**base, "emission": {"duty_cycle": False}})
        mics, sidecar = render_scene(args.seed, 60.0)
        ref = pipeline_reference(mics, sidecar, cfg_on)
        print(f"1. CPU share of one core, {SCENE} (4 mics, 96 kHz), {args.cpu_s:g} s of audio at "
              f"{args.speed:g}x real time, rendering excluded")
        print(f"   {'':30s}{'CPU share':>10s}{'render':>9s}{'tone on':>9s}{'vs pipeline':>13s}")
        print(f"   {'bare Pipeline (reference)':30s}{100 * ref:9.2f}%{'-':>9s}{'100%':>9s}{'1.00x':>13s}")
        for name, cfg in (("uspd run, tone always on", cfg_on), ("uspd run, duty cycle", cfg_duty)):
            r = cpu_at_real_time(cfg, args.cpu_s, args.seed, log_dir, args.speed)
            out[name] = r
            print(f"   {name:30s}{100 * r['share']:9.2f}%{100 * r['render_cpu_s'] / r['audio_s']:8.1f}%"
                  f"{100 * r['tone_on']:8.0f}%{r['share'] / ref:12.2f}x")
        worst = max(out[k]["share"] for k in out if isinstance(out[k], dict))
        verdict = "OK" if worst < TARGET_CPU_SHARE else "ABOVE TARGET"
        print(f"   target < {100 * TARGET_CPU_SHARE:.0f} % of one core: {verdict} (worst {100 * worst:.2f} %)")
        out["pipeline_reference_share"] = ref

        print(f"\n2. Memory over {args.hours:g} h of audio (looped {SCENE}, duty cycle on, as fast as possible)")
        w0 = time.monotonic()
        samples = memory_run(mics, sidecar, cfg_duty, args.hours, log_dir)
        wall = time.monotonic() - w0
        print("   audio time   RSS (MB)")
        for t, mb in samples:
            print(f"   {t / 3600:6.2f} h   {mb:8.1f}")
        first, last = samples[0][1], samples[-1][1]
        flat = last <= first * 1.05 + 5.0
        print(f"   growth from the first to the last sample: {last - first:+.1f} MB -> "
              f"{'flat (OK)' if flat else 'GROWING'}; {args.hours * 3600 / wall:.0f}x real time")
        out["memory"] = {"samples": samples, "growth_mb": last - first, "flat": flat,
                         "realtime_factor": args.hours * 3600 / wall}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
