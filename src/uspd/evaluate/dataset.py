"""The balanced evaluation set (``uspd dataset eval``) and the resumable, parallel clip renderer behind it.

Set composition at ``scale`` 1 (counts are rounded, at least 1 each):

* ``walk``: 48 walk-ins of 20 s (enter, cross, approach, wander, enter-leave; closest approach 0.5-6 m as the
  rooms allow; stretches beyond 5 m are labelled ``far``), maybe with confusers;
* ``seated``: 48 seated clips of 30 s (walk in, sit, reach / page / typing / cup);
* ``negative``: 2.17 hours in 5-minute clips without people: fans, curtains, HVAC, pets, keys, music, vacuum,
  doors and combinations (or an empty room); 2-4 mics to bound disk (2 h x 4 mics x 96 kHz int16 is 5.5 GB);
* ``music_motion``: 24 clips of 20 s of music through the loudspeaker while a person walks or sits;
* ``far``: 8 clips of 20 s with a person moving only beyond 5 m (must NOT be detected);
* ``visit``: 4 clips of 14 minutes: walk in, sit, minor actions, leave after 20-480 s (stratified: some sit longer
  than the 300 s vacancy timeout), then no people -- presence must hold through the seated spell and go off after
  the timeout (none below scale 0.125); 2-4 mics;
* ``late_walk``: 16 clips of 150 s: the room runs with its confusers (or empty) for 45-120 s before a person walks
  in, as a device that was already running meets them (the walk-ins above start within the detector's first 20 s);
  2-4 mics (none below scale 0.03125);
* every 4th clip of the set at 48 kHz (carrier 18-22 kHz), the others at 96 kHz (32-45 kHz).

Clip ``i`` of dataset seed ``S`` samples its scene with ``clip_seed(S, i, 0)`` and renders with
``clip_seed(S, i, 1)`` (see :mod:`uspd.evaluate.seeds`). Every clip is rendered into ``OUT/.tmp/`` and moved into
place when complete, labels last, so an interrupted run resumes by skipping clips whose labels exist.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from uspd import __version__
from uspd.errors import UspdError
from uspd.evaluate.parallel import imap_progress, single_thread_math
from uspd.evaluate.seeds import check_not_training, clip_seed
from uspd.recording.format import labels_path, read_sidecar, reference_name, sidecar_path, write_json_atomic
from uspd.recording.labels import read_labels, write_labels

MANIFEST = "manifest.json"
TMP_DIR = ".tmp"

#: kind -> (clips at scale 1, clip duration in s or None for the sampler's own). Negatives: 26 x 300 s = 2.17 h
#: (2 h of negative time after each clip's warm-up).
EVAL_SET: dict[str, tuple[int, float | None]] = {
    "walk": (48, 20.0),
    "seated": (48, 30.0),
    "negative": (26, 300.0),
    "music_motion": (24, 20.0),
    "far": (8, 20.0),
    "visit": (4, 840.0),
    "late_walk": (16, 150.0),
}
#: kinds whose count may round to 0 at small scales (long clips), and the sampler kind each set kind uses.
OPTIONAL_KINDS = ("visit", "late_walk")
SAMPLER_KIND = {"visit": "seated", "late_walk": "walk"}
#: a visit: the seated person leaves after this long (s), stratified over the visits so some sit longer than the
#: 300 s vacancy timeout (minor motion must keep presence on); the clip then runs past the timeout.
VISIT_LEAVE_S = (20.0, 480.0)
#: a late walk-in: the person enters this long after the clip's start (s), stratified over the late walks.
LATE_ENTRY_S = (45.0, 120.0)
#: kinds whose person's time is stratified over the kind's clips: kind -> (person spec key, window in s).
STRATIFIED_PERSON_TIME = {"visit": ("leave_s", VISIT_LEAVE_S), "late_walk": ("start_s", LATE_ENTRY_S)}
LONG_KINDS = ("negative", "visit", "late_walk")
#: every n-th clip of the set (index 1, 5, 9, ...: spread over the kinds) is at 48 kHz, the others at 96 kHz.
EVERY_48K = 4
#: max mics for the long negatives.
NEGATIVE_MAX_MICS = 4
#: shortest clip a scaled-down negative may have (s).
MIN_CLIP_S = 10.0


class DatasetError(UspdError):
    """The output folder or the requested set is not usable."""


@dataclass
class ClipJob:
    """One clip to render: name is relative to the output folder (``kind/kind_0007.wav``)."""

    index: int
    name: str
    kind: str
    scene_seed: int
    render_seed: int
    duration_s: float | None = None
    sample_rate: int | None = None
    max_mics: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def eval_set_plan(dataset_seed: int, scale: float = 1.0, reflection: tuple[float, float] | None = None,
                  clock_ppm: tuple[float, float] | None = None, speaker_radius_mm: tuple[float, float] | None = None,
                  coupling_db: tuple[float, float] | None = None,
                  swing_share: tuple[float, float] | None = None) -> list[ClipJob]:
    """The clips of the evaluation set for ``dataset_seed`` at ``scale`` (deterministic). ``reflection``: (lo, hi)
    range of the walls' amplitude reflection coefficients (None: the simulator's own); ``clock_ppm``: (lo, hi) range
    of the device's playback/capture clock offset in ppm (None: one shared clock); ``speaker_radius_mm``: (lo, hi)
    range of the loudspeaker's piston radius (None: a point source); ``coupling_db``: (lo, hi) range of the direct
    speaker->mic coupling re free field (None: free field); ``swing_share``: (lo, hi) range of each person's
    stance/swing gait (None: feet swinging sinusoidally); the clips are otherwise the same."""
    if not (scale > 0 and math.isfinite(scale)):
        raise DatasetError(f"--scale: must be a positive number, got {scale}")
    jobs: list[ClipJob] = []
    for kind, (n_full, dur_s) in EVAL_SET.items():
        n = round(n_full * scale) if kind in OPTIONAL_KINDS else max(1, round(n_full * scale))
        if kind == "negative":  # keep the negative hours proportional to scale
            dur_s = max(MIN_CLIP_S, min(dur_s, n_full * dur_s * scale / n))
        for k in range(n):
            i = len(jobs)
            jobs.append(ClipJob(index=i, name=f"{kind}/{kind}_{k:04d}.wav", kind=kind,
                                scene_seed=clip_seed(dataset_seed, i, 0), render_seed=clip_seed(dataset_seed, i, 1),
                                duration_s=dur_s, sample_rate=48000 if i % EVERY_48K == 1 else 96000,
                                max_mics=NEGATIVE_MAX_MICS if kind in LONG_KINDS else None,
                                extra={"dataset_seed": int(dataset_seed), "clip_index": i, "set_kind": kind,
                                       "kind_index": k, "kind_count": n}))
    for job in jobs:
        if reflection is not None:
            job.extra["wall_reflection_range"] = list(reflection)
        if clock_ppm is not None:
            job.extra["clock_ppm_range"] = list(clock_ppm)
        if speaker_radius_mm is not None:
            job.extra["speaker_radius_mm_range"] = list(speaker_radius_mm)
        if coupling_db is not None:
            job.extra["coupling_db_range"] = list(coupling_db)
        if swing_share is not None:
            job.extra["swing_share_range"] = list(swing_share)
    return jobs


def is_complete(out_dir: Path, job: ClipJob) -> bool:
    wav = out_dir / job.name
    return wav.exists() and sidecar_path(wav).exists() and labels_path(wav).exists()


def scene_spec_for(job: ClipJob) -> dict:
    """The job's scene spec: the simulator's random sampler for ``job.kind``, then the job's duration, sample rate
    (a carrier redrawn in that rate's band) and mic-count cap. Deterministic in ``job.scene_seed``."""
    from uspd.simulate.scene import CARRIER_RANGE_HZ, random_scene_spec, with_scene_factors

    rng = np.random.default_rng(job.scene_seed)
    spec = random_scene_spec(rng, kind=SAMPLER_KIND.get(job.kind, job.kind), duration_s=job.duration_s)
    if job.kind in STRATIFIED_PERSON_TIME:  # a visit's person leaves; a late walk's enters after the room has run
        key, (lo, hi) = STRATIFIED_PERSON_TIME[job.kind]
        step = (hi - lo) / job.extra["kind_count"]
        when_s = round(lo + step * (job.extra["kind_index"] + float(rng.uniform())), 2)
        for m in spec.get("movers", []):
            if m.get("type") == "person":
                m[key] = when_s
    if job.sample_rate is not None and spec.get("sample_rate") != job.sample_rate:
        lo, hi = CARRIER_RANGE_HZ[job.sample_rate]
        spec["sample_rate"] = job.sample_rate
        spec["carrier_hz"] = [float(round(rng.uniform(lo, hi) / 10.0) * 10.0)]
    if isinstance(spec.get("carrier_hz"), (int, float)):  # the scene wants a list of carriers
        spec["carrier_hz"] = [float(spec["carrier_hz"])]
    if job.max_mics is not None:
        dev = spec.setdefault("device", {})
        dev["n_mics"] = max(2, min(int(dev.get("n_mics", job.max_mics)), job.max_mics))
    spec["name"] = Path(job.name).stem
    e = job.extra  # every other detail as drawn above
    return with_scene_factors(spec, job.scene_seed, e.get("wall_reflection_range"), e.get("clock_ppm_range"),
                              e.get("speaker_radius_mm_range"), e.get("coupling_db_range"), e.get("swing_share_range"))


def render_job(out_dir: Path, job: ClipJob) -> dict[str, Any]:
    """Render one clip into ``out_dir/.tmp`` and move it into place (labels last). Returns its manifest entry."""
    from uspd.simulate.render import render_to_file

    final = out_dir / job.name
    tmp_dir = out_dir / TMP_DIR / f"{job.index:05d}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    tmp_wav = tmp_dir / final.name
    from uspd.simulate.scene import load_scene

    scene = load_scene(scene_spec_for(job))
    render_to_file(scene, job.render_seed, tmp_wav, progress=False)
    labels = read_labels(tmp_wav)
    if labels is None:
        raise DatasetError(f"{tmp_wav}: the simulator wrote no labels")
    labels.extra.update(job.extra, scene_seed=job.scene_seed, render_seed=job.render_seed)
    write_labels(tmp_wav, labels)
    final.parent.mkdir(parents=True, exist_ok=True)
    ref = tmp_dir / reference_name(tmp_wav)
    moves = [(tmp_wav, final), (sidecar_path(tmp_wav), sidecar_path(final)), (labels_path(tmp_wav), labels_path(final))]
    if ref.exists():
        moves.insert(1, (ref, final.with_name(ref.name)))
    for src, dst in moves:  # labels last: their presence marks a complete clip
        os.replace(src, dst)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    return manifest_entry(out_dir, job)


def manifest_entry(out_dir: Path, job: ClipJob) -> dict[str, Any]:
    """The manifest line of a complete clip, read back from its files."""
    wav = out_dir / job.name
    labels = read_labels(wav)
    sc = read_sidecar(wav)
    return {"name": job.name, "kind": job.kind, "index": job.index, "scene_seed": job.scene_seed,
            "render_seed": job.render_seed, "duration_s": labels.duration_s if labels else None,
            "sample_rate": sc.sample_rate, "n_mics": len(sc.mic_positions_m),
            "labels": sorted({iv.kind for iv in labels.intervals}) if labels else [],
            "major_distance_m": [iv.distance_m for iv in labels.of_kind("major")] if labels else [],
            "minor_actions": [iv.action for iv in labels.of_kind("minor")] if labels else []}


_WORKER_OUT: Path | None = None


def _init_worker(out_dir: str, in_worker: bool) -> None:
    global _WORKER_OUT
    if in_worker:
        single_thread_math()
    _WORKER_OUT = Path(out_dir)


def _work(job: ClipJob) -> tuple[ClipJob, dict[str, Any] | None, str | None]:
    assert _WORKER_OUT is not None
    try:
        return job, render_job(_WORKER_OUT, job), None
    except UspdError as exc:
        return job, None, str(exc)


def render_jobs(out_dir: Path, jobs: list[ClipJob], workers: int = 1, progress: bool = True,
                on_done: Callable[[ClipJob, dict], None] | None = None) -> tuple[list[dict], int]:
    """Render every incomplete job (skipping complete ones) with ``workers`` processes and a progress bar.

    Returns (manifest entries of all jobs in ``jobs`` order, number rendered now).
    """
    pending = [j for j in jobs if not is_complete(out_dir, j)]
    done = {j.index: manifest_entry(out_dir, j) for j in jobs if is_complete(out_dir, j)}
    for job, entry, err in imap_progress(_work, pending, workers, _init_worker, (str(out_dir), workers > 1),
                                         desc="render", progress=progress, initial=len(jobs) - len(pending)):
        if err is not None:
            raise DatasetError(f"{out_dir / job.name}: {err}")
        done[job.index] = entry
        if on_done:
            on_done(job, entry)
    shutil.rmtree(out_dir / TMP_DIR, ignore_errors=True)
    return [done[j.index] for j in jobs], len(pending)


#: The scene factors an evaluation set may draw from other ranges: manifest key -> (option, what the default is).
SCENE_FACTORS = {"reflection": ("--reflection", "the simulator's own walls"),
                 "clock_ppm": ("--clock-ppm", "one shared clock"),
                 "speaker_radius_mm": ("--speaker-radius-mm", "a point-source loudspeaker"),
                 "coupling_db": ("--coupling-db", "free-field coupling"),
                 "swing_share": ("--swing-share", "sinusoidally swinging feet")}


def _variant(factors: dict[str, list | None], shown: tuple[str, ...]) -> str:
    """How a set's scene factors were drawn, as the options that chose them (the ``shown`` keys)."""
    parts = [SCENE_FACTORS[k][1] if factors.get(k) is None else f"{SCENE_FACTORS[k][0]} {factors[k][0]:g},"
             f"{factors[k][1]:g}" for k in shown]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def build_eval_set(out_dir: str | os.PathLike, dataset_seed: int, scale: float = 1.0, workers: int = 1,
                   progress: bool = True, reflection: tuple[float, float] | None = None,
                   clock_ppm: tuple[float, float] | None = None, speaker_radius_mm: tuple[float, float] | None = None,
                   coupling_db: tuple[float, float] | None = None,
                   swing_share: tuple[float, float] | None = None) -> dict[str, Any]:
    """Render (or resume) the evaluation set into ``out_dir`` and write ``manifest.json``; returns the manifest.
    ``reflection``, ``clock_ppm``, ``speaker_radius_mm``, ``coupling_db``, ``swing_share``: see
    :func:`eval_set_plan`."""
    out_dir = Path(out_dir)
    role = check_not_training(dataset_seed, "--seed")
    from uspd.simulate.scene import check_scene_factors

    checked = check_scene_factors(reflection, clock_ppm, speaker_radius_mm, coupling_db, swing_share)
    factors = {k: None if v is None else list(v) for k, v in checked.items()}
    jobs = eval_set_plan(dataset_seed, scale, **checked)
    man_path = out_dir / MANIFEST
    if man_path.exists():
        try:
            old = json.loads(man_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{man_path}: unreadable manifest ({exc}); choose another --out") from None
        if old.get("dataset_seed") != dataset_seed or old.get("scale") != scale:
            raise DatasetError(f"{man_path}: folder holds the set for seed {old.get('dataset_seed')} scale "
                               f"{old.get('scale')}; use another --out for seed {dataset_seed} scale {scale}")
        if any(old.get(k) != v for k, v in factors.items()):
            shown = tuple(k for k in SCENE_FACTORS if k in ("reflection", "clock_ppm") or old.get(k) or factors[k])
            raise DatasetError(f"{man_path}: folder holds the set rendered with {_variant(old, shown)}; use another "
                               f"--out for {_variant(factors, shown)}")
    elif out_dir.exists() and any(p.name != TMP_DIR for p in out_dir.iterdir()):
        raise DatasetError(f"{out_dir}: exists, is not empty and has no {MANIFEST}; choose an empty --out folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    base = {"set": "uspd-eval", "uspd_version": __version__, "dataset_seed": int(dataset_seed), "role": role,
            "scale": scale, "seed_convention": "uspd.evaluate.seeds (train 0-999, tune 1000-1999, eval >= 9000)",
            "clip_seed": "scene: clip_seed(S, i, 0), render: clip_seed(S, i, 1)", "reflection": factors["reflection"]}
    for key in ("clock_ppm", "speaker_radius_mm", "coupling_db", "swing_share"):  # absent unless set
        if factors[key] is not None:
            base[key] = factors[key]
    write_json_atomic(man_path, {**base, "complete": False, "planned": [asdict(j) for j in jobs]})
    entries, n_new = render_jobs(out_dir, jobs, workers=workers, progress=progress)
    manifest = {**base, "complete": True, **summarize(entries), "rendered_now": n_new, "clips": entries}
    write_json_atomic(man_path, manifest)
    return manifest


def summarize(entries: list[dict]) -> dict[str, Any]:
    """Counts and hours by set kind, by label kind, and how many clips at each sample rate."""
    counts: dict[str, int] = {}
    hours: dict[str, float] = {}
    label_counts: dict[str, int] = {}
    rates: dict[str, int] = {}
    for e in entries:
        counts[e["kind"]] = counts.get(e["kind"], 0) + 1
        hours[e["kind"]] = hours.get(e["kind"], 0.0) + (e.get("duration_s") or 0.0) / 3600.0
        for k in e.get("labels", []):
            label_counts[k] = label_counts.get(k, 0) + 1
        r = str(e.get("sample_rate"))
        rates[r] = rates.get(r, 0) + 1
    dists = [d for e in entries for d in e.get("major_distance_m", []) if d is not None]
    edges = [0.0, 2.0, 4.0, 5.0, 6.0, np.inf]
    by_dist = {f"{lo:g}-{hi:g}m": int(sum(lo <= d < hi for d in dists)) for lo, hi in zip(edges[:-1], edges[1:])}
    actions: dict[str, int] = {}
    for e in entries:
        for a in e.get("minor_actions", []):
            actions[str(a)] = actions.get(str(a), 0) + 1
    return {"counts": counts, "hours": {k: round(v, 4) for k, v in hours.items()},
            "clips_with_label": dict(sorted(label_counts.items())), "sample_rates": rates,
            "major_intervals_by_distance": by_dist, "minor_intervals_by_action": dict(sorted(actions.items()))}


__all__ = ["ClipJob", "DatasetError", "EVAL_SET", "build_eval_set", "eval_set_plan", "render_jobs", "render_job",
           "is_complete", "summarize"]
