"""Ground truth: ``NAME.labels.json`` beside a recording (never read by detection).

Schema::

    {"duration_s": 60.0,
     "intervals": [{"start_s": 3.2, "end_s": 9.8, "kind": "major", "distance_m": 1.4},
                   {"start_s": 20.0, "end_s": 21.1, "kind": "minor", "distance_m": 1.2, "action": "reach"},
                   {"start_s": 0.0, "end_s": 60.0, "kind": "fan"}],
     ...any other keys (scene spec, seed) kept in ``extra``}

``distance_m`` is the closest approach to the device during the interval.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uspd.errors import RecordingError
from uspd.recording.format import labels_path, write_json_atomic

#: Motion a detector must report.
MOTION_KINDS = ("major", "minor")
#: Labelled but not motion: a still person (breathing), a pet, a person beyond 5 m.
NON_MOTION_KINDS = ("presence", "pet", "far")
#: Things that must not trigger motion (FA/h is reported per confuser).
CONFUSER_KINDS = ("fan", "curtain", "hvac", "pet", "keys", "music", "vacuum", "door", "far")
#: Seated minor actions.
MINOR_ACTIONS = ("reach", "page", "typing", "cup")


@dataclass
class LabelInterval:
    start_s: float
    end_s: float
    kind: str
    distance_m: float | None = None
    action: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(start_s=round(float(self.start_s), 4), end_s=round(float(self.end_s), 4), kind=self.kind)
        if self.distance_m is not None:
            d["distance_m"] = round(float(self.distance_m), 3)
        if self.action is not None:
            d["action"] = self.action
        return d


@dataclass
class Labels:
    duration_s: float
    intervals: list[LabelInterval] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def of_kind(self, *kinds: str) -> list[LabelInterval]:
        return [iv for iv in self.intervals if iv.kind in kinds]

    def has_people(self) -> bool:
        """True if any person is in the clip within range (motion or still presence)."""
        return any(iv.kind in ("major", "minor", "presence") for iv in self.intervals)

    def confusers(self) -> list[str]:
        return sorted({iv.kind for iv in self.intervals if iv.kind in CONFUSER_KINDS})

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(duration_s=round(float(self.duration_s), 4), intervals=[iv.to_dict() for iv in self.intervals])
        return d


def labels_from_dict(d: Any, where: str = "labels") -> Labels:
    if not isinstance(d, dict) or "intervals" not in d or not isinstance(d["intervals"], list):
        raise RecordingError(f"{where}: labels must be a JSON object with an 'intervals' list")
    out = []
    for iv in d["intervals"]:
        try:
            out.append(
                LabelInterval(
                    start_s=float(iv["start_s"]),
                    end_s=float(iv["end_s"]),
                    kind=str(iv["kind"]),
                    distance_m=None if iv.get("distance_m") is None else float(iv["distance_m"]),
                    action=iv.get("action"),
                    extra={k: v for k, v in iv.items() if k not in ("start_s", "end_s", "kind", "distance_m", "action")},
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordingError(f"{where}: bad label interval {iv!r}: {type(exc).__name__} {exc}") from None
        last = out[-1]
        if not (math.isfinite(last.start_s) and math.isfinite(last.end_s) and last.end_s >= last.start_s):
            raise RecordingError(f"{where}: label interval needs finite start_s <= end_s (s), got {iv!r}")
    duration = d.get("duration_s")
    if duration is None:
        duration = max((iv.end_s for iv in out), default=0.0)
    return Labels(duration_s=float(duration), intervals=out,
                  extra={k: v for k, v in d.items() if k not in ("duration_s", "intervals")})


def read_labels(wav_path: str | os.PathLike) -> Labels | None:
    """Labels beside ``wav_path``, or None if there are none."""
    path = labels_path(wav_path)
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordingError(f"{path}: malformed labels JSON: {exc}") from None
    return labels_from_dict(d, where=str(path))


def write_labels(wav_path: str | os.PathLike, labels: Labels) -> Path:
    path = labels_path(wav_path)
    write_json_atomic(path, labels.to_dict())
    return path
