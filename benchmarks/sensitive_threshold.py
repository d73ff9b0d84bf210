"""The sensitive threshold of a neural model, tuned on an eval-style tuning set: what each (strict, sensitive) pair
does to false alarms, recall, motion-on time and presence turning off.

The tracker uses the lower sensitive threshold for ``sensitive_window_s`` after a major motion, so a seated person's
small movements keep the room occupied. Where it sits relative to the strict one matters as much as the strict one:
a model whose scores are squeezed towards 0 (the event-level loss) keeps a seated person's, or a fan's, scores near
a sensitive threshold placed at the shared logit gap, so motion never ends and an occupied room never goes vacant.
This script scores each model once over the rendered recordings in EVAL_DIR (``uspd dataset eval`` output, through
the same streaming path as ``uspd evaluate``, uncalibrated raw scores are what a two-point calibration maps), then
re-runs the tracker on the stored scores at the model's strict threshold and each sensitive threshold at a logit
``gap`` below it (gap 0: sensitive = strict; the shared defaults 0.6 / 0.35 are a gap of 1.02). The chosen pair is
stored with ``uspd train --out MODEL --calibrate STRICT,SENSITIVE``.

Usage: ``python benchmarks/sensitive_threshold.py EVAL_DIR --model shipped@0.6 --model A/nn_detector.onnx@0.04
[--gaps 0,0.5,1.02,1.5] [--workers 2] [--cache DIR]``. Each row: the pair, FA/h (alarms), the share of negative time
with motion on, major / minor (reach, page) recall, median major delay, and presence off in time (of the visits
that can be judged).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import pickle
import sys
import tempfile
from pathlib import Path


def parse_model(spec: str) -> tuple[str | None, float]:
    """``PATH@STRICT`` (PATH ``shipped`` for the packaged model) -> (path or None, strict threshold)."""
    path, sep, strict = spec.rpartition("@")
    try:
        value = float(strict)
    except ValueError:
        value = float("nan")
    if not sep or not path or not 0.0 < value < 1.0:
        raise SystemExit(f"--model {spec}: expected PATH@STRICT with 0 < STRICT < 1 (PATH 'shipped' for the packaged "
                         "model)")
    if path != "shipped" and not Path(path).exists():
        raise SystemExit(f"--model {spec}: {path} not found")
    return (None if path == "shipped" else path), value


def score_clips(eval_dir: Path, model: str | None, workers: int, cache: Path | None) -> list:
    """ClipResults of the nn detector with ``model`` (raw scores: its calibration is set aside) on every recording."""
    from uspd.detector.neural import load_manifest, shipped_model_path
    from uspd.evaluate.runner import find_recordings, run_all

    path = Path(model) if model else shipped_model_path()
    manifest = load_manifest(path)
    if manifest.get("calibration"):
        raise SystemExit(f"{path}: this model is calibrated; give its uncalibrated copy (the pairs are raw scores)")
    wavs = find_recordings(eval_dir)
    key = hashlib.sha1(f"{path.resolve()}|{path.stat().st_mtime_ns}|{eval_dir.resolve()}|{len(wavs)}".encode())
    cached = cache / f"scores_{key.hexdigest()[:16]}.pkl" if cache else None
    if cached and cached.exists():
        return pickle.loads(cached.read_bytes())
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(f'[detector]\nname = "nn"\nmodel = "{path.resolve()}"\n')
    clips = run_all(wavs, ["nn"], f.name, workers=workers)["nn"]
    Path(f.name).unlink()
    if cached:
        cache.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".part")  # written whole, then renamed: an interrupted run leaves no bad cache
        partial.write_bytes(pickle.dumps(clips))
        partial.replace(cached)
    return clips


def pair_row(clips: list, strict: float, sensitive: float) -> dict:
    """Metrics of ``clips`` re-run through the tracker at (strict, sensitive) with the other [presence] defaults."""
    from uspd.evaluate.metrics import MetricsConfig, evaluate_clips
    from uspd.evaluate.runner import rescore
    from uspd.presence.tracker import PresenceConfig

    cfg = dataclasses.replace(PresenceConfig(), threshold=strict, sensitive_threshold=min(sensitive, strict))
    res = evaluate_clips([rescore(c, cfg) for c in clips], cfg.vacancy_timeout_s, MetricsConfig())
    fa, minor, pres = res["false_alarms"], res["minor"], res["presence"]
    return {"strict": strict, "sensitive": cfg.sensitive_threshold, "fa_per_h": fa["fa_per_h"], "alarms": fa["alarms"],
            "motion_on": fa["motion_fraction"], "major": res["major"]["recall"], "minor": minor["recall"],
            "reach": minor["by_action"].get("reach", {}).get("recall"),
            "page": minor["by_action"].get("page", {}).get("recall"),
            "delay_s": res["major"]["delay_s"]["median"], "off_rate": pres["off_rate"],
            "off_n": pres["off_evaluable"]}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("eval_dir", type=Path, help="rendered tuning recordings with labels (uspd dataset eval output)")
    p.add_argument("--model", action="append", required=True, metavar="PATH@STRICT",
                   help="an uncalibrated model and its tuned strict threshold (raw score, 0..1); repeatable; "
                        "PATH 'shipped' for the packaged model")
    p.add_argument("--gaps", default="0,0.25,0.5,0.75,1.02,1.5",
                   help="sensitive thresholds as logit gaps below each model's strict threshold (comma-separated; "
                        "1.02 is the shared defaults' gap, 0.6 vs 0.35)")
    p.add_argument("--workers", type=int, default=2, help="processes for scoring")
    p.add_argument("--cache", type=Path, default=None,
                   help="keep each model's scores here, keyed by model file and set (re-runs skip scoring)")
    args = p.parse_args(argv)
    if not args.eval_dir.is_dir():
        raise SystemExit(f"{args.eval_dir}: not a directory of rendered recordings")
    try:
        gaps = [float(g) for g in args.gaps.split(",")]
    except ValueError:
        raise SystemExit(f"--gaps {args.gaps}: expected comma-separated numbers") from None
    if any(not (g >= 0 and math.isfinite(g)) for g in gaps):
        raise SystemExit(f"--gaps {args.gaps}: gaps must be finite and >= 0")
    from uspd.detector.neural import shift_logit
    from uspd.errors import UspdError

    models = [parse_model(m) for m in args.model]
    try:
        scored = [score_clips(args.eval_dir, model, args.workers, args.cache) for model, _ in models]
    except UspdError as exc:  # no recordings, a bad model file, a recording that cannot be read: one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'model':28s} {'strict':>7s} {'sens':>7s} {'gap':>5s} {'FA/h (n)':>12s} {'on %':>5s} {'major':>6s} "
          f"{'minor':>6s} {'reach/page':>11s} {'delay':>6s} {'off in time':>12s}")
    for (_, strict), spec, clips in zip(models, args.model, scored):
        name = spec.rpartition("@")[0][-28:]
        for gap in gaps:
            r = pair_row(clips, strict, float(shift_logit(strict, -gap)))
            fa = "-" if r["fa_per_h"] is None else f"{r['fa_per_h']:.2f} ({r['alarms']})"
            delay = "-" if r["delay_s"] is None else f"{r['delay_s']:.2f}"
            print(f"{name:28s} {strict:7.4f} {r['sensitive']:7.4f} {gap:5.2f} {fa:>12s} {_pct(r['motion_on']):>5s} "
                  f"{_pct(r['major']):>6s} {_pct(r['minor']):>6s} {_pct(r['reach']) + '/' + _pct(r['page']):>11s} "
                  f"{delay:>6s} {_pct(r['off_rate']) + ' (' + str(r['off_n']) + ')':>12s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
