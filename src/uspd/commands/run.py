"""`uspd run`: the always-on service on a sound card, or on the room simulator with ``--simulate SCENE``.

Plays the tone, records the microphones, runs the one streaming pipeline, and sends every event to the routines,
the event log (``[log]``), Home Assistant (``[mqtt]``), an optional JSON-lines file and the terminal view.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import tomllib

from uspd.config import load_config
from uspd.detector.base import DETECTOR_NAMES
from uspd.errors import ConfigError
from uspd.live.audio import AudioDevice, SimulatedDevice, SoundcardDevice
from uspd.live.config import DeviceConfig, EmissionConfig
from uspd.live.service import JsonlSink, LiveService, RunStats, Sink
from uspd.live.view import TerminalView, format_time_s

log = logging.getLogger(__name__)



def register(sub: argparse._SubParsersAction) -> None:
    from uspd.cli import HelpFormatter

    p = sub.add_parser(
        "run",
        help="the always-on service: play the tone, detect motion and presence, run routines",
        description="Play an inaudible tone, record the microphones and report motion and presence live, with "
        "routines, the event log and Home Assistant as configured. Without a sound card, the room simulator can "
        "stand in for the device: uspd run --simulate walk-in-then-leave. All times shown are audio time.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--simulate", metavar="SCENE",
                   help="use the room simulator as the device: a preset name (e.g. walk-in, walk-in-then-leave, "
                        "seated, fan+walk) or a scene spec file (.toml/.json)")
    p.add_argument("--seed", type=int, default=0, help="simulator seed (with --simulate)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulation speed as a multiple of real time; 0 = as fast as possible (with --simulate)")
    p.add_argument("--config", metavar="FILE", help="TOML config ([device], [emission], [presence], [routines], ...); default: built-in defaults")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="override one config value (TOML syntax, repeatable), e.g. --set presence.vacancy_timeout_s=20 "
                        "--set emission.duty_cycle=false")
    p.add_argument("--detector", choices=DETECTOR_NAMES,
                   help="detector (default: the config's [detector] name, hybrid: classic and nn fused)")
    p.add_argument("--duration-s", type=float, metavar="S",
                   help="stop after this much audio time in seconds (default: the scene's length with "
                        "--simulate, forever on a sound card)")
    p.add_argument("--no-view", action="store_true", help="no terminal view (events still go to the log/routines)")
    p.add_argument("--jsonl", metavar="OUT", help="also write every event as a JSON line to OUT ('-' = stdout; default: none)")
    p.add_argument("--decisions", action="store_true", help="with --jsonl: also one line per decision hop (50 ms)")
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> None:
    if args.duration_s is not None and not (args.duration_s > 0):
        raise ConfigError(f"--duration-s: must be > 0 seconds, got {args.duration_s}")
    if not (args.speed >= 0 and math.isfinite(args.speed)):
        raise ConfigError(f"--speed: must be >= 0 (0 = as fast as possible), got {args.speed}")
    if args.decisions and not args.jsonl:
        raise ConfigError("--decisions: needs --jsonl OUT")
    if not args.simulate:
        for opt, default in (("seed", 0), ("speed", 1.0)):
            if getattr(args, opt) != default:
                raise ConfigError(f"--{opt}: only applies with --simulate SCENE")


def parse_overrides(items: list[str]) -> dict[str, dict]:
    """``["presence.vacancy_timeout_s=20", ...]`` -> ``{"presence": {"vacancy_timeout_s": 20}}`` (TOML values;
    a bare word is a string)."""
    out: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not section or not name:
            raise ConfigError(f"--set {item}: expected SECTION.KEY=VALUE, e.g. presence.vacancy_timeout_s=20")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out.setdefault(section, {})[name] = value
    return out


def open_device(args: argparse.Namespace, device: DeviceConfig, emission: EmissionConfig) -> AudioDevice:
    """The simulator (``--simulate``) or the configured sound card."""
    if args.simulate:
        from uspd.simulate.scene import load_scene

        scene = load_scene(args.simulate)
        return SimulatedDevice(scene, seed=args.seed, speed=args.speed, block_s=device.block_s,
                               duration_s=args.duration_s)
    return SoundcardDevice(device, emission)


def _title(args: argparse.Namespace, dev: AudioDevice) -> str:
    sc = dev.sidecar
    geo = f"{sc.n_mics} mics, {sc.sample_rate / 1000:g} kHz"
    if args.simulate:
        pace = "as fast as possible" if args.speed == 0 else f"{args.speed:g}x real time"
        return f"uspd run · simulated '{args.simulate}' (seed {args.seed}, {geo}, {pace})"
    return f"uspd run · {dev.description} ({geo})"


def summary_line(stats: RunStats) -> str:
    ev = stats.events
    parts = [f"{ev.get(k, 0)} {k.replace('_', ' ')}" for k in ("presence_on", "presence_off", "motion_start")]
    return (f"uspd run: {format_time_s(stats.audio_s)} of audio ({stats.stopped_by}); " + ", ".join(parts)
            + f"; tone on {100 * stats.tone_on_fraction:.0f}% of the time")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    cfg = load_config(args.config, overrides=parse_overrides(args.overrides))
    device_cfg: DeviceConfig = cfg.device or DeviceConfig()
    emission: EmissionConfig = cfg.emission or EmissionConfig()
    device = open_device(args, device_cfg, emission)

    from uspd.pipeline import Pipeline

    pipeline = Pipeline(device.sidecar, cfg, args.detector)
    from uspd.routines.engine import RoutineEngine

    sinks: list[Sink] = []
    try:
        engine = RoutineEngine.from_config(cfg)
        engine.register_no_motion(pipeline.tracker)
        sinks.append(engine)
        if args.jsonl:
            sinks.append(JsonlSink(args.jsonl, decisions=args.decisions))
    except BaseException:
        for s in sinks:
            s.close()
        raise

    to_stdout = args.jsonl == "-"
    view = None
    if not args.no_view:
        stream = sys.stderr if to_stdout else sys.stdout
        view = TerminalView(stream=stream, title=_title(args, device), carrier_hz=device.sidecar.carrier_hz[0])
        if not view.live:
            view.message(_title(args, device))
    service = LiveService(device, pipeline, emission, sinks=sinks, view=view, duration_s=args.duration_s)
    stats = service.run()
    line = summary_line(stats)
    if engine.event_log is not None:
        line += f"; events logged to {engine.event_log.path}"
    print(line, file=sys.stderr if (to_stdout or args.no_view) else sys.stdout)
    log.debug("run stats: %s", stats.to_dict())
    return 0
