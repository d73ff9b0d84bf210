"""Detector interface: Doppler frames in, per-hop motion scores out (the ``[detector]`` config section).

Every detector follows the :class:`Detector` protocol: ``process(frames) -> Scores`` is streaming (state carries
across calls, so any split of the frames gives the same scores) and ``reset()`` forgets the history.
:func:`make_detector` builds one by name: ``"classic"`` (:class:`uspd.detector.classic.ClassicDetector`), ``"nn"``
(:class:`uspd.detector.neural.NeuralDetector`, imported lazily so the classic path never loads onnxruntime) or
``"hybrid"`` (:class:`uspd.detector.hybrid.HybridDetector`: both on the same frames, scores fused per hop).

Config example::

    [detector]
    name = "classic"            # default "hybrid"
    [detector.classic]
    z_mid = 6.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from uspd.errors import ConfigError

DETECTOR_NAMES = ("classic", "nn", "hybrid")


@dataclass
class Scores:
    """Per-hop detector output. score (F,): probability of any motion, 0..1. major (F,): probability that the
    motion is major (walking), 0..1. mover (F,) or None: a neural model's evidence, 0..1, that a pet or a robot
    vacuum moves and no person does (its manifest's mover readout; None without one)."""

    score: np.ndarray
    major: np.ndarray
    mover: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.score)

    @staticmethod
    def concat(parts: list["Scores"]) -> "Scores":
        if not parts:
            return Scores(score=np.zeros(0), major=np.zeros(0))
        mover = None if any(p.mover is None for p in parts) else np.concatenate([p.mover for p in parts])
        return Scores(score=np.concatenate([p.score for p in parts]), major=np.concatenate([p.major for p in parts]),
                      mover=mover)


@runtime_checkable
class Detector(Protocol):
    """Streaming detector: ``process(frames: Frames) -> Scores`` (one score per frame), ``reset()``."""

    def process(self, frames: Any) -> Scores: ...

    def reset(self) -> None: ...


