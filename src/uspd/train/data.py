"""Training data: random simulated scenes rendered in memory, run through the streaming front end, saved as shards.

``build_training_set(hours, seed, out)`` writes ``out/shard_00000.npz`` ... (each about ``shard_s`` of audio) and
``out/manifest.json``. A shard holds several clips; clip ``j`` has

- ``x_j`` (F, C, B) float16: velocity-band features (:func:`uspd.detector.neural.band_features`), C = carriers x mics;
- ``e_j`` (F, K, B) float16: the same features of the front end's echo spectrum, one row per carrier
  (:func:`uspd.detector.neural.echo_band_features`; shards built before it existed lack it);
- ``t_j`` (F,) float32 s and the per-hop labels of :func:`uspd.train.labels.hop_labels` as ``<name>_j``;
- its scene spec, seed, kind, sample rate, carriers and mic count in the shard's ``meta`` JSON.

Shards are written to a temporary name and renamed, so an interrupted run resumes by skipping complete shards.
Clip seeds come from ``SeedSequence([seed, "train" tag, shard, clip])`` with ``seed`` in the training range of
:mod:`uspd.evaluate.seeds`, so they never coincide with tuning or evaluation scenes.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from uspd.detector.neural import FeatureSpec, band_features, echo_band_features
from uspd.errors import UspdError
from uspd.train.labels import hop_labels

log = logging.getLogger(__name__)

#: Mixed into every clip's SeedSequence so training scenes are a stream of their own.
SEED_TAG = 0x7472_6169  # "trai"
#: Scene kinds of :func:`uspd.simulate.scene.random_scene_spec` and their share of training clips. Hard negatives
#: (confusers without people) get a large share: they are what false alarms come from.
KIND_WEIGHTS: dict[str | None, float] = {
    "walk": 0.22, "seated": 0.2, "still": 0.05, "far": 0.05, "negative": 0.33, "music_motion": 0.12, "empty": 0.03,
}
#: Held-out condition family: device mic counts never rendered for training (reported separately in evaluation).
HELD_OUT_N_MICS = (5,)
#: Render block (s): the renderer's output does not depend on it.
BLOCK_S = 1.0
SHARD_S_DEFAULT = 300.0
LABEL_KEYS = ("motion", "action", "distance_m", "presence", "pet", "far", "confusers", "edge")


def parse_kind_weights(text: str) -> dict[str, float] | None:
    """``"walk=1,music=0.5"`` -> {"walk": 1.0, "music": 0.5}; empty -> None (the default mix)."""
    if not text.strip():
        return None
    from uspd.simulate.scene import SCENE_KINDS as known
    out: dict[str, float] = {}
    for item in text.split(","):
        name, _, w = item.partition("=")
        name = name.strip()
        try:
            weight = float(w) if w.strip() else 1.0
        except ValueError:
            raise UspdError(f"--kinds: bad weight in {item!r} (use KIND=NUMBER)") from None
        if name not in known:
            raise UspdError(f"--kinds: unknown scene kind {name!r} (known: {', '.join(sorted(known))})")
        if weight < 0:
            raise UspdError(f"--kinds: weight of {name} must not be negative")
        out[name] = weight
    if sum(out.values()) <= 0:
        raise UspdError("--kinds: the weights sum to zero")
    return out


def check_pool_seed(seed: int) -> str:
    """Role of a feature-pool seed: "train" (0-999) or "tune" (1000-1999, pools for model selection that
    ``uspd train`` refuses); any other seed is refused (see :mod:`uspd.evaluate.seeds`)."""
    from uspd.evaluate.seeds import TRAIN_SEEDS, TUNE_SEEDS, seed_role

    role = seed_role(seed)
    if role not in ("train", "tune"):
        raise UspdError(f"--seed {seed}: feature pools take training seeds {TRAIN_SEEDS.start}-{TRAIN_SEEDS.stop - 1}"
                        f" or tuning seeds {TUNE_SEEDS.start}-{TUNE_SEEDS.stop - 1}")
    return role


def read_manifest(data_dir: Path) -> dict:
    """``data_dir/manifest.json`` of a pool or mined set ({} when there is none); a corrupt one is a one-line error."""
    mpath = Path(data_dir) / "manifest.json"
    if not mpath.exists():
        return {}
    try:
        return json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UspdError(f"{mpath}: not a readable manifest ({exc})") from None


def pool_role(manifest: dict) -> str:
    """Seed role ("train", "tune", ...) of a pool, or of the pool a set was mined from; "unknown" without a seed."""
    from uspd.evaluate.seeds import seed_role

    seed = manifest.get("seed")
    return "unknown" if seed is None else seed_role(int(seed))


def check_trainable(data_dir: Path, manifest: dict) -> None:
    """Refuse a pool (or a set mined from one) whose manifest seed is not a training seed."""
    from uspd.evaluate.seeds import TRAIN_SEEDS

    role = pool_role(manifest)
    if role not in ("train", "unknown"):
        raise UspdError(f"{data_dir}: built from seed {manifest['seed']}, a {role} seed; only training seeds "
                        f"({TRAIN_SEEDS.start}-{TRAIN_SEEDS.stop - 1}) may be trained on")


def clip_rng(seed: int, shard: int, clip: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), SEED_TAG, int(shard), int(clip)]))


def spec_n_mics(spec: dict) -> int | None:
    """Mic count of a scene spec if it states one (device.n_mics or a mic position list)."""
    dev = spec.get("device", {}) if isinstance(spec, dict) else {}
    if isinstance(dev, dict):
        if "n_mics" in dev:
            return int(dev["n_mics"])
        for key in ("mic_positions_m", "mics"):
            if isinstance(dev.get(key), list):
                return len(dev[key])
    return None


def sample_training_spec(rng: np.random.Generator, kind_weights: dict | None = None,
                         clip_s: float | None = None) -> tuple[str | None, dict]:
    """One training scene spec: a kind drawn from ``kind_weights``, re-drawn while it falls in the held-out family.
    ``clip_s``: clip duration (s), None = the sampler's default per kind."""
    from uspd.simulate.scene import random_scene_spec

    weights = kind_weights or KIND_WEIGHTS
    kinds = list(weights)
    p = np.array([weights[k] for k in kinds], dtype=np.float64)
    kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
    for _ in range(50):
        spec = random_scene_spec(rng, kind, duration_s=clip_s)
        if spec_n_mics(spec) not in HELD_OUT_N_MICS:
            return kind, spec
    raise UspdError("training data: the scene sampler keeps drawing held-out mic counts")


