"""Choose the hybrid detector's weight and operating point on tuning sets (never on evaluation seeds).

Runs the classic and the neural detector through the streaming pipeline over every labelled recording of the given
tuning sets (``uspd dataset eval --seed 1000-1999``), fuses their per-hop scores with the hybrid detector's own
function (:func:`uspd.detector.hybrid.hybrid_score`: the weighted mean of their logits) and re-runs the presence
tracker at each strict threshold (the sensitive one follows at the ``[presence]`` logit gap, as ``uspd evaluate``'s
sweep).
Prints FA/h, major recall, major recall in late walk-ins (``late_walk`` clips) and from 30 s after each recording's
start, for the neural detector alone, the classic one alone and every weight (with a model that has a mover
readout, first that readout's evidence on the hops where the classic detector fires alone, by what moves there);
then the rule's choice: among the (weight, threshold) points with no more FA/h than the neural detector at
``[presence]`` threshold (and, with ``--min-late-walk PCT`` / ``--min-typing PCT``, at least that major recall in late
walk-ins / share of typing found), the highest major recall (ties: late-walk recall, then the higher threshold),
its false alarms during each confuser (a candidate that trades music or vacuum alarms for recall shows here; a note
when the pick is at the lowest threshold tried, where the grid may have cut it off), and the ``[detector.hybrid]``
table that puts that point on the shared thresholds; ``--write-config OUT.toml`` writes that pick as a whole config
(the ``--config`` file's sections with the pick's ``[detector.hybrid]`` and ``[presence]`` values), ready for
``uspd evaluate --config`` or ``detector_comparison.py --candidate``.

    python benchmarks/hybrid_tuning.py /tmp/tune1021 /tmp/tune1022 [--weights 0.5,0.6,0.7,0.8] [--workers 2]
        [--config C.toml] [--max-fa-per-h X] [--min-late-walk PCT] [--min-typing PCT] [--classic-floors 0,0.02,0.1]
        [--classic-gates 0,0.1,0.2] [--distrust 0,120:0.1,300:0.15] [--sensitive-gaps 1.02,1.5,2] [--debounces 2,3,4]
        [--mover-trust 0,2:0.5:0.9] [--write-config PICK.toml]

``--config``: a uspd config to run the detectors with (e.g. ``[detector] model = "U/nn_detector.onnx"``: another
neural model); ``--max-fa-per-h``: the rule's false-alarm budget instead of the neural detector's own at its threshold
(to compare a variant against the shipped model's budget); ``--classic-floors``: also try these
``classic_score_floor`` values (the classic score raised to at least this before fusing; 0 = off);
``--classic-gates``: also try these ``classic_gate`` values (where the model's score is below it, the model decides
alone; 0 = off);
``--distrust``: also try these ``classic_distrust_s:classic_distrust_share`` pairs (the weight moves towards the
model where the classic detector keeps firing alone; 0 = off); ``--mover-trust``: also try these
``mover_trust_s:mover_trust_from:mover_trust_full`` triples (the weight moves towards the model where its mover
readout says a pet or a robot vacuum moves and no person does; needs a model with one, ``uspd train
--mover-readout``; 0 = off); ``--sensitive-gaps``: also try these logit gaps
between the strict threshold and the sensitive one (which applies for ``sensitive_window_s`` after a major movement,
where a seated person's minor movements are found); the chosen gap is printed as a ``[presence]`` value;
``--debounces``: also try these ``[presence] debounce_hops`` (likewise printed and written); the chosen line also gives
the pick's median detection delay of the major movements.
"""
from __future__ import annotations

import argparse
import dataclasses
import pickle
import sys
from pathlib import Path


