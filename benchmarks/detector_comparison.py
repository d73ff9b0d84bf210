"""Neural vs classic detector, side by side on an evaluation set (issue 5's table), with the issue's targets.

Renders the evaluation set if it is not there yet (``uspd dataset eval``; resumable, complete clips are skipped),
then runs ``uspd evaluate DIR --detector both --matched-fa 1,0.1`` (the shipped int8 model through the streaming
pipeline, default ``[presence]`` thresholds) and checks the figures against the targets, the classic detector
being the reference measured in the same run. ``--hybrid``: ``--detector all``, the hybrid detector (classic and nn
fused per hop) checked against the same targets beside them.

Usage: ``python benchmarks/detector_comparison.py [--seed 9300] [--scale 2.3] [--out /tmp/eval9300]
[--workers 2] [--json OUT.json] [--existing] [--mics 5] [--config C.toml] [--candidate C.toml]``. Seeds >= 9000 only
(evaluation); use a seed no model was selected on. ``--mics 5`` evaluates only the clips recorded with 5 mics (the
held-out device family: training never renders 5-mic devices), through a folder of links ``OUT_mics5`` beside the set.
``--config``: run the detectors with this uspd config (e.g. another model and its ``[detector.hybrid]`` table).
``--candidate``: then evaluate the same set again with this config and print the two runs side by side (the nn and,
with ``--hybrid``, the hybrid: the figures a rule for replacing the shipped model or defaults is written in), then a
paired bootstrap over recordings: 90 % intervals of the candidate's major recall minus the base's and of its alarms
over the base's. Two or three recordings often hold most of a set's alarms; the intervals show how far that reaches.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path


def targets(res: dict, name: str = "nn") -> list[tuple[str, str, str, bool]]:
    """(metric, value, target, met) rows from ``uspd evaluate --json`` output, for detector ``name`` (nn or
    hybrid) against classic."""
    nn, cl = res["detectors"][name], res["detectors"]["classic"]
    by_action = nn["minor"]["by_action"]
    reach_page = [(by_action.get(a) or {}).get("recall") for a in ("reach", "page")]   # None: no such action
    neg_h, delay = nn["false_alarms"]["negative_h"], nn["major"]["delay_s"]["median"]
    nn_fa, cl_fa = nn["false_alarms"]["fa_per_h"], cl["false_alarms"]["fa_per_h"]
    per_level = [{**(r.get("ratios") or {name: r}).get(name, {}), "major_recall_level": r["major_recall_level"]}
                 for r in res.get("fa_at_recall_ratio") or []]  # JSON of older versions: one "ratio" (classic/nn)
    ratio = next((r for r in per_level if r.get("ratio") is not None), None)
    rows = [
        (f"{name} major recall (<= 5 m)", f"{nn['major']['recall']:.1%}", ">= 97 %", nn["major"]["recall"] >= 0.97),
        (f"{name} minor recall reach / page", " / ".join("-" if r is None else f"{r:.1%}" for r in reach_page),
         ">= 85 %", None not in reach_page and min(reach_page) >= 0.85),
        (f"{name} false alarms /h", f"{nn_fa:.2f} in {neg_h:.2f} h", "<= 0.5 on >= 5 h", nn_fa <= 0.5 and neg_h >= 5.0),
        (f"{name} major delay median (s)", "-" if delay is None else f"{delay:.2f}", "<= 0.3",
         delay is not None and delay <= 0.3 + 1e-9),
        (f"{name} vs classic FA/h at equal major recall",
         f"{ratio['ratio']:.1f}x at >= {ratio['major_recall_level']:.0%}" if ratio else "n/a", ">= 10x",
         bool(ratio) and ratio["ratio"] >= 10.0),
        (f"{name} vs classic false alarms /h", f"{nn_fa:.2f} vs {cl_fa:.2f}", "fewer", nn_fa < cl_fa),
    ]
    return rows


def _late(d: dict, key: str = "late_walk") -> float | None:
    return ((d["major"].get("by_set_kind") or {}).get(key) or {}).get("recall")


def _action(d: dict, action: str) -> float | None:
    return ((d["minor"].get("by_action") or {}).get(action) or {}).get("recall")


def _fa_at(d: dict, level: float) -> float | None:
    hit = [p for p in d.get("fa_at_recall") or [] if abs(p["major_recall_level"] - level) < 1e-9]
    return hit[0]["fa_per_h"] if hit and hit[0].get("reachable", True) else None


def _recall_at(d: dict, rate: float) -> float | None:
    hit = [p for p in d.get("matched_fa") or [] if abs(p.get("target_fa_per_h", -1.0) - rate) < 1e-9]
    return hit[0].get("major_recall") if hit else None


#: (label, getter of one detector's ``uspd evaluate --json`` entry, format) rows of the side-by-side table.
SIDE_BY_SIDE = [
    ("major recall %", lambda d: d["major"]["recall"], "pct"),
    ("  in late_walk clips %", _late, "pct"),
    ("  from 30 s %", lambda d: d["major"]["settled"]["recall"], "pct"),
    ("  entries %", lambda d: d["major"]["entry"]["recall"], "pct"),
    ("minor recall %", lambda d: d["minor"]["recall"], "pct"),
    ("  reach / page / typing %", lambda d: tuple(_action(d, a) for a in ("reach", "page", "typing")), "pct"),
    ("false alarms /h", lambda d: d["false_alarms"]["fa_per_h"], "rate"),
    ("  clips without people /h", lambda d: (d["false_alarms"].get("empty_clips") or {}).get("fa_per_h"), "rate"),
    ("  clips with any false alarm", lambda d: d["false_alarms"].get("clips_alarmed"), "int"),
    ("FA/h at 80 / 90 % major recall", lambda d: (_fa_at(d, 0.8), _fa_at(d, 0.9)), "rate"),
    ("major recall at 1 / 0.1 FA/h %", lambda d: (_recall_at(d, 1.0), _recall_at(d, 0.1)), "pct"),
    ("major delay median (s)", lambda d: d["major"]["delay_s"]["median"], "rate"),
]


def _cell(v, kind: str) -> str:
    if isinstance(v, tuple):
        return " / ".join(_cell(x, kind) for x in v)
    if v is None:
        return "-"
    return f"{100 * v:.1f}" if kind == "pct" else (f"{v:d}" if kind == "int" else f"{v:.2f}")


def side_by_side(base: dict, cand: dict, names: list[str]) -> list[str]:
    """Lines of a table: for each detector in ``names``, the SIDE_BY_SIDE rows of two ``uspd evaluate --json``
    results of the same set (the first run's config, then the candidate's)."""
    lines = [f"{'metric':34s} " + " ".join(f"{n + ' ' + w:>24s}" for n in names for w in ("base", "candidate"))]
    for label, get, kind in SIDE_BY_SIDE:
        cells = []
        for n in names:
            for res in (base, cand):
                try:
                    cells.append(_cell(get(res["detectors"][n]), kind))
                except (KeyError, TypeError):
                    cells.append("-")
        lines.append(f"{label:34s} " + " ".join(f"{c:>24s}" for c in cells))
    return lines


def paired_bootstrap(base: list[dict], cand: list[dict], n_resamples: int = 2000, level: float = 0.9,
                     seed: int = 0) -> dict | None:
    """Two runs on one set compared by a paired bootstrap over recordings (``per_clip`` rows of ``uspd evaluate
    --json``): each resample draws recordings with replacement and sums both runs over the same draw, so the one
    recording that raises 20 alarms moves both sums together. Returns {"recordings": n, "recall_diff_points":
    (point, lo, hi) of candidate minus base major recall in points or None without majors, "alarm_ratio": (point,
    lo, hi) of candidate / base alarms (inf when only the candidate alarms; 1 when neither does)}, the ``level``
    interval from the resamples' quantiles; None when the runs share no recording."""
    import numpy as np

    by_clip = {r["clip"]: r for r in base}
    pairs = [(by_clip[r["clip"]], r) for r in cand if r["clip"] in by_clip]
    if not pairs:
        return None
    cols = np.array([[b["major"], b["major_detected"], c["major_detected"], b["alarms"], c["alarms"]]
                     for b, c in pairs], dtype=float)                      # (recordings, 5)
    draws = np.random.default_rng(seed).integers(0, len(pairs), size=(n_resamples, len(pairs)))
    sums = np.vstack([cols.sum(axis=0), cols[draws].sum(axis=1)])          # row 0: the runs as they are
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = 100.0 * (sums[:, 2] - sums[:, 1]) / sums[:, 0]
        ratio = np.where(sums[:, 4] == sums[:, 3], 1.0, sums[:, 4] / sums[:, 3])
    q = [(1 - level) / 2, (1 + level) / 2]

    def interval(x: np.ndarray) -> tuple[float, float, float]:  # a draw without majors has no recall (nan)
        return (float(x[0]), *(float(v) for v in np.nanquantile(x[1:], q, method="inverted_cdf")))

    return {"recordings": len(pairs), "recall_diff_points": interval(diff) if sums[0, 0] > 0 else None,
            "alarm_ratio": interval(ratio)}


