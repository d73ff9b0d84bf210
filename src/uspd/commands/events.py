"""`uspd events`: list (and follow) the event log that `uspd run` writes."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from typing import TextIO

from uspd.errors import UspdError
from uspd.routines.config import TRIGGERS
from uspd.routines.eventlog import EventLog, LoggedEvent, LogConfig, to_json

_UNITS_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "events", help="list and follow the event log (motion, presence, no-motion events)",
        description="List the events that 'uspd run' logged (SQLite), oldest first; with --follow, keep printing new "
                    "ones as they happen. Columns: id, wall-clock time (local), audio time t (s since the service "
                    "started), event, kind, detector score (0..1), data.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS,
                   help="event log file (default: [log] path of --config, else "
                        f"{LogConfig().path})")
    p.add_argument("--config", metavar="TOML", default=argparse.SUPPRESS,
                   help="config file whose [log] path to read (default: none)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events until Ctrl-C")
    p.add_argument("--since", metavar="WHEN", default=None,
                   help="only events from this wall-clock time on: a duration ago (30s, 10m, 2h, 1d) or a local "
                        "date/time (2024-05-01 or 2024-05-01T18:30)")
    p.add_argument("--type", metavar="EVENT", action="append", default=None,
                   help=f"only these event types (repeat or comma-separate): {', '.join(TRIGGERS)}, or any other "
                        "type in the log (e.g. the service's tone_on, tone_off)")
    p.add_argument("-n", "--limit", type=int, default=50, metavar="N",
                   help="show only the last N matching events (0 = all)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line (id, t_s, wall_time, type, kind, score, data)")
    p.add_argument("--exit-after", type=float, default=0.0, metavar="S",
                   help="with --follow: stop after S seconds without a new event (0 = never)")
    p.add_argument("--poll", type=float, default=0.25, metavar="S", help="with --follow: polling interval (s)")
    p.set_defaults(func=run)


def parse_since(text: str, now_s: float | None = None) -> float:
    """'10m' -> now - 600 s; '2024-05-01T18:30' (local time unless it has an offset) -> its Unix time (s)."""
    now_s = time.time() if now_s is None else now_s
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if m:
        return now_s - float(m.group(1)) * _UNITS_S[m.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UspdError(f"--since: expected a duration (30s, 10m, 2h, 1d) or a date/time (2024-05-01T18:30), "
                        f"got {text!r}") from None
    if when.tzinfo is None:
        when = when.astimezone()  # naive = local time
    return when.timestamp()


def parse_types(values: list[str] | None, known: set[str]) -> list[str] | None:
    """--type values (repeated and/or comma-separated), each one of ``known``."""
    if not values:
        return None
    types = [t.strip() for v in values for t in v.split(",") if t.strip()]
    unknown = [t for t in types if t not in known]
    if unknown:
        raise UspdError(f"--type: unknown event type {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return types


def format_event(ev: LoggedEvent) -> str:
    """One line: id, local wall time (ms), audio time (s), type, kind, score, data."""
    wall = dt.datetime.fromtimestamp(ev.wall_time).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    score = "    -" if ev.score is None else f"{ev.score:5.2f}"
    data = to_json(ev.data) if ev.data else ""
    return f"{ev.id:>6}  {wall}  {ev.t_s:10.2f}  {ev.type:<12}  {ev.kind or '-':<5}  {score}  {data}".rstrip()


HEADER = f"{'id':>6}  {'wall time':<23}  {'t (s)':>10}  {'event':<12}  {'kind':<5}  {'score':>5}  data"


def _db_path(args: argparse.Namespace) -> str:
    if getattr(args, "db", None):
        return args.db
    if getattr(args, "config", None):
        from uspd.config import load_config

        log_cfg = load_config(args.config).log
        if log_cfg is not None:
            return str(log_cfg.resolved_path)
    return str(LogConfig().resolved_path)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.limit < 0:
        raise UspdError(f"--limit: must be >= 0, got {args.limit}")
    if args.exit_after < 0 or args.poll <= 0:
        raise UspdError("--exit-after must be >= 0 and --poll > 0 (seconds)")
    since = parse_since(args.since) if args.since else None
    log = EventLog(_db_path(args), create=False)

    def show(ev: LoggedEvent) -> None:
        out.write((json.dumps(ev.to_dict(), separators=(",", ":")) if args.json else format_event(ev)) + "\n")

    try:
        types = parse_types(args.type, set(TRIGGERS) | log.types())
        last_id = log.last_id()  # before the query: nothing written in between is missed or shown twice
        events = log.query(since=since, type=types, limit=args.limit or None)
        if not args.json and (events or args.follow):
            out.write(HEADER + "\n")
        for ev in events:
            show(ev)
        out.flush()
        if args.follow:
            after = max([last_id] + [ev.id for ev in events[-1:]])
            try:
                for ev in log.follow(after_id=after, type=types, poll_s=args.poll,
                                     idle_timeout_s=args.exit_after or None):
                    show(ev)
                    out.flush()
            except KeyboardInterrupt:
                return 0
    finally:
        log.close()
    return 0
