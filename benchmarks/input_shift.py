"""Which of the neural detector's inputs differ between two sets' walkers, and which difference costs it its score.

The model finds fewer than half of the second simulator's walkers in rooms where nothing else moves, where the
classic detector finds nearly all of them (``second_simulator.py``'s breakdown). This script runs each set's walk
clips through the live path (front end, ``NeuralDetector``) and keeps the model's inputs per hop, grouped as the
network sees them after its per-band normalisation (``in_mean_db`` / ``in_std_db`` of the float model):

- ``level`` / ``rise``: each band's level re carrier and its rise above the slow background, averaged over the
  channels (carriers x mics), and ``level spread`` / ``rise spread``: their standard deviation over the channels
  (the inter-mic cue);
- ``echo level`` / ``echo rise``: the same of the echo input (Doppler power not common to all mics).

It compares two kinds of hop per set: a walker moving within ``--near`` m while no confuser, pet or other person is
labelled ("walker"), and hops with nothing labelled at all ("still"). For each group it prints the mean over bands of
(set - reference) in normalised units and the band where they differ most, then the model's score on the walker hops.
Then, to see which difference matters, it runs the model again on each set's walk clips with one group moved by the
reference's mean walker-minus-set difference per band (a diagnosis: it uses the labels, it is not a detector), and
prints the share of walker hops the model scores above ``--threshold``. ``--level-db`` runs the model on every set's
walk clips with all level inputs raised by each given dB (a device that hears every echo louder re its carrier, as
a quieter direct path would make it), which asks how much of a set's loss is the level alone. Last, per set, the
band level's mean over bands and channels on walker and still hops, in dB re the carrier and re the room's Doppler
floor (``floor_levels``; what ``uspd train --level-floor`` feeds): how far a set's echoes differ by each reference.

    python benchmarks/input_shift.py REF_DIR SET_DIR [SET_DIR ...] [--config C.toml] [--workers 2] [--near 3]
        [--limit N] [--level-db -6,6,10] [--plot OUT.png]

Each DIR is a set with a ``walk`` folder (``uspd dataset eval``, ``second_simulator.py --out``); the first is the
reference. The normalisation constants are read from the float ONNX graph beside the model (the ``onnx`` package,
installed with the train extra).
"""
from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path

import numpy as np

GROUPS = ("level", "rise", "level spread", "rise spread", "echo level", "echo rise")


def _recorder(model_path):
    from uspd.detector.neural import NeuralDetector

    class InputRecorder(NeuralDetector):
        """The shipped/configured model; keeps hop times, model inputs and calibrated scores of every hop."""

        def __init__(self, path):
            super().__init__(model_path=path)
            self.t, self.x, self.e, self.s = [], [], [], []

        def process(self, frames):
            self.t.append(np.asarray(frames.t_s))
            return super().process(frames)

        def process_features(self, feats, echo=None):
            out = super().process_features(feats, echo)
            self.x.append(np.array(feats))
            self.e.append(None if echo is None else np.array(echo))
            self.s.append(np.array(out.score))
            return out

    return InputRecorder(model_path)


def hop_groups(x: np.ndarray, e: np.ndarray, mean: np.ndarray, std: np.ndarray, e_mean: np.ndarray,
               e_std: np.ndarray) -> np.ndarray:
    """Model inputs x (F, C, 2B), echo inputs e (F, 2B), normalised as the network does -> groups (F, 6, B) in
    :data:`GROUPS` order."""
    z = (x - mean) / std
    ze = (e - e_mean) / e_std
    b = x.shape[-1] // 2
    return np.stack([z[:, :, :b].mean(1), z[:, :, b:].mean(1), z[:, :, :b].std(1), z[:, :, b:].std(1),
                     ze[:, :b], ze[:, b:]], axis=1).astype(np.float32)


