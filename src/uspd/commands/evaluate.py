"""`uspd evaluate DIR`: run the pipeline over every labelled recording in DIR and report detector metrics."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Callable

from uspd import __version__
from uspd.commands.dataset import positive_int
from uspd.errors import ConfigError, UspdError

DETECTORS = ("classic", "nn", "hybrid")
#: --detector groups: "both" is the issue's side-by-side table, "all" adds the hybrid.
DETECTOR_GROUPS = {"both": ["classic", "nn"], "all": list(DETECTORS)}


def _number_list(kind: type, what: str, valid: Callable[[Any], bool], rule: str) -> Callable[[str], list]:
    """argparse type: comma-separated ``kind`` values, each ``valid`` (``rule`` says how)."""
    def parse(text: str) -> list:
        try:
            vals = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None
        if not vals or not all(valid(v) for v in vals):
            raise argparse.ArgumentTypeError(f"expected {what} {rule}, got {text!r}")
        return vals
    return parse


_targets = _number_list(float, "false-alarm rates per hour", lambda v: v >= 0, ">= 0")
_levels = _number_list(float, "major-recall levels", lambda v: 0 < v <= 1, "in (0, 1]")
_hops = _number_list(int, "debounce lengths in hops", lambda v: v >= 1, ">= 1")


def _fraction(text: str) -> float:
    v = float(text)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    from uspd.cli import HelpFormatter

    p = sub.add_parser(
        "evaluate", help="measure detection on labelled recordings (recall, FA/h, delays, presence)",
        description="Run the detection pipeline over every recording with labels under DIR (recursively; "
                    "NAME.wav + NAME.json + NAME.labels.json) and print major/minor recall, detection delay, "
                    "event-based false alarms per hour (total, during music, by confuser), presence on/off "
                    "accuracy and the real-time factor. Definitions: uspd/evaluate/metrics.py.",
        formatter_class=HelpFormatter)
    p.add_argument("dir", metavar="DIR", type=Path, help="folder of labelled recordings (e.g. from `uspd dataset eval`)")
    p.add_argument("--detector", choices=(*DETECTORS, *DETECTOR_GROUPS), default="hybrid",
                   help="detector to evaluate; 'both' puts classic and nn side by side, 'all' adds hybrid (the two "
                        "fused per hop)")
    p.add_argument("--config", metavar="FILE", default=None, help="uspd TOML config ([presence], [detector], ...)")
    p.add_argument("--json", metavar="OUT.json", type=Path, default=None, help="also write all metrics as JSON")
    p.add_argument("--workers", type=positive_int, default=max(1, os.cpu_count() or 1),
                   help="parallel processes (each runs whole files; the operating-point sweep then searches its "
                        "debounce lengths in as many)")
    sweep = p.add_argument_group(
        "operating points", "Re-run the presence logic on the stored scores over strict [presence] threshold x "
        "debounce_hops (8 bisection steps of the threshold per debounce) and report, per target, the best point. "
        "Runs when --matched-fa or --recall-levels is given.")
    sweep.add_argument("--matched-fa", type=_targets, default=None, metavar="RATES",
                       help="comma-separated false alarms per hour, e.g. 1,0.1: the best major recall (then minor) "
                            "that keeps FA/h at each rate")
    sweep.add_argument("--recall-levels", type=_levels, default=None, metavar="LEVELS",
                       help="comma-separated major-recall levels (0..1): the lowest FA/h that reaches each; with two "
                            "detectors also their ratio (default with --matched-fa: 0.8,0.9,0.95)")
    sweep.add_argument("--debounce-grid", type=_hops, default="1,2,3,4,6,8,12,16,24", metavar="HOPS",
                       help="comma-separated debounce lengths tried (hops of 50 ms)")
    sweep.add_argument("--max-motion-fraction", type=_fraction, default=0.05, metavar="F",
                       help="points with motion on for more than this share of the negative time are not admissible "
                            "(a detector stuck on raises few alarm events)")
    sweep.add_argument("--sweep-sensitive", choices=("follow", "cap"), default="follow",
                       help="the sensitive threshold during the sweep: 'follow' moves it with the strict one, keeping "
                            "their gap on the logit scale (an operating point is both thresholds); 'cap' keeps "
                            "[presence] sensitive_threshold (capped at the strict one), so alarms while the room is "
                            "occupied cannot be swept away")
    p.add_argument("--allow-training-seeds", action="store_true",
                   help="evaluate even if recordings carry a training dataset_seed (0-999)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from uspd.config import load_config
    from uspd.evaluate.metrics import MetricsConfig, evaluate_clips, nan_to_none
    from uspd.evaluate.report import fa_ratios, format_table
    from uspd.evaluate.runner import RECALL_LEVELS, check_seeds, find_recordings, misses_and_alarms, run_all, sweep
    from uspd.recording.format import write_json_atomic

    config = load_config(args.config)  # validate before any work
    presence_cfg = config.presence
    if presence_cfg is None:
        raise ConfigError("the [presence] section is unavailable in this installation")
    wavs = find_recordings(args.dir)
    roles = check_seeds(wavs, allow_training=args.allow_training_seeds)
    detectors = DETECTOR_GROUPS.get(args.detector, [args.detector])
    mcfg = MetricsConfig()
    clips = run_all(wavs, detectors, config_path=args.config, workers=min(args.workers, len(wavs) * len(detectors)),
                    progress=not getattr(args, "quiet", False))
    targets = args.matched_fa or []
    levels = args.recall_levels if args.recall_levels is not None else (list(RECALL_LEVELS) if targets else [])
    sweep_kw = {"debounce_grid": args.debounce_grid, "max_motion_fraction": args.max_motion_fraction,
                "sensitive": args.sweep_sensitive}
    results = {}
    for det, cs in clips.items():
        res = evaluate_clips(cs, presence_cfg.vacancy_timeout_s, mcfg)
        if targets or levels:
            res.update(sweep(cs, presence_cfg, targets, levels, mcfg, progress=not getattr(args, "quiet", False),
                             desc=f"sweep {det}", workers=args.workers, **sweep_kw))
        results[det] = res
    seeds = ", ".join(f"{n} {role}" for role, n in sorted(roles.items()))
    print(format_table(results, title=f"uspd evaluate {args.dir}  ({len(wavs)} recordings; dataset seeds: {seeds})"))
    if "unknown" not in roles and set(roles) != {"eval"}:
        print(f"note: not an evaluation seed set ({seeds}); evaluation seeds are >= 9000", file=sys.stderr)
    if args.json is not None:
        out = {
            "uspd_version": __version__,
            "dir": str(args.dir),
            "config": args.config,
            "recordings": len(wavs),
            "seed_roles": roles,
            "presence": dataclasses.asdict(presence_cfg),
            "metric_definitions": {**dataclasses.asdict(mcfg),
                                   **({"sweep": _sweep_definitions(sweep_kw)} if targets or levels else {})},
            "detectors": {det: {**res, **misses_and_alarms(clips[det], mcfg)} for det, res in results.items()},
        }
        if levels and len(results) >= 2:
            out["fa_at_recall_ratio"] = fa_ratios(results)
        try:
            write_json_atomic(args.json, nan_to_none(out))
        except OSError as exc:
            raise UspdError(f"{args.json}: cannot write JSON: {exc.strerror or exc}") from None
    return 0


def _sweep_definitions(kw: dict[str, Any]) -> dict[str, Any]:
    """What the ``matched_fa`` / ``fa_at_recall`` entries mean, for the JSON report."""
    from uspd.evaluate.runner import LOGIT_RANGE, SWEEP_STEPS

    return {
        **kw, "steps": SWEEP_STEPS, "logit_range": list(LOGIT_RANGE),
        "matched_fa": "per target FA/h and debounce: the lowest strict threshold with FA/h <= target (bisection of "
                      "logit(threshold)); reported: the debounce with the best major recall (then minor recall, "
                      "fewer alarms, shorter debounce); by_debounce lists every debounce's point",
        "fa_at_recall": "per major-recall level and debounce: the highest strict threshold whose major recall still "
                        "reaches the level; reported: the lowest FA/h (then better recall, shorter debounce)",
        "admissible": "points with motion on for more than max_motion_fraction of the negative time are skipped",
        "sensitive": "cap: [presence] sensitive_threshold capped at the strict threshold; follow: moved with it at "
                     "the config's logit gap",
    }
