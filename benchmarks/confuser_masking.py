"""How much do confusers hide people? Every tuning-set recording in which a person moves while a confuser runs (a
fan, curtain, HVAC, pet, keys, music, a vacuum, a door) is rendered a second time from its labels' resolved scene
with the people alone (``uspd.simulate.scene.people_alone``): each confuser's mover is replaced by a silent
placeholder (a still point at -300 dB), so every mover keeps its seeded details and the people walk exactly the same
paths; music is switched off; room, device, noise and seed stay. The classic, neural and hybrid detectors (each at
the ``[presence]`` thresholds; the hybrid with the config's ``[detector.hybrid]`` table) run on both versions, and
every major and minor movement is counted as found with the people alone and as recorded, grouped by the confuser
active from ``--confuser-window-s`` before the movement to its end (a movement beside two confusers counts in both
rows).

A movement found alone but missed as recorded is *masked* by the confuser; one missed alone is too weak for the
detector anyway. Movements of the same recordings with no confuser near are the control: both versions should
agree there.

    python benchmarks/confuser_masking.py /tmp/tune1021 /tmp/tune1022 --alone-dir /tmp/alone \
        [--cache C.pkl] [--alone-cache A.pkl] [--config C.toml] [--workers 2]

``--cache``: the per-hop scores of the recordings as made (the same pickle as ``hybrid_tuning.py --cache``);
``--alone-cache``: the same for the people-alone renderings. Renderings already in ``--alone-dir`` are kept.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path


def _render(task: tuple[str, str]) -> tuple[str, str | None]:
    """Render the people-alone version of recording ``src`` to ``dst`` (labels carry the original's extra)."""
    from uspd.errors import UspdError
    from uspd.recording import read_labels, write_labels
    from uspd.simulate.render import render_to_file
    from uspd.simulate.scene import people_alone

    src, dst = task
    try:
        labels = read_labels(src)
        scene = labels.extra.get("scene") if labels is not None else None
        if not scene:
            return src, f"{src}: its labels hold no resolved scene (not made by uspd's simulator)"
        tmp = Path(dst).parent / ".tmp" / Path(dst).name
        tmp.parent.mkdir(parents=True, exist_ok=True)
        render_to_file(people_alone(scene), int(scene["seed"]), tmp, progress=False)
        alone = read_labels(tmp)
        alone.extra.update({k: v for k, v in labels.extra.items() if k != "scene"})
        write_labels(tmp, alone)
        for p in sorted(tmp.parent.glob(tmp.stem + ".*"), key=lambda p: p.name.endswith(".labels.json")):
            p.replace(Path(dst).parent / p.name)  # labels last: their presence marks a complete clip
        return src, None
    except UspdError as exc:
        return src, str(exc)


def found_by_movement(clips: list, presence, kind: str, key_of) -> dict[tuple, bool]:
    """{(clip key, kind, start_s in ms): found} for every ``kind`` movement of ``clips`` at ``presence``."""
    from uspd.evaluate.metrics import MetricsConfig, interval_recall
    from uspd.evaluate.runner import rescore

    mcfg = MetricsConfig()
    out = {}
    for c in clips:
        for iv, delay in interval_recall([rescore(c, presence)], mcfg, kind):
            out[(key_of(c), kind, round(1000 * iv.start_s))] = delay is not None
    return out


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hybrid_tuning import detector_clips, fused_clips
    from late_walk_context import context_parser, parse_context_args

    ap = context_parser(__doc__)
    ap.add_argument("--alone-dir", type=Path, required=True, help="where the people-alone renderings go (kept)")
    ap.add_argument("--alone-cache", type=Path, default=None, help="per-hop scores of the renderings (pickle)")
    args = parse_context_args(ap)

    from uspd.config import load_config
    from uspd.errors import UspdError
    from uspd.evaluate.metrics import confusers_near
    from uspd.evaluate.parallel import imap_progress, single_thread_math

    try:
        cfg = load_config(args.config)
        made = detector_clips(args.dirs, args.workers, args.cache, args.config)
        window = args.confuser_window_s
        chosen = [c for c in made["nn"] if c.labels.of_kind("major", "minor")
                  and any(confusers_near(c.labels, iv, window) for iv in c.labels.of_kind("major", "minor"))]
        if not chosen:
            print("no recordings with a person moving beside a confuser in these sets")
            return 0

        def alone_path(c) -> Path:
            root = next(d for d in args.dirs if Path(c.name).resolve().is_relative_to(d.resolve()))
            rel = Path(c.name).resolve().relative_to(root.resolve())
            return args.alone_dir / f"seed{c.labels.extra.get('dataset_seed')}" / rel

        alone_of = {c.name: alone_path(c) for c in chosen}
        todo = [(name, str(p)) for name, p in alone_of.items() if not p.with_name(p.stem + ".labels.json").exists()]
        for p in {Path(d).parent for _, d in todo}:
            p.mkdir(parents=True, exist_ok=True)
        for src, err in imap_progress(_render, todo, args.workers, single_thread_math, desc="people alone",
                                      initial=len(chosen) - len(todo), total=len(chosen)):
            if err:
                raise UspdError(err)
        alone = detector_clips([args.alone_dir], args.workers, args.alone_cache, args.config)
    except UspdError as exc:
        print(f"confuser_masking.py: error: {exc}", file=sys.stderr)
        return 2

    runs_made = {"classic": made["classic"], "nn": made["nn"], "hybrid": fused_clips(made, cfg.detector.hybrid)}
    runs_made = {k: [c for c in v if c.name in alone_of] for k, v in runs_made.items()}
    runs_alone = {"classic": alone["classic"], "nn": alone["nn"], "hybrid": fused_clips(alone, cfg.detector.hybrid)}
    made_key = lambda c: str(alone_of[c.name].resolve())  # noqa: E731
    alone_key = lambda c: str(Path(c.name).resolve())  # noqa: E731
    print(f"{len(chosen)} recordings of {', '.join(map(str, args.dirs))} with a person moving beside a confuser "
          f"(within {window:g} s); movements found at the [presence] thresholds (hybrid: nn_weight "
          f"{cfg.detector.hybrid.nn_weight:g}), people alone -> as recorded")
    for kind in ("major", "minor"):
        groups: dict[str, list[tuple]] = defaultdict(list)
        for c in runs_made["nn"]:
            for iv in c.labels.of_kind(kind):
                key = (made_key(c), kind, round(1000 * iv.start_s))
                near = confusers_near(c.labels, iv, window)
                for g in near or ["(none: control)"]:
                    groups[g].append(key)
                if near:
                    groups["all beside a confuser"].append(key)
        if not groups:
            continue
        found = {det: (found_by_movement(runs_alone[det], cfg.presence, kind, alone_key),
                       found_by_movement(runs_made[det], cfg.presence, kind, made_key)) for det in runs_made}
        print(f"\n{kind} movements        n  " + "".join(f"{det + ' alone -> recorded (masked)':>36s}"
                                                       for det in runs_made))
        order = sorted((g for g in groups if not g.startswith(("all", "("))), key=lambda g: -len(groups[g]))
        for g in order + [g for g in ("all beside a confuser", "(none: control)") if g in groups]:
            keys = [k for k in groups[g] if all(k in found[det][0] for det in found)]
            cells = []
            for det in runs_made:
                a, m = found[det]
                n_alone = sum(a[k] for k in keys)
                n_made = sum(m[k] for k in keys)
                masked = sum(a[k] and not m[k] for k in keys)
                n = max(len(keys), 1)
                cells.append(f"{100 * n_alone / n:13.1f} -> {100 * n_made / n:5.1f} % ({masked:3d})")
            print(f"{g:22s} {len(keys):4d}  " + "".join(f"{c:>36s}" for c in cells))
            if len(keys) < len(groups[g]):
                print(f"  ({len(groups[g]) - len(keys)} movements not matched in the renderings, left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
