"""Are the tuning sets worn? The same detectors on the sets models were chosen on and on a never-used set.

Every model and operating point uspd ships was chosen on tuning sets (``uspd dataset eval --seed 1000-1999``;
``hybrid_tuning.py``, ``model_selection.py``). Chosen often enough on the same recordings, a pick fits their quirks,
and its false alarms there understate what new recordings of the same recipe bring. This runs ``uspd evaluate
--detector all`` (built-in defaults, or ``--config``) on each set and prints, per detector, false alarms per hour of
negative time, major recall and late walk-ins found on the used sets and on the fresh ones, and the fresh / used
alarm ratio with a 90 % bootstrap interval (recordings drawn with replacement, each group on its own). The classic
detector, never trained on those sets, is the control: a ratio near 1 for it and well above 1 for a selected
detector points at selection, not at a harder fresh set.

    python benchmarks/tuning_wear.py --used /tmp/tune1021 /tmp/tune1022 --fresh /tmp/tune1023
        [--config C.toml] [--workers 2] [--json-dir DIR [--reuse]]

Figures come from the ``per_clip`` rows of each set's evaluate JSON (kept in ``--json-dir``, one file per set).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

DETECTORS = ("classic", "nn", "hybrid")


def pooled(rows: list[dict]) -> dict:
    """Sums over ``per_clip`` rows: false alarms per hour of negative time, major recall and major recall in the
    late walk-in clips (``/late_walk/`` in the path; None where a group has no such movement)."""
    def recall(rs: list[dict]) -> float | None:
        n = sum(r["major"] for r in rs)
        return sum(r["major_detected"] for r in rs) / n if n else None

    neg_h = sum(r["negative_s"] for r in rows) / 3600.0
    alarms = sum(r["alarms"] for r in rows)
    return {"alarms": alarms, "negative_h": neg_h, "fa_per_h": alarms / neg_h if neg_h > 0 else None,
            "major_recall": recall(rows), "late_recall": recall([r for r in rows if "/late_walk/" in r["clip"]])}


def rate_ratio(used: list[dict], fresh: list[dict], n_resamples: int = 2000, level: float = 0.9,
               seed: int = 0) -> tuple[float, float, float] | None:
    """(point, lo, hi): the fresh rows' false alarms per negative hour over the used rows', the ``level`` interval
    from resamples that draw each group's recordings with replacement independently (two different sets: nothing
    to pair). None when either group has no negative time or the used group no alarm at all."""
    rng = np.random.default_rng(seed)

    def rates(rows: list[dict]) -> np.ndarray:                 # (1 + n_resamples,) alarms per negative second
        cols = np.array([[r["alarms"], r["negative_s"]] for r in rows], dtype=float)
        draws = rng.integers(0, len(cols), size=(n_resamples, len(cols)))
        sums = np.vstack([cols.sum(axis=0), cols[draws].sum(axis=1)])
        with np.errstate(divide="ignore", invalid="ignore"):
            return sums[:, 0] / sums[:, 1]

    if not used or not fresh:
        return None
    u, f = rates(used), rates(fresh)
    if not (u[0] > 0 and np.isfinite(f[0])):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = f / u                                          # a draw without alarms among the used: inf
    lo, hi = np.quantile(ratio[1:], [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return float(ratio[0]), float(lo), float(hi)


def pct(v: float | None) -> str:
    """A recall as a percentage with one decimal; "-" where there is nothing to recall."""
    return "-" if v is None else f"{100 * v:.1f}"


def rate(v: float | None) -> str:
    """An alarm rate per hour with two decimals; "-" for a group without negative time."""
    return "-" if v is None else f"{v:.2f}"


def table(used: dict[str, list[dict]], fresh: dict[str, list[dict]], n_resamples: int = 2000) -> list[str]:
    """Lines of the side-by-side table: per detector, each group's pooled figures and the fresh / used ratio."""
    lines = [f"{'detector':9s} {'FA/h used (alarms in h)':>24s} {'FA/h fresh':>22s} {'fresh / used (90 %)':>22s} "
             f"{'major % used / fresh':>21s} {'late walk-ins %':>16s}"]
    for name in DETECTORS:
        if name not in used or name not in fresh:
            continue
        u, f = pooled(used[name]), pooled(fresh[name])
        r = rate_ratio(used[name], fresh[name], n_resamples)
        cell = "-" if r is None else f"{r[0]:.2f}x ({r[1]:.2f} .. {r[2]:.2f})"
        lines.append(f"{name:9s} {rate(u['fa_per_h']):>7s} ({u['alarms']:4d} in {u['negative_h']:5.2f} h) "
                     f"{rate(f['fa_per_h']):>7s} ({f['alarms']:3d} in {f['negative_h']:5.2f} h) {cell:>22s} "
                     f"{pct(u['major_recall']):>10s} / {pct(f['major_recall']):>8s} "
                     f"{pct(u['late_recall']):>7s} / {pct(f['late_recall']):>6s}")
    return lines


