"""A candidate config against the base over several fresh evaluation seeds, pooled.

One seed holds about 7 h of negative time, and a few long recordings can decide its alarm rate (session 44: the
shipped defaults raised 27.66 alarms an hour on seed 11400 and 10.21 on 11500). A set at ``--scale 2.3`` takes about
27 GB, so seeds are rendered, judged and deleted one at a time; this pools the evaluate JSONs they leave behind
(``detector_comparison.py --candidate C.toml --json OUT.json`` writes OUT.json and OUT_candidate_C.json; any two
``uspd evaluate --json`` runs on the same recordings will do). Per detector it prints each seed's and the pooled
major recall, recall in late walk-ins and false alarms per hour of negative time (sums over recordings, not means
of rates), then the paired bootstrap over all recordings (``detector_comparison.py``'s own: each resample draws
recordings and sums both runs over the same draw).

    python benchmarks/pooled_comparison.py --base S1.json S2.json --candidate S1_cand.json S2_cand.json
        [--detectors hybrid,nn]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detector_comparison import bootstrap_lines  # noqa: E402
from tuning_wear import pct, pooled, rate  # noqa: E402


def load_runs(paths: list[Path]) -> list[dict]:
    """The ``uspd evaluate --json`` documents at ``paths``; ValueError with a one-line reason for a file that is not
    one."""
    runs = []
    for p in paths:
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{p}: {exc.strerror.lower()}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: not JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("detectors"), dict):
            raise ValueError(f"{p}: not a uspd evaluate --json file (no 'detectors')")
        runs.append(doc)
    return runs


def paired_rows(base: list[dict], cand: list[dict], names: list[Path], detector: str) -> list[tuple[list, list]]:
    """Per seed, the (base, candidate) ``per_clip`` rows of ``detector``; ValueError where a run lacks them or the
    two runs of a seed hold different recordings (a paired comparison needs the same ones)."""
    out, seen = [], set()
    for b, c, (nb, nc) in zip(base, cand, names):
        rows = []
        for doc, name in ((b, nb), (c, nc)):
            per_clip = (doc["detectors"].get(detector) or {}).get("per_clip")
            if not per_clip:
                raise ValueError(f"{name}: no per_clip rows for {detector} (evaluated without it, or before uspd "
                                 "evaluate kept them)")
            rows.append(per_clip)
        clips = {r["clip"] for r in rows[0]}
        if clips != {r["clip"] for r in rows[1]}:
            raise ValueError(f"{nb} and {nc} hold different recordings; pair each base run with the candidate run "
                             "of the same seed")
        if clips & seen:
            raise ValueError(f"{nb}: holds recordings of another seed's run too (e.g. {sorted(clips & seen)[0]}); "
                             "each seed once")
        seen |= clips
        out.append((rows[0], rows[1]))
    return out


def table(detector: str, pairs: list[tuple[list, list]], labels: list[str]) -> list[str]:
    """Lines for one detector: each seed's and the pooled figures, base / candidate."""
    lines = []
    everything = ([r for b, _ in pairs for r in b], [r for _, c in pairs for r in c])
    for label, (b, c) in [*zip(labels, pairs), ("pooled", everything)]:
        pb, pc = pooled(b), pooled(c)
        alarms = (f"{rate(pb['fa_per_h'])} / {rate(pc['fa_per_h'])} "
                  f"({pb['alarms']} / {pc['alarms']} in {pb['negative_h']:.2f} h)")
        lines.append(f"{detector:8s} {label:28s} {pct(pb['major_recall']):>8s} / {pct(pc['major_recall']):<8s} "
                     f"{pct(pb['late_recall']):>7s} / {pct(pc['late_recall']):<7s} {alarms}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, whose in (("--base", "the base config"), ("--candidate", "the candidate config, in --base's order")):
        ap.add_argument(flag, type=Path, nargs="+", required=True, help=f"uspd evaluate JSONs of {whose}, one per seed")
    ap.add_argument("--detectors", default="hybrid,nn",
                    help="comma-separated detectors to compare (default: %(default)s)")
    ap.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: %(default)s)")
    args = ap.parse_args()
    if len(args.base) != len(args.candidate):
        ap.error(f"--base has {len(args.base)} files and --candidate {len(args.candidate)}; one pair per seed")
    if args.resamples < 100:
        ap.error("--resamples must be at least 100")
    detectors = [d for d in args.detectors.split(",") if d]
    if not detectors or not set(detectors) <= {"classic", "nn", "hybrid"}:
        ap.error("--detectors must be a comma-separated subset of classic,nn,hybrid")
    try:
        base, cand = load_runs(args.base), load_runs(args.candidate)
        pairs = {d: paired_rows(base, cand, list(zip(args.base, args.candidate)), d) for d in detectors}
    except ValueError as exc:
        ap.error(str(exc))
    labels = [p.name for p in args.base]
    print(f"pooled over {len(labels)} seed(s); base {', '.join(map(str, args.base))}; "
          f"candidate {', '.join(map(str, args.candidate))}")
    print(f"{'detector':8s} {'seed (base run)':28s} {'major % base / cand':>19s} {'late walk-ins %':>17s} "
          "FA/h base / cand (alarms, negative time)")
    for d in detectors:
        print("\n".join(table(d, pairs[d], labels)))
    pooled_docs = [{"detectors": {d: {"per_clip": [r for p in pairs[d] for r in p[i]]} for d in detectors}}
                   for i in (0, 1)]
    print("\n".join(bootstrap_lines(*pooled_docs, detectors, n_resamples=args.resamples)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
