"""The hybrid detector: the classic and the neural detector on the same Doppler frames, their scores fused per hop.

The two fail differently. The neural model rejects confusers (fans, pets, music) far better, but beside a confuser
that has run for a while it misses many walk-ins; the classic detector's per-bin noise floor finds those and raises
more false alarms on confusers alone. Averaging their logits,

    score = sigmoid(w * logit(nn) + (1 - w) * logit(classic) + offset)      (w = ``nn_weight``)

needs both to lean the same way for a confident score: one detector's burst on its own is damped by the other.
``major`` is the neural detector's. Both run hop by hop with their own carried state, so any chunking gives the same
scores. README: how the weight was chosen (tuning seeds) and what it changed on a fresh evaluation seed.
"""
from __future__ import annotations

import numpy as np

from uspd.detector.base import DetectorConfig, Scores
from uspd.detector.classic import ClassicDetector
from uspd.detector.neural import NeuralDetector, _logits, _sigmoid32  # neural.py loads onnxruntime only in use

#: Scores are clipped to [EPS, 1 - EPS] before the logit (the classic detector gives exact 0 while warming up).
EPS = 1e-6


def fuse_scores(nn_score: np.ndarray, classic_score: np.ndarray, nn_weight: float, offset: float = 0.0,
                classic_floor: float = 0.0) -> np.ndarray:
    """sigmoid(nn_weight * logit(nn) + (1 - nn_weight) * logit(max(classic, classic_floor)) + offset), (F,) float32.
    ``classic_floor`` > 0 limits how far a quiet classic detector pulls the score down (it can add evidence but veto
    less); 0 = off."""
    classic = np.maximum(classic_score, classic_floor) if classic_floor > 0 else classic_score
    return _sigmoid32(nn_weight * _logits(nn_score, EPS) + (1.0 - nn_weight) * _logits(classic, EPS) + offset)


class HybridDetector:
    """Detector protocol over :class:`ClassicDetector` and :class:`~uspd.detector.neural.NeuralDetector` (see the
    module doc). config: :class:`DetectorConfig` (``classic``, ``model`` and ``hybrid`` are used)."""

    def __init__(self, config: DetectorConfig | None = None, carriers_hz=None):
        self.config = config if config is not None else DetectorConfig()
        self.config.hybrid.validate()
        self.classic = ClassicDetector(self.config.classic, carriers_hz=carriers_hz)
        self.nn = NeuralDetector(model_path=self.config.model or None, carriers_hz=carriers_hz)

    def reset(self) -> None:
        self.classic.reset()
        self.nn.reset()

    def process(self, frames) -> Scores:
        """frames (F hops) -> Scores (F,): the fused score and the neural ``major``."""
        c, n = self.classic.process(frames), self.nn.process(frames)
        h = self.config.hybrid
        return Scores(score=fuse_scores(n.score, c.score, h.nn_weight, h.score_logit_offset, h.classic_score_floor),
                      major=n.major)
