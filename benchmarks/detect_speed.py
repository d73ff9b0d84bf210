"""Speed and memory of `uspd detect` (whole process) and of the streaming pipeline, on one CPU core.

Measures, per detector (``--detector classic [nn] [hybrid]``), against targets and references measured in the same run:

1. real-time factor of the whole ``uspd detect REC.wav`` process (subprocess: start-up, file read, JSON output
   included) on a 4-mic 96 kHz recording (default 10 minutes), from the child's CPU time (and wall time, which
   depends on the load of the machine); the reference is a child process that only reads the same file in
   the same chunks (RecordingReader), so "x file read" says how much detection costs over decoding. Target >= 200x
   (neural detector: >= 100x).
2. processing time per 50 ms hop in streaming mode: the Pipeline fed 4800-sample chunks, p50 / p99 / max.
   Target p99 <= 5 ms.
3. peak memory (ru_maxrss of a child process) for 1 minute vs 1 hour of audio streamed through the pipeline
   (a synthetic stream fed without a file). Target: flat (the hour within 10 % + 5 MB of the minute).

The recording is made with the room simulator when it is installed (``--source sim``), else (or with
``--source synthetic``) with a synthetic scene (carrier, static clutter, a walker every minute, noise), and cached
in ``--work-dir``. All children run with OMP/OPENBLAS/MKL_NUM_THREADS=1.

    python benchmarks/detect_speed.py [--minutes 10] [--detector classic nn hybrid] [--work-dir /tmp/uspd-bench]
        [--config C.toml]   (every detector with that config, e.g. a candidate model)
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

FS = 96000
CARRIER_HZ = 40000.0
N_MICS = 4
MIC_POSITIONS_M = [[0.035, 0.0, 0.02], [0.0, 0.035, 0.02], [-0.035, 0.0, 0.02], [0.0, -0.035, 0.02]]
TARGET_RTF = 200.0
#: per-detector RT-factor targets (issue 4: classic >= 200x; issue 5: neural >= 100x, whole process; the hybrid
#: runs the neural one, so its target).
TARGET_RTF_BY_DETECTOR = {"classic": TARGET_RTF, "nn": 100.0, "hybrid": 100.0}
TARGET_P99_MS = 5.0


# --- the test recording ---------------------------------------------------------------------------------------------
def _synthetic_scene(seconds: float, seed: int = 0):
    from uspd.features.synthetic import SyntheticScene, walker

    echoes = []
    for start in np.arange(20.0, seconds - 10.0, 60.0):
        echoes += walker(float(start), float(start) + 8.0, amplitude=2e-3)
    return SyntheticScene(FS, [CARRIER_HZ], N_MICS, carrier_amplitude=0.2, echoes=echoes, noise_rms=3e-4, seed=seed)


def make_synthetic(path: Path, seconds: float) -> Path:
    from uspd.recording import RecordingWriter, Sidecar

    scene = _synthetic_scene(seconds)
    with RecordingWriter(path, Sidecar(FS, [CARRIER_HZ], MIC_POSITIONS_M)) as w:
        for _ in range(int(round(seconds))):
            w.write(scene.render(FS))
    return path


def make_simulated(path: Path, seconds: float) -> Path:
    """The simulator's "everything" scene (people, fan, curtain, music...) stretched to ``seconds``."""
    from uspd.simulate.render import render_to_file

    return render_to_file("everything", 9001, path, progress=False, duration_s=seconds)


def recording(work_dir: Path, minutes: float, source: str) -> tuple[Path, str]:
    """The cached test recording and how it was made."""
    work_dir.mkdir(parents=True, exist_ok=True)
    if source in ("auto", "sim"):
        try:
            import uspd.simulate.render  # noqa: F401
            source = "sim"
        except ImportError:
            if source == "sim":
                sys.exit("detect_speed: --source sim but the simulator (uspd.simulate.render) is not installed")
            source = "synthetic"
    path = work_dir / f"detect_speed_{source}_{minutes:g}min.wav"
    if not (path.exists() and path.with_suffix(".json").exists()):
        print(f"making {path} ({source}, {minutes:g} min, {N_MICS} mics, {FS} Hz) ...", file=sys.stderr, flush=True)
        (make_simulated if source == "sim" else make_synthetic)(path, minutes * 60.0)
    return path, source


