"""`uspd devices`: list the sound devices with the sample rates and channel counts they support.

Rates are probed with PortAudio (``check_input_settings`` / ``check_output_settings``) at 48000, 96000 and 192000 Hz.
Without the PortAudio library or the ``sounddevice`` package this is a one-line error (exit 2) that says what to
install; with the library but no device it prints "no sound devices found" and exits 1.
"""
from __future__ import annotations

import argparse
import json
import sys

from uspd.live.audio import PROBE_RATES_HZ, DeviceInfo, list_devices


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "devices",
        help="list sound devices with their supported sample rates and channel counts",
        description="List sound devices (PortAudio) with the sample rates (Hz) among "
        f"{', '.join(map(str, PROBE_RATES_HZ))} and the channel counts they support. "
        "uspd run needs a full-duplex device at 96000 Hz (carrier 32-45 kHz) or 48000 Hz (carrier 18-22 kHz). "
        "Without a sound card, try: uspd run --simulate walk-in",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per device instead of a table")
    p.set_defaults(func=run)


def _usable(d: DeviceInfo) -> str:
    both = set(d.input_rates_hz) & set(d.output_rates_hz)
    if d.max_input_channels and d.max_output_channels and 96000 in both:
        return "yes (96 kHz)"
    if d.max_input_channels and d.max_output_channels and 48000 in both:
        return "48 kHz only"
    if d.max_input_channels and d.max_output_channels:
        return "no (rate)"
    return "in only" if d.max_input_channels else "out only"


def format_table(devices: list[DeviceInfo]) -> str:
    """A plain table: index, name, host API, channels in/out, rates in/out (kHz), usable for uspd run."""
    def khz(rates: list[int]) -> str:
        return ",".join(f"{r / 1000:g}" for r in rates) or "-"

    rows = [("#", "name", "api", "in", "out", "in rates kHz", "out rates kHz", "uspd run")]
    for d in devices:
        rows.append((str(d.index), d.name[:40], d.hostapi[:12], str(d.max_input_channels),
                     str(d.max_output_channels), khz(d.input_rates_hz), khz(d.output_rates_hz), _usable(d)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def run(args: argparse.Namespace) -> int:
    devices = list_devices()
    if not devices:
        print("no sound devices found (PortAudio sees none); try without hardware: uspd run --simulate walk-in",
              file=sys.stderr)
        return 1
    if args.json:
        for d in devices:
            print(json.dumps(d.to_dict()))
    else:
        print(format_table(devices))
    return 0
