"""`uspd spectrogram`: draw the Doppler band around each carrier of a recording over time."""
from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from uspd.errors import UspdError

log = logging.getLogger(__name__)


def _mic(text: str) -> int | None:
    if text.strip().lower() in ("all", "mean"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a mic index (0, 1, ...) or 'all', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"mic index must be 0 or more, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "spectrogram",
        help="draw the Doppler band around each carrier of a recording (PNG)",
        description="Draw the Doppler band around each carrier of a recording over time, one panel per carrier, "
                    "in dB. Labelled intervals (NAME.labels.json, if present) are marked under the panels. "
                    "The file is streamed in chunks, so hour-long recordings work.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("recording", metavar="REC.wav", help="recording WAV (with its NAME.json sidecar beside it)")
    p.add_argument("--out", metavar="FIG.png", default=None,
                   help="picture to write (.png, .svg or .pdf; None: NAME.spectrogram.png beside the recording)")
    p.add_argument("--band-hz", type=float, default=1000.0,
                   help="half-width of the Doppler band shown around each carrier, in Hz")
    p.add_argument("--mic", type=_mic, default="all", metavar="N|all",
                   help="mic channel to show (0-based), or 'all' for the mean power over all mics")
    p.add_argument("--start-s", type=float, default=0.0, help="start of the segment shown, in seconds")
    p.add_argument("--end-s", type=float, default=None,
                   help="end of the segment shown, in seconds (None: the end of the file)")
    p.add_argument("--window-s", type=float, default=0.1,
                   help="STFT window in seconds (frequency resolution about 1/window Hz; columns overlap by half)")
    p.add_argument("--range-db", type=float, default=60.0,
                   help="colour scale spans at least this many dB above the noise floor (automatic scale)")
    p.add_argument("--db-min", type=float, default=None,
                   help="fix the bottom of the colour scale, in dBFS (None: noise floor - 3 dB); fix both ends to "
                        "compare pictures")
    p.add_argument("--db-max", type=float, default=None,
                   help="fix the top of the colour scale, in dBFS (None: strongest Doppler content + 6 dB)")
    p.add_argument("--max-columns", type=int, default=2000,
                   help="at most this many time columns; longer recordings are averaged down")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from uspd.recording import RecordingReader, read_labels
    from uspd.viz.spectrogram import require_matplotlib, doppler_spectrogram, plot_spectrogram

    # matplotlib's own debug chatter (font search) would drown uspd's -vv output.
    logging.getLogger("matplotlib").setLevel(max(logging.INFO, logging.getLogger("matplotlib").level))
    require_matplotlib()  # fail before minutes of computing if matplotlib is missing
    if not (math.isfinite(args.range_db) and args.range_db > 0):
        raise UspdError(f"--range-db {args.range_db:g}: must be a positive number of dB")
    if args.db_min is not None and args.db_max is not None and not args.db_min < args.db_max:
        raise UspdError(f"--db-min {args.db_min:g} must be below --db-max {args.db_max:g}")
    wav = Path(args.recording)
    out = Path(args.out) if args.out else wav.with_name(wav.stem + ".spectrogram.png")
    reader = RecordingReader(wav)
    specs = doppler_spectrogram(
        reader, band_hz=args.band_hz, mic=args.mic, start_s=args.start_s, end_s=args.end_s,
        window_s=args.window_s, max_columns=args.max_columns,
        progress=not getattr(args, "quiet", False) and sys.stderr.isatty(),
    )
    try:
        labels = read_labels(wav)
    except UspdError as exc:  # labels are for display only: draw without them
        log.warning("ignoring labels: %s", exc)
        labels = None
    which = f"mic {args.mic}" if args.mic is not None else f"mean of {reader.n_mics} mic(s)"
    title = f"{wav.name}: {which}, {reader.sample_rate} Hz, window {args.window_s:g} s"
    plot_spectrogram(specs, out, title, labels=labels, range_db=args.range_db, db_limits=(args.db_min, args.db_max))
    log.info("wrote %s (%d carrier(s), %d columns, %.1f s of audio)", out, len(specs), len(specs[0].times_s),
             (reader.duration_s if args.end_s is None else min(args.end_s, reader.duration_s)) - args.start_s)
    return 0