def floor_levels(x: np.ndarray) -> np.ndarray:
    """Model inputs x (F, C, 2B) = [band level, its rise above the slow background] -> (F, 2) dB per hop: the level
    averaged over bands and channels, re the carrier and re the room's Doppler floor (the median over the bands of the
    background, level - rise), as ``uspd train --level-floor`` feeds it. A device's drive or coupling moves the first,
    not the second. For a model trained with ``--level-floor`` both columns are re the floor."""
    b = x.shape[-1] // 2
    level = x[:, :, :b].astype(np.float64)
    background = level - x[:, :, b:]
    floor = np.median(background, axis=2, keepdims=True)
    return np.stack([level.mean(axis=(1, 2)), (level - floor).mean(axis=(1, 2))], axis=1)


@functools.lru_cache(maxsize=4)
def model_norms(model_path: Path) -> dict[str, np.ndarray]:
    """The network's per-band normalisation constants, read from the float ONNX graph's initialisers (once per
    process and model)."""
    import onnx
    from onnx import numpy_helper

    float_path = model_path.with_name(model_path.name.replace(".onnx", ".float.onnx"))
    graph = onnx.load(str(float_path if float_path.exists() else model_path)).graph
    vals = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    out = {}
    for key in ("in_mean_db", "in_std_db", "echo_mean_db", "echo_std_db"):
        hit = [v for k, v in vals.items() if k.endswith(key)]
        if len(hit) != 1:
            raise SystemExit(f"input_shift.py: {model_path}: cannot find {key} in the graph")
        out[key] = hit[0].astype(np.float32)
    return out


