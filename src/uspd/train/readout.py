"""The mover readout: a logistic readout of a trained model's GRU state, "a pet or a robot vacuum moves and no person
does" (numpy + scipy; fitted on training shards only).

The model rejects pets and vacuums well (its score stays low beside them), but its score is as low when it misses a
person (a late walk-in beside a confuser), so the hybrid detector cannot tell from the score alone whether to trust
the classic detector firing there. The model's state tells them apart on training clips, less well on the tuning
sets (docs/NEURAL_DETECTOR_LOG.md, session 31). The readout is fitted on the int8 model's states over training clips
run exactly as live (:meth:`uspd.detector.neural.NeuralDetector.states`: once from the clip's first hop, once after
a minute's pre-roll of the clip) and written into the model's manifest as ``mover_readout``; the detector then gives
``Scores.mover`` and ``[detector.hybrid] mover_trust_s`` can use it.

Per-hop targets: 1 = a pet or a robot vacuum moves and no person does; 0 = a person moves (major or minor), whatever
else moves beside them; other hops and edge hops are left out. The two classes weigh the same; L2 on the weights.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from uspd.errors import UspdError
from uspd.train.labels import CONFUSER_BITS

#: What the readout's evidence says (the manifest entry's "target").
MOVER_TARGET = "a pet or a robot vacuum moves and no person does (1) / a person moves (0)"
#: L2 penalty on the readout weights (per hop-averaged loss); the states are tanh-bounded, so no scaling is needed.
L2 = 1e-3


def mover_targets(clip: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A clip's per-hop labels -> (used (F,) bool, target (F,) float: 1 = a pet or a vacuum moves and no person does,
    0 = a person moves)."""
    thing = clip["pet"] | ((clip["confusers"] & CONFUSER_BITS["vacuum"]) > 0)
    person = clip["motion"] > 0
    used = (person | thing) & ~clip["edge"]
    return used, (thing & ~person).astype(np.float64)


def fit_logistic(states: np.ndarray, target: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Class-balanced L2 logistic regression: states (N, H), target (N,) 0/1 -> (weights (H,), bias)."""
    from scipy.optimize import minimize

    y = np.asarray(target, dtype=np.float64)
    if not (0 < y.sum() < len(y)):
        raise UspdError("mover readout: the data need hops of both kinds (a pet or a vacuum alone, a person moving)")
    x = np.c_[np.asarray(states, dtype=np.float64), np.ones(len(y))]
    w = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1.0 - y.mean())) / len(y)

    def loss(b: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ b
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow
        reg = np.r_[b[:-1], 0.0]
        return float(w @ (np.logaddexp(0.0, z) - y * z) + l2 * reg @ reg), x.T @ (w * (p - y)) + 2.0 * l2 * reg

    b = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x
    return b[:-1], float(b[-1])


def fit_mover_readout(model_path: str | os.PathLike, data_dirs: list, max_clips: int = 150, seed: int = 0,
                      progress: bool = True, settled: bool = True) -> dict[str, Any]:
    """Run the model over up to ``max_clips`` clips of each training set (those with a pet, a vacuum or a person
    moving, drawn with ``seed``), fit the readout and return the manifest entry (weights, bias, what it was fitted
    on, and its balanced accuracy on those hops at 0.5). ``settled`` (default): each clip is also run a second time
    after a :data:`~uspd.train.trainer.PREWARM_S` pre-roll of itself (:func:`~uspd.train.trainer.preroll_index`), so
    the readout also sees the states of a device that has been on for a while, not only those of one just switched
    on (on the tuning sets it then tells a person from a pet better where it matters: docs/NEURAL_DETECTOR_LOG.md,
    session 31)."""
    from tqdm import tqdm

    from uspd.detector.neural import NeuralDetector
    from uspd.train.data import check_trainable, load_shards, read_manifest
    from uspd.train.trainer import PREWARM_S, preroll_index

    det = NeuralDetector(model_path)
    dirs = [Path(d) for d in data_dirs]
    for d in dirs:
        check_trainable(d, read_manifest(d))  # training sets only: never tuning or evaluation seeds
    chosen: list[dict] = []
    for i, d in enumerate(dirs):
        clips = [c for c in load_shards(d) if mover_targets(c)[0].any()]
        order = np.random.default_rng(np.random.SeedSequence([seed, i])).permutation(len(clips))
        chosen += [clips[j] for j in order[:max_clips]]
    states, targets = [], []
    n_pre = int(round(PREWARM_S / det.hop_s)) if settled else 0
    for clip in tqdm(chosen, desc="mover readout", unit="clip", disable=not progress):
        x = clip["x"].astype(np.float32)
        e = clip["e"].astype(np.float32) if "e" in clip else None
        used, target = mover_targets(clip)
        for warm in (False, True) if settled else (False,):
            det.reset()
            if warm:
                pre = preroll_index(len(x), n_pre)
                det.states(x[pre], None if e is None else e[pre])
            _, h = det.states(x, e)
            states.append(h[used])
            targets.append(target[used])
    x, y = np.concatenate(states), np.concatenate(targets)
    w, b = fit_logistic(x, y)
    pred = (x @ w + b) > 0
    balanced = 0.5 * (pred[y == 1].mean() + (~pred[y == 0]).mean())
    return {"weights": [round(float(v), 6) for v in w], "bias": round(b, 6),
            "target": MOVER_TARGET,
            "data_sets": [d.name for d in dirs], "clips": len(chosen), "max_clips_per_set": max_clips, "seed": seed,
            "settled": settled,
            "hops": {"mover": int(y.sum()), "person": int(len(y) - y.sum())},
            "balanced_accuracy_on_fit": round(float(balanced), 4)}


def trained_head_readout(net, mover_weight: float) -> dict[str, Any]:
    """The manifest entry for a network trained with the mover head (``uspd train --mover-weight``): its weights
    (hidden,) and bias, read from the float network (the detector applies them to the int8 model's state)."""
    w = net.mover.weight.detach().numpy().astype(np.float64)[0]
    return {"weights": [round(float(v), 6) for v in w], "bias": round(float(net.mover.bias.detach()[0]), 6),
            "target": MOVER_TARGET, "source": "trained with the model as a second task", "mover_weight": mover_weight}


def write_mover_readout(model_path: str | os.PathLike, entry: dict[str, Any]) -> Path:
    """Put ``entry`` into the model's manifest as ``mover_readout`` (other keys kept; written to a temporary file
    and renamed, so an interrupted write leaves the old manifest)."""
    from uspd.detector.neural import load_manifest, manifest_path

    path = manifest_path(Path(model_path))
    manifest = load_manifest(Path(model_path))
    manifest["mover_readout"] = entry
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
