"""Streaming reader and writer for recordings (WAV + sidecar + optional reference).

An hours-long file is never loaded whole: :meth:`RecordingReader.chunks` yields ``(n, n_mics)`` float32 blocks.
Every problem is a :class:`uspd.errors.RecordingError` whose one-line message names the file.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from uspd.errors import RecordingError
from uspd.recording.format import Sidecar, read_sidecar, reference_name, sidecar_path, write_sidecar

#: WAV sample formats uspd writes and accepts.
SUBTYPES = {"int16": "PCM_16", "int24": "PCM_24", "float32": "FLOAT"}
_BYTES_PER_SAMPLE = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
ACCEPTED_SUBTYPES = set(_BYTES_PER_SAMPLE)
#: Subtypes that can hold NaN/Inf (integer PCM cannot, so it is not scanned).
_FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
#: 16-bit PCM is read as int16 and scaled here (x / 32768, as libsndfile's float conversion: the same float32 values),
#: straight into channel-major memory: about 3x less time than libsndfile's conversion plus the front end's transpose.
_PCM16_SCALE = np.float32(1.0 / 32768.0)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _open_wav(path: Path, what: str = "WAV") -> sf.SoundFile:
    if not path.exists():
        raise RecordingError(f"{path}: {what} file not found")
    if not path.is_file():
        raise RecordingError(f"{path}: {what} is not a regular file")
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise RecordingError(f"{path}: unreadable {what} ({_one_line(exc)})") from None
    if f.subtype not in ACCEPTED_SUBTYPES:
        f.close()
        raise RecordingError(f"{path}: unsupported sample format {f.subtype} (use int16, int24 or float32)")
    return f


#: Declared data sizes that streaming writers leave when they never go back to fill in the header.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def _wav_data_span(path: Path) -> tuple[int, int] | None:
    """``(offset, declared bytes)`` of the ``data`` chunk of a RIFF/RF64 WAV, read from the chunk headers only.

    None if the file is not RIFF/RF64 or the header leaves the size open (streaming writers).
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64"):
            return None
        ds64_data_size = None
        pos = 12
        for _ in range(10000):  # chunk walk; real files have a handful of chunks
            fh.seek(pos)
            hdr = fh.read(8)
            if len(hdr) < 8:
                return None
            cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"ds64":
                body = fh.read(16)
                if len(body) == 16:
                    ds64_data_size = struct.unpack("<Q", body[8:16])[0]
            elif cid == b"data":
                if size == 0xFFFFFFFF and ds64_data_size is not None:
                    size = ds64_data_size
                return None if size in _UNKNOWN_SIZES else (pos + 8, size)
            pos += 8 + size + (size & 1)
    return None


def _check_not_truncated(path: Path, f: sf.SoundFile) -> int:
    """Frames the WAV holds; RecordingError if its data ends before the header says.

    libsndfile silently shortens a truncated file to the frames present, so the RIFF header is checked here.
    """
    bytes_per_frame = _BYTES_PER_SAMPLE.get(f.subtype, 0) * f.channels
    span = _wav_data_span(path) if bytes_per_frame and f.format in ("WAV", "WAVEX", "RF64") else None
    if span is not None:
        offset, declared = span
        size = path.stat().st_size
        if offset + declared > size:
            raise RecordingError(
                f"{path}: truncated WAV: header says {declared // bytes_per_frame} frames but the file holds "
                f"{max(0, size - offset) // bytes_per_frame}"
            )
    return f.frames


