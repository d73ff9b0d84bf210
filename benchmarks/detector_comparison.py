"""Neural vs classic detector, side by side on an evaluation set (issue 5's table), with the issue's targets.

Renders the evaluation set if it is not there yet (``uspd dataset eval``; resumable, complete clips are skipped),
then runs ``uspd evaluate DIR --detector both --matched-fa 1,0.1`` (the shipped int8 model through the streaming
pipeline, default ``[presence]`` thresholds) and checks the figures against the targets, the classic detector
being the reference measured in the same run. ``--hybrid``: ``--detector all``, the hybrid detector (classic and nn
fused per hop) checked against the same targets beside them.

Usage: ``python benchmarks/detector_comparison.py [--seed 9300] [--scale 2.3] [--out /tmp/eval9300]
[--workers 2] [--json OUT.json] [--existing] [--mics 5]``. Seeds >= 9000 only (evaluation); use a seed no model was
selected on. ``--mics 5`` evaluates only the clips recorded with 5 mics (the held-out device family: training never
renders 5-mic devices), through a folder of links ``OUT_mics5`` beside the set.
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
    reach_page = [by_action[a]["recall"] for a in ("reach", "page")]
    neg_h = nn["false_alarms"]["negative_h"]
    nn_fa, cl_fa = nn["false_alarms"]["fa_per_h"], cl["false_alarms"]["fa_per_h"]
    per_level = [{**(r.get("ratios") or {name: r}).get(name, {}), "major_recall_level": r["major_recall_level"]}
                 for r in res.get("fa_at_recall_ratio") or []]  # JSON of older versions: one "ratio" (classic/nn)
    ratio = next((r for r in per_level if r.get("ratio") is not None), None)
    rows = [
        (f"{name} major recall (<= 5 m)", f"{nn['major']['recall']:.1%}", ">= 97 %", nn["major"]["recall"] >= 0.97),
        (f"{name} minor recall reach / page", " / ".join(f"{r:.1%}" for r in reach_page), ">= 85 %",
         min(reach_page) >= 0.85),
        (f"{name} false alarms /h", f"{nn_fa:.2f} in {neg_h:.2f} h", "<= 0.5 on >= 5 h", nn_fa <= 0.5 and neg_h >= 5.0),
        (f"{name} major delay median (s)", f"{nn['major']['delay_s']['median']:.2f}", "<= 0.3",
         nn["major"]["delay_s"]["median"] <= 0.3 + 1e-9),
        (f"{name} vs classic FA/h at equal major recall",
         f"{ratio['ratio']:.1f}x at >= {ratio['major_recall_level']:.0%}" if ratio else "n/a", ">= 10x",
         bool(ratio) and ratio["ratio"] >= 10.0),
        (f"{name} vs classic false alarms /h", f"{nn_fa:.2f} vs {cl_fa:.2f}", "fewer", nn_fa < cl_fa),
    ]
    return rows


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
    args = ap.parse_args()
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
    js = args.json or out.with_name(out.name + "_comparison.json")
    code = uspd(["-q", "evaluate", str(out), "--detector", "all" if args.hybrid else "both", "--matched-fa", "1,0.1",
                 "--workers", str(args.workers), "--json", str(js)])
    if code != 0:
        return code
    res = json.loads(js.read_text(encoding="utf-8"))
    rows = [row for name in ("nn", "hybrid") if name in res["detectors"] for row in targets(res, name)]
    print(f"\n{'target check':44s} {'value':26s} {'target':18s} met")
    for name, value, target, met in rows:
        print(f"{name:44s} {value:26s} {target:18s} {'yes' if met else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
