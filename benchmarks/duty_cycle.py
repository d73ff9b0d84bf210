"""Emission duty cycle over a simulated (compressed) day: how often is the tone on, and what does it cost?

The day is one long simulator scene in one room (4 mics, 96 kHz): an empty morning, a person who
walks in and sits reading for a long spell (small movements every 20-120 s), a short visit, a person working at a
desk (typing, reaching, page turns), another short visit, an empty evening. It runs through the real service
(``LiveService`` + ``SimulatedDevice`` + ``Pipeline``, as fast as possible) three times:

* ``always on``  — no duty cycle (the reference, same run);
* ``duty``       — the ``[emission]`` defaults: tone off for ``off_after_presence_s`` after presence is confirmed;
* ``duty+vacant``— also pulsing the tone while the room is vacant (``vacant_on_s`` on / ``vacant_off_s`` off).

Reported per variant: the fraction of the day the tone is on (overall, while someone is in the room, while empty),
the delay from each arrival (first labelled movement of a visit) to the first motion decision and to presence on,
the latency of presence off after each departure (beyond the vacancy timeout), minor movements seen while seated,
and visits missed. Usage: ``python benchmarks/duty_cycle.py [--minutes 60] [--seed 0] [--json OUT]``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

from uspd.config import load_config  # noqa: E402
from uspd.live.audio import SimulatedDevice  # noqa: E402
from uspd.live.service import LiveService, MemorySink  # noqa: E402
from uspd.pipeline import Pipeline  # noqa: E402
from uspd.simulate.render import SceneRenderer  # noqa: E402


@dataclass
class Visit:
    """One person's stay, as planned (s of audio time): walks in at ``start_s``, gone by ``end_s``."""

    name: str
    start_s: float
    end_s: float
    mover: dict


def day_plan(minutes: float) -> tuple[dict, list[Visit]]:
    """The scene spec of a compressed day of ``minutes`` and its visits (times scale with ``minutes``)."""
    k = minutes * 60.0 / 3600.0  # plan below is written for a 60-minute day

    def at(m: float) -> float:
        return round(m * 60.0 * k, 1)

    visits = [
        Visit("reader (seated, moves every 20-120 s)", at(6), at(21),
              {"type": "person", "route": "seated", "start_s": at(6), "leave_s": at(20),
               "action_gap_s": [20.0, 120.0]}),
        Visit("short visit", at(26), at(28),
              {"type": "person", "route": "enter-leave", "start_s": at(26), "stay_s": at(1)}),
        Visit("desk worker (typing, reaching)", at(33), at(48),
              {"type": "person", "route": "seated", "start_s": at(33), "leave_s": at(47)}),
        Visit("second short visit", at(53), at(55),
              {"type": "person", "route": "enter-leave", "start_s": at(53), "stay_s": at(0.5)}),
    ]
    spec = {"duration_s": at(60), "device": {"n_mics": 4}, "movers": [v.mover for v in visits]}
    return spec, visits


def visit_times(labels, visits: list[Visit]) -> list[tuple[float, float]]:
    """(arrival, departure) per visit from the labels: start of its first and end of its last major movement
    (a person walking within 5 m of the device; beyond 5 m is out of range by design)."""
    out = []
    for v in visits:
        major = [iv for iv in labels.intervals if iv.kind == "major" and v.start_s <= iv.start_s < v.end_s]
        out.append((min(iv.start_s for iv in major), max(iv.end_s for iv in major)))
    return out


def run_variant(spec: dict, seed: int, overrides: dict) -> tuple[MemorySink, float, float]:
    cfg = load_config(None, overrides=overrides)
    device = SimulatedDevice(spec, seed=seed, speed=0)
    sink = MemorySink(decisions=True)
    c0 = time.process_time()
    stats = LiveService(device, Pipeline(device.sidecar, cfg), cfg.emission, sinks=[sink]).run()
    cpu_s = time.process_time() - c0 - device.render_cpu_s
    return sink, stats.tone_on_fraction, cpu_s


def state_mask(sink: MemorySink, t: np.ndarray, on_type: str, off_type: str, initial: bool) -> np.ndarray:
    """A state at times ``t`` from its on/off events (e.g. tone_on/tone_off, presence_on/presence_off)."""
    on = np.full(len(t), initial)
    for ev in sink.events:
        if ev["type"] in (on_type, off_type):
            on[t >= ev["t"]] = ev["type"] == on_type
    return on


def first_after(times: np.ndarray, t0: float, limit: float = np.inf) -> float:
    later = times[(times >= t0) & (times < limit)]
    return float(later[0]) if len(later) else np.nan


