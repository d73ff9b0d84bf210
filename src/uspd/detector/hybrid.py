"""The hybrid detector: the classic and the neural detector on the same Doppler frames, their scores fused per hop.

The two fail differently. The neural model rejects confusers (fans, pets, music) far better, but beside a confuser
that has run for a while it misses many walk-ins; the classic detector's per-bin noise floor finds those and raises
more false alarms on confusers alone. Averaging their logits,

    score = sigmoid(w * logit(nn) + (1 - w) * logit(classic) + offset)      (w = ``nn_weight``)

needs both to lean the same way for a confident score: one detector's burst on its own is damped by the other.
With ``classic_distrust_s`` > 0 the weight moves towards the model where the classic detector keeps firing alone:
hop k's weight is w + (1 - w) * min(1, s / ``classic_distrust_share``), s the share of the hops before hop k
(exponential memory of ``classic_distrust_s``) on which the classic score was above ``CLASSIC_FIRES`` while the
model's was below ``NN_QUIET`` -- a confuser the classic detector cannot reject (a pet, HVAC) rather than a walker,
which the model sees too (off by default: docs/NEURAL_DETECTOR_LOG.md, session 19). With ``mover_trust_s`` > 0
and a model whose manifest has a mover readout (its evidence that a pet or a robot vacuum moves and no person does,
:mod:`uspd.train.readout`), the weight moves towards the model where that evidence, averaged over
``mover_trust_s``, is high: w + (1 - w) * clip((m - ``mover_trust_from``) / (``mover_trust_full`` -
``mover_trust_from``), 0, 1) (off by default). With ``classic_gate`` > 0 the weight is 1 (the model alone) on
the hops where the model's score is below the gate, whatever the classic detector says (off by default). ``major``
is the neural detector's. Both run hop by hop with their own carried state, so any chunking gives the same scores.
The same log: how the weight was chosen (tuning seeds) and what it changed on a fresh evaluation seed.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from uspd.detector.base import DetectorConfig, HybridConfig, Scores
from uspd.detector.classic import ClassicDetector
from uspd.detector.neural import NeuralDetector, _logits, _sigmoid32  # neural.py loads onnxruntime only in use

#: Scores are clipped to [EPS, 1 - EPS] before the logit (the classic detector gives exact 0 while warming up).
EPS = 1e-6
#: The classic detector "fires alone" on a hop when its score is above CLASSIC_FIRES and the model's below NN_QUIET.
CLASSIC_FIRES = 0.5
NN_QUIET = 0.2


def fuse_scores(nn_score: np.ndarray, classic_score: np.ndarray, nn_weight: float | np.ndarray, offset: float = 0.0,
                classic_floor: float = 0.0) -> np.ndarray:
    """sigmoid(nn_weight * logit(nn) + (1 - nn_weight) * logit(max(classic, classic_floor)) + offset), (F,) float32;
    nn_weight a number or one per hop (F,).
    ``classic_floor`` > 0 limits how far a quiet classic detector pulls the score down (it can add evidence but veto
    less); 0 = off."""
    classic = np.maximum(classic_score, classic_floor) if classic_floor > 0 else classic_score
    return _sigmoid32(nn_weight * _logits(nn_score, EPS) + (1.0 - nn_weight) * _logits(classic, EPS) + offset)


def classic_fires_alone(nn_score: np.ndarray, classic_score: np.ndarray) -> np.ndarray:
    """Hops (F,) bool on which the classic detector fires alone: its score above ``CLASSIC_FIRES``, the model's below
    ``NN_QUIET``."""
    return (np.asarray(classic_score) > CLASSIC_FIRES) & (np.asarray(nn_score) < NN_QUIET)


def _exp_average(x: np.ndarray, a: float, state: float) -> np.ndarray:
    """Exponential average (F,) of x (F,): s_k = (1 - a) s_(k-1) + a x_k with s_(-1) = ``state``."""
    s, _ = lfilter([a], [1.0, a - 1.0], x, zi=[(1.0 - a) * state])
    return s


def distrust_weights(nn_score: np.ndarray, classic_score: np.ndarray, nn_weight: float, memory_hops: float,
                     share: float, state: float = 0.0) -> tuple[np.ndarray, float]:
    """Per-hop nn weights (F,) float64 and the carried state (the alone-share after the last hop).

    s_k = (1 - a) s_(k-1) + a [classic_k > CLASSIC_FIRES and nn_k < NN_QUIET], a = 1 / memory_hops, s_(-1) = state;
    hop k's weight uses s_(k-1) (the hops before it): nn_weight + (1 - nn_weight) * min(1, s_(k-1) / share)."""
    alone = classic_fires_alone(nn_score, classic_score).astype(np.float64)
    if alone.size == 0:
        return np.zeros(0), state
    s = _exp_average(alone, 1.0 / memory_hops, state)
    before = np.concatenate([[state], s[:-1]])
    return nn_weight + (1.0 - nn_weight) * np.minimum(1.0, before / share), float(s[-1])