def evaluate_set(set_dir: Path, json_path: Path, config: Path | None, workers: int, reuse: bool) -> dict | None:
    """``uspd evaluate SET --detector all`` into json_path (or the JSON already there with ``reuse``): the JSON's
    ``per_clip`` rows by detector, None when evaluate failed."""
    from uspd.cli import main as uspd

    if not (reuse and json_path.is_file()):
        cmd = ["-q", "evaluate", str(set_dir), "--detector", "all", "--workers", str(workers), "--json", str(json_path)]
        if uspd(cmd + (["--config", str(config)] if config else [])) != 0:
            return None
    res = json.loads(json_path.read_text(encoding="utf-8"))
    return {name: d["per_clip"] for name, d in res["detectors"].items() if d.get("per_clip") is not None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--used", type=Path, nargs="+", required=True,
                    help="tuning sets the models and operating points were chosen on (uspd dataset eval folders)")
    ap.add_argument("--fresh", type=Path, nargs="+", required=True,
                    help="sets of the same recipe that nothing was chosen on (e.g. a new tuning seed)")
    ap.add_argument("--config", type=Path, default=None,
                    help="uspd config (TOML) to run the detectors with (default: the built-in defaults)")
    ap.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1),
                    help="parallel processes (default: all cores)")
    ap.add_argument("--json-dir", type=Path, default=None,
                    help="keep each set's evaluate JSON here as SET[_CONFIG].json (default: a temporary folder)")
    ap.add_argument("--reuse", action="store_true", help="use a set's JSON already in --json-dir instead of running")
    args = ap.parse_args()
    if args.config is not None:
        from uspd.config import load_config
        from uspd.errors import UspdError

        try:                                       # a missing file too: "config file not found"
            load_config(args.config)
        except UspdError as exc:
            ap.error(f"--config: {exc}")
    if args.reuse and args.json_dir is None:
        ap.error("--reuse needs --json-dir")
    for d in (*args.used, *args.fresh):
        if not (d / "manifest.json").is_file():
            ap.error(f"{d}: no evaluation set there (no manifest.json)")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.json_dir or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        groups: list[dict[str, list[dict]]] = []
        for sets in (args.used, args.fresh):
            rows: dict[str, list[dict]] = {}
            for d in sets:
                name = d.resolve().name + (f"_{args.config.stem}" if args.config else "")
                per_clip = evaluate_set(d, out / f"{name}.json", args.config, args.workers, args.reuse)
                if per_clip is None:
                    return 1
                for det, clip_rows in per_clip.items():
                    rows.setdefault(det, []).extend(clip_rows)
            groups.append(rows)
    print(f"\nused: {', '.join(map(str, args.used))}; fresh: {', '.join(map(str, args.fresh))}; "
          f"config: {args.config or 'built-in defaults'}")
    print("\n".join(table(*groups)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