def detector_clips(dirs: list[Path], workers: int, cache: Path | None, config_path: str | None = None
                   ) -> dict[str, list]:
    """{"classic": [ClipResult], "nn": [...]} over every recording of ``dirs`` (tuning seeds only)."""
    from uspd.errors import UspdError
    from uspd.evaluate.runner import check_seeds, find_recordings, run_all

    if cache is not None and cache.exists():
        clips = pickle.loads(cache.read_bytes())
        check_cache_sets(clips, dirs, cache)
        return clips
    wavs = [w for d in dirs for w in find_recordings(d)]
    roles = check_seeds(wavs)
    if set(roles) != {"tune"}:
        raise UspdError(f"tuning sets only (seeds 1000-1999), got {roles}")
    clips = run_all(wavs, ["classic", "nn"], config_path=config_path, workers=workers)
    if cache is not None:
        cache.write_bytes(pickle.dumps(clips))
    return clips


def check_cache_sets(clips: dict[str, list], dirs: list[Path], cache: Path) -> None:
    """Refuse a cache whose recordings are not those of ``dirs``: every cached recording lies under one of them, each
    of them holds at least one, and where a set is still on disk its recordings are exactly the cached ones (a cache of
    other sets, or of part of a set, would silently give another set's figures)."""
    from uspd.errors import UspdError
    from uspd.evaluate.runner import find_recordings

    roots = [d.resolve() for d in dirs]
    names = [Path(c.name).resolve() for c in clips["nn"]]
    outside = [n for n in names if not any(n.is_relative_to(r) for r in roots)]
    if outside:
        raise UspdError(f"--cache {cache} holds recordings outside the sets given (e.g. {outside[0]}); "
                        "one cache per list of sets")
    for d, r in zip(dirs, roots):
        held = {n for n in names if n.is_relative_to(r)}
        if not held:
            raise UspdError(f"--cache {cache} holds no recording of {d}; one cache per list of sets")
        on_disk = {w.resolve() for w in find_recordings(d)} if d.is_dir() else held
        if held != on_disk:
            raise UspdError(f"--cache {cache} holds {len(held)} recordings of {d}, which has {len(on_disk)} now "
                            "(or others); one cache per list of sets")


def fused_clips(clips: dict[str, list], hybrid) -> list:
    """The nn clips with their score replaced by the hybrid detector's fused score under ``hybrid`` (a
    :class:`~uspd.detector.base.HybridConfig`; major stays the nn's)."""
    from uspd.detector.hybrid import hybrid_score
    from uspd.errors import UspdError

    out = []
    for c, n in zip(clips["classic"], clips["nn"]):
        if c.name != n.name or len(c.score) != len(n.score):
            raise UspdError(f"{n.name}: the two detectors' hops differ")
        out.append(dataclasses.replace(n, score=hybrid_score(n.score, c.score, hybrid, n.hop_s, mover=n.mover)[0]))
    return out


def mover_where_classic_fires_alone(clips: dict[str, list]) -> dict[str, list[float]]:
    """The model's mover evidence on the hops where the classic detector fires alone (classic > ``CLASSIC_FIRES``,
    model < ``NN_QUIET``), by what the labels say moves: {"a person": [...], "a pet or a vacuum alone": [...],
    "another confuser alone": [...]}."""
    import numpy as np

    from uspd.detector.hybrid import classic_fires_alone

    out: dict[str, list[float]] = {"a person": [], "a pet or a vacuum alone": [], "another confuser alone": []}
    for c, n in zip(clips["classic"], clips["nn"]):
        alone = classic_fires_alone(n.score, c.score)
        person, thing, other = (np.zeros(len(n.t_s), bool) for _ in range(3))
        for iv in n.labels.intervals:
            during = (n.t_s >= iv.start_s) & (n.t_s <= iv.end_s)
            kind = person if iv.kind in ("major", "minor") else thing if iv.kind in ("pet", "vacuum") else other
            kind |= during
        out["a person"] += n.mover[alone & person].tolist()
        out["a pet or a vacuum alone"] += n.mover[alone & thing & ~person].tolist()
        out["another confuser alone"] += n.mover[alone & other & ~thing & ~person].tolist()
    return out