def select_hops(labels, t_s: np.ndarray, near_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(walker hops, still hops) as bool (F,): a major movement within near_m with nothing else labelled; nothing
    labelled at all."""
    from uspd.train.labels import MAJOR, NONE, hop_labels

    h = hop_labels(labels, t_s)
    quiet = (h["confusers"] == 0) & ~h["pet"] & ~h["far"]
    walker = quiet & (h["motion"] == MAJOR) & ~h["edge"] & ~h["presence"] & (h["distance_m"] <= near_m)
    still = quiet & (h["motion"] == NONE) & ~h["presence"]
    return walker, still


def clip_task(task: tuple) -> dict | None:
    """One walk clip -> its walker and still hops' groups and scores, for each shift (None: no walker hop)."""
    wav, model_path, config_path, near_m, shifts, level_db = task
    from uspd.config import load_config
    from uspd.pipeline import run_file
    from uspd.recording.labels import read_labels

    norms = model_norms(Path(model_path))
    rec = _recorder(model_path)
    run_file(wav, load_config(config_path), rec)
    t = np.concatenate(rec.t)
    x, e, s = np.concatenate(rec.x), np.concatenate(rec.e), np.concatenate(rec.s)
    labels = read_labels(wav)
    if labels is None:
        return None
    walker, still = select_hops(labels, t, near_m)
    if not walker.any():
        return None
    g = hop_groups(x, e, norms["in_mean_db"], norms["in_std_db"], norms["echo_mean_db"], norms["echo_std_db"])
    levels = floor_levels(x)
    out = {"walker": g[walker], "still": g[still], "score": s[walker], "shifted": {}, "level_db": {},
           "db_walker": levels[walker], "db_still": levels[still]}
    b = x.shape[-1] // 2
    for db in level_db:  # every level input (each channel's and the echo input's) raised by db
        xs, es = x.copy(), e.copy()
        xs[:, :, :b] += db
        es[:, :b] += db
        rec.reset()
        out["level_db"][db] = rec.process_features(xs, es).score[walker]
    for name, delta in shifts.items():  # delta (6, B) in normalised units, added to one group
        k = GROUPS.index(name)
        xs, es = x.copy(), e.copy()
        d = delta[k] * {0: norms["in_std_db"][:b], 1: norms["in_std_db"][b:], 4: norms["echo_std_db"][:b],
                        5: norms["echo_std_db"][b:]}.get(k, 1.0)
        if k == 0:
            xs[:, :, :b] += d
        elif k == 1:
            xs[:, :, b:] += d
        elif k == 4:
            es[:, :b] += d
        elif k == 5:
            es[:, b:] += d
        else:  # a spread: scale each channel's deviation from the channel mean so the spread moves by delta
            part = slice(0, b) if k == 2 else slice(b, 2 * b)
            std = norms["in_std_db"][part]
            m = xs[:, :, part].mean(1, keepdims=True)
            cur = (xs[:, :, part] / std).std(1, keepdims=True) + 1e-6
            xs[:, :, part] = m + (xs[:, :, part] - m) * np.maximum(cur + delta[k], 0.0) / cur
        rec.reset()
        out["shifted"][name] = rec.process_features(xs, es).score[walker]
    return out


def run_set(folder: Path, model_path: str, config_path: str | None, near_m: float, shifts: dict, workers: int,
            limit: int | None, level_db: tuple[float, ...] = ()) -> dict:
    from uspd.evaluate.runner import find_recordings

    wavs = find_recordings(folder / "walk")[:limit]  # main() has refused sets without walk recordings
    tasks = [(str(w), model_path, config_path, near_m, shifts, level_db) for w in wavs]
    from tqdm import tqdm

    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            parts = list(tqdm(pool.imap(clip_task, tasks), total=len(tasks), desc=folder.name, unit="clip"))
    else:
        parts = [clip_task(t) for t in tqdm(tasks, desc=folder.name, unit="clip")]
    parts = [p for p in parts if p is not None]
    return {"clips": len(parts),
            "walker": np.concatenate([p["walker"] for p in parts]),
            "still": np.concatenate([p["still"] for p in parts]),
            "score": np.concatenate([p["score"] for p in parts]),
            "db_walker": np.concatenate([p["db_walker"] for p in parts]),
            "db_still": np.concatenate([p["db_still"] for p in parts]),
            "shifted": {k: np.concatenate([p["shifted"][k] for p in parts]) for k in shifts},
            "level_db": {k: np.concatenate([p["level_db"][k] for p in parts]) for k in level_db}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("sets", nargs="+", type=Path, help="REF_DIR then one or more SET_DIR, each with a walk folder")
    ap.add_argument("--config", default=None, help="uspd config TOML ([detector] model); default: the shipped model")
    ap.add_argument("--workers", type=int, default=2, help="processes")
    ap.add_argument("--near", type=float, default=3.0, help="walker hops: closest distance at most this (m)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many walk clips per set")
    ap.add_argument("--threshold", type=float, default=0.6, help="score counted as 'seen' on a walker hop")
    ap.add_argument("--level-db", default="", metavar="DB,...",
                    help="also run the model with every level input raised by each of these dB (e.g. -6,6,10: a "
                         "device that hears every Doppler band that much louder re its carrier) and print the share "
                         "of walker hops seen, per set")
    ap.add_argument("--plot", default=None, help="write the groups' band profiles (PNG) here")
    args = ap.parse_args(argv)
    if len(args.sets) < 2:
        ap.error("give a reference set and at least one other set")
    if args.limit is not None and args.limit < 1:
        ap.error(f"--limit {args.limit}: must be at least 1")
    try:
        level_db = tuple(float(v) for v in args.level_db.split(",") if v.strip())
    except ValueError:
        ap.error(f"--level-db {args.level_db}: give numbers in dB, e.g. -6,6,10")
    from uspd.errors import UspdError
    from uspd.evaluate.runner import find_recordings

    for folder in args.sets:  # all refused before any set is scored
        if not (folder / "walk").is_dir():
            ap.error(f"{folder / 'walk'}: not a directory (give a set with a walk folder)")
        try:
            find_recordings(folder / "walk")
        except UspdError as exc:  # no labelled recordings there
            ap.error(str(exc))
    if args.config is not None and not Path(args.config).is_file():
        ap.error(f"--config {args.config}: no such file")
    from uspd.config import load_config
    from uspd.detector.neural import NeuralDetector, shipped_model_path

    cfg = load_config(args.config)
    model_path = str(cfg.detector.model or shipped_model_path())
    model = NeuralDetector(model_path)  # loaded once: its echo input and its features are checked here
    if not model.uses_echo:
        ap.error(f"{model_path}: a model without the echo input; this script compares the echo input too")
    ref = run_set(args.sets[0], model_path, args.config, args.near, {}, args.workers, args.limit, level_db)
    ref_w = ref["walker"].mean(0)
    print(f"reference {args.sets[0]}: {ref['clips']} clips, {len(ref['walker'])} walker hops (<= {args.near} m, "
          f"nothing else moving), {len(ref['still'])} still hops; model score > {args.threshold} on "
          f"{100 * np.mean(ref['score'] > args.threshold):.1f} % of walker hops")
    results = {}
    for folder in args.sets[1:]:
        probe = run_set(folder, model_path, args.config, args.near, {}, args.workers, args.limit)
        shifts = {name: (ref_w - probe["walker"].mean(0)) for name in GROUPS}
        res = run_set(folder, model_path, args.config, args.near, shifts, args.workers, args.limit, level_db)
        results[folder] = res
        print(f"\n{folder}: {res['clips']} clips, {len(res['walker'])} walker hops, {len(res['still'])} still hops")
        print(f"{'input group':<14} {'walker: set - ref':>18} {'(band, max)':>12} {'still: set - ref':>17} "
              f"{'walker hops seen, group moved to ref':>37}")
        for k, name in enumerate(GROUPS):
            dw = res["walker"][:, k].mean(0) - ref_w[k]
            ds = (res["still"][:, k].mean(0) - ref["still"][:, k].mean(0)).mean() if min(
                len(res["still"]), len(ref["still"])) else math.nan
            j = int(np.argmax(np.abs(dw)))
            still = "-" if math.isnan(ds) else f"{ds:+.2f}"
            print(f"{name:<14} {dw.mean():>+18.2f} {f'({j}, {dw[j]:+.2f})':>12} {still:>17} "
                  f"{100 * np.mean(res['shifted'][name] > args.threshold):>36.1f}%")
        print(f"{'(as is)':<14} {'':>18} {'':>12} {'':>17} {100 * np.mean(res['score'] > args.threshold):>36.1f}%")
    if level_db:
        print(f"\nwalker hops seen (score > {args.threshold}) with every level input raised by:")
        print(f"{'set':<30} {'as is':>7}" + "".join(f"{f'{db:+g} dB':>9}" for db in level_db))
        for folder, res in [(args.sets[0], ref), *results.items()]:
            print(f"{str(folder):<30} {100 * np.mean(res['score'] > args.threshold):>6.1f}%"
                  + "".join(f"{100 * np.mean(res['level_db'][db] > args.threshold):>8.1f}%" for db in level_db))
    re_carrier = not model.spec.level_floor  # a --level-floor model's inputs hold no level re carrier
    print("\nband level, mean over bands and channels (dB): re the carrier, and re the room's Doppler floor (the "
          "median over bands of the slow background, as --level-floor)")
    print(f"{'set':<30} {'walker re carrier':>18} {'re floor':>9} {'still re carrier':>17} {'re floor':>9}")
    for folder, res in [(args.sets[0], ref), *results.items()]:
        cells = []
        for hops in (res["db_walker"], res["db_still"]):
            carrier_db, floor_db = hops.mean(0) if len(hops) else (math.nan, math.nan)
            cells += [f"{carrier_db:.1f}" if re_carrier and np.isfinite(carrier_db) else "-",
                      f"{floor_db:.1f}" if np.isfinite(floor_db) else "-"]
        print(f"{str(folder):<30} {cells[0]:>18} {cells[1]:>9} {cells[2]:>17} {cells[3]:>9}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), sharex=True)
        for k, (ax, name) in enumerate(zip(axes.flat, GROUPS)):
            ax.plot(ref_w[k], "k-", label=f"{args.sets[0].name} walker")
            if len(ref["still"]):
                ax.plot(ref["still"][:, k].mean(0), "k:", label=f"{args.sets[0].name} still")
            for folder, res in results.items():
                line, = ax.plot(res["walker"][:, k].mean(0), "-", label=f"{folder.name} walker")
                if len(res["still"]):
                    ax.plot(res["still"][:, k].mean(0), ":", color=line.get_color(), label=f"{folder.name} still")
            ax.set_title(name)
            ax.set_ylabel("normalised input")
        for ax in axes[1]:
            ax.set_xlabel("velocity band (receding ... approaching)")
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=90)
        print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
