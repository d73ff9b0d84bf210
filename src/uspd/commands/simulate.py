"""`uspd simulate`: render a scene (preset, TOML or JSON spec) to a recording: WAV + sidecar + reference + labels."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)



def register(sub: argparse._SubParsersAction) -> None:
    from uspd.cli import HelpFormatter

    from uspd.simulate.scene import PRESETS, RANDOM_KINDS, CONFUSER_TYPES

    p = sub.add_parser(
        "simulate",
        help="render a simulated room to a recording (WAV + sidecar + reference + labels)",
        description="Render a room scene with the physical ultrasound simulator. SCENE is a preset name "
                    f"({', '.join(PRESETS)}) or a .toml/.json scene spec. Writes OUT.wav (one channel per mic), "
                    "OUT.json (sidecar), OUT.ref.wav (what the loudspeaker played) and OUT.labels.json "
                    "(ground truth). The same scene and seed give bit-identical files.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("scene", nargs="?", default="walk-in", metavar="SCENE",
                   help="preset name or scene spec file (.toml/.json)")
    p.add_argument("--seed", type=int, default=0, help="random seed (room, device spread, paths, noise)")
    p.add_argument("--out", type=Path, default=None, metavar="OUT.wav",
                   help="output WAV path (default: SCENE-name.wav in the current directory)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="override the scene duration (seconds; default: the scene's)")
    p.add_argument("--sample-rate", type=int, default=None, choices=(48000, 96000),
                   help="override the scene sample rate (Hz); the carrier falls back to the rate's default "
                        "(40 kHz at 96 kHz, 20 kHz at 48 kHz) if it does not fit")
    p.add_argument("--format", default="int16", choices=("int16", "int24", "float32"),
                   help="WAV sample format")
    p.add_argument("--random", type=int, default=None, metavar="N",
                   help="write N random scenes rec0000.wav ... into --out-dir instead (SCENE is ignored)")
    p.add_argument("--kind", default=None,
                   choices=sorted(set(RANDOM_KINDS) | set(CONFUSER_TYPES)),
                   help="with --random: kind of random scene (default: a mixture of all kinds)")
    p.add_argument("--out-dir", type=Path, default=None, metavar="DIR", help="output folder for --random")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (also with uspd -q)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from uspd.errors import UspdError
    from uspd.simulate.render import render_to_file
    from uspd.simulate.scene import load_scene, random_scene_spec

    if args.duration is not None and not args.duration > 0:
        raise UspdError(f"--duration: must be a positive number of seconds, got {args.duration}")
    overrides = {"duration_s": args.duration, "sample_rate": args.sample_rate}
    if args.random is not None:
        if args.random < 1:
            raise UspdError(f"--random: N must be at least 1, got {args.random}")
        if args.out_dir is None:
            raise UspdError("--random N needs --out-dir DIR")
        rng = np.random.default_rng([args.seed, 77])
        for i in range(args.random):
            spec = random_scene_spec(rng, kind=args.kind, duration_s=args.duration)
            scene = load_scene(spec, **overrides)
            path = args.out_dir / f"rec{i:04d}.wav"
            render_to_file(scene, args.seed * 100003 + i, path, progress=not (args.no_progress or args.quiet),
                           sample_format=args.format)
            log.info("wrote %s", path)
        print(f"wrote {args.random} recording(s) to {args.out_dir}")
        return 0
    scene = load_scene(args.scene, **overrides)
    out = args.out or Path(f"{(scene.name or 'scene').replace('+', '_')}.wav")
    if out.suffix.lower() != ".wav":
        raise UspdError(f"--out {out}: the output must be a .wav path")
    path = render_to_file(scene, args.seed, out, progress=not (args.no_progress or args.quiet), sample_format=args.format)
    print(f"wrote {path} ({scene.duration_s:g} s, {scene.sample_rate} Hz)")
    return 0