def summarize(rescored: list) -> dict[str, float]:
    """FA/h (and per confuser), major recall, its late-walk and settled parts, typing recall and the detected rate of
    people who stay beyond 5 m, of clips whose motion / presence are already decided (e.g. by
    :func:`uspd.evaluate.runner.rescore`)."""
    from uspd.evaluate.metrics import MetricsConfig, false_alarm_metrics, major_metrics, minor_metrics

    mcfg = MetricsConfig()
    fa, mm, mi = false_alarm_metrics(rescored, mcfg), major_metrics(rescored, mcfg), minor_metrics(rescored, mcfg)
    late = (mm.get("by_set_kind") or {}).get("late_walk") or {}
    return {"fa_per_h": fa["fa_per_h"], "alarms": fa["alarms"], "negative_h": fa["negative_h"], "major": mm["recall"],
            "delay_s": mm["delay_s"]["median"],
            "late_walk": late.get("recall"), "settled": mm["settled"]["recall"],
            "typing": (mi.get("by_action") or {}).get("typing", {}).get("recall"),
            "by_confuser": fa["by_confuser"], "far": mm["far"]}


def point(clips: list, presence, threshold: float) -> dict[str, float]:
    """:func:`summarize` at strict ``threshold`` (sensitive follows)."""
    from uspd.evaluate.runner import rescore, with_threshold

    cfg = with_threshold(presence, threshold)
    return {"threshold": threshold, **summarize([rescore(c, cfg) for c in clips])}


_GRID: tuple = ()  # (clips, presence, thresholds) in a grid worker, set by grid_init


def grid_init(clips: dict[str, list], presence, thresholds: list[float]) -> None:
    """Keep the scores, the ``[presence]`` settings and the thresholds in this (worker) process for :func:`grid_row`."""
    global _GRID
    _GRID = (clips, presence, thresholds)


def grid_row(task: tuple) -> tuple[str, list[dict]]:
    """One row of the sweep: ``task`` = (name, "nn" | "classic" | a HybridConfig, sensitive gap, debounce_hops or
    None) -> (name, :func:`point` at each threshold). "nn" / "classic" score that detector alone at the ``[presence]``
    settings; a HybridConfig fuses both detectors' scores and keeps the gap (and the debounce) to the threshold."""
    name, detector, gap, debounce = task
    clips, presence, thresholds = _GRID
    if isinstance(detector, str):
        scored, settings = clips[detector], presence
    else:
        scored, settings = fused_clips(clips, detector), with_gap(presence, gap, debounce)
    return name, [point(scored, settings, t) for t in thresholds]


def _fmt_confusers(p: dict) -> str:
    """False alarms during each confuser at point ``p``: "music 4.12/h (3 in 0.73 h), ..."."""
    return ", ".join(f"{k} {e['fa_per_h']:.2f}/h ({e['alarms']} in {e['negative_h']:.2f} h)"
                     for k, e in sorted(p["by_confuser"].items()))


def _fmt_far(p: dict) -> str:
    """People who stay beyond 5 m detected at point ``p``: "3 of 20 (15.0 %)"."""
    far = p["far"]
    return f"{far['detected']} of {far['n']}" + (f" ({100 * far['recall']:.1f} %)" if far["n"] else "")


def _fmt_delay(p: dict) -> str:
    """Median detection delay of the major movements found at point ``p``: "0.25 s" ("-" when none was found)."""
    return "-" if p["delay_s"] is None else f"{p['delay_s']:.2f} s"


def with_gap(presence, gap: float, debounce_hops: int | None = None):
    """``presence`` with the sensitive threshold ``gap`` logits below the strict one (the sweep keeps that gap) and,
    when given, ``debounce_hops`` consecutive hops above the threshold before motion starts."""
    from scipy.special import expit, logit

    out = dataclasses.replace(presence, sensitive_threshold=float(expit(logit(presence.threshold) - gap)))
    return out if debounce_hops is None else dataclasses.replace(out, debounce_hops=debounce_hops)


