"""`uspd dataset eval|train ...`: build datasets from the simulator.

One function pair per sub-subcommand: ``register_<name>(dsub)`` adds its parser and sets ``func``;
``run_<name>(args) -> int`` does the work. Add a new one to ``SUBCOMMANDS``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _seed(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"seeds are non-negative integers, got {n}")
    return n


def _scale(text: str) -> float:
    x = float(text)
    if not (x > 0 and x < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return x


def _scene_range(text: str, check, usage: str, symmetric: bool = False) -> tuple[float, float]:
    """argparse type body: LO,HI (or, with ``symmetric``, X for -X,X) checked by ``check`` (a
    ``uspd.simulate.scene.check_*``); its SceneError, or ``usage`` for text that is not two numbers, as the error."""
    from uspd.simulate.scene import SceneError

    try:
        parts = [float(v) for v in text.split(",")]
        if symmetric and len(parts) == 1:
            parts = [-abs(parts[0]), abs(parts[0])]
        return check(parts)
    except SceneError as exc:  # out of range
        raise argparse.ArgumentTypeError(str(exc)) from None
    except ValueError:  # not two numbers
        raise argparse.ArgumentTypeError(f"{usage}, got {text!r}") from None


def _reflection(text: str) -> tuple[float, float]:
    """argparse type: LO,HI with 0 <= LO <= HI < 1 (wall amplitude reflection coefficients)."""
    from uspd.simulate.scene import check_wall_reflection

    return _scene_range(text, check_wall_reflection, "give LO,HI (e.g. 0.2,0.95)")


def _clock_ppm(text: str) -> tuple[float, float]:
    """argparse type: X (= -X,X) or LO,HI ppm within +-MAX_CLOCK_PPM (playback/capture clock offset)."""
    from uspd.simulate.scene import check_clock_ppm

    return _scene_range(text, check_clock_ppm, "give X or LO,HI in ppm (e.g. 100, or =-100,20)", symmetric=True)


def _speaker_radius_mm(text: str) -> tuple[float, float]:
    """argparse type: LO,HI mm (the loudspeaker's piston radius)."""
    from uspd.simulate.scene import check_speaker_radius_mm

    return _scene_range(text, check_speaker_radius_mm, "give LO,HI in mm (e.g. 0,8)")


def _coupling_db(text: str) -> tuple[float, float]:
    """argparse type: X (= -X,X) or LO,HI dB (the direct speaker->mic coupling re free field)."""
    from uspd.simulate.scene import check_coupling_db

    return _scene_range(text, check_coupling_db, "give X or LO,HI in dB (e.g. 10, or =-10,5)", symmetric=True)


def _swing_share(text: str) -> tuple[float, float]:
    """argparse type: LO,HI within 0.2-0.6 (share of the gait cycle a walker's foot is in the air)."""
    from uspd.simulate.scene import check_swing_share

    return _scene_range(text, check_swing_share, "give LO,HI as shares of the gait cycle (e.g. 0.36,0.44)")


def _add_device_and_gait_options(p: argparse.ArgumentParser) -> None:
    """The scene factors both `dataset eval` and `dataset train` draw: loudspeaker beam, direct coupling, gait."""
    p.add_argument("--speaker-radius-mm", type=_speaker_radius_mm, default=None, metavar="LO,HI",
                   help="draw each clip's loudspeaker piston radius in LO,HI mm (e.g. 0,8): its beam then lights the "
                        "room unevenly, narrower at higher carriers (a 1 cm tweeter at 40 kHz: -3 dB at 12.5 degrees; "
                        "default: a point source, the same level every way). Every other detail is drawn as "
                        "without it")
    p.add_argument("--coupling-db", type=_coupling_db, default=None, metavar="X|LO,HI",
                   help="draw each clip's direct speaker->mic coupling in -X..X dB (or LO..HI with "
                        "--coupling-db=LO,HI) re free field: the enclosure and port placement make the tone the mics "
                        "hear directly louder or quieter than the room's echoes (default: free field)")
    p.add_argument("--swing-share", type=_swing_share, default=None, metavar="LO,HI",
                   help="give every person a stance/swing gait: each foot planted for part of the gait cycle and in "
                        "the air for a share drawn in LO,HI (walking: about 0.4, e.g. 0.36,0.44), swinging at up to "
                        "~4x walking speed, as measured feet do (default: feet swinging sinusoidally about the "
                        "torso, 0-2x walking speed). Every other detail is drawn as without it")


REFLECTION_HELP = ("draw each wall's amplitude reflection coefficient in LO,HI (e.g. 0.2,0.95) instead of the "
                   "simulator's own 0.55-0.95 (bare walls); furnished rooms absorb more, so a moving person's wall "
                   "echoes are weaker. Every other detail of every clip is drawn as without it")


def register_eval(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser(
        "eval", help="render the balanced evaluation set with the simulator",
        description="Render a balanced evaluation set from the simulator's random scene sampler: 48 walk-ins "
                    "(20 s, closest approach 0.5-6 m), 48 seated clips (30 s: reach, page, typing, cup), 2.2 h of "
                    "negatives (5-min clips, 2-4 mics: fans, curtains, HVAC, pets, keys, music, vacuum, doors, "
                    "combinations), 24 music-plus-motion clips, 8 clips of a person beyond 5 m, 4 fourteen-minute visits "
                    "(sit up to 8 min, then leave: presence off after the timeout); every 4th clip at "
                    "48 kHz -- counts and negative hours multiplied by --scale. Writes WAV + sidecar + reference + "
                    "labels per clip and OUT/manifest.json (seeds, counts, hours, distances, actions). Resumable: "
                    "complete clips are skipped. Seeds: training 0-999 (refused), tuning 1000-1999, "
                    "evaluation >= 9000.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seed", type=_seed, required=True, default=argparse.SUPPRESS, help="dataset seed (evaluation sets: >= 9000)")
    p.add_argument("--out", type=Path, required=True, default=argparse.SUPPRESS, metavar="DIR", help="output folder (new, or a partial run)")
    p.add_argument("--scale", type=_scale, default=1.0,
                   help="multiply clip counts and negative hours (0.05 = tiny set for a quick check)")
    p.add_argument("--reflection", type=_reflection, default=None, metavar="LO,HI", help=REFLECTION_HELP)
    p.add_argument("--clock-ppm", type=_clock_ppm, default=None, metavar="X|LO,HI",
                   help="draw each clip's playback/capture clock offset uniformly in -X..X ppm (--clock-ppm X) or "
                        "LO..HI (--clock-ppm=LO,HI): the tone is recorded off the carrier the sidecar gives, as with a "
                        "USB microphone and a separate loudspeaker (default: one shared clock). Every other detail is "
                        "drawn as without it")
    _add_device_and_gait_options(p)
    p.add_argument("--workers", type=positive_int, default=max(1, os.cpu_count() or 1),
                   help="parallel render processes")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from uspd.evaluate.dataset import build_eval_set

    man = build_eval_set(args.out, args.seed, scale=args.scale, workers=args.workers,
                         progress=not getattr(args, "quiet", False), reflection=args.reflection,
                         clock_ppm=args.clock_ppm, speaker_radius_mm=args.speaker_radius_mm,
                         coupling_db=args.coupling_db, swing_share=args.swing_share)
    counts = ", ".join(f"{k} {n} ({man['hours'][k]:.2f} h)" for k, n in man["counts"].items())
    rates = ", ".join(f"{n} at {r} Hz" for r, n in sorted(man["sample_rates"].items()))
    print(f"{args.out}: seed {args.seed} ({man['role']}), {len(man['clips'])} clips, "
          f"{man['rendered_now']} rendered now: {counts}; {rates}")
    return 0


def register_train(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser(
        "train", help="render training features for the neural detector (in memory, sharded .npz)",
        description="Render random simulated scenes in memory (walk-ins, seated minor motion, still/far people, "
                    "pets, fans, curtains, HVAC, keys, vacuums, doors, music with and without a reference; 48 and "
                    "96 kHz; 2-8 mics except the held-out 5-mic family), run them through the streaming front "
                    "end and save velocity-band features with per-hop labels as shards of about --shard-s of "
                    "audio in OUT. Resumable: complete shards are skipped. Seeds: training 0-999, or tuning 1000-1999 for "
                    "pools that benchmarks/model_selection.py compares models on ('uspd train' refuses them).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--hours", type=_scale, required=True, default=argparse.SUPPRESS, help="hours of audio to render")
    p.add_argument("--seed", type=_seed, required=True, default=argparse.SUPPRESS, help="dataset seed (training: 0-999; tuning pools: 1000-1999)")
    p.add_argument("--out", type=Path, required=True, default=argparse.SUPPRESS, metavar="DIR", help="output folder")
    p.add_argument("--workers", type=positive_int, default=max(1, os.cpu_count() or 1),
                   help="parallel render processes")
    p.add_argument("--shard-s", type=_scale, default=300.0, help="seconds of audio per shard")
    p.add_argument("--kinds", default="", metavar="KIND=W,...",
                   help="scene kinds of the random sampler and their shares, e.g. music_motion=1,music=1 "
                        "(default: the built-in mix of walk, seated, still, far, negative, music_motion, empty)")
    p.add_argument("--clip-s", type=_scale, default=None,
                   help="length of every clip in seconds (default: the sampler's, 20-40 s by kind); long clips "
                        "teach the model what hours of a confuser look like after its background has settled")
    p.add_argument("--reflection", type=_reflection, default=None, metavar="LO,HI", help=REFLECTION_HELP)
    _add_device_and_gait_options(p)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from uspd.train.data import build_training_set, parse_kind_weights

    build_training_set(args.hours, args.seed, args.out, workers=args.workers, shard_s=args.shard_s,
                       progress=not getattr(args, "quiet", False), kind_weights=parse_kind_weights(args.kinds),
                       clip_s=args.clip_s, reflection=args.reflection, speaker_radius_mm=args.speaker_radius_mm,
                       coupling_db=args.coupling_db, swing_share=args.swing_share)
    print(f"{args.out}: training features for {args.hours:g} h of audio (seed {args.seed})")
    return 0


def register_mine(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser(
        "mine", help="the data loop: keep the stretches of a training pool where a seed model raises false alarms",
        description="Run a seed model (default: the shipped one) over every clip of a 'uspd dataset train' pool "
                    "as it runs live (streaming model + presence tracker with the [presence] defaults), count its "
                    "false alarms in negative time as 'uspd evaluate' does (rising edges, 5 s cooldown), and write "
                    "the hops from --before-s before to --after-s after each alarm, --repeat times, as training "
                    "shards in OUT, with a manifest giving the seed model's false alarms per hour on the pool. "
                    "With --misses, labelled major movements the seed model misses (hard positives) are kept too. "
                    "Train on OUT together with the other data sets.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("pool", type=Path, metavar="POOL", help="folder of training shards to sift")
    p.add_argument("--out", type=Path, required=True, default=argparse.SUPPRESS, metavar="DIR",
                   help="new folder for the mined shards")
    p.add_argument("--model", default=None, metavar="MODEL.onnx", help="seed model (None: the shipped model)")
    p.add_argument("--before-s", type=float, default=20.0, help="seconds kept before each false alarm")
    p.add_argument("--after-s", type=float, default=10.0, help="seconds kept after each false alarm")
    p.add_argument("--repeat", type=positive_int, default=2,
                   help="copies of each stretch (the trainer draws crops by length: this is their extra weight)")
    p.add_argument("--misses", action="store_true",
                   help="also keep the major movements the seed model misses, from --before-s before their start "
                        "to --after-s after their end")
    p.add_argument("--misses-only", action="store_true",
                   help="keep only the missed major movements (implies --misses); false alarms are still counted. "
                        "For a pool with people in it, whose gaps between labelled movements hold small unlabelled "
                        "ones that must not become negatives")
    p.set_defaults(func=run_mine)


def run_mine(args: argparse.Namespace) -> int:
    from uspd.train.mining import mine_false_alarms

    s = mine_false_alarms(args.pool, args.out, args.model, before_s=args.before_s, after_s=args.after_s,
                          repeat=args.repeat, progress=not getattr(args, "quiet", False),
                          misses=args.misses or args.misses_only, alarms=not args.misses_only)
    top = ", ".join(f"{k} {n}" for k, n in list(s["false_alarms_by_confuser"].items())[:5]) or "none"
    print(f"{args.out}: seed model {Path(s['seed_model']).name}: {s['false_alarms']} false alarms in "
          f"{s['pool_negative_h']:.2f} h of negative time ({s['fa_per_h']} /h; clips with {top}); "
          f"{s['segments']} stretches x {s['repeat']} = {s['mined_h']:.2f} h of training data")
    if args.misses or args.misses_only:
        kinds = ", ".join(f"{k} {n}" for k, n in s["missed_majors_by_kind"].items()) or "none"
        print(f"  missed {s['missed_majors']} of {s['major_movements']} major movements (clips: {kinds})")
    return 0


#: sub-subcommands of `uspd dataset`, in --help order.
SUBCOMMANDS = [register_eval, register_train, register_mine]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="build evaluation / training sets from the simulator",
                       description="Build datasets from the simulator. See `uspd dataset SET --help`.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    dsub = p.add_subparsers(dest="dataset_command", metavar="SET")
    for reg in SUBCOMMANDS:
        reg(dsub)
    p.set_defaults(func=run, _dataset_parser=p)


def run(args: argparse.Namespace) -> int:
    """`uspd dataset` without a set: print its help."""
    args._dataset_parser.print_help()
    return 0