@dataclass
class ClassicConfig:
    """The ``[detector.classic]`` table (velocities in m/s, Doppler mapped per carrier: v = Δf·c / (2·f0)).

    Defaults tuned on the simulator's tuning seeds 1000 and 1001 (``uspd dataset eval --seed 1000 --scale 0.25``,
    ``--seed 1001 --scale 0.5``; 2.7 h), never on evaluation seeds.

    v_min_m_s / v_max_m_s: velocity range that counts as motion (below: the static-clutter notch and HVAC drift;
    above: fan blades). guard_min_m_s: above this speed (up to the band edge) energy is taken as a fan/impulse
    indicator: its largest z-score above 4, times guard_weight, is subtracted from the motion z-score.
    asym_weight: weight (0..1) of the asymmetry z-score (power at +Δf over power at -Δf; loudspeaker distortion is
    symmetric, a moving reflector is not) against the level z-score. use_echo: use the front end's echo power (the
    part of the Doppler power not common to all mics: what the loudspeaker itself emits, e.g. music distortion,
    is left out) instead of the mean over mics.
    smooth_bins: Doppler bins averaged around each bin. avg_s: time constant of the per-bin power average (s).
    floor_tau_s: time constant of the per-bin noise floor (mean and spread of the dB power) while nothing moves (s);
    floor_tau_motion_s: the much slower one while something moves (so a permanent change, e.g. a fan switched on,
    is eventually learnt). quiet_score / quiet_hold_s: "nothing moves" once the score stayed below quiet_score for
    quiet_hold_s seconds.
    warmup_s: initial time during which the floor is learnt fast and the score is 0 (s).
    min_spread_db: lower bound of the per-bin spread used in the z-score (dB).
    z_mid / z_slope: the score is a logistic of the largest per-bin z-score: 0.5 at z_mid, slope 1/z_slope.
    major_v_m_s / major_slope_m_s: ``major`` is a logistic of the Doppler extent (m/s; speed under which 90 % of
    the excess power lies, smoothed over major_avg_s): 0.5 at major_v_m_s. sound_speed_m_s: c for Doppler -> m/s.
    """

    v_min_m_s: float = 0.06
    v_max_m_s: float = 3.0
    guard_min_m_s: float = 3.2
    guard_weight: float = 3.0
    asym_weight: float = 0.85
    use_echo: bool = True
    smooth_bins: int = 9
    avg_s: float = 0.2
    floor_tau_s: float = 30.0
    floor_tau_motion_s: float = 120.0
    quiet_score: float = 0.3
    quiet_hold_s: float = 3.0
    warmup_s: float = 1.5
    min_spread_db: float = 1.0
    z_mid: float = 11.0
    z_slope: float = 3.0
    major_v_m_s: float = 0.7
    major_slope_m_s: float = 0.15
    major_avg_s: float = 0.3
    sound_speed_m_s: float = 343.2

    def validate(self, where: str = "[detector.classic]") -> None:
        def bad(name: str, rule: str) -> ConfigError:
            return ConfigError(f"{where}.{name}: {rule}, got {getattr(self, name)}")

        positive = ("v_max_m_s", "guard_min_m_s", "avg_s", "floor_tau_s", "floor_tau_motion_s", "min_spread_db",
                    "z_slope", "major_v_m_s", "major_slope_m_s", "major_avg_s", "sound_speed_m_s")
        for name in positive:
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise bad(name, "must be a finite number > 0")
        for name in ("v_min_m_s", "guard_weight", "warmup_s", "z_mid", "quiet_hold_s"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise bad(name, "must be a finite number >= 0")
        if not self.v_min_m_s < self.v_max_m_s:
            raise bad("v_min_m_s", f"must be below v_max_m_s ({self.v_max_m_s})")
        if self.guard_min_m_s < self.v_max_m_s:
            raise bad("guard_min_m_s", f"must be at least v_max_m_s ({self.v_max_m_s})")
        if not (0.0 <= self.asym_weight <= 1.0):
            raise bad("asym_weight", "must be in [0, 1]")
        if not (1 <= self.smooth_bins <= 31):
            raise bad("smooth_bins", "must be 1..31")
        if not (0.0 < self.quiet_score < 1.0):
            raise bad("quiet_score", "must be in (0, 1)")


@dataclass
class HybridConfig:
    """The ``[detector.hybrid]`` table: score = sigmoid(nn_weight * logit(nn) + (1 - nn_weight) * logit(classic)
    + score_logit_offset), each detector's score clipped to [1e-6, 1 - 1e-6] first; ``major`` is the neural one's.
    Defaults chosen on tuning seeds 1021 and 1022 (docs/NEURAL_DETECTOR_LOG.md); the offset puts the tuned operating
    point on the shared ``[presence]`` thresholds. ``classic_score_floor``: the classic score is raised to at least
    this before the logit, so a quiet classic detector vetoes less (it hardly sees typing); 0 = off.
    ``classic_distrust_s``: memory (s of audio) of how often the classic detector fired alone (score > 0.5 while the
    model's < 0.2); the weight moves towards the model, reaching 1 when that share reaches
    ``classic_distrust_share``; 0 = off (:func:`uspd.detector.hybrid.distrust_weights`).
    ``mover_trust_s``: memory (s of audio) of the model's mover evidence (a pet or a robot vacuum moves, no person:
    a model whose manifest has a mover readout); the weight moves towards the model from ``mover_trust_from`` of
    that evidence and reaches 1 at ``mover_trust_full``; 0 = off (:func:`uspd.detector.hybrid.mover_weights`).
    ``classic_gate``: on hops where the model's score is below this the model decides alone (weight 1): the classic
    detector cannot lift what the model is sure is no person (a pet, a vacuum); 0 = off."""

    nn_weight: float = 0.7
    score_logit_offset: float = 0.8109  # logit(0.6) - logit(0.4): the tuned threshold 0.4 lands on [presence] 0.6
    classic_score_floor: float = 0.05
    classic_distrust_s: float = 0.0
    classic_distrust_share: float = 0.1
    mover_trust_s: float = 0.0
    mover_trust_from: float = 0.5
    mover_trust_full: float = 0.9
    classic_gate: float = 0.0

    def validate(self, where: str = "[detector.hybrid]") -> None:
        if not (0.0 <= self.nn_weight <= 1.0):
            raise ConfigError(f"{where}.nn_weight: must be in [0, 1], got {self.nn_weight}")
        if not math.isfinite(self.score_logit_offset):
            raise ConfigError(f"{where}.score_logit_offset: must be finite, got {self.score_logit_offset}")
        if not (0.0 <= self.classic_score_floor < 1.0):
            raise ConfigError(f"{where}.classic_score_floor: must be in [0, 1), got {self.classic_score_floor}")
        if not (0.0 <= self.classic_distrust_s < math.inf):
            raise ConfigError(f"{where}.classic_distrust_s: must be a finite number >= 0 (s), "
                              f"got {self.classic_distrust_s}")
        if not (0.0 < self.classic_distrust_share <= 1.0):
            raise ConfigError(f"{where}.classic_distrust_share: must be in (0, 1], got {self.classic_distrust_share}")
        if not (0.0 <= self.mover_trust_s < math.inf):
            raise ConfigError(f"{where}.mover_trust_s: must be a finite number >= 0 (s), got {self.mover_trust_s}")
        if not (0.0 <= self.mover_trust_from < self.mover_trust_full <= 1.0):
            raise ConfigError(f"{where}.mover_trust_from / mover_trust_full: need 0 <= from < full <= 1, got "
                              f"{self.mover_trust_from} / {self.mover_trust_full}")
        if not (0.0 <= self.classic_gate < 1.0):
            raise ConfigError(f"{where}.classic_gate: must be in [0, 1), got {self.classic_gate}")


@dataclass
class DetectorConfig:
    """The ``[detector]`` section. name: "hybrid" (default: the classic detector and the shipped neural model,
    fused per hop), "nn" (the neural model alone) or "classic" (the hand-tuned baseline alone). model: ONNX file
    for "nn" and "hybrid" ("" = the shipped model).
    classic / hybrid: the ``[detector.classic]`` / ``[detector.hybrid]`` tables."""

    name: str = "hybrid"
    model: str = ""
    classic: ClassicConfig = field(default_factory=ClassicConfig)
    hybrid: HybridConfig = field(default_factory=HybridConfig)

    def validate(self, where: str = "[detector]") -> None:
        if self.name not in DETECTOR_NAMES:
            raise ConfigError(f"{where}.name: must be one of {', '.join(DETECTOR_NAMES)}, got {self.name!r}")
        self.classic.validate(where[:-1] + ".classic]" if where.endswith("]") else f"{where}.classic")
        self.hybrid.validate(where[:-1] + ".hybrid]" if where.endswith("]") else f"{where}.hybrid")


def make_detector(name_or_config: str | DetectorConfig | None = None, config: DetectorConfig | None = None,
                  **kwargs: Any) -> Detector:
    """Build a detector: ``make_detector("classic", cfg)``, ``make_detector(cfg)`` (uses ``cfg.name``) or
    ``make_detector("nn")``. Extra keyword arguments go to the detector's constructor (e.g. ``carriers_hz``)."""
    if isinstance(name_or_config, DetectorConfig):
        config, name = name_or_config, name_or_config.name
    else:
        config = config if config is not None else DetectorConfig()
        name = name_or_config or config.name
    if name == "classic":
        from uspd.detector.classic import ClassicDetector

        return ClassicDetector(config.classic, **kwargs)
    if name == "nn":
        from uspd.detector.neural import NeuralDetector

        return NeuralDetector(model_path=config.model or None, **kwargs)
    if name == "hybrid":
        from uspd.detector.hybrid import HybridDetector

        return HybridDetector(config, **kwargs)
    raise ConfigError(f"unknown detector {name!r} (use one of {', '.join(DETECTOR_NAMES)})")


__all__ = ["Scores", "Detector", "ClassicConfig", "HybridConfig", "DetectorConfig", "make_detector", "DETECTOR_NAMES"]