def _fmt(p: dict) -> str:
    pct = lambda v: "  -  " if v is None else f"{100 * v:5.1f}"  # noqa: E731
    return f"{p['fa_per_h']:5.2f} {pct(p['major'])} {pct(p['late_walk'])} {pct(p['settled'])} {pct(p.get('typing'))}"


def _toml(data: dict, prefix: str = "") -> str:
    """``data`` (section -> key -> value, tables nested as dicts) as TOML text; values: str, bool, int, float or
    lists of them (what a uspd config holds)."""
    import json

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)  # a TOML basic string: JSON's escapes are TOML's
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    scalars = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    out = ([f"[{prefix}]"] if prefix and scalars else []) + scalars
    for k, v in data.items():
        if isinstance(v, dict):
            out.append(_toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(line for line in out if line)


def write_pick(out: Path, config_path: str | None, hybrid: dict, presence: dict) -> None:
    """Write the ``--config`` file's sections (its model path made absolute) with ``hybrid`` and ``presence``
    overriding the ``[detector.hybrid]`` and ``[presence]`` keys: the pick as a whole uspd config."""
    import tomllib

    data = tomllib.loads(Path(config_path).read_text(encoding="utf-8")) if config_path else {}
    det = data.setdefault("detector", {})
    if det.get("model"):
        det["model"] = str(Path(det["model"]).expanduser().resolve())
    det.setdefault("hybrid", {}).update(hybrid)
    data.setdefault("presence", {}).update(presence)
    out.write_text(f"# hybrid_tuning.py pick over tuning sets\n{_toml(data)}\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", type=Path, help="tuning sets (uspd dataset eval --seed 1000-1999)")
    ap.add_argument("--weights", default="0.5,0.6,0.7,0.8", help="nn weights to try (0..1) (default: %(default)s)")
    ap.add_argument("--thresholds", default="0.3,0.35,0.4,0.45,0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9",
                    help="strict thresholds to try (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=2,
                    help="parallel processes, for the scoring and for the sweep's rows (default: %(default)s)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep the per-hop scores here (pickle) and reuse them (one cache per --config)")
    ap.add_argument("--config", default=None, help="uspd config (TOML) to run the detectors with (default: built-in)")
    ap.add_argument("--max-fa-per-h", type=float, default=None,
                    help="false-alarm budget of the rule, per hour (default: the nn's at its [presence] threshold)")
    ap.add_argument("--min-late-walk", type=float, default=None, metavar="PCT",
                    help="the rule's floor on major recall in late walk-ins, in %% (a point below it does not "
                         "qualify) (default: none)")
    ap.add_argument("--min-typing", type=float, default=None, metavar="PCT",
                    help="the rule's floor on the share of typing found, in %% (a point below it does not qualify) "
                         "(default: none)")
    ap.add_argument("--classic-gates", default="0",
                    help="classic_gate values to try, in [0, 1): where the model's score is below the gate, the model "
                         "decides alone (0 = off) (default: %(default)s)")
    ap.add_argument("--classic-floors", default="0",
                    help="classic_score_floor values to try, in [0, 1) (0 = off) (default: %(default)s)")
    ap.add_argument("--sensitive-gaps", default=None,
                    help="also try these logit gaps between the strict and the sensitive threshold (the sensitive "
                         "one applies for a while after a major movement; the [presence] gap is 1.02 by default) "
                         "(default: the [presence] gap only)")
    ap.add_argument("--debounces", default=None,
                    help="also try these [presence] debounce_hops (consecutive 50 ms hops above the threshold before "
                         "motion starts: a longer one drops brief spikes and delays every detection) (default: the "
                         "[presence] value only)")
    ap.add_argument("--distrust", default="0",
                    help="classic_distrust_s:classic_distrust_share pairs to try (s of audio >= 0, share in (0, 1]; "
                         "0 = off) (default: %(default)s)")
    ap.add_argument("--mover-trust", default="0",
                    help="mover_trust_s:mover_trust_from:mover_trust_full triples to try (s of audio >= 0, 0 <= from "
                         "< full <= 1; a model with a mover readout; 0 = off) (default: %(default)s)")
    ap.add_argument("--write-config", type=Path, default=None, metavar="OUT.toml",
                    help="write the pick as a whole uspd config: --config's sections with the pick's "
                         "[detector.hybrid] and [presence] values (default: print them only)")
    args = ap.parse_args()
    from uspd.detector.base import HybridConfig
    from uspd.errors import ConfigError, UspdError

    base = HybridConfig()
    try:
        distrusts = [(float(d.split(":")[0]), float(d.split(":")[1]) if ":" in d else base.classic_distrust_share)
                     for d in args.distrust.split(",")]
    except ValueError:
        ap.error("--distrust must be comma-separated S:SHARE pairs, e.g. 0,120:0.1")
    try:
        movers = [(float(m[0]), float(m[1]) if len(m) > 1 else base.mover_trust_from,
                   float(m[2]) if len(m) > 2 else base.mover_trust_full)
                  for m in (t.split(":") for t in args.mover_trust.split(","))]
    except ValueError:
        ap.error("--mover-trust must be comma-separated S[:FROM:FULL] triples, e.g. 0,2:0.5:0.9")
    try:
        floors = [float(f) for f in args.classic_floors.split(",")]
    except ValueError:
        ap.error("--classic-floors must be comma-separated numbers")
    try:
        gates = [float(c) for c in args.classic_gates.split(",")]
    except ValueError:
        ap.error("--classic-gates must be comma-separated numbers")
    try:  # the [detector.hybrid] bounds themselves
        for f, c in ((f, c) for f in floors for c in gates):
            for (d, share), (ms, mf, mfull) in ((d, m) for d in distrusts for m in movers):
                HybridConfig(classic_score_floor=f, classic_gate=c, classic_distrust_s=d, classic_distrust_share=share,
                             mover_trust_s=ms, mover_trust_from=mf,
                             mover_trust_full=mfull).validate("[detector.hybrid]")
    except ConfigError as exc:
        ap.error(str(exc))
    try:
        gaps = None if args.sensitive_gaps is None else [float(g) for g in args.sensitive_gaps.split(",")]
    except ValueError:
        ap.error("--sensitive-gaps must be comma-separated numbers")
    if gaps is not None and not all(0.0 <= g < 20.0 for g in gaps):
        ap.error("--sensitive-gaps must be logit gaps >= 0 (and < 20)")
    try:
        debounces = None if args.debounces is None else [int(h) for h in args.debounces.split(",")]
    except ValueError:
        ap.error("--debounces must be comma-separated whole numbers of hops")
    if debounces is not None and not all(1 <= h <= 200 for h in debounces):
        ap.error("--debounces must be between 1 and 200 hops")
    if args.write_config is not None and not args.write_config.parent.is_dir():
        ap.error(f"--write-config: folder {args.write_config.parent} does not exist")
    if args.max_fa_per_h is not None and not 0.0 <= args.max_fa_per_h < float("inf"):
        ap.error("--max-fa-per-h must be a finite number >= 0")
    if args.min_late_walk is not None and not 0.0 <= args.min_late_walk <= 100.0:
        ap.error("--min-late-walk must be a percentage in [0, 100]")
    if args.min_typing is not None and not 0.0 <= args.min_typing <= 100.0:
        ap.error("--min-typing must be a percentage in [0, 100]")
    from scipy.special import logit

    from uspd.config import load_config
    from uspd.detector.neural import calibration_offset
    from uspd.evaluate.parallel import imap_progress

    try:
        weights = [float(w) for w in args.weights.split(",")]
        thresholds = [float(t) for t in args.thresholds.split(",")]
    except ValueError:
        ap.error("--weights and --thresholds must be comma-separated numbers")
    if not all(0.0 <= w <= 1.0 for w in weights) or not all(0.0 < t < 1.0 for t in thresholds):
        ap.error("--weights must be in [0, 1] and --thresholds in (0, 1)")
    config = load_config(args.config)
    presence = config.presence
    base_gap = float(logit(presence.threshold) - logit(presence.sensitive_threshold))
    gap_list = [base_gap] if gaps is None else gaps
    debounce_list = [presence.debounce_hops] if debounces is None else debounces
    use_mover = any(m[0] > 0 for m in movers)
    if use_mover:  # before the long run: the model must have a readout
        from uspd.detector.neural import load_manifest, shipped_model_path

        model = config.detector.model or shipped_model_path()
        if "mover_readout" not in load_manifest(Path(model)):
            ap.error(f"--mover-trust: {model} has no mover readout (uspd train --mover-readout --out MODEL --data ...)")
    clips = detector_clips(args.dirs, args.workers, args.cache, args.config)
    if args.min_late_walk is not None and not any(c.labels.extra.get("set_kind") == "late_walk" and
                                                  c.labels.of_kind("major") for c in clips["nn"]):
        raise UspdError("--min-late-walk: the sets have no late walk-ins (late_walk clips)")
    if args.min_typing is not None and not any(iv.action == "typing" for c in clips["nn"]
                                               for iv in c.labels.of_kind("minor")):
        raise UspdError("--min-typing: the sets have no typing (minor movements whose action is typing)")
    audio_h = sum(c.audio_s for c in clips["nn"]) / 3600.0
    print(f"{len(clips['nn'])} recordings, {audio_h:.2f} h of audio in {', '.join(map(str, args.dirs))}")
    print("per threshold: FA/h, major recall %, in late_walk clips %, from 30 s %, typing found %")
    if use_mover and any(c.mover is None for c in clips["nn"]):
        raise UspdError("--mover-trust: the model has no mover readout (uspd train --mover-readout --out MODEL "
                        "--data ...), or --cache holds scores from before it had one")

    if all(c.mover is not None for c in clips["nn"]):
        import numpy as np

        from uspd.detector.hybrid import CLASSIC_FIRES, NN_QUIET

        groups = "; ".join(f"{k} {np.percentile(v, 25):.2f} / {np.median(v):.2f} / {np.percentile(v, 75):.2f} "
                           f"({len(v)} hops)" for k, v in mover_where_classic_fires_alone(clips).items() if v)
        print(f"mover evidence where the classic detector fires alone (classic > {CLASSIC_FIRES:g}, model < "
              f"{NN_QUIET:g}), percentiles 25 / 50 / 75: {groups}")

    def label(w: float, f: float, c: float, d: tuple[float, float], m: tuple[float, float, float], g: float,
              h: int) -> str:
        return (f"hybrid w={w:g}" + (f" f={f:g}" if f > 0 else "") + (f" c={c:g}" if c > 0 else "")
                + (f" d={d[0]:g}:{d[1]:g}" if d[0] > 0 else "")
                + (f" m={m[0]:g}:{m[1]:g}:{m[2]:g}" if m[0] > 0 else "") + (f" g={g:g}" if gaps else "")
                + (f" db={h}" if debounces else ""))

    grid = [(w, f, c, d, m) for w in weights for f in floors for c in gates for d in distrusts for m in movers]
    width = max([19] + [len(label(*point_, g, h)) for point_ in grid for g in gap_list for h in debounce_list])
    print(f"{'detector':{width}s} " + " | ".join(f"{t:^32.2f}" for t in thresholds))
    tasks: list[tuple] = [("nn", "nn", 0.0, None), ("classic", "classic", 0.0, None)]
    names: dict[str, tuple] = {}
    for w, f, c, d, m in grid:
        hybrid = HybridConfig(nn_weight=w, score_logit_offset=0.0, classic_score_floor=f, classic_gate=c,
                              classic_distrust_s=d[0], classic_distrust_share=d[1], mover_trust_s=m[0],
                              mover_trust_from=m[1], mover_trust_full=m[2])
        for g in gap_list:
            for h in debounce_list:
                name = label(w, f, c, d, m, g, h)
                names[name] = (w, f, c, d, m, g, h)
                tasks.append((name, hybrid, g, h))
    done = dict(imap_progress(grid_row, tasks, args.workers, grid_init, (clips, presence, thresholds), desc="grid",
                              unit="row"))
    rows: dict[str, list[dict]] = {task[0]: done[task[0]] for task in tasks}
    for name, pts in rows.items():
        print(f"{name:{width}s} " + " | ".join(_fmt(p) for p in pts), flush=True)
    ref = point(clips["nn"], presence, presence.threshold)
    print(f"negative time {ref['negative_h']:.2f} h; nn alarms at its threshold: {ref['alarms']}")
    budget = ref["fa_per_h"] if args.max_fa_per_h is None else args.max_fa_per_h
    min_late = -1.0 if args.min_late_walk is None else args.min_late_walk / 100.0 - 1e-9
    min_typing = -1.0 if args.min_typing is None else args.min_typing / 100.0 - 1e-9
    ok = [(names[n], p) for n in names for p in rows[n]
          if p["fa_per_h"] <= budget + 1e-9 and (p["late_walk"] or 0.0) >= min_late
          and (p["typing"] or 0.0) >= min_typing]
    constraints = ([] if args.min_late_walk is None else [f"late walk-ins >= {args.min_late_walk:g} %"]) + (
        [] if args.min_typing is None else [f"typing >= {args.min_typing:g} %"])
    if not ok:
        print(f"no hybrid point raises at most {budget:.2f} FA/h"
              + (f" with {', '.join(constraints)}" if constraints else ""))
        return 0
    (w, floor, gate, (dist_s, share), mover, gap, debounce), best = max(
        ok, key=lambda wp: (wp[1]["major"], wp[1]["late_walk"] or 0.0, wp[1]["threshold"]))
    offset = calibration_offset(best["threshold"], presence.threshold)
    print(f"\nnn at its threshold {presence.threshold:g}: {_fmt(ref)}; budget {budget:.2f} FA/h"
          + "".join(f", {c}" for c in constraints))
    print(f"chosen: w = {w:g}, classic floor {floor:g}" + (f", classic gate {gate:g}" if gate > 0 else "")
          + f", distrust {dist_s:g} s / {share:g}"
          + (f", mover trust {mover[0]:g} s from {mover[1]:g} to {mover[2]:g}" if mover[0] > 0 else "")
          + (f", sensitive gap {gap:g}" if gaps else "") + (f", debounce {debounce} hops" if debounces else "")
          + f" at {best['threshold']:g}: {_fmt(best)}; median major delay {_fmt_delay(best)}")
    print(f"its false alarms during confusers: {_fmt_confusers(best)}")
    print(f"people who stay beyond 5 m detected (lower is better): the pick {_fmt_far(best)}, nn at its threshold "
          f"{_fmt_far(ref)}")
    if best["threshold"] == min(thresholds):
        print(f"note: the pick is at the lowest threshold tried ({best['threshold']:g}); a lower one may find more "
              "within the budget (--thresholds)")
    hybrid = {"nn_weight": w, "score_logit_offset": round(offset, 4), "classic_score_floor": floor}
    if gate > 0:
        hybrid |= {"classic_gate": gate}
    if dist_s > 0:
        hybrid |= {"classic_distrust_s": dist_s, "classic_distrust_share": share}
    if mover[0] > 0:
        hybrid |= {"mover_trust_s": mover[0], "mover_trust_from": mover[1], "mover_trust_full": mover[2]}
    chosen_presence = {"sensitive_threshold": round(with_gap(presence, gap).sensitive_threshold, 4)} if gaps else {}
    if debounces:
        chosen_presence["debounce_hops"] = debounce
    print(_toml({"detector": {"hybrid": hybrid}} | ({"presence": chosen_presence} if chosen_presence else {})))
    if args.write_config is not None:
        write_pick(args.write_config, args.config, hybrid, chosen_presence)
        print(f"wrote {args.write_config}")
    return 0


if __name__ == "__main__":
    from uspd.errors import UspdError

    try:
        sys.exit(main())
    except UspdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
