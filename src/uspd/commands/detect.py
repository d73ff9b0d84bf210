"""`uspd detect REC.wav --output OUT.jsonl`: run the streaming pipeline over a recording, one JSON line per hop.

Each line: ``t`` (s from the file start to the end of the audio the decision used), ``score`` (0..1), ``motion``,
``kind`` ("major"/"minor"/null), ``presence``, ``major``, ``threshold``, ``mover`` (only with a model that has a
mover readout: its evidence, 0..1, that a pet or a robot vacuum moves and no person does) and ``events``
(motion_start/-end, presence_on/-off, no_motion, with audio times). Lines are flushed one by one, so a killed run
keeps every decision made so far. Only the WAV and its sidecar are read (never the labels).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from uspd.detector.base import DETECTOR_NAMES
from uspd.errors import UspdError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect",
        help="run motion/presence detection over a recording, one JSON line per 50 ms hop",
        description="Run the streaming pipeline (Doppler front end -> detector -> presence tracker) over REC.wav "
                    "(sidecar REC.json beside it) and write one JSON object per decision hop: t (s, end of the "
                    "audio used), score (0..1), motion, kind (major|minor|null), presence, major, threshold, "
                    "mover (0..1, only with a model that has a mover readout: 'uspd train --mover-readout'), "
                    "events. Lines are flushed as they are made.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("recording", metavar="REC.wav", help="recording (multichannel WAV with a JSON sidecar)")
    p.add_argument("-o", "--output", metavar="OUT.jsonl", default="-",
                   help="JSON-lines output file, or - for standard output")
    p.add_argument("--detector", choices=DETECTOR_NAMES, default=None,
                   help="detector (default: [detector] name from --config, else hybrid: classic and nn fused)")
    p.add_argument("--config", metavar="FILE", default=None, help="TOML config file (default: built-in defaults)")
    p.add_argument("--chunk-s", type=float, default=1.0,
                   help="audio read and processed per step (s); any value gives the same decisions")
    p.add_argument("--progress", action="store_true", help="show a progress bar on standard error")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from uspd.config import load_config
    from uspd.pipeline import chunk_samples, run_file

    config = load_config(args.config)
    chunk_samples(args.chunk_s, 1)  # validate the option before touching the output
    from uspd.recording import RecordingReader

    RecordingReader(args.recording)  # validate the recording before creating the output
    if args.output == "-":
        out = sys.stdout
        close = False
    else:
        path = Path(args.output)
        if path.is_dir():
            raise UspdError(f"{path}: --output is a directory (give a file name, or - for standard output)")
        try:
            out = open(path, "w", encoding="utf-8")
        except OSError as exc:
            raise UspdError(f"{path}: cannot write output: {exc.strerror or exc}") from None
        close = True

    def sink(decision) -> None:
        out.write(json.dumps(decision.to_dict(), separators=(",", ":")) + "\n")
        out.flush()

    try:
        summary = run_file(args.recording, config, args.detector, sink, chunk_s=args.chunk_s,
                           progress=args.progress)
    finally:
        if close:
            out.close()
    log.info("%s: %d decisions over %.1f s of audio (%.0fx real time)", args.recording, summary.decisions,
             summary.audio_s, summary.realtime_factor)
    return 0