class RecordingReader:
    """Open and validate a recording; stream its mic signals (and reference) in chunks.

    Validation on open: sidecar present and well formed, WAV readable and not truncated, channel count equal to the
    number of mic positions, WAV rate equal to the sidecar's, reference (if any) mono with the same rate and length.
    NaN/Inf samples are detected while streaming (the message gives the time).
    """

    def __init__(self, wav_path: str | os.PathLike):
        self.path = Path(wav_path)
        if not self.path.exists():
            raise RecordingError(f"{self.path}: recording WAV file not found")
        self.sidecar: Sidecar = read_sidecar(self.path)
        with _open_wav(self.path) as f:
            self.n_frames = _check_not_truncated(self.path, f)
            channels, rate = f.channels, f.samplerate
            self._subtype = f.subtype
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
            self.reference_path = self._check_reference(self.path.parent / self.sidecar.reference, rate)

    def _check_reference(self, ref: Path, rate: int) -> Path:
        if not ref.exists():
            raise RecordingError(f"{ref}: reference file not found (named in {sidecar_path(self.path)})")
        with _open_wav(ref, "reference WAV") as f:
            ref_frames = _check_not_truncated(ref, f)
            self._ref_subtype = f.subtype
            if f.channels != 1:
                raise RecordingError(f"{ref}: reference must be mono, it has {f.channels} channels")
            if f.samplerate != rate:
                raise RecordingError(f"{ref}: reference rate {f.samplerate} Hz differs from the recording's {rate} Hz")
        if ref_frames != self.n_frames:
            raise RecordingError(
                f"{ref}: reference has {ref_frames} frames but the recording has {self.n_frames}; "
                f"they must be the same length"
            )
        return ref

    @property
    def sample_rate(self) -> int:
        return self.sidecar.sample_rate

    @property
    def n_mics(self) -> int:
        return self.sidecar.n_mics

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.sample_rate

    def _stream(self, path: Path, subtype: str, chunk_samples: int, start: int,
                stop: int | None) -> Iterator[np.ndarray]:
        if chunk_samples <= 0 or start < 0:
            raise ValueError("chunk_samples must be positive and start non-negative")
        stop = self.n_frames if stop is None else min(stop, self.n_frames)
        check_finite = subtype in _FLOAT_SUBTYPES
        with _open_wav(path) as f:
            if start:
                f.seek(min(start, self.n_frames))
            pos = start
            while pos < stop:
                n = min(chunk_samples, stop - pos)
                try:
                    if subtype == "PCM_16":
                        raw = f.read(n, dtype="int16", always_2d=True)
                        block = np.multiply(np.ascontiguousarray(raw.T), _PCM16_SCALE, dtype=np.float32).T
                    else:
                        block = f.read(n, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError, OSError) as exc:
                    raise RecordingError(
                        f"{path}: read error at {pos / self.sample_rate:.3f} s ({_one_line(exc)})") from None
                if len(block) == 0:
                    raise RecordingError(f"{path}: truncated WAV: data ends at {pos / self.sample_rate:.3f} s")
                if check_finite and not np.isfinite(block).all():
                    bad = int(np.argwhere(~np.isfinite(block))[0][0]) + pos
                    raise RecordingError(f"{path}: NaN or Inf sample at {bad / self.sample_rate:.6f} s "
                                         f"(frame {bad})")
                pos += len(block)
                yield block

    def chunks(self, chunk_samples: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield mic blocks of shape ``(<=chunk_samples, n_mics)``, float32 in [-1, 1] full scale (from 16-bit files a
        transposed view of channel-major memory, which the front end uses without a copy)."""
        yield from self._stream(self.path, self._subtype, chunk_samples, start, stop)

    def reference_chunks(self, chunk_samples: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield reference blocks of shape ``(<=chunk_samples,)``; raises if the recording has no reference."""
        if self.reference_path is None:
            raise RecordingError(f"{sidecar_path(self.path)}: recording has no reference")
        for block in self._stream(self.reference_path, self._ref_subtype, chunk_samples, start, stop):
            yield block[:, 0]

    def read_all(self) -> np.ndarray:
        """The whole mic signal ``(n_frames, n_mics)``: only for short clips (tests, plots)."""
        blocks = list(self.chunks(1 << 20))
        return np.concatenate(blocks) if blocks else np.zeros((0, self.n_mics), np.float32)


class RecordingWriter:
    """Write a recording block by block; the sidecar is written last (atomically) on :meth:`close`.

    ``with RecordingWriter(path, sidecar, sample_format="int16", with_reference=True) as w:
    w.write(mics, reference)``. ``mics``: ``(n, n_mics)`` float in [-1, 1]; values beyond are clipped
    for integer formats; NaN/Inf are refused. The caller's ``sidecar`` is not modified: the written one is
    ``self.sidecar`` (a copy, its ``reference`` set to ``NAME.ref.wav`` or None), extra keys kept.
    """

    def __init__(self, wav_path: str | os.PathLike, sidecar: Sidecar, sample_format: str = "int16",
                 with_reference: bool = False):
        self.path = Path(wav_path)
        if sample_format not in SUBTYPES:
            raise RecordingError(f"{self.path}: unknown sample format {sample_format!r} (use {', '.join(SUBTYPES)})")
        self.sidecar = dataclasses.replace(
            sidecar,
            carrier_hz=list(sidecar.carrier_hz),
            mic_positions_m=[list(p) for p in sidecar.mic_positions_m],
            reference=reference_name(self.path) if with_reference else None,
            extra=copy.deepcopy(sidecar.extra),
        )
        self.sidecar.validate(str(sidecar_path(self.path)))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        subtype = SUBTYPES[sample_format]
        self._clip = sample_format != "float32"
        rate, n_mics = self.sidecar.sample_rate, self.sidecar.n_mics
        self._wav = sf.SoundFile(str(self.path), "w", rate, n_mics, subtype, format="WAV")
        self._ref = None
        if with_reference:
            self._ref = sf.SoundFile(str(self.path.parent / self.sidecar.reference), "w", rate, 1, subtype,
                                     format="WAV")
        self.n_frames = 0

    def _prepare(self, x: np.ndarray, what: str) -> np.ndarray:
        if not np.isfinite(x).all():
            raise RecordingError(f"{self.path}: refusing to write NaN or Inf {what} samples "
                                 f"(block starting at frame {self.n_frames})")
        return np.clip(x, -1.0, 1.0) if self._clip else x

    def write(self, mics: np.ndarray, reference: np.ndarray | None = None) -> None:
        """Append ``mics`` ``(n, n_mics)`` and, if the recording has one, ``reference`` ``(n,)``."""
        if self._wav is None:
            raise ValueError(f"{self.path}: write after close")
        mics = np.asarray(mics, dtype=np.float32)
        if mics.ndim != 2 or mics.shape[1] != self.sidecar.n_mics:
            raise ValueError(f"mics must be (n, {self.sidecar.n_mics}), got {mics.shape}")
        ref = None
        if self._ref is not None:
            if reference is None or np.shape(reference) != (len(mics),):
                raise ValueError("reference block must be given, shape (n,), with the same n as the mic block")
            ref = self._prepare(np.asarray(reference, dtype=np.float32), "reference")
        self._wav.write(self._prepare(mics, "mic"))
        if ref is not None:
            self._ref.write(ref)
        self.n_frames += len(mics)

    def close(self) -> None:
        """Finish the WAV(s), then write the sidecar; calling it again does nothing."""
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
