"""`uspd train`: train the neural detector on `uspd dataset train` shards, export int8 ONNX + manifest."""
from __future__ import annotations

import argparse
import math
import shlex
import sys

from uspd.errors import UspdError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the neural detector (needs the 'train' extra: torch, onnx)",
        description="Train the neural detector on shards from 'uspd dataset train', export it as a one-hop "
                    "streaming ONNX graph, quantize it to int8 and write a JSON manifest beside it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", nargs="+", metavar="DIR",
                   help="one or more directories of training shards (from 'uspd dataset train'); required unless "
                        "--record-eval is given")
    p.add_argument("--out", required=True, help="int8 model path (.onnx); the manifest goes beside it as .json, "
                                                "the float graph as .float.onnx")
    p.add_argument("--epochs", type=int, default=16, help="passes over the training hops")
    p.add_argument("--seed", type=int, default=0, help="training seed (weights init, crops, validation split)")
    p.add_argument("--batch", type=int, default=16, help="crops per batch")
    p.add_argument("--crop-s", type=float, default=24.0,
                   help="crop length in seconds of audio (20 hops per s); the GRU starts each crop from zero state, "
                        "so long crops teach it to stay quiet over long confuser stretches")
    p.add_argument("--burn-in-s", type=float, default=0.0,
                   help="crops that start inside a clip carry no loss on their first BURN_IN_S seconds, so the GRU "
                        "is not taught to judge from zero state with the front end already warm (which never "
                        "happens live); crops from a clip's start (a cold start) keep their loss; 0 = off")
    p.add_argument("--level-jitter-db", type=float, default=0.0,
                   help="augmentation: shift each crop's band levels by U(-J, J) dB and each channel's by "
                        "U(-J/2, J/2) dB (other echo strengths, mic sensitivities); 0 = off")
    p.add_argument("--band-mask", type=int, default=0, metavar="W",
                   help="augmentation: half the crops lose a run of 1..W adjacent velocity bands (of 32), in every "
                        "channel and the echo input: their levels held at the crop's median, their rise at 0 dB, so "
                        "the model cannot lean on one spectral shape (another gait, another renderer); 0 = off")
    p.add_argument("--prewarm", type=float, default=0.0, metavar="SHARE",
                   help="share (0-1) of training clips whose feature backgrounds start settled, after a 60 s pre-roll "
                        "of the clip itself played back and forth (as on a device that has been on for a while); "
                        "the rest start cold (just switched on); 0 = off")
    p.add_argument("--hidden", type=int, default=56, help="GRU state size (the parameter count grows with it)")
    p.add_argument("--enc", type=int, default=32,
                   help="size of the per-channel encoding (the MACs per second grow with it times the channels)")
    p.add_argument("--proj", type=int, default=0,
                   help="size of a linear projection of the pooled features before the GRU (a low-rank input "
                        "matrix, which leaves parameters for a larger --hidden); 0 = none")
    p.add_argument("--mining", type=float, default=0.0,
                   help="hard-example mining strength: clips are drawn in proportion to length x (running loss / "
                        "mean loss) ** MINING, capped at 4x (0 = by length only)")
    p.add_argument("--peak-weight", type=float, default=0.0,
                   help="weight of an event-level loss that pushes each crop's --peak-hops highest negative scores "
                        "towards 0 (a false alarm is one rising edge; 0 = off)")
    p.add_argument("--peak-hops", type=int, default=4,
                   help="how many of a crop's highest negative hops the --peak-weight loss takes (50 ms each)")
    p.add_argument("--teachers", nargs="+", metavar="MODEL.onnx", default=None,
                   help="distillation: mix each hop's 'any motion' target with the mean score of these models (run "
                        "as live on the training clips; e.g. the same recipe trained with other seeds, an ensemble "
                        "too large to ship)")
    p.add_argument("--distill", type=float, default=0.5,
                   help="with --teachers: share of the teachers' score in the target (1 - DISTILL is the label's)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (one-cycle schedule)")
    p.add_argument("--weight-decay", type=float, default=1e-4,
                   help="AdamW's decoupled weight decay per step, times the learning rate (a regulariser: larger "
                        "values keep the weights small, e.g. 0.05)")
    p.add_argument("--hard-weight", type=float, default=8.0,
                   help="loss weight of hard-negative hops (fans, curtains, HVAC, pets, music, still/far people)")
    p.add_argument("--hard-positive-weight", type=float, default=3.0,
                   help="factor on the loss weight of motion hops while a confuser or a pet is active (hard "
                        "positives: a walker beside a fan or a vacuum)")
    p.add_argument("--far-weight", type=float, default=1.0,
                   help="factor on the loss weight of negative hops while a person moves beyond 5 m (not a "
                        "detection: a model that cannot tell 6 m from 4 m alarms on them)")
    p.add_argument("--approach-weight", type=float, default=1.0,
                   help="factor on the loss weight of the far hops of a walker crossing the 5 m range (walking in "
                        "from beyond 5 m or out past it), which the metric counts neither as a false alarm nor as a "
                        "detection; 0 = no loss there")
    p.add_argument("--minor-weight", type=float, default=2.0, help="loss weight of minor-motion hops")
    p.add_argument("--mover-weight", type=float, default=0.0,
                   help="train a second task beside the detector: a head on the model's state that says 'a pet or a "
                        "robot vacuum moves and no person does' (the mover readout's targets), with this loss "
                        "weight; the head is written into the manifest as the mover readout ([detector.hybrid] "
                        "mover_trust_s uses it); 0 = off")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the weights (decay per training step, e.g. 0.999: "
                        "about the last 1000 steps); the average is validated, picked and exported instead of the "
                        "last weights, an ensemble over training time at no cost live; 0 = off")
    p.add_argument("--overlay", type=float, default=0.0, metavar="HOURS",
                   help="augmentation: add HOURS of training clips made by laying a walker's band power (above its "
                        "own floor) over a long negative clip with a running confuser or pet, at least 30 s in, so "
                        "movements also come when the backgrounds have settled on the confuser; 0 = off")
    p.add_argument("--echo", action=argparse.BooleanOptionalAction, default=True,
                   help="also feed the echo features: the band power of the front end's echo spectrum (Doppler "
                        "power not common to all mics, so the loudspeaker's music distortion is removed); needs "
                        "shards built with them")
    p.add_argument("--no-background", action="store_true",
                   help="feed only the band levels, not their rise above the slow per-channel background")
    p.add_argument("--no-level", action="store_true",
                   help="feed only the rise above the background (and --spread's z), not the band levels themselves "
                        "(dB re carrier, which a device's gain and direct-path coupling shift)")
    p.add_argument("--level-shape", action="store_true",
                   help="feed each band's level minus its mean over the mic's bands (the Doppler spectrum's shape) "
                        "instead of the level re carrier: a device's gain or coupling offset cancels; "
                        "--level-jitter-db then shifts nothing")
    p.add_argument("--level-floor", action="store_true",
                   help="feed each band's level minus the median over the mic's bands of its slow background (the "
                        "room's Doppler floor, dB) instead of the level re carrier: a device's gain, drive or coupling "
                        "cancels, an echo's height above the floor stays (--level-jitter-db then varies that height)")
    p.add_argument("--no-background-warmup", action="store_true",
                   help="track the background with its fixed rise/fall rates (30 s / 1 s) from the first hop, instead "
                        "of a running mean over the first 30 s (the features then do not change regime 30 s in)")
    p.add_argument("--spread", action="store_true",
                   help="also feed each band's z-score against its own slow running mean and spread (like the "
                        "classic detector's floor: a band that always fluctuates, e.g. a fan's, rises less)")
    p.add_argument("--spread-tau-s", type=float, default=20.0,
                   help="time constant of that running mean and spread, seconds of audio (with --spread)")
    p.add_argument("--echo-floor", action="store_true",
                   help="also feed, per velocity band of the echo features, the z-score against the classic "
                        "detector's motion-gated adaptive floor (0.2 s average; 30 s floor while quiet, 120 s mean "
                        "only while something moves); needs --echo")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 is fastest for this tiny model; more threads only contend)")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="stop after the epoch that passes this many minutes of training (0 = no limit)")
    p.add_argument("--record-eval", metavar="EVAL.json[:NAME]", default=None,
                   help="do not train: store the table of a 'uspd evaluate --json' result in the manifest of --out "
                        "under evaluation.NAME (default name: main)")
    p.add_argument("--calibrate", metavar="THRESHOLD[,SENSITIVE][:NOTE]", default=None,
                   help="do not train: store in the manifest of --out the score map that makes a raw score of "
                        "THRESHOLD (chosen on tuning data) meet the default [presence] threshold (0.6) and, if given, "
                        "a raw score of SENSITIVE meet the default sensitive_threshold (0.35); NOTE says how they "
                        "were chosen")
    p.add_argument("--mover-readout", action="store_true",
                   help="do not train: fit the mover readout of the trained model --out (its evidence, read from the "
                        "model's state, that a pet or a robot vacuum moves and no person does; [detector.hybrid] "
                        "mover_trust_s uses it) on the clips of --data (training sets) and write it into its "
                        "manifest; --seed draws the clips")
    p.add_argument("--readout-clips", type=int, default=150,
                   help="with --mover-readout: clips per --data set (of those where a pet, a vacuum or a person "
                        "moves)")
    p.add_argument("--ensemble", metavar="MODEL.pt", nargs="+", default=None,
                   help="do not train: join these trained models (the .pt checkpoints 'uspd train' writes beside "
                        "each model) into one streaming model whose score is the mean of their logits, written to "
                        "--out with its manifest")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.record_eval:
        from uspd.train.export import record_evaluation

        path, _, name = args.record_eval.partition(":")
        print(f"recorded {path} in {record_evaluation(args.out, path, name or 'main')}")
        return 0
    if args.calibrate:
        from uspd.train.export import record_calibration

        value, _, note = args.calibrate.partition(":")
        strict, _, sensitive = value.partition(",")
        try:
            threshold = float(strict)
            tuned_sensitive = float(sensitive) if sensitive else None
        except ValueError:
            raise UspdError(f"--calibrate {args.calibrate}: THRESHOLD and SENSITIVE must be numbers") from None
        print(f"calibrated {args.out}: {record_calibration(args.out, threshold, note, tuned_sensitive)}")
        return 0
    if args.mover_readout:
        if not args.data:
            raise UspdError("--mover-readout needs --data (training sets to fit it on)")
        if args.readout_clips < 1:
            raise UspdError(f"--readout-clips {args.readout_clips}: must be at least 1")
        from uspd.train.readout import fit_mover_readout, write_mover_readout

        entry = fit_mover_readout(args.out, args.data, args.readout_clips, args.seed, progress=not args.quiet)
        path = write_mover_readout(args.out, entry)
        print(f"wrote the mover readout into {path} ({entry['clips']} clips, {entry['hops']['mover']} pet/vacuum "
              f"and {entry['hops']['person']} person hops; balanced accuracy on them "
              f"{entry['balanced_accuracy_on_fit']:.3f})")
        return 0
    if args.ensemble:
        if args.data:
            raise UspdError("--ensemble joins trained models; it takes no --data")
        from uspd.train.export import build_ensemble

        print(f"wrote {build_ensemble(args.ensemble, args.out, _command_line())} (ensemble of {len(args.ensemble)})")
        return 0
    if not args.data:
        raise UspdError("uspd train: --data is required (or --record-eval, --calibrate, --ensemble)")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UspdError("uspd train needs torch: pip install 'uspd[train]'") from None
    from uspd.train.trainer import TrainConfig, train_and_export

    if args.epochs < 1:
        raise UspdError(f"--epochs {args.epochs}: must be at least 1")
    if args.crop_s <= 0 or args.batch < 1:
        raise UspdError("--crop-s and --batch must be positive")
    if not 0 <= args.band_mask <= 16:
        raise UspdError(f"--band-mask {args.band_mask}: must be 0 (off) to 16 bands")
    if args.hidden < 4:
        raise UspdError(f"--hidden {args.hidden}: must be at least 4")
    if args.enc < 4:
        raise UspdError(f"--enc {args.enc}: must be at least 4")
    if args.proj != 0 and args.proj < 4:
        raise UspdError(f"--proj {args.proj}: must be 0 (none) or at least 4")
    if args.peak_hops < 1:
        raise UspdError(f"--peak-hops {args.peak_hops}: must be at least 1")
    if not 0.0 <= args.burn_in_s < args.crop_s:  # also NaN
        raise UspdError(f"--burn-in-s {args.burn_in_s}: must be >= 0 and shorter than --crop-s ({args.crop_s})")
    for opt in ("mining", "peak_weight", "hard_weight", "hard_positive_weight", "far_weight", "approach_weight",
                "minor_weight", "level_jitter_db", "mover_weight", "weight_decay", "overlay"):
        value = getattr(args, opt)
        if math.isnan(value):
            raise UspdError(f"--{opt.replace('_', '-')} {value}: must be a number")
        if value < 0:
            raise UspdError(f"--{opt.replace('_', '-')} {value}: must not be negative")
    if not 0.0 <= args.ema < 1.0:  # also NaN
        raise UspdError(f"--ema {args.ema}: must be a decay in [0, 1) (0 = off)")
    if not 0.0 <= args.prewarm <= 1.0:  # also NaN
        raise UspdError(f"--prewarm {args.prewarm}: must be a share between 0 and 1")
    if not 0.0 < args.distill <= 1.0:
        raise UspdError(f"--distill {args.distill}: must be in (0, 1]")
    if args.teachers and args.peak_weight > 0:
        raise UspdError("--peak-weight and --teachers do not combine (the peak loss needs hard negative targets)")
    for opt in ("level_jitter_db", "peak_weight", "far_weight", "approach_weight", "mover_weight", "weight_decay",
                "overlay"):
        if not math.isfinite(getattr(args, opt)):
            raise UspdError(f"--{opt.replace('_', '-')} {getattr(args, opt)}: must be finite")
    cfg = TrainConfig(epochs=args.epochs, seed=args.seed, batch=args.batch, crop_hops=max(1, round(args.crop_s * 20)),
                      lr=args.lr, weight_decay=args.weight_decay, hard_weight=args.hard_weight,
                      hard_positive_weight=args.hard_positive_weight, far_weight=args.far_weight,
                      approach_weight=args.approach_weight,
                      minor_weight=args.minor_weight,
                      threads=args.threads, max_minutes=args.max_minutes, hidden=args.hidden, enc=args.enc,
                      proj=args.proj,
                      mining=args.mining, echo=args.echo, level_jitter_db=args.level_jitter_db,
                      band_mask=args.band_mask,
                      peak_weight=args.peak_weight, peak_hops=args.peak_hops, teachers=tuple(args.teachers or ()),
                      distill=args.distill, burn_in_hops=round(args.burn_in_s * 20), prewarm=args.prewarm,
                      mover_weight=args.mover_weight, ema=args.ema, overlay_hours=args.overlay)
    command = _command_line()
    overrides = {"background": False} if args.no_background else {}
    if args.no_background_warmup:
        overrides["background_warmup"] = False
    if args.no_level:
        overrides["level"] = False
    if args.level_shape:
        overrides["level_shape"] = True
    if args.level_floor:
        overrides["level_floor"] = True
    if args.spread:
        if not (math.isfinite(args.spread_tau_s) and args.spread_tau_s > 0):
            raise UspdError(f"--spread-tau-s {args.spread_tau_s}: must be a positive number of seconds")
        overrides.update(spread=True, spread_tau_s=args.spread_tau_s)
    if args.echo_floor:
        if not args.echo:
            raise UspdError("--echo-floor works on the echo features; it does not combine with --no-echo")
        overrides["echo_floor"] = True
    from uspd.detector.neural import FeatureSpec

    FeatureSpec(**overrides)  # its own checks (e.g. some input left), before the shards load
    info = train_and_export(args.data, args.out, cfg, command=command, progress=not args.quiet,
                            feature_overrides=overrides)
    hist = info["training"]["history"]
    print(f"wrote {args.out} (best epoch {hist['best_epoch']} of {len(hist['epochs'])}, "
          f"{hist['train_minutes']:.1f} min)")
    return 0


def _command_line() -> str:
    """This ``uspd train ...`` invocation, shell-quoted, for the manifest ("" when called from Python)."""
    return "uspd " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if "train" in sys.argv[1:] else ""