# --- child processes ------------------------------------------------------------------------------------------------
#: Prefix run in every child: at exit it reports its own peak RSS (VmHWM of its address space). ru_maxrss from
#: wait4 is no good here: Linux folds the parent's (forked) memory into it.
_HWM = ("import atexit, sys\n"
        "def _hwm():\n"
        "    kb = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "    sys.stderr.write(f'\\nVMHWM_KB {kb}\\n')\n"
        "atexit.register(_hwm)\n")


def run_child(code: str) -> dict:
    """Run python code in a child; its CPU seconds (user + sys, from wait4), wall seconds, peak RSS (MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _HWM + code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    kb = [line.split()[1] for line in err.splitlines() if line.startswith("VMHWM_KB")]
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "wall_s": wall, "rss_mb": int(kb[-1]) / 1024.0 if kb else math.nan}


def detect_code(wav: Path, detector: str, config: Path | None = None) -> str:
    """`uspd detect WAV -o /dev/null --detector D [--config C]`, exactly as `python -m uspd` runs it."""
    argv = ["uspd", "-q", "detect", str(wav), "-o", os.devnull, "--detector", detector]
    argv += ["--config", str(config)] if config is not None else []
    return f"import sys\nsys.argv = {argv!r}\nfrom uspd.cli import main\nrc = main()\nsys.exit(rc)\n"


def read_code(wav: Path) -> str:
    """Reference: read the file the way `uspd detect` does (RecordingReader, 1 s chunks), nothing else."""
    return (f"from uspd.recording import RecordingReader\nr = RecordingReader({str(wav)!r})\n"
            f"for _ in r.chunks(r.sample_rate):\n    pass\n")


def stream_code(seconds: float, detector: str, config: Path | None = None) -> str:
    """Feed ``seconds`` of a synthetic stream (1 s blocks) through a Pipeline, without a file."""
    cfg = None if config is None else str(config)
    return (f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            f"from detect_speed import child_stream\nchild_stream({seconds!r}, {detector!r}, {cfg!r})\n")


def pipeline(detector: str, config: Path | str | None = None):
    """A 4-mic 96 kHz Pipeline running ``detector`` with the uspd config ``config`` (None: the defaults)."""
    from uspd.config import load_config
    from uspd.pipeline import Pipeline
    from uspd.recording import Sidecar

    return Pipeline(Sidecar(FS, [CARRIER_HZ], MIC_POSITIONS_M), load_config(config), detector)


def child_stream(seconds: float, detector: str, config: str | None = None) -> None:
    pipe = pipeline(detector, config)
    scene = _synthetic_scene(10.0, seed=1)
    blocks = [scene.render(FS) for _ in range(10)]  # 10 s of audio, repeated
    n = 0
    for i in range(int(round(seconds))):
        n += len(pipe.process(blocks[i % len(blocks)]))
    assert n == int(round(seconds / pipe.hop_s)), n


# --- measurements ---------------------------------------------------------------------------------------------------
def measure_detect(wav: Path, detector: str, repeats: int, config: Path | None = None) -> dict:
    runs = [run_child(detect_code(wav, detector, config)) for _ in range(repeats)]
    best = min(runs, key=lambda r: r["cpu_s"])
    return {"cpu_s": best["cpu_s"], "wall_s": min(r["wall_s"] for r in runs), "rss_mb": best["rss_mb"]}


def measure_streaming(detector: str, seconds: float, config: Path | None = None) -> dict:
    """Pipeline fed one hop (4800 samples) at a time; per-call thread CPU time and wall time (ms)."""
    pipe = pipeline(detector, config)
    scene = _synthetic_scene(seconds + 30.0, seed=2)
    audio = scene.render(int(seconds * FS))
    hop = int(round(pipe.hop_s * FS))
    cpu, wall = [], []
    for i in range(0, len(audio) - hop + 1, hop):
        block = audio[i:i + hop]
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        pipe.process(block)
        cpu.append((time.thread_time_ns() - c0) / 1e6)
        wall.append((time.perf_counter_ns() - w0) / 1e6)
    c, w = np.asarray(cpu[20:]), np.asarray(wall[20:])  # skip the first second (first-call allocations)
    return {"p50_ms": float(np.percentile(c, 50)), "p99_ms": float(np.percentile(c, 99)), "max_ms": float(c.max()),
            "wall_p99_ms": float(np.percentile(w, 99)), "hops": int(len(c))}


def measure_memory(detector: str, seconds: float, config: Path | None = None) -> dict:
    return run_child(stream_code(seconds, detector, config))


def fmt_ok(ok: bool) -> str:
    return "yes" if ok else "NO"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the test recording (min)")
    ap.add_argument("--detector", nargs="+", default=["classic", "nn", "hybrid"],
                    choices=["classic", "nn", "hybrid"],
                    help="detectors to measure (one column each)")
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/uspd-bench"), help="where the recording is cached")
    ap.add_argument("--source", choices=["auto", "sim", "synthetic"], default="auto",
                    help="make the recording with the simulator (auto: if installed) or synthetically")
    ap.add_argument("--repeats", type=int, default=2, help="runs of `uspd detect` per detector (best CPU time kept)")
    ap.add_argument("--stream-s", type=float, default=60.0, help="audio fed hop by hop for the per-hop times (s)")
    ap.add_argument("--long-s", type=float, default=3600.0, help="length of the long stream for memory (s)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    ap.add_argument("--config", type=Path, default=None,
                    help="uspd config (TOML) for every detector, e.g. another model (default: the shipped defaults)")
    args = ap.parse_args()
    if args.config is not None:
        from uspd.config import load_config
        from uspd.errors import UspdError

        try:
            load_config(args.config)
        except UspdError as exc:
            ap.error(f"--config: {exc}")

    wav, source = recording(args.work_dir, args.minutes, args.source)
    from uspd.recording import RecordingReader

    audio_s = RecordingReader(wav).duration_s
    read = min((run_child(read_code(wav)) for _ in range(args.repeats)), key=lambda r: r["cpu_s"])
    print(f"recording: {wav} ({source}, {audio_s:.0f} s, {N_MICS} mics, {FS} Hz); one core; "
          f"reference file read alone: {read['cpu_s']:.2f} s CPU ({audio_s / read['cpu_s']:.0f}x real time); "
          f"config: {args.config or 'the defaults'}")
    results: dict[str, dict] = {}
    for det in args.detector:
        try:
            d = measure_detect(wav, det, args.repeats, args.config)
            s = measure_streaming(det, args.stream_s, args.config)
            m_short = measure_memory(det, 60.0, args.config)
            m_long = measure_memory(det, args.long_s, args.config)
            results[det] = {"detect": d, "stream": s, "mem_1min": m_short, "mem_long": m_long}
        except Exception as exc:  # a detector that cannot run (e.g. no model) gets an error column
            results[det] = {"error": str(exc).splitlines()[0][:60]}

    rows = []
    for det, r in results.items():
        if "error" in r:
            rows.append((det, "error", r["error"], "", ""))
            continue
        d, s, a, b = r["detect"], r["stream"], r["mem_1min"], r["mem_long"]
        rtf_cpu, rtf_wall = audio_s / d["cpu_s"], audio_s / d["wall_s"]
        flat = b["rss_mb"] <= 1.10 * a["rss_mb"] + 5.0
        target_rtf = TARGET_RTF_BY_DETECTOR.get(det, TARGET_RTF)
        rows += [
            (det, "uspd detect RT factor (CPU time)", f"{rtf_cpu:.0f}x", f">= {target_rtf:.0f}x",
             fmt_ok(rtf_cpu >= target_rtf)),
            (det, "uspd detect RT factor (wall time)", f"{rtf_wall:.0f}x", "(load dependent)", ""),
            (det, "uspd detect CPU / file read alone", f"{d['cpu_s'] / read['cpu_s']:.1f}x", "", ""),
            (det, "per-hop CPU time p50 / p99 / max (4800-sample chunks)", f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f} / "
             f"{s['max_ms']:.2f} ms", f"p99 <= {TARGET_P99_MS:g} ms", fmt_ok(s["p99_ms"] <= TARGET_P99_MS)),
            (det, "per-hop wall time p99", f"{s['wall_p99_ms']:.2f} ms", "(load dependent)", ""),
            (det, f"peak RSS 1 min / {args.long_s / 60:g} min stream", f"{a['rss_mb']:.0f} / {b['rss_mb']:.0f} MB",
             "flat", fmt_ok(flat)),
            (det, "peak RSS of uspd detect", f"{d['rss_mb']:.0f} MB", "", ""),
        ]
    widths = [max(len(str(row[i])) for row in rows + [("detector", "metric", "value", "target", "ok")])
              for i in range(5)]
    header = ("detector", "metric", "value", "target", "ok")
    for row in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    if args.json:
        args.json.write_text(json.dumps({"audio_s": audio_s, "source": source, "read": read, "results": results},
                                        indent=1))
    failed = any(r[4] == "NO" for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
