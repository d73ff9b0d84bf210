"""Rooms and devices outside the simulator's defaults: the detectors, and any candidate models, side by side.

uspd is judged on recordings it never saw, from rooms and devices our simulator does not draw by default: furnished
rooms whose walls absorb more, loudspeakers that beam (a tweeter's piston at 40 kHz), enclosures that couple the
tone into the mics louder or quieter than free field. This script renders the evaluation set for ``--seed`` once per
``--set NAME=OPTIONS`` (``uspd dataset eval`` with those scene-factor options, e.g. ``--reflection=0.2,0.6`` or
``--speaker-radius-mm=0,8 --coupling-db=10``: every other detail of every clip as in the set without them;
resumable, in ``--root/NAME``), takes ``--also NAME=DIR`` folders as they are (e.g. the default set, or a set from
``benchmarks/second_simulator.py``), and scores each with ``uspd evaluate DIR --detector all --recall-levels
0.8,0.9`` for the shipped model and for every ``--model NAME=MODEL.onnx``. One table: per folder and model, major
recall (<= 5 m) and false alarms per hour for classic, nn and hybrid at the default thresholds, and each detector's
lowest false alarms per hour at 80 % and 90 % major recall (the comparison a threshold does not decide).

Usage: ``python benchmarks/device_factors.py [--seed 1021] [--scale 1] [--root /tmp/factors1021]
[--set NAME=OPTIONS ...] [--also NAME=DIR ...] [--model NAME=MODEL.onnx ...] [--no-shipped] [--workers 2]
[--json OUT.json]``.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clock_offset import common_options, evaluate, print_table  # noqa: E402  (the same uspd evaluate call and table)

DETECTORS = ("classic", "nn", "hybrid")
LEVELS = (0.8, 0.9)


def _named(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"give NAME=VALUE, got {text!r}")
    return name, value


def cells(res: dict, name: str) -> list[str]:
    """Major recall (detected/n), FA/h, and FA/h at each recall level ('-' unreachable) of detector ``name``."""
    d = res["detectors"][name]
    m, fa = d["major"], d["false_alarms"]
    at = [f"{e['fa_per_h']:.2f}" if e.get("reachable") else "-" for e in d.get("fa_at_recall") or []]
    return [f"{m['recall']:.1%} ({m['detected']}/{m['n']})", f"{fa['fa_per_h']:.2f}", " / ".join(at)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(ap)
    ap.add_argument("--root", type=Path, default=None, help="where the --set folders go (default /tmp/factors<SEED>)")
    ap.add_argument("--set", type=_named, action="append", default=[], metavar="NAME=OPTIONS",
                    help="render the set with these 'uspd dataset eval' options (quoted, '=' forms for values)")
    ap.add_argument("--also", type=_named, action="append", default=[], metavar="NAME=DIR",
                    help="a folder of labelled recordings to score as it is")
    ap.add_argument("--model", type=_named, action="append", default=[], metavar="NAME=MODEL.onnx",
                    help="a candidate model (its manifest beside it) scored beside the shipped one")
    ap.add_argument("--no-shipped", action="store_true",
                    help="score the --model candidates only (e.g. a control and a variant; saves a third of the time)")
    args = ap.parse_args(argv)
    if args.no_shipped and not args.model:
        ap.error("--no-shipped needs at least one --model")
    root = args.root or Path(f"/tmp/factors{args.seed}")
    folders: list[tuple[str, Path]] = []
    for name, options in args.set:
        out = root / name
        render = ["uspd", "dataset", "eval", "--seed", str(args.seed), "--scale", str(args.scale), "--out", str(out),
                  "--workers", str(args.workers), *shlex.split(options)]
        print(f"rendering {name}: {' '.join(render)}", file=sys.stderr, flush=True)
        if subprocess.run(render, stdout=subprocess.DEVNULL).returncode != 0:
            return 2
        folders.append((name, out))
    for name, d in args.also:
        if not Path(d).is_dir():
            ap.error(f"--also {name}={d}: not a folder")
        folders.append((name, Path(d)))
    for name, path in args.model:
        if not Path(path).is_file():
            ap.error(f"--model {name}={path}: no such file")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        configs: list[tuple[str, Path | None]] = [] if args.no_shipped else [("shipped", None)]
        for name, path in args.model:
            cfg = Path(tmp) / f"{name}.toml"
            cfg.write_text(f'[detector]\nmodel = "{Path(path).resolve()}"\n')
            configs.append((name, cfg))
        for set_name, folder in folders:
            for model_name, cfg in configs:
                key = f"{set_name} | {model_name}"
                print(f"evaluating {key} ({folder}) ...", file=sys.stderr, flush=True)
                results[key] = evaluate(folder, cfg, args.workers, Path(tmp) / "m.json",
                                        ("--recall-levels", ",".join(str(x) for x in LEVELS)))
    levels = " / ".join(f"{x:.0%}" for x in LEVELS)
    head = ["set | model"] + [f"{d} {what}" for d in DETECTORS for what in ("major", "FA/h", f"FA/h at {levels}")]
    rows = [[key] + [c for d in DETECTORS for c in cells(res, d)] for key, res in results.items()]
    print_table(head, rows, results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
