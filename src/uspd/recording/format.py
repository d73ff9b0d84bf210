"""The recording format: ``NAME.wav`` (one channel per mic) + ``NAME.json`` sidecar (+ optional reference and labels).

Minimal sidecar every reader accepts (outside tools write it)::

    {"sample_rate": 96000, "carrier_hz": [40000.0],
     "mic_positions_m": [[0.035, 0.0, 0.05], [-0.035, 0.0, 0.05]],
     "reference": "NAME.ref.wav"}

``mic_positions_m`` are relative to the loudspeaker, one per WAV channel. ``reference`` is a mono WAV of exactly what
the loudspeaker played (same rate and length), relative to the sidecar's folder, or ``null`` when unknown. Unknown
keys are kept (``Sidecar.extra``) and written back. Ground truth lives in ``NAME.labels.json``, never in the sidecar.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uspd.errors import RecordingError

FORMAT_VERSION = 1
#: Half-width of the Doppler band that must fit below Nyquist around every carrier (Hz).
MIN_DOPPLER_BAND_HZ = 1000.0


def sidecar_path(wav_path: str | os.PathLike) -> Path:
    """``NAME.wav`` -> ``NAME.json``."""
    return Path(wav_path).with_suffix(".json")


def labels_path(wav_path: str | os.PathLike) -> Path:
    """``NAME.wav`` -> ``NAME.labels.json``."""
    p = Path(wav_path)
    return p.with_name(p.stem + ".labels.json")


def reference_name(wav_path: str | os.PathLike) -> str:
    """Default file name of the reference for ``NAME.wav``: ``NAME.ref.wav``."""
    return Path(wav_path).stem + ".ref.wav"


@dataclass
class Sidecar:
    """Everything a detector may know about a recording (no ground truth).

    sample_rate: Hz. carrier_hz: list of carrier frequencies (Hz). mic_positions_m: (n_mics, 3) metres relative
    to the loudspeaker, in WAV channel order. reference: file name of the played signal (relative to the sidecar)
    or None. extra: every other key, kept as read.
    """

    sample_rate: int
    carrier_hz: list[float]
    mic_positions_m: list[list[float]]
    reference: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_mics(self) -> int:
        return len(self.mic_positions_m)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format_version": FORMAT_VERSION}
        d.update(self.extra)
        d.update(
            sample_rate=int(self.sample_rate),
            carrier_hz=[float(f) for f in self.carrier_hz],
            mic_positions_m=[[float(x) for x in p] for p in self.mic_positions_m],
            reference=self.reference,
        )
        return d

    def validate(self, where: str = "sidecar") -> None:
        """Raise RecordingError (one line, naming ``where``) if the values are inconsistent."""
        if not isinstance(self.sample_rate, int) or isinstance(self.sample_rate, bool) or self.sample_rate <= 0:
            raise RecordingError(f"{where}: sample_rate must be a positive integer (Hz), got {self.sample_rate!r}")
        if not isinstance(self.carrier_hz, list) or not self.carrier_hz:
            raise RecordingError(f"{where}: carrier_hz must be a non-empty list of frequencies (Hz)")
        nyquist = self.sample_rate / 2
        for f in self.carrier_hz:
            if not _is_number(f) or not math.isfinite(f) or f <= 0:
                raise RecordingError(f"{where}: carrier_hz has an invalid frequency {f!r}")
            if f - MIN_DOPPLER_BAND_HZ <= 0 or f + MIN_DOPPLER_BAND_HZ >= nyquist:
                raise RecordingError(
                    f"{where}: carrier {f:g} Hz with its ±{MIN_DOPPLER_BAND_HZ:g} Hz Doppler band does not fit "
                    f"between 0 and half the sample rate ({nyquist:g} Hz); use a carrier between "
                    f"{MIN_DOPPLER_BAND_HZ:g} and {nyquist - MIN_DOPPLER_BAND_HZ:g} Hz or a higher sample rate"
                )
        if not isinstance(self.mic_positions_m, list) or not self.mic_positions_m:
            raise RecordingError(f"{where}: mic_positions_m must be a non-empty list of [x, y, z] positions (m)")
        for p in self.mic_positions_m:
            if not isinstance(p, list) or len(p) != 3 or not all(_is_number(x) and math.isfinite(x) for x in p):
                raise RecordingError(f"{where}: mic_positions_m entries must be [x, y, z] in metres, got {p!r}")
        if self.reference is not None and (not isinstance(self.reference, str) or not self.reference):
            raise RecordingError(f"{where}: reference must be a file name or null, got {self.reference!r}")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def sidecar_from_dict(d: Any, where: str = "sidecar") -> Sidecar:
    """Build and validate a Sidecar from parsed JSON; unknown keys go to ``extra``."""
    if not isinstance(d, dict):
        raise RecordingError(f"{where}: sidecar must be a JSON object")
    missing = [k for k in ("sample_rate", "carrier_hz", "mic_positions_m") if k not in d]
    if missing:
        raise RecordingError(f"{where}: sidecar is missing {', '.join(missing)}")
    sr = d["sample_rate"]
    if isinstance(sr, float) and sr.is_integer():
        sr = int(sr)
    carriers = d["carrier_hz"]
    if _is_number(carriers):
        carriers = [carriers]
    extra = {k: v for k, v in d.items() if k not in ("sample_rate", "carrier_hz", "mic_positions_m", "reference")}
    sc = Sidecar(
        sample_rate=sr,
        carrier_hz=[float(f) if _is_number(f) else f for f in carriers] if isinstance(carriers, list) else carriers,
        mic_positions_m=d["mic_positions_m"],
        reference=d.get("reference"),
        extra=extra,
    )
    sc.validate(where)
    return sc


def read_sidecar(wav_path: str | os.PathLike) -> Sidecar:
    """Read and validate the sidecar beside ``wav_path``. Raises RecordingError with a one-line message."""
    path = sidecar_path(wav_path)
    if not path.exists():
        raise RecordingError(f"{path}: sidecar not found (every recording needs NAME.json beside NAME.wav)")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: cannot read sidecar: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RecordingError(f"{path}: malformed sidecar JSON: {exc.msg} at line {exc.lineno}") from None
    return sidecar_from_dict(d, where=str(path))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON to ``path`` via a temporary file and rename, so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_sidecar(wav_path: str | os.PathLike, sidecar: Sidecar) -> Path:
    sidecar.validate(str(sidecar_path(wav_path)))
    path = sidecar_path(wav_path)
    write_json_atomic(path, sidecar.to_dict())
    return path
