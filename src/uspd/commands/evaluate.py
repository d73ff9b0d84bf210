"""`uspd evaluate DIR`: run the pipeline over every labelled recording in DIR and report detector metrics."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from uspd import __version__
from uspd.commands.dataset import positive_int
from uspd.errors import ConfigError, UspdError

DETECTORS = ("classic", "nn")


def _targets(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated false-alarm rates per hour, got {text!r}")
    if not vals or any(v < 0 for v in vals):
        raise argparse.ArgumentTypeError(f"expected non-negative false-alarm rates per hour, got {text!r}")
    return vals


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="measure detection on labelled recordings (recall, FA/h, delays, presence)",
        description="Run the detection pipeline over every recording with labels under DIR (recursively; "
                    "NAME.wav + NAME.json + NAME.labels.json) and print major/minor recall, detection delay, "
                    "event-based false alarms per hour (total, during music, by confuser), presence on/off "
                    "accuracy and the real-time factor. Definitions: uspd/evaluate/metrics.py.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("dir", metavar="DIR", type=Path, help="folder of labelled recordings (e.g. from `uspd dataset eval`)")
    p.add_argument("--detector", choices=(*DETECTORS, "both"), default="classic",
                   help="detector to evaluate; 'both' puts classic and nn side by side")
    p.add_argument("--config", metavar="FILE", default=None, help="uspd TOML config ([presence], [detector], ...)")
    p.add_argument("--json", metavar="OUT.json", type=Path, default=None, help="also write all metrics as JSON")
    p.add_argument("--workers", type=positive_int, default=max(1, os.cpu_count() or 1),
                   help="parallel processes (each runs whole files)")
    p.add_argument("--matched-fa", type=_targets, default=None, metavar="RATES",
                   help="comma-separated false alarms per hour, e.g. 1,0.1: report recall at each rate by sweeping "
                        "the strict [presence] threshold over the stored scores")
    p.add_argument("--allow-training-seeds", action="store_true",
                   help="evaluate even if recordings carry a training dataset_seed (0-999)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from uspd.config import load_config
    from uspd.evaluate.metrics import MetricsConfig, evaluate_clips, nan_to_none
    from uspd.evaluate.report import format_table
    from uspd.evaluate.runner import check_seeds, find_recordings, matched_fa, misses_and_alarms, run_all
    from uspd.recording.format import write_json_atomic

    config = load_config(args.config)  # validate before any work
    presence_cfg = config.presence
    if presence_cfg is None:
        raise ConfigError("the [presence] section is unavailable in this installation")
    wavs = find_recordings(args.dir)
    roles = check_seeds(wavs, allow_training=args.allow_training_seeds)
    detectors = list(DETECTORS) if args.detector == "both" else [args.detector]
    mcfg = MetricsConfig()
    clips = run_all(wavs, detectors, config_path=args.config, workers=min(args.workers, len(wavs) * len(detectors)),
                    progress=not getattr(args, "quiet", False))
    results = {}
    for det, cs in clips.items():
        res = evaluate_clips(cs, presence_cfg.vacancy_timeout_s, mcfg)
        if args.matched_fa:
            res["matched_fa"] = matched_fa(cs, presence_cfg, args.matched_fa, mcfg)
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
            "metric_definitions": dataclasses.asdict(mcfg),
            "detectors": {det: {**res, **misses_and_alarms(clips[det], mcfg)} for det, res in results.items()},
        }
        try:
            write_json_atomic(args.json, nan_to_none(out))
        except OSError as exc:
            raise UspdError(f"{args.json}: cannot write JSON: {exc.strerror or exc}") from None
    return 0
