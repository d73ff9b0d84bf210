"""The one streaming pipeline: audio chunks in, per-hop decisions out (front end -> detector -> presence tracker).

``uspd detect``, ``uspd evaluate`` and ``uspd run`` all use it. It is chunk-size agnostic: feeding a file in 1 s
chunks (the vectorised offline path) or in 50 ms blocks from a sound card gives the same decisions. Only the WAV and
its sidecar are ever read here; labels never influence detection.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from uspd.config import Config, load_config
from uspd.detector.base import Detector, DetectorConfig, make_detector
from uspd.errors import ConfigError
from uspd.features.frontend import DopplerFrontEnd, FrontEndConfig
from uspd.presence.tracker import Decision, PresenceConfig, PresenceTracker
from uspd.recording import RecordingReader, Sidecar

#: Default chunk length when streaming a file (s): big enough for vectorised speed, small enough for flat memory.
DEFAULT_CHUNK_S = 1.0


class Pipeline:
    """Front end -> detector -> presence tracker for one recording geometry (a sidecar).

    ``Pipeline(sidecar, config=None, detector=None)``: config is a :class:`uspd.config.Config` (None = defaults);
    detector is a name ("classic"/"nn"/"hybrid"), a :class:`Detector` instance, or None for ``config.detector.name``.
    ``.process(chunk (n, n_mics)) -> list[Decision]``,
    one per completed hop; ``.flush()``; ``.reset()``. ``frontend``, ``detector``, ``tracker`` are public (the live
    service drives them through the tone duty cycle).
    """

    def __init__(self, sidecar: Sidecar, config: Config | None = None, detector: str | Detector | None = None):
        if config is not None and not isinstance(config, Config):
            raise TypeError(f"Pipeline(sidecar, config, detector): config must be a Config or None, "
                            f"got {type(config).__name__}")
        self.config = config if config is not None else load_config(None)
        self.sidecar = sidecar
        fe_cfg = self.config.frontend if self.config.frontend is not None else FrontEndConfig()
        self.frontend = DopplerFrontEnd(sidecar.sample_rate, sidecar.carrier_hz, sidecar.n_mics, fe_cfg)
        det_cfg = self.config.detector
        if detector is None or isinstance(detector, str):
            name = detector or (det_cfg if det_cfg is not None else DetectorConfig()).name
            self.detector = make_detector(name, det_cfg)
            self.detector_name = name
        else:
            self.detector = detector
            self.detector_name = type(detector).__name__
        pres_cfg = self.config.presence if self.config.presence is not None else PresenceConfig()
        self.tracker = PresenceTracker(pres_cfg)

    @property
    def hop_s(self) -> float:
        return self.frontend.hop_s

    def process(self, chunk: np.ndarray) -> list[Decision]:
        """chunk (n, n_mics) float32 full scale -> decisions for every hop this chunk completed (maybe none)."""
        frames = self.frontend.process(chunk)
        if len(frames.t_s) == 0:
            return []
        scores = self.detector.process(frames)
        return self.tracker.update(frames.t_s, scores)

    def flush(self) -> list[Decision]:
        """End of stream. Decisions are made on hop boundaries, so nothing is pending: the last decision is within
        one hop of the end of the audio. Returns []."""
        return []

    def reset(self) -> None:
        """Start over (front end, detector and tracker)."""
        self.frontend.reset()
        self.detector.reset()
        self.tracker.reset()


@dataclass
class RunSummary:
    """What :func:`run_file` did: audio seconds read, decisions made, CPU seconds of processing."""

    audio_s: float
    decisions: int
    cpu_s: float

    @property
    def realtime_factor(self) -> float:
        return self.audio_s / self.cpu_s if self.cpu_s > 0 else float("inf")


def chunk_samples(chunk_s: float, sample_rate: int, option: str = "--chunk-s") -> int:
    """Chunk length in samples; raises ConfigError for a non-positive or absurd value."""
    if not (isinstance(chunk_s, (int, float)) and 0 < chunk_s <= 3600):
        raise ConfigError(f"{option}: chunk length must be in (0, 3600] s, got {chunk_s}")
    return max(1, int(round(chunk_s * sample_rate)))


def run_file(wav_path: str | os.PathLike, config: Config | None = None, detector: str | Detector | None = None,
             sink: Callable[[Decision], Any] | None = None, chunk_s: float = DEFAULT_CHUNK_S,
             progress: bool = False) -> RunSummary:
    """Stream recording ``wav_path`` through a :class:`Pipeline`; ``sink(decision)`` is called for every decision
    in order. Memory is flat in file length. Raises RecordingError (one line) for bad input."""
    reader = RecordingReader(Path(wav_path))
    n = chunk_samples(chunk_s, reader.sample_rate)
    pipe = Pipeline(reader.sidecar, config, detector)
    count = 0
    t0 = time.process_time()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=round(reader.duration_s, 1), unit="s", desc=Path(wav_path).name, leave=False)
    for block in reader.chunks(n):
        decisions = pipe.process(block)
        for d in decisions:
            if sink is not None:
                sink(d)
        count += len(decisions)
        if bar is not None:
            bar.update(round(len(block) / reader.sample_rate, 3))
    for d in pipe.flush():
        if sink is not None:
            sink(d)
        count += 1
    if bar is not None:
        bar.close()
    return RunSummary(audio_s=reader.duration_s, decisions=count, cpu_s=time.process_time() - t0)


__all__ = ["Pipeline", "run_file", "RunSummary", "chunk_samples", "DEFAULT_CHUNK_S"]