def measure(sink: MemorySink, visits: list[tuple[float, float]], duration_s: float, vacancy_s: float,
            labels) -> dict:
    t = np.arange(0.0, duration_s, 0.05)
    on = state_mask(sink, t, "tone_on", "tone_off", True)
    presence = state_mask(sink, t, "presence_on", "presence_off", False)
    occupied = np.zeros(len(t), bool)
    for a, d in visits:
        occupied |= (t >= a) & (t < d)
    rows = np.array(sink.rows, dtype=float)
    motion_t = rows[rows[:, 2] > 0, 0]
    p_on = np.array(sink.times("presence_on"))
    p_off = np.array(sink.times("presence_off"))
    entry, pres, leave, missed, pres_n = [], [], [], 0, 0
    for i, (a, d) in enumerate(visits):
        nxt = visits[i + 1][0] if i + 1 < len(visits) else duration_s
        first_motion = first_after(motion_t, a - 0.5, d)
        if np.isnan(first_motion):
            missed += 1
            continue
        entry.append(first_motion - a)
        pres.append(first_after(p_on, a - 0.5, d) - a)  # NaN if presence never came on (or was held)
        pres_n += int(np.isfinite(pres[-1]))
        leave.append(first_after(p_off, d, nxt + vacancy_s) - d - vacancy_s)
    minor = [iv for iv in labels.intervals if iv.kind == "minor"]
    starts = np.array(sink.times("motion_start"))
    seen = [bool(np.any((starts >= iv.start_s - 0.5) & (starts <= iv.end_s + 1.0))) for iv in minor]
    # a movement can only be seen if the tone was on (and settled) for all of it: the duty cycle switches the
    # tone off on purpose once presence is confirmed, so "seen" alone mixes detection with the schedule
    def tone_on_throughout(t0: float, t1: float) -> bool:
        return bool(on[(t >= t0) & (t <= t1)].all())

    audible = [tone_on_throughout(iv.start_s - 1.0, iv.end_s) for iv in minor]
    seen_audible = sum(s and a for s, a in zip(seen, audible))

    def stat(x: list[float]) -> str:
        x = np.array([v for v in x if np.isfinite(v)])
        return f"{np.median(x):5.1f} / {np.max(x):5.1f}" if len(x) else "   -  /   -  "

    return {
        "tone_on": float(on.mean()), "tone_on_occupied": float(on[occupied].mean()),
        "tone_on_vacant": float(on[~occupied].mean()),
        "tone_on_presence": float(on[presence].mean()) if presence.any() else float("nan"),
        "presence_fraction": float(presence.mean()),
        "entry_motion_delay_s": stat(entry), "presence_on_delay_s": stat(pres),
        "presence_off_latency_s": stat(leave), "minor_seen": f"{sum(seen)}/{len(minor)}",
        "minor_seen_tone_on": f"{seen_audible}/{sum(audible)}", "visits_missed": missed,
        "presence_on_visits": f"{pres_n}/{len(visits)}",
        "entry_raw": entry, "leave_raw": leave,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the compressed day (audio minutes)")
    ap.add_argument("--seed", type=int, default=0, help="simulator seed (room, device, paths)")
    ap.add_argument("--vacancy-s", type=float, default=120.0, help="[presence] vacancy_timeout_s for the day")
    ap.add_argument("--json", help="write the figures as JSON here")
    args = ap.parse_args(argv)

    spec, plan = day_plan(args.minutes)
    labels = SceneRenderer(spec, args.seed).labels
    visits = visit_times(labels, plan)
    base = {"presence": {"vacancy_timeout_s": args.vacancy_s}}
    variants = {
        "always on": {**base, "emission": {"duty_cycle": False}},
        "duty": {**base, "emission": {}},
        "duty+vacant": {**base, "emission": {"vacant_on_s": 4.0, "vacant_off_s": 4.0}},
    }
    defaults = load_config(None).emission
    print(f"simulated day: {args.minutes:g} min of audio, seed {args.seed}, {len(visits)} visits, vacancy timeout "
          f"{args.vacancy_s:g} s; duty: off {defaults.off_after_presence_s:g} s after confirmed presence, "
          f"re-check >= {defaults.recheck_s:g} s, settle {defaults.settle_s:g} s; vacant pulsing 4 s on / 4 s off")
    for (a, d), v in zip(visits, plan):
        print(f"  visit {a:7.1f}-{d:7.1f} s  {v.name}")
    results = {}
    for name, ov in variants.items():
        w0 = time.monotonic()
        sink, frac, cpu_s = run_variant(spec, args.seed, ov)
        results[name] = measure(sink, visits, spec["duration_s"], args.vacancy_s, labels)
        results[name]["detection_cpu_s"] = round(cpu_s, 1)
        print(f"  ran {name!r} in {time.monotonic() - w0:.0f} s (tone on {100 * frac:.1f} %)", file=sys.stderr)
    ref = results["always on"]
    print()
    print(f"{'':34s}" + "".join(f"{n:>18s}" for n in results))
    rows = [
        ("tone on, whole day", lambda r: f"{100 * r['tone_on']:.1f} %"),
        ("tone on, room occupied", lambda r: f"{100 * r['tone_on_occupied']:.1f} %"),
        ("tone on, room empty", lambda r: f"{100 * r['tone_on_vacant']:.1f} %"),
        ("tone on, while presence is on", lambda r: f"{100 * r['tone_on_presence']:.1f} %"),
        ("presence on (fraction of day)", lambda r: f"{100 * r['presence_fraction']:.1f} %"),
        ("detection CPU (s, excl. render)", lambda r: f"{r['detection_cpu_s']:.1f}"),
        ("CPU vs always on", lambda r: f"{r['detection_cpu_s'] / max(ref['detection_cpu_s'], 1e-9):.2f}x"),
        ("entry -> motion (s, med / max)", lambda r: r["entry_motion_delay_s"]),
        ("visits with presence on", lambda r: r["presence_on_visits"]),
        ("entry -> presence on (s)", lambda r: r["presence_on_delay_s"]),
        ("presence off beyond timeout (s)", lambda r: r["presence_off_latency_s"]),
        ("minor movements seen", lambda r: r["minor_seen"]),
        ("  of those with the tone on", lambda r: r["minor_seen_tone_on"]),
        ("visits with no motion seen", lambda r: str(r["visits_missed"])),
    ]
    for label, fmt in rows:
        print(f"{label:34s}" + "".join(f"{fmt(r):>18s}" for r in results.values()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"minutes": args.minutes, "seed": args.seed, "visits": visits, "results": results}, f,
                      indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