def mover_weights(mover: np.ndarray, weight: float | np.ndarray, memory_hops: float, trust_from: float,
                  trust_full: float, state: float | None = None) -> tuple[np.ndarray, float]:
    """Per-hop nn weights (F,) float64 moved towards 1 by the model's mover evidence, and the carried state.

    m_k = (1 - a) m_(k-1) + a mover_k, a = 1 / memory_hops, m_(-1) = state (None: the first hop's evidence);
    hop k's weight: weight + (1 - weight) * clip((m_k - trust_from) / (trust_full - trust_from), 0, 1). The
    evidence after hop k is the model's state after it, so hop k may use it (causal)."""
    mover = np.asarray(mover, dtype=np.float64)
    if mover.size == 0:
        return np.zeros(0), (0.0 if state is None else state)
    m = _exp_average(mover, min(1.0, 1.0 / memory_hops), float(mover[0]) if state is None else state)
    trust = np.clip((m - trust_from) / (trust_full - trust_from), 0.0, 1.0)
    return weight + (1.0 - np.asarray(weight)) * trust, float(m[-1])


def hybrid_score(nn_score: np.ndarray, classic_score: np.ndarray, config: HybridConfig, hop_s: float,
                 distrust_state: float = 0.0, mover: np.ndarray | None = None,
                 mover_state: float | None = None) -> tuple[np.ndarray, float, float | None]:
    """The ``[detector.hybrid]`` fusion of one stretch of hops: (fused score (F,) float32, the distrust state and the
    mover state to carry into the next stretch). hop_s: time between hops (s), for ``classic_distrust_s`` and
    ``mover_trust_s``; mover: the model's mover evidence (F,) or None (then ``mover_trust_s`` has no effect)."""
    weight: float | np.ndarray = config.nn_weight
    if config.classic_distrust_s > 0:
        weight, distrust_state = distrust_weights(nn_score, classic_score, config.nn_weight,
                                                  config.classic_distrust_s / hop_s, config.classic_distrust_share,
                                                  distrust_state)
    if config.mover_trust_s > 0 and mover is not None:
        weight, mover_state = mover_weights(mover, weight, config.mover_trust_s / hop_s, config.mover_trust_from,
                                            config.mover_trust_full, mover_state)
    if config.classic_gate > 0:
        weight = np.where(np.asarray(nn_score) < config.classic_gate, 1.0, weight)
    return (fuse_scores(nn_score, classic_score, weight, config.score_logit_offset, config.classic_score_floor),
            distrust_state, mover_state)


class HybridDetector:
    """Detector protocol over :class:`ClassicDetector` and :class:`~uspd.detector.neural.NeuralDetector` (see the
    module doc). config: :class:`DetectorConfig` (``classic``, ``model`` and ``hybrid`` are used)."""

    def __init__(self, config: DetectorConfig | None = None, carriers_hz=None):
        self.config = config if config is not None else DetectorConfig()
        self.config.hybrid.validate()
        self.classic = ClassicDetector(self.config.classic, carriers_hz=carriers_hz)
        self.nn = NeuralDetector(model_path=self.config.model or None, carriers_hz=carriers_hz)
        self.reset()

    def reset(self) -> None:
        self.classic.reset()
        self.nn.reset()
        self._distrust_state = 0.0
        self._mover_state: float | None = None

    def process(self, frames) -> Scores:
        """frames (F hops) -> Scores (F,): the fused score and the neural ``major`` and ``mover``."""
        c, n = self.classic.process(frames), self.nn.process(frames)
        if len(n.score) == 0:
            return n
        score, self._distrust_state, self._mover_state = hybrid_score(
            n.score, c.score, self.config.hybrid, self.classic.hop_s, self._distrust_state, n.mover, self._mover_state)
        return Scores(score=score, major=n.major, mover=n.mover)