def clip_features(spec: dict, seed: int, feature_spec: FeatureSpec = FeatureSpec(), frontend_config=None,
                  max_duration_s: float | None = None) -> dict[str, Any]:
    """Render ``spec`` (seed ``seed``) in memory, run the streaming front end, return features and per-hop labels.

    Returns {"x": (F, C, B) float16 per-mic band features, "e": (F, K, B) float16 band features of the front end's
    echo power (the Doppler power not common to all mics, one row per carrier), "t": (F,) float32 s, label arrays
    (F,), "meta": dict}.
    """
    from uspd.features.frontend import DopplerFrontEnd, Frames, FrontEndConfig
    from uspd.simulate.render import SceneRenderer
    from uspd.simulate.scene import load_scene

    spec = dict(spec)
    if isinstance(spec.get("carrier_hz"), (int, float)):
        spec["carrier_hz"] = [float(spec["carrier_hz"])]  # the scene schema takes a list of tones
    scene = load_scene(spec)
    renderer = SceneRenderer(scene, seed)
    fs = int(renderer.sample_rate)
    carriers = list(renderer.sidecar.carrier_hz)
    cfg = frontend_config or FrontEndConfig()
    fe = DopplerFrontEnd(fs, carriers, renderer.n_mics, cfg)
    duration = float(renderer.duration_s)
    if max_duration_s is not None:
        duration = min(duration, max_duration_s)
    if not math.isfinite(duration):
        raise UspdError("training data: scene has no finite duration")
    n_total = int(round(duration * fs))
    block = int(BLOCK_S * fs)
    frames = []
    done = 0
    while done < n_total:
        n = min(block, n_total - done)
        mics, _ = renderer.render(n)
        frames.append(fe.process(mics))
        done += n
    fr = Frames.concat(frames)
    x = band_features(fr.spectra_db, fr.freqs_hz, carriers, feature_spec).astype(np.float16)
    e = echo_band_features(fr.echo_db, fr.freqs_hz, carriers, feature_spec).astype(np.float16)
    window_s = float(getattr(cfg, "window_s", 0.1))
    lab = hop_labels(renderer.labels, fr.t_s, window_s=window_s)
    meta = {"seed": int(seed), "sample_rate": fs, "carriers_hz": carriers, "n_mics": int(renderer.n_mics),
            "duration_s": duration, "n_hops": int(x.shape[0]), "confusers": renderer.labels.confusers(),
            "spec": _jsonable(spec)}
    return {"x": x, "e": e, "t": np.asarray(fr.t_s, np.float32), **lab, "meta": meta}


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def shard_path(out: Path, index: int) -> Path:
    return Path(out) / f"shard_{index:05d}.npz"


def build_shard(job: tuple) -> tuple[int, float]:
    """Render shard ``index`` (about ``shard_s`` of audio) and write it atomically. Returns (index, audio s)."""
    out, seed, index, shard_s, feature_spec, kind_weights, clip_s, factors = job
    path = shard_path(out, index)
    if path.exists():
        return index, 0.0
    arrays: dict[str, np.ndarray] = {}
    metas = []
    total = 0.0
    j = 0
    from uspd.simulate.scene import with_scene_factors
    while total < shard_s:
        rng = clip_rng(seed, index, j)
        kind, spec = sample_training_spec(rng, kind_weights, clip_s)
        render_seed = int(rng.integers(0, 2**31 - 1))
        spec = with_scene_factors(spec, render_seed, **factors)  # every other detail as without them
        clip = clip_features(spec, render_seed, feature_spec)
        meta = clip.pop("meta")
        meta["kind"] = kind
        for k, v in clip.items():
            arrays[f"{k}_{j}"] = v
        metas.append(meta)
        total += meta["duration_s"]
        j += 1
    arrays["meta"] = np.array(json.dumps(metas))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return index, total


