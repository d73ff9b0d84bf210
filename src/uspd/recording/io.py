"""Streaming reader and writer for recordings (WAV + sidecar + optional reference).

An hours-long file is never loaded whole: :meth:`RecordingReader.chunks` yields ``(n, n_mics)`` float32 blocks.
Every problem is a :class:`uspd.errors.RecordingError` whose one-line message names the file.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from uspd.errors import RecordingError
from uspd.recording.format import Sidecar, read_sidecar, reference_name, sidecar_path, write_sidecar

#: WAV sample formats uspd writes and accepts.
SUBTYPES = {"int16": "PCM_16", "int24": "PCM_24", "float32": "FLOAT"}
ACCEPTED_SUBTYPES = {"PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}


def _open_wav(path: Path) -> sf.SoundFile:
    if not path.exists():
        raise RecordingError(f"{path}: file not found")
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise RecordingError(f"{path}: unreadable WAV ({str(exc).splitlines()[0]})") from None
    if f.subtype not in ACCEPTED_SUBTYPES:
        f.close()
        raise RecordingError(f"{path}: unsupported sample format {f.subtype} (use int16, int24 or float32)")
    return f


def _expected_frames(path: Path, f: sf.SoundFile) -> int:
    """Frames the data actually holds (a truncated file holds fewer than its header claims)."""
    frames = f.frames
    try:
        size = path.stat().st_size
        bytes_per_frame = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}[f.subtype] * f.channels
        if f.format == "WAV" and size < frames * bytes_per_frame:
            raise RecordingError(
                f"{path}: truncated WAV: header says {frames} frames but the file holds at most "
                f"{size // bytes_per_frame}"
            )
    except KeyError:
        pass
    return frames


class RecordingReader:
    """Open and validate a recording; stream its mic signals (and reference) in chunks.

    Validation on open: sidecar present and well formed, WAV readable and not truncated, channel count equal to the
    number of mic positions, WAV rate equal to the sidecar's, reference (if any) mono with the same rate and length.
    NaN/Inf samples are detected while streaming (the message gives the time).
    """

    def __init__(self, wav_path: str | os.PathLike):
        self.path = Path(wav_path)
        if not self.path.exists():
            raise RecordingError(f"{self.path}: file not found")
        self.sidecar: Sidecar = read_sidecar(self.path)
        with _open_wav(self.path) as f:
            self.n_frames = _expected_frames(self.path, f)
            channels, rate = f.channels, f.samplerate
        if rate != self.sidecar.sample_rate:
            raise RecordingError(
                f"{self.path}: WAV sample rate {rate} Hz differs from the sidecar's {self.sidecar.sample_rate} Hz"
            )
        if channels != self.sidecar.n_mics:
            raise RecordingError(
                f"{self.path}: WAV has {channels} channel(s) but the sidecar lists {self.sidecar.n_mics} mic "
                f"position(s); they must match one to one"
            )
        self.reference_path: Path | None = None
        if self.sidecar.reference is not None:
            ref = self.path.parent / self.sidecar.reference
            with _open_wav(ref) as f:
                ref_frames = _expected_frames(ref, f)
                if f.channels != 1:
                    raise RecordingError(f"{ref}: reference must be mono, it has {f.channels} channels")
                if f.samplerate != rate:
                    raise RecordingError(f"{ref}: reference rate {f.samplerate} Hz differs from the recording's {rate} Hz")
            if ref_frames != self.n_frames:
                raise RecordingError(
                    f"{ref}: reference has {ref_frames} frames but the recording has {self.n_frames}; "
                    f"they must be the same length"
                )
            self.reference_path = ref

    @property
    def sample_rate(self) -> int:
        return self.sidecar.sample_rate

    @property
    def n_mics(self) -> int:
        return self.sidecar.n_mics

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.sample_rate

    def _stream(self, path: Path, chunk_samples: int, start: int, stop: int | None) -> Iterator[np.ndarray]:
        if chunk_samples <= 0:
            raise ValueError("chunk_samples must be positive")
        stop = self.n_frames if stop is None else min(stop, self.n_frames)
        with _open_wav(path) as f:
            f.seek(start)
            pos = start
            while pos < stop:
                n = min(chunk_samples, stop - pos)
                try:
                    block = f.read(n, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    raise RecordingError(f"{path}: read error at {pos / self.sample_rate:.3f} s: {exc}") from None
                if len(block) == 0:
                    raise RecordingError(f"{path}: truncated WAV: data ends at {pos / self.sample_rate:.3f} s")
                if not np.isfinite(block).all():
                    bad = int(np.argwhere(~np.isfinite(block))[0][0]) + pos
                    raise RecordingError(f"{path}: NaN or Inf sample at {bad / self.sample_rate:.6f} s")
                pos += len(block)
                yield block

    def chunks(self, chunk_samples: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield mic blocks of shape ``(<=chunk_samples, n_mics)``, float32 in [-1, 1] full scale."""
        yield from self._stream(self.path, chunk_samples, start, stop)

    def reference_chunks(self, chunk_samples: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield reference blocks of shape ``(<=chunk_samples,)``; raises if the recording has no reference."""
        if self.reference_path is None:
            raise RecordingError(f"{sidecar_path(self.path)}: recording has no reference")
        for block in self._stream(self.reference_path, chunk_samples, start, stop):
            yield block[:, 0]

    def read_all(self) -> np.ndarray:
        """The whole mic signal ``(n_frames, n_mics)``: only for short clips (tests, plots)."""
        blocks = list(self.chunks(1 << 20))
        return np.concatenate(blocks) if blocks else np.zeros((0, self.n_mics), np.float32)


class RecordingWriter:
    """Write a recording block by block; the sidecar is written last (atomically) on :meth:`close`.

    ``with RecordingWriter(path, sidecar, sample_format="int16", with_reference=True) as w:
    w.write(mics, reference)``. ``mics``: ``(n, n_mics)`` float in [-1, 1]; values beyond are clipped
    for integer formats.
    """

    def __init__(self, wav_path: str | os.PathLike, sidecar: Sidecar, sample_format: str = "int16",
                 with_reference: bool = False):
        if sample_format not in SUBTYPES:
            raise RecordingError(f"unknown sample format {sample_format!r} (use {', '.join(SUBTYPES)})")
        self.path = Path(wav_path)
        self.sidecar = sidecar
        if with_reference and sidecar.reference is None:
            sidecar.reference = reference_name(self.path)
        if not with_reference:
            sidecar.reference = None
        sidecar.validate(str(sidecar_path(self.path)))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        subtype = SUBTYPES[sample_format]
        self._clip = sample_format != "float32"
        self._wav = sf.SoundFile(str(self.path), "w", sidecar.sample_rate, sidecar.n_mics, subtype, format="WAV")
        self._ref = None
        if with_reference:
            self._ref = sf.SoundFile(str(self.path.parent / sidecar.reference), "w", sidecar.sample_rate, 1,
                                     subtype, format="WAV")
        self.n_frames = 0

    def write(self, mics: np.ndarray, reference: np.ndarray | None = None) -> None:
        mics = np.asarray(mics, dtype=np.float32)
        if mics.ndim != 2 or mics.shape[1] != self.sidecar.n_mics:
            raise ValueError(f"mics must be (n, {self.sidecar.n_mics}), got {mics.shape}")
        if self._clip:
            mics = np.clip(mics, -1.0, 1.0)
        self._wav.write(mics)
        if self._ref is not None:
            if reference is None or len(reference) != len(mics):
                raise ValueError("reference block must be given with the same length as the mic block")
            ref = np.asarray(reference, dtype=np.float32)
            self._ref.write(np.clip(ref, -1.0, 1.0) if self._clip else ref)
        self.n_frames += len(mics)

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None
            if self._ref is not None:
                self._ref.close()
                self._ref = None
            write_sidecar(self.path, self.sidecar)

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
