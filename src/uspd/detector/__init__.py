"""Detectors: Doppler frames in, per-hop motion scores out (``base``: protocol, config, registry; ``classic``;
``neural``)."""
from uspd.detector.base import ClassicConfig, Detector, DetectorConfig, Scores, make_detector

__all__ = ["ClassicConfig", "Detector", "DetectorConfig", "Scores", "make_detector"]
