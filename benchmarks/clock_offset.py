"""Playback and capture clocks apart: detection with and without the front end's carrier tracking, side by side.

A device whose loudspeaker and microphones run on different clocks (a USB microphone beside a separate speaker, two
crystals tens of ppm apart) records the tone off the carrier it mixes with: 0.8 Hz at 40 kHz for 20 ppm. Without
tracking, the clutter high-pass lets the static field into the lowest Doppler bins. This script renders the
evaluation set for ``--seed`` with each clip's clock offset drawn in ``--ppm`` (``uspd dataset eval --clock-ppm``:
every other detail of every clip as in the set without it; resumable), then scores it, and every folder given with
``--also`` (e.g. the same set with one shared clock, or a set from ``benchmarks/second_simulator.py --clock-ppm``),
twice each: ``uspd evaluate DIR --detector all`` with the default front end (tracking on) and with
``[frontend] carrier_tracking_s = 0`` (off). One table: per folder and setting, major recall (<= 5 m) and false
alarms per hour of negative audio for classic, nn and hybrid.

Usage: ``python benchmarks/clock_offset.py [--seed 1021] [--scale 1] [--ppm 100] [--out DIR] [--also DIR ...]
[--workers 2] [--json OUT.json]``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

DETECTORS = ("classic", "nn", "hybrid")


def evaluate(folder: Path, config: Path | None, workers: int, out_json: Path, extra: tuple[str, ...] = ()) -> dict:
    """``uspd evaluate folder --detector all`` (optionally with ``config`` and ``extra`` options); its JSON metrics."""
    cmd = ["uspd", "evaluate", str(folder), "--detector", "all", "--workers", str(workers), "--json", str(out_json),
           *extra]
    cmd += ["--config", str(config)] if config else []
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"{Path(sys.argv[0]).name}: `{' '.join(cmd)}` failed (exit {done.returncode})")
    return json.loads(out_json.read_text())


def print_table(head: list[str], rows: list[list[str]], results: dict, json_out: Path | None) -> None:
    """Print ``head`` and ``rows`` as aligned columns; write ``results`` to ``json_out`` if given."""
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if json_out:
        json_out.write_text(json.dumps(results, indent=1))


def row(res: dict) -> list[str]:
    """Major recall (detected/n) and false alarms per hour for every detector in ``res``."""
    cells = []
    for name in DETECTORS:
        d = res["detectors"][name]
        m, fa = d["major"], d["false_alarms"]
        cells.append(f"{m['recall']:.1%} ({m['detected']}/{m['n']})")
        cells.append(f"{fa['fa_per_h']:.2f}")
    return cells


def common_options(ap: argparse.ArgumentParser) -> None:
    """--seed, --scale, --workers and --json, as this script and benchmarks/device_factors.py take them."""
    ap.add_argument("--seed", type=int, default=1021, help="evaluation set seed (tuning 1000-1999 or >= 9000)")
    ap.add_argument("--scale", type=float, default=1.0, help="evaluation set scale (uspd dataset eval --scale)")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes")
    ap.add_argument("--json", type=Path, default=None, help="also write every run's metrics here")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(ap)
    ap.add_argument("--ppm", default="100", metavar="X|LO,HI",
                    help="each clip's playback/capture clock offset drawn in -X..X ppm, or LO..HI (--ppm=LO,HI)")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder of the offset set (default /tmp/clock<SEED>_ppm<PPM>; resumable)")
    ap.add_argument("--also", type=Path, nargs="*", default=[], metavar="DIR",
                    help="more folders of labelled recordings to score the same two ways")
    args = ap.parse_args(argv)
    out = args.out or Path(f"/tmp/clock{args.seed}_ppm{args.ppm.replace(',', '_')}")
    for d in args.also:
        if not d.is_dir():
            ap.error(f"--also {d}: not a folder")
    render = ["uspd", "dataset", "eval", "--seed", str(args.seed), "--scale", str(args.scale), "--out", str(out),
              f"--clock-ppm={args.ppm}", "--workers", str(args.workers)]
    if subprocess.run(render).returncode != 0:
        return 2
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        off = Path(tmp) / "no_tracking.toml"
        off.write_text("[frontend]\ncarrier_tracking_s = 0\n")
        for folder in [out, *args.also]:
            for label, config in (("tracking on", None), ("tracking off", off)):
                key = f"{folder} | {label}"
                print(f"evaluating {key} ...", file=sys.stderr, flush=True)
                results[key] = evaluate(folder, config, args.workers, Path(tmp) / "m.json")
    head = ["set | front end"] + [f"{d} {what}" for d in DETECTORS for what in ("major recall", "FA/h")]
    print_table(head, [[key] + row(res) for key, res in results.items()], results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