def bootstrap_lines(base: dict, cand: dict, names: list[str], n_resamples: int = 2000, level: float = 0.9) -> list[str]:
    """A heading and one line per detector in ``names`` with :func:`paired_bootstrap`'s intervals; nothing for a
    detector whose JSON lacks ``per_clip`` (written before uspd evaluate kept it)."""
    lines, recordings = [], 0
    for n in names:
        rows = [r["detectors"][n].get("per_clip") for r in (base, cand)]
        b = paired_bootstrap(rows[0], rows[1], n_resamples, level) if all(rows) else None
        if b is None:
            continue
        d, r, recordings = b["recall_diff_points"], b["alarm_ratio"], b["recordings"]
        recall = f"{d[0]:+.1f} points ({d[1]:+.1f} .. {d[2]:+.1f})" if d else "-"
        lines.append(f"  {n}: major recall candidate - base {recall}; alarms candidate / base "
                     f"{r[0]:.2f}x ({r[1]:.2f} .. {r[2]:.2f})")
    if lines:
        lines.insert(0, f"paired bootstrap over the {recordings} recordings ({n_resamples} resamples, "
                        f"{level:.0%} intervals; recordings, not alarms, are the units):")
    return lines


def mic_subset(src: Path, n_mics: int) -> tuple[Path, int]:
    """(folder, clips): ``SRC_mics<N>`` holding links to every file of the clips in SRC recorded with n_mics mics
    (``uspd evaluate``'s recordings, their sidecars read as it reads them; sub-folders kept, manifest linked)."""
    from uspd.evaluate.runner import find_recordings
    from uspd.recording.format import read_sidecar

    dst = src.with_name(f"{src.name}_mics{n_mics}")
    picked = [w for w in find_recordings(src) if read_sidecar(w).n_mics == n_mics]
    for wav in picked:
        folder = dst / wav.parent.relative_to(src)
        folder.mkdir(parents=True, exist_ok=True)
        for f in wav.parent.glob(wav.name[: -len(".wav")] + ".*"):  # the WAV, sidecar, labels and reference
            if not (folder / f.name).exists():
                (folder / f.name).symlink_to(f.resolve())
    if picked and (src / "manifest.json").exists() and not (dst / "manifest.json").exists():
        (dst / "manifest.json").symlink_to((src / "manifest.json").resolve())
    return dst, len(picked)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--seed", type=int, default=9300, help="evaluation dataset seed (>= 9000)")
    ap.add_argument("--scale", type=float, default=2.3,
                    help="set size (2.3: 399 clips, about 7.1 h of negative time and 37 late walk-ins)")
    ap.add_argument("--out", type=Path, default=None, help="evaluation set folder (default: /tmp/eval<SEED>)")
    ap.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1), help="parallel processes")
    ap.add_argument("--json", type=Path, default=None, help="also keep the evaluate JSON here")
    ap.add_argument("--existing", action="store_true",
                    help="evaluate --out as it is, without rendering (e.g. a subset such as the 5-mic clips)")
    ap.add_argument("--mics", type=int, default=None,
                    help="evaluate only the clips recorded with this many mics (5: the held-out device family)")
    ap.add_argument("--hybrid", action="store_true",
                    help="also evaluate the hybrid detector (classic and nn fused per hop) in the same run")
    ap.add_argument("--config", type=Path, default=None,
                    help="uspd config (TOML) to run the detectors with (default: the built-in defaults)")
    ap.add_argument("--candidate", type=Path, default=None,
                    help="also evaluate with this config and print both runs side by side")
    args = ap.parse_args()
    for opt, path in (("--config", args.config), ("--candidate", args.candidate)):
        if path is not None and not path.is_file():
            ap.error(f"{opt}: {path}: no such file")
    from uspd.cli import main as uspd

    out = args.out or Path(tempfile.gettempdir()) / f"eval{args.seed}"
    render = ["-q", "dataset", "eval", "--seed", str(args.seed), "--scale", str(args.scale), "--out", str(out),
              "--workers", str(args.workers)]
    if not args.existing and uspd(render) != 0:
        return 1
    if not out.is_dir():
        print(f"error: {out}: no evaluation set there", file=sys.stderr)
        return 2
    if args.mics is not None:
        from uspd.errors import UspdError

        try:
            subset, n = mic_subset(out, args.mics)
        except UspdError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if n == 0:
            print(f"error: {out}: no clips recorded with {args.mics} mics", file=sys.stderr)
            return 2
        out = subset
        print(f"{n} clips recorded with {args.mics} mics, linked in {out}")
    js = args.json or out.with_name(out.name + (f"_{args.config.stem}" if args.config else "") + "_comparison.json")
    runs = [(args.config, js)]
    if args.candidate is not None:
        runs.append((args.candidate, js.with_name(js.stem + f"_candidate_{args.candidate.stem}.json")))
    results = []
    for config, path in runs:
        if len(runs) > 1:
            print(f"\n=== {'candidate ' if results else ''}config: {config or 'built-in defaults'}", flush=True)
        cmd = ["-q", "evaluate", str(out), "--detector", "all" if args.hybrid else "both", "--matched-fa", "1,0.1",
               "--workers", str(args.workers), "--json", str(path)]
        code = uspd(cmd + (["--config", str(config)] if config else []))
        if code != 0:
            return code
        res = json.loads(path.read_text(encoding="utf-8"))
        results.append(res)
        rows = [row for name in ("nn", "hybrid") if name in res["detectors"] for row in targets(res, name)]
        print(f"\n{'target check':44s} {'value':26s} {'target':18s} met")
        for name, value, target, met in rows:
            print(f"{name:44s} {value:26s} {target:18s} {'yes' if met else 'NO'}")
    if len(results) == 2:
        names = [n for n in ("nn", "hybrid") if n in results[0]["detectors"] and n in results[1]["detectors"]]
        print(f"\nside by side on {out}: base = {args.config or 'built-in defaults'}, candidate = {args.candidate}")
        print("\n".join(side_by_side(results[0], results[1], names)))
        print("\n".join(["", *bootstrap_lines(results[0], results[1], names)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