def _worker_init() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def build_training_set(hours: float, seed: int, out: str | os.PathLike, workers: int = 1,
                       shard_s: float = SHARD_S_DEFAULT, progress: bool = True,
                       feature_spec: FeatureSpec = FeatureSpec(), kind_weights: dict | None = None,
                       clip_s: float | None = None, reflection: tuple[float, float] | None = None,
                       speaker_radius_mm: tuple[float, float] | None = None,
                       coupling_db: tuple[float, float] | None = None,
                       swing_share: tuple[float, float] | None = None) -> Path:
    """Write ``ceil(hours * 3600 / shard_s)`` shards to ``out`` (skipping complete ones) and a manifest.
    ``kind_weights``: scene kind -> share (default :data:`KIND_WEIGHTS`); ``clip_s``: clip length (s) or None;
    ``reflection``: (lo, hi) range of the walls' amplitude reflection coefficients, None = the simulator's own
    (:data:`uspd.simulate.scene.WALL_REFLECTION_RANGE`); ``speaker_radius_mm``: (lo, hi) range of the loudspeaker's
    piston radius, None = a point source; ``coupling_db``: (lo, hi) range of the direct coupling, None = free field;
    ``swing_share``: (lo, hi) range of each person's stance/swing gait, None = feet swinging sinusoidally."""
    from tqdm import tqdm

    if hours <= 0:
        raise UspdError(f"--hours {hours}: must be positive")
    if workers < 1:
        raise UspdError(f"--workers {workers}: must be at least 1")
    from uspd.simulate.scene import check_scene_factors

    # one shared clock (no clock offset): the front end follows an offset
    factors = check_scene_factors(reflection=reflection, speaker_radius_mm=speaker_radius_mm,
                                  coupling_db=coupling_db, swing_share=swing_share)
    role = check_pool_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_shards = max(1, math.ceil(hours * 3600.0 / shard_s))
    manifest = {"hours": hours, "seed": seed, "role": role, "shard_s": shard_s, "n_shards": n_shards, "seed_tag": SEED_TAG,
                "features": feature_spec.to_dict(), "kind_weights": {str(k): v for k, v in
                                                                     (kind_weights or KIND_WEIGHTS).items()},
                "held_out_n_mics": list(HELD_OUT_N_MICS), "clip_s": clip_s,
                **{k: None if factors[k] is None else list(factors[k])
                   for k in ("reflection", "speaker_radius_mm", "coupling_db")},
                **({} if factors["swing_share"] is None else {"swing_share": list(factors["swing_share"])}),
                "command": "uspd " + " ".join(sys.argv[1:]) if "dataset" in sys.argv[1:] else ""}
    mpath = out / "manifest.json"
    if mpath.exists():
        old = json.loads(mpath.read_text(encoding="utf-8"))
        keep = ("seed", "shard_s", "features", "kind_weights", "clip_s", "reflection", "speaker_radius_mm",
                "coupling_db", "swing_share")
        if any(old.get(k) != manifest.get(k) for k in keep):
            raise UspdError(f"{mpath}: existing data set was built with other settings (seed/shard/features/kinds/"
                            "clip length/reflection/speaker radius/coupling/gait); use another --out")
    mpath.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    todo = [i for i in range(n_shards) if not shard_path(out, i).exists()]
    jobs = [(out, seed, i, shard_s, feature_spec, kind_weights, clip_s, factors) for i in todo]
    bar = tqdm(total=n_shards, initial=n_shards - len(todo), unit="shard", disable=not progress,
               desc="training data")
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            build_shard(job)
            bar.update(1)
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, initializer=_worker_init) as pool:
            for _ in pool.imap_unordered(build_shard, jobs):
                bar.update(1)
    bar.close()
    return out


def load_shards(data_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """All clips of all complete shards in ``data_dir``: list of {"x", "t", label arrays, "meta"}."""
    data_dir = Path(data_dir)
    paths = sorted(data_dir.glob("shard_*.npz"))
    paths = [p for p in paths if not p.name.endswith(".tmp.npz")]
    if not paths:
        raise UspdError(f"{data_dir}: no training shards (shard_*.npz); run 'uspd dataset train' first")
    clips = []
    for p in paths:
        try:
            with np.load(p) as z:
                metas = json.loads(str(z["meta"]))
                for j, meta in enumerate(metas):
                    clip = {k: z[f"{k}_{j}"] for k in ("x", "t", *LABEL_KEYS)}
                    if f"e_{j}" in z.files:  # echo band features (shards built since they were added)
                        clip["e"] = z[f"e_{j}"]
                    meta["shard"] = p.name
                    clip["meta"] = meta
                    clips.append(clip)
        except (OSError, KeyError, ValueError) as exc:
            raise UspdError(f"{p}: unreadable training shard: {exc}") from None
    return clips
