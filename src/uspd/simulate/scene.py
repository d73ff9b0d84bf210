"""Declarative scenes for the room simulator: spec dicts (TOML/JSON), named presets and a random sampler.

A scene spec is a dict (from TOML or JSON). Every key is optional; a value left out is drawn from the render seed
within the ranges given below (so one preset rendered with different seeds gives different rooms, devices and
paths), except the defaults marked "fixed"::

    duration_s = 20.0          # fixed default; "inf" (or math.inf) for an endless live scene
    sample_rate = 96000        # fixed default (Hz); 48000 also supported
    carrier_hz = 40000.0       # fixed default at 96 kHz, 20000.0 at 48 kHz; a list gives several tones
    temperature_c = 20.0       # degC (random spec: 15-30)
    humidity_pct = 50.0        # % RH (random spec: 20-80)
    pressure_kpa = 101.325
    reference = true           # render_to_file writes NAME.ref.wav (the playback is known)
    seed = 0                   # used when SceneRenderer gets no seed

    [room]                     # shoebox, room coordinates in metres, origin in a floor corner
    size_m = [5.0, 4.0, 2.7]   # random 2.5-8 x 2.5-8 x 2.4-3.2
    reflection = 0.85          # amplitude reflection coefficient, or 6 values [x=0, x=Lx, y=0, y=Ly, floor,
                               # ceiling]; random 0.55-0.95 per wall (soft furnishing lower)
    image_order = 3            # image-source order of the static field (fixed default)
    device_position_m = [2.5, 0.3, 0.9]   # random: on a shelf/table 0.1-0.5 m from a wall, 0.4-1.5 m high
    scatterers = 5             # furniture point scatterers: a count (random 3-8) or [[x, y, z, ts_db], ...]
    door_m = [0.0, 2.0]        # door centre on a wall [x, y]; random

    [device]                   # loudspeaker at the origin of DEVICE coordinates (= room coords - device_position_m)
    n_mics = 4                 # fixed default; 2-8
    ring_radius_m = 0.04       # random 0.03-0.05
    mic_height_m = 0.02        # z offset of the mic ring above the speaker; random 0-0.05
    mic_positions_m = [[x, y, z], ...]    # explicit positions (override the ring)
    speaker_gain_db = 0.0      # unit spread of the speaker level at the carrier; random +-3 dB
    mic_gain_db = [0, 0, 0, 0] # unit spread; random +-2 dB each
    mic_phase_deg = [0, ...]   # unit spread of the mic phase at the carrier; random +-30 deg each
    self_noise_dbfs = -85.0    # white self-noise RMS per mic (fixed default)
    latency_s = 0.004          # playback -> capture latency; random 2-8 ms
    capture_bits = 16          # ADC resolution; 0 = unquantised float
    emission_dbfs = -6.0       # tone drive level (peak) in the reference, dBFS (fixed default)
    clock_ppm = 0.0            # playback clock's rate re the capture clock (ppm): the tone is recorded at
                               # carrier x (1 + ppm 1e-6) while the sidecar gives the carrier; 0 = one shared clock
    speaker_radius_m = 0.0     # radiating piston radius: the room is lit through its beam (uspd.physics.
                               # piston_directivity); 0 = a point source, omnidirectional (fixed default)
    speaker_axis_deg = [0, 20] # beam axis [azimuth from +x towards +y, elevation]; random: into the room +-40 deg,
                               # -10..50 deg up
    coupling_db = 0.0          # direct speaker->mic path re free field (enclosure, ports, isolation); fixed default

    [[movers]]                 # see uspd.simulate.movers for every type and its keys
    type = "person"            # person | pet | fan | curtain | plant | vacuum | door | hvac | keys
    route = "enter"
    start_s = 2.0

    [music]                    # procedurally synthesised; absent = no music
    start_s = 0.0
    level_dbfs = -14.0         # bass-voice peak drive level
    nonlinearity = true        # loudspeaker IMD + cone-excursion phase modulation of the tone
    a2 = 0.05                  # polynomial coefficients y = d + a2 d^2 + a3 d^3 (drive full scale 1)
    a3 = 0.03
    excursion_mm_per_fs = 3.0  # cone excursion (mm) per unit of low-band drive
    bass_hz = 60.0             # optional: a steady bass drone (no bass line, no kick) at this frequency

Random scene kinds (``random_scene_spec(rng, kind)``) for the dataset builders: ``None`` (any: a mixture of the
kinds below), ``"walk"`` (a person walking within 5 m, maybe with confusers), ``"seated"`` (walk in, sit, minor
actions), ``"still"`` (a still breathing person, no motion), ``"far"`` (a person moving only beyond 5 m),
``"negative"`` (no person: one or more confusers, or an empty room), ``"music_motion"`` (music plus a walker or a
seated person), ``"empty"``, and one per confuser: ``"fan"``, ``"curtain"``, ``"plant"``, ``"hvac"``, ``"pet"``,
``"keys"``, ``"music"``, ``"vacuum"``, ``"door"``. ``"walk+confusers"`` (and ``seated``, ``still``, ``far``): that
person scene with 1-3 confusers always mixed in; ``"music+confusers"`` (and every other confuser): that confuser with
1-2 others beside it, nobody there.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from uspd.config import coerce_value
from uspd.errors import UspdError


class SceneError(UspdError):
    """A scene spec (preset name, TOML/JSON file or dict) is invalid."""


SAMPLE_RATES = (48000, 96000)
DEFAULT_CARRIER_HZ = {96000: 40000.0, 48000: 20000.0}
#: Carrier ranges the random sampler draws from (Hz).
CARRIER_RANGE_HZ = {96000: (32000.0, 45000.0), 48000: (18000.0, 22000.0)}


@dataclass
class RoomSpec:
    size_m: list[float] | None = None
    reflection: float | list[float] | None = None
    image_order: int = 3
    device_position_m: list[float] | None = None
    scatterers: int | list[list[float]] | None = None
    door_m: list[float] | None = None


@dataclass
class DeviceSpec:
    n_mics: int = 4
    ring_radius_m: float | None = None
    mic_height_m: float | None = None
    mic_positions_m: list[list[float]] | None = None
    speaker_gain_db: float | None = None
    mic_gain_db: list[float] | None = None
    mic_phase_deg: list[float] | None = None
    self_noise_dbfs: float = -85.0
    latency_s: float | None = None
    capture_bits: int = 16
    emission_dbfs: float = -6.0
    clock_ppm: float = 0.0
    speaker_radius_m: float = 0.0
    speaker_axis_deg: list[float] | None = None
    coupling_db: float = 0.0


@dataclass
class MusicSpec:
    start_s: float = 0.0
    end_s: float | None = None
    level_dbfs: float = -14.0
    tempo_bpm: float | None = None
    nonlinearity: bool = True
    a2: float = 0.05
    a3: float = 0.03
    excursion_mm_per_fs: float = 3.0
    bass_hz: float | None = None


@dataclass
class MoverSpec:
    """One mover: ``type`` and its type-specific keys (validated by ``uspd.simulate.movers``)."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.params}


@dataclass
class Scene:
    """A scene: room, device, movers, music, duration, carriers. ``None`` fields are drawn from the seed."""

    duration_s: float = 20.0
    sample_rate: int = 96000
    carrier_hz: float | list[float] | None = None
    temperature_c: float = 20.0
    humidity_pct: float = 50.0
    pressure_kpa: float = 101.325
    reference: bool = True
    seed: int = 0
    name: str | None = None
    room: RoomSpec = field(default_factory=RoomSpec)
    device: DeviceSpec = field(default_factory=DeviceSpec)
    movers: list[MoverSpec] = field(default_factory=list)
    music: MusicSpec | None = None

    @property
    def carriers_hz(self) -> list[float]:
        return list(self.carrier_hz) if self.carrier_hz else [DEFAULT_CARRIER_HZ[self.sample_rate]]

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-able dict (``load_scene(scene.to_dict())`` gives the same scene)."""
        d = dataclasses.asdict(self)
        d["movers"] = [m.to_dict() for m in self.movers]
        if math.isinf(self.duration_s):
            d["duration_s"] = "inf"
        return _strip_none(d)


def _strip_none(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _strip_none(v) for k, v in d.items() if v is not None}
    if isinstance(d, list):
        return [_strip_none(v) for v in d]
    if isinstance(d, np.generic):
        return d.item()
    return d


# --------------------------------------------------------------------------------------------------- parsing

def _check_value(value: Any, tp: Any, where: str) -> Any:
    """A spec value checked against its type hint (integral floats for ints, "inf" for floats); SceneError."""
    return coerce_value(value, tp, where, error=SceneError, lenient_numbers=True)


def _build(cls: type, d: Any, where: str) -> Any:
    if not isinstance(d, dict):
        raise SceneError(f"{where}: expected a table/object, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise SceneError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
    return cls(**{k: _check_value(v, hints[k], f"{where}.{k}") for k, v in d.items()})


def scene_from_dict(spec: dict[str, Any], where: str = "scene") -> Scene:
    """Build and validate a :class:`Scene` from a spec dict; raises :class:`SceneError` (one line)."""
    if not isinstance(spec, dict):
        raise SceneError(f"{where}: a scene spec must be a table/object")
    spec = copy.deepcopy(spec)
    top = {k: v for k, v in spec.items() if k not in ("room", "device", "movers", "music")}
    scene = _build(Scene, top, where)
    scene.room = _build(RoomSpec, spec.get("room", {}), f"{where}.room")
    scene.device = _build(DeviceSpec, spec.get("device", {}), f"{where}.device")
    music = spec.get("music")
    scene.music = None if music in (None, False) else _build(MusicSpec, {} if music is True else music,
                                                             f"{where}.music")
    movers = spec.get("movers", [])
    if not isinstance(movers, list):
        raise SceneError(f"{where}.movers: expected a list of movers")
    from uspd.simulate.movers import validate_mover  # local import: movers imports this module

    scene.movers = []
    for i, m in enumerate(movers):
        if not isinstance(m, dict) or not isinstance(m.get("type"), str):
            raise SceneError(f"{where}.movers[{i}]: each mover needs a 'type' string")
        params = {k: v for k, v in m.items() if k != "type"}
        validate_mover(m["type"], params, f"{where}.movers[{i}]")
        scene.movers.append(MoverSpec(m["type"], params))
    _validate(scene, where)
    return scene


def _validate(s: Scene, where: str) -> None:
    if s.sample_rate not in SAMPLE_RATES:
        raise SceneError(f"{where}.sample_rate: must be one of {SAMPLE_RATES} Hz, got {s.sample_rate}")
    if not (s.duration_s > 0):
        raise SceneError(f"{where}.duration_s: must be positive (s), got {s.duration_s}")
    if isinstance(s.carrier_hz, float):
        s.carrier_hz = [s.carrier_hz]
    if s.carrier_hz is not None and not s.carrier_hz:
        raise SceneError(f"{where}.carrier_hz: give at least one carrier frequency (Hz)")
    for f in s.carriers_hz:
        if not (1000.0 < f < s.sample_rate / 2 - 1000.0):
            raise SceneError(f"{where}.carrier_hz: {f:g} Hz with its +-1 kHz Doppler band does not fit below "
                             f"{s.sample_rate / 2:g} Hz")
    d = s.device
    n = len(d.mic_positions_m) if d.mic_positions_m else d.n_mics
    if not 1 <= n <= 16:
        raise SceneError(f"{where}.device.n_mics: must be 1..16, got {n}")
    d.n_mics = n
    for key in ("mic_gain_db", "mic_phase_deg"):
        v = getattr(d, key)
        if v is not None and len(v) != n:
            raise SceneError(f"{where}.device.{key}: needs {n} values (one per mic), got {len(v)}")
    if d.capture_bits not in (0, 16, 24):
        raise SceneError(f"{where}.device.capture_bits: must be 16, 24 or 0 (float), got {d.capture_bits}")
    if not abs(d.clock_ppm) <= MAX_CLOCK_PPM:
        raise SceneError(f"{where}.device.clock_ppm: must be within +-{MAX_CLOCK_PPM:g} ppm, got {d.clock_ppm}")
    if not 0.0 <= d.speaker_radius_m <= MAX_SPEAKER_RADIUS_M:
        raise SceneError(f"{where}.device.speaker_radius_m: must be in [0, {MAX_SPEAKER_RADIUS_M:g}] m, got "
                         f"{d.speaker_radius_m}")
    if d.speaker_axis_deg is not None and len(d.speaker_axis_deg) != 2:
        raise SceneError(f"{where}.device.speaker_axis_deg: give [azimuth, elevation] in degrees")
    if not abs(d.coupling_db) <= MAX_COUPLING_DB:
        raise SceneError(f"{where}.device.coupling_db: must be within +-{MAX_COUPLING_DB:g} dB, got {d.coupling_db}")
    r = s.room
    if r.size_m is not None and (len(r.size_m) != 3 or min(r.size_m) <= 0.5):
        raise SceneError(f"{where}.room.size_m: needs 3 dimensions > 0.5 m, got {r.size_m}")
    if isinstance(r.reflection, list) and len(r.reflection) != 6:
        raise SceneError(f"{where}.room.reflection: give one value or 6 (x0, x1, y0, y1, floor, ceiling)")
    refl = r.reflection if isinstance(r.reflection, list) else [r.reflection]
    if any(x is not None and not 0 <= x < 1 for x in refl):
        raise SceneError(f"{where}.room.reflection: amplitude coefficients must be in [0, 1)")
    if not 0 <= r.image_order <= 5:
        raise SceneError(f"{where}.room.image_order: must be 0..5, got {r.image_order}")
    if r.device_position_m is not None and r.size_m is not None:
        p = r.device_position_m
        if len(p) != 3 or not all(0 < p[i] < r.size_m[i] for i in range(3)):
            raise SceneError(f"{where}.room.device_position_m: {p} is not inside the room {r.size_m}")


def load_scene(source: str | os.PathLike | dict | Scene, **overrides: Any) -> Scene:
    """A :class:`Scene` from a preset name, a ``.toml``/``.json`` spec file or a spec dict.

    ``overrides`` replace top-level keys (e.g. ``duration_s=5``, ``seed=3``, ``sample_rate=48000``); a dict value
    for ``room``/``device``/``music`` is merged into that section.
    """
    if isinstance(source, Scene):
        spec = source.to_dict()
        where = source.name or "scene"
    elif isinstance(source, dict):
        spec, where = copy.deepcopy(source), "scene"
    else:
        name = str(source)
        if name in PRESETS:
            spec, where = copy.deepcopy(PRESETS[name]), f"preset {name}"
            spec.setdefault("name", name)
        else:
            path = Path(name)
            if path.suffix.lower() not in (".toml", ".json"):
                raise SceneError(f"{name}: not a preset ({', '.join(PRESETS)}) nor a .toml/.json scene file")
            if not path.exists():
                raise SceneError(f"{path}: scene file not found")
            try:
                text = path.read_text(encoding="utf-8")
                spec = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
            except (OSError, UnicodeDecodeError) as exc:
                raise SceneError(f"{path}: cannot read scene file: {exc}") from None
            except tomllib.TOMLDecodeError as exc:
                raise SceneError(f"{path}: malformed TOML: {exc}") from None
            except json.JSONDecodeError as exc:
                raise SceneError(f"{path}: malformed JSON: {exc.msg} at line {exc.lineno}") from None
            where = str(path)
            spec.setdefault("name", path.stem)
    for k, v in overrides.items():
        if v is None:
            continue
        if isinstance(v, dict) and isinstance(spec.get(k), dict):
            spec[k] = {**spec[k], **v}
        else:
            spec[k] = v
    if "sample_rate" in overrides and "carrier_hz" not in overrides:
        rate = overrides["sample_rate"]
        cars = spec.get("carrier_hz")
        cars = [cars] if isinstance(cars, (int, float)) else cars
        if cars and rate in CARRIER_RANGE_HZ and any(f + 1000 >= rate / 2 for f in cars):
            spec.pop("carrier_hz")  # the preset's carrier does not fit: use the rate's default
    return scene_from_dict(spec, where)


# --------------------------------------------------------------------------------------------------- presets

_WALK_IN = {"type": "person", "route": "enter", "start_s": 2.0}

#: Named scenes. Details not given (room, device, exact paths) are drawn from the render seed.
PRESETS: dict[str, dict[str, Any]] = {
    "empty": {"duration_s": 20.0},
    "walk-in": {"duration_s": 20.0, "movers": [_WALK_IN]},
    "walk-in-then-leave": {"duration_s": 60.0, "movers": [
        {"type": "person", "route": "enter-leave", "start_s": 3.0, "stay_s": 25.0}]},
    "cross": {"duration_s": 20.0, "movers": [{"type": "person", "route": "cross", "start_s": 2.0}]},
    "approach": {"duration_s": 20.0, "movers": [{"type": "person", "route": "approach", "start_s": 4.0}]},
    "far": {"duration_s": 20.0, "room": {"size_m": [9.0, 6.0, 2.7], "device_position_m": [0.3, 3.0, 0.9]},
            "movers": [{"type": "person", "route": "far", "start_s": 2.0}]},
    "seated": {"duration_s": 40.0, "movers": [{"type": "person", "route": "seated", "start_s": 1.0}]},
    "still": {"duration_s": 20.0, "movers": [{"type": "person", "route": "still"}]},
    "fan": {"duration_s": 20.0, "movers": [{"type": "fan"}]},
    "ceiling-fan": {"duration_s": 20.0, "movers": [{"type": "fan", "kind": "ceiling"}]},
    "fan+walk": {"duration_s": 20.0, "movers": [{"type": "fan"}, _WALK_IN]},
    "music": {"duration_s": 20.0, "music": {}},
    "music+walk": {"duration_s": 20.0, "music": {}, "movers": [_WALK_IN]},
    "music+fan+walk": {"duration_s": 20.0, "music": {}, "movers": [{"type": "fan"}, _WALK_IN]},
    "pet": {"duration_s": 20.0, "movers": [{"type": "pet"}]},
    "curtain": {"duration_s": 20.0, "movers": [{"type": "curtain"}]},
    "plant": {"duration_s": 20.0, "movers": [{"type": "plant"}]},
    "hvac": {"duration_s": 20.0, "movers": [{"type": "hvac"}]},
    "keys": {"duration_s": 20.0, "movers": [{"type": "keys"}]},
    "vacuum": {"duration_s": 30.0, "movers": [{"type": "vacuum"}]},
    "door": {"duration_s": 20.0, "movers": [{"type": "door"}]},
    "everything": {"duration_s": 40.0, "music": {}, "movers": [
        {"type": "fan"}, {"type": "curtain"}, {"type": "hvac"}, {"type": "keys"}, {"type": "pet"},
        {"type": "person", "route": "seated", "start_s": 2.0}]},
}


# --------------------------------------------------------------------------------------------------- random

#: Kinds of random scenes and how often ``kind=None`` draws each.
RANDOM_KINDS: dict[str, float] = {
    "walk": 0.25, "seated": 0.15, "still": 0.04, "far": 0.04, "negative": 0.35, "music_motion": 0.12,
    "empty": 0.05,
}
CONFUSER_TYPES = ("fan", "curtain", "plant", "hvac", "pet", "keys", "music", "vacuum", "door")
#: ``<kind>+confusers``: that kind of person scene with 1-3 confusers always mixed in (hard positives: a detector
#: must find the person on top of the fan, the vacuum or the HVAC, not learn "confuser present -> nobody moves").
#: ``<confuser>+confusers``: that confuser with 1-2 others beside it and nobody there (e.g. music while a fan turns
#: or a pet walks: the movers' echoes carry the music's intermodulation sidebands).
PERSON_KINDS = ("walk", "seated", "still", "far")
CONFUSER_SUFFIX = "+confusers"
#: every kind :func:`random_scene_spec` accepts.
SCENE_KINDS = frozenset(RANDOM_KINDS) | frozenset(CONFUSER_TYPES) | frozenset(
    k + CONFUSER_SUFFIX for k in (*PERSON_KINDS, *CONFUSER_TYPES))


def _u(rng: np.random.Generator, lo: float, hi: float, nd: int = 3) -> float:
    return round(float(rng.uniform(lo, hi)), nd)


def _confuser(rng: np.random.Generator, kind: str, duration_s: float) -> tuple[dict | None, dict | None]:
    """(mover spec or None, music spec or None) for one confuser kind."""
    if kind == "music":
        return None, {"level_dbfs": _u(rng, -24, -8, 1), "tempo_bpm": _u(rng, 70, 150, 1),
                      "nonlinearity": bool(rng.random() < 0.85), "a2": _u(rng, 0.0, 0.1),
                      "a3": _u(rng, 0.0, 0.06), "excursion_mm_per_fs": _u(rng, 0.5, 5.0, 2)}
    m: dict[str, Any] = {"type": kind}
    if kind in ("fan", "hvac", "curtain", "plant") and rng.random() < 0.3:
        m["start_s"] = _u(rng, 0, duration_s * 0.6, 2)
    if kind == "fan":
        m["kind"] = "ceiling" if rng.random() < 0.35 else "desk"
    if kind == "keys":
        m["n_events"] = int(rng.integers(1, 5))
    if kind == "door":
        m["n_swings"] = int(rng.integers(1, 4))
    if kind == "pet":
        m["animal"] = "cat" if rng.random() < 0.4 else "dog"
    return m, None


#: Stands in for a confuser's mover in :func:`people_alone`: a still point that echoes nothing (-300 dB).
SILENT_MOVER = {"type": "point", "waypoints_m": [[0.5, 0.5, 0.5]], "ts_db": -300.0}


def people_alone(spec: dict) -> dict:
    """The resolved scene ``spec`` (``SceneRenderer.resolved_spec()``, kept in a recording's labels) with the people
    alone: every other mover replaced by :data:`SILENT_MOVER` and no music. Mover i keeps index i, so it draws the
    same random details from the seed, and the people walk the same paths with the same echoes; room, device,
    noise and seed stay."""
    out = dict(spec)
    out["movers"] = [m if m.get("type") == "person" else dict(SILENT_MOVER) for m in spec.get("movers", [])]
    out.pop("music", None)
    return out


#: The range the room resolver draws each wall's amplitude reflection coefficient from when a scene leaves it open
#: (``uspd.simulate.room.resolve_world``): hard, bare walls. Furnished rooms absorb more at ultrasound.
WALL_REFLECTION_RANGE = (0.55, 0.95)
#: Tag of the generator :func:`with_wall_reflection` draws from (apart from the scene's own draws).
_REFLECTION_TAG = 0x5245464C


def check_wall_reflection(reflection) -> tuple[float, float]:
    """(lo, hi) as floats when 0 <= lo <= hi < 1 (amplitude reflection coefficients), else a one-line SceneError."""
    lo, hi = (float(v) for v in reflection)
    if not 0.0 <= lo <= hi < 1.0:
        raise SceneError(f"--reflection {lo:g},{hi:g}: a wall reflection range needs 0 <= LO <= HI < 1")
    return lo, hi


def with_wall_reflection(spec: dict, reflection: tuple[float, float], seed: int) -> dict:
    """``spec`` with six wall reflection coefficients (x0, x1, y0, y1, floor, ceiling) drawn uniformly in
    ``reflection`` = (lo, hi), 0 <= lo <= hi < 1, from a generator of their own seeded by ``seed``: every other detail
    of the scene is drawn exactly as without them. A spec that sets its reflection already is returned as it is."""
    lo, hi = check_wall_reflection(reflection)
    room = spec.get("room") or {}
    if room.get("reflection") is not None:
        return spec
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _REFLECTION_TAG]))
    out = copy.deepcopy(spec)
    out["room"] = {**room, "reflection": [round(float(v), 4) for v in rng.uniform(lo, hi, 6)]}
    return out


#: Largest playback/capture clock offset a scene may ask for (ppm); consumer crystals are within +-100.
MAX_CLOCK_PPM = 1000.0
#: Largest loudspeaker piston radius a scene may ask for (m): a 5 cm driver is a woofer, not a tweeter.
MAX_SPEAKER_RADIUS_M = 0.05
#: Largest direct-coupling change a scene may ask for (dB re free field).
MAX_COUPLING_DB = 30.0
#: Tag of the generator :func:`with_clock_offset` draws from.
_CLOCK_TAG = 0x434C4B50


def _check_range(values, bottom: float, top: float, option: str, what: str, unit: str) -> tuple[float, float]:
    """(lo, hi) as floats when bottom <= lo <= hi <= top, else a one-line SceneError naming ``option``."""
    lo, hi = (float(v) for v in values)
    if not bottom <= lo <= hi <= top:
        raise SceneError(f"{option} {lo:g},{hi:g}: a {what} range needs {bottom:g} <= LO <= HI <= {top:g} {unit}")
    return lo, hi


def check_clock_ppm(clock_ppm) -> tuple[float, float]:
    """(lo, hi) as floats when -MAX_CLOCK_PPM <= lo <= hi <= MAX_CLOCK_PPM, else a one-line SceneError."""
    return _check_range(clock_ppm, -MAX_CLOCK_PPM, MAX_CLOCK_PPM, "--clock-ppm", "clock offset", "ppm")


def with_clock_offset(spec: dict, clock_ppm: tuple[float, float], seed: int) -> dict:
    """``spec`` with the device's playback/capture clock offset drawn uniformly in ``clock_ppm`` = (lo, hi) ppm from
    a generator of its own seeded by ``seed``: every other detail of the scene is drawn exactly as without it."""
    lo, hi = check_clock_ppm(clock_ppm)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _CLOCK_TAG]))
    out = copy.deepcopy(spec)
    out["device"] = {**(spec.get("device") or {}), "clock_ppm": round(float(rng.uniform(lo, hi)), 3)}
    return out


#: Tag of the generator :func:`with_loudspeaker` draws from.
_SPEAKER_TAG = 0x53504B52


def check_speaker_radius_mm(radius_mm) -> tuple[float, float]:
    """(lo, hi) in mm when 0 <= lo <= hi <= MAX_SPEAKER_RADIUS_M (in mm), else a one-line SceneError."""
    return _check_range(radius_mm, 0.0, MAX_SPEAKER_RADIUS_M * 1000.0, "--speaker-radius-mm", "loudspeaker radius",
                        "mm")


def check_coupling_db(coupling_db) -> tuple[float, float]:
    """(lo, hi) in dB when -MAX_COUPLING_DB <= lo <= hi <= MAX_COUPLING_DB, else a one-line SceneError."""
    return _check_range(coupling_db, -MAX_COUPLING_DB, MAX_COUPLING_DB, "--coupling-db", "direct-coupling", "dB")


def with_loudspeaker(spec: dict, radius_mm: tuple[float, float] | None, coupling_db: tuple[float, float] | None,
                     seed: int) -> dict:
    """``spec`` with the loudspeaker's piston radius drawn uniformly in ``radius_mm`` (its beam then lights the room
    unevenly) and the direct speaker->mic coupling in ``coupling_db`` (dB re free field), from a generator of their
    own seeded by ``seed``: every other detail of the scene (the beam's axis too) is drawn exactly as without them.
    None leaves that factor as the spec has it."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SPEAKER_TAG]))
    radius_u, coupling_u = rng.uniform(size=2)  # both drawn always: one factor's value does not move the other's
    dev = dict(spec.get("device") or {})
    if radius_mm is not None:
        lo, hi = check_speaker_radius_mm(radius_mm)
        dev["speaker_radius_m"] = round((lo + (hi - lo) * float(radius_u)) / 1000.0, 6)
    if coupling_db is not None:
        lo, hi = check_coupling_db(coupling_db)
        dev["coupling_db"] = round(lo + (hi - lo) * float(coupling_u), 3)
    out = copy.deepcopy(spec)
    out["device"] = dev
    return out


#: Tag of the generator :func:`with_swing_share` draws from.
_GAIT_TAG = 0x47414954


def check_swing_share(swing_share) -> tuple[float, float]:
    """(lo, hi) as floats within the person's allowed swing share (0.2-0.6 of the gait cycle), else a one-line
    SceneError."""
    from uspd.simulate.movers import SWING_SHARE_RANGE

    return _check_range(swing_share, *SWING_SHARE_RANGE, "--swing-share", "swing share", "of the gait cycle")


def with_swing_share(spec: dict, swing_share: tuple[float, float], seed: int) -> dict:
    """``spec`` with every person who has no ``swing_share`` yet given one drawn uniformly in ``swing_share`` = (lo,
    hi) (a stance/swing gait: feet planted, then swinging at up to ~4x walking speed), from a generator of its own
    seeded by ``seed``: every other detail of the scene is drawn exactly as without it."""
    lo, hi = check_swing_share(swing_share)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _GAIT_TAG]))
    out = copy.deepcopy(spec)
    for mover in out.get("movers") or []:
        if mover.get("type") == "person" and mover.get("swing_share") is None:
            mover["swing_share"] = round(float(rng.uniform(lo, hi)), 4)
    return out


def check_scene_factors(reflection=None, clock_ppm=None, speaker_radius_mm=None, coupling_db=None, swing_share=None
                        ) -> dict[str, tuple[float, float] | None]:
    """The (lo, hi) ranges `uspd dataset train|eval` may draw scene factors from, each checked by its ``check_*``
    (a one-line SceneError if out of range); None stays None (the simulator's own draw)."""
    checks = {"reflection": check_wall_reflection, "clock_ppm": check_clock_ppm,
              "speaker_radius_mm": check_speaker_radius_mm, "coupling_db": check_coupling_db,
              "swing_share": check_swing_share}
    given = {"reflection": reflection, "clock_ppm": clock_ppm, "speaker_radius_mm": speaker_radius_mm,
             "coupling_db": coupling_db, "swing_share": swing_share}
    return {k: None if v is None else checks[k](v) for k, v in given.items()}


def with_scene_factors(spec: dict, seed: int, reflection=None, clock_ppm=None, speaker_radius_mm=None,
                       coupling_db=None, swing_share=None) -> dict:
    """``spec`` with every given factor range applied (:func:`with_wall_reflection`, :func:`with_clock_offset`,
    :func:`with_loudspeaker`, :func:`with_swing_share`, each from its own generator seeded by ``seed``); None leaves a
    factor as drawn."""
    if reflection is not None:
        spec = with_wall_reflection(spec, tuple(reflection), seed)
    if clock_ppm is not None:
        spec = with_clock_offset(spec, tuple(clock_ppm), seed)
    if speaker_radius_mm is not None or coupling_db is not None:
        spec = with_loudspeaker(spec, None if speaker_radius_mm is None else tuple(speaker_radius_mm),
                                None if coupling_db is None else tuple(coupling_db), seed)
    if swing_share is not None:
        spec = with_swing_share(spec, tuple(swing_share), seed)
    return spec


def random_scene_spec(rng: np.random.Generator, kind: str | None = None, duration_s: float | None = None) -> dict:
    """A random scene spec dict (see the module doc for ``kind``); diverse rooms, devices, carriers, conditions.

    96 kHz (carrier 32-45 kHz) or, one time in four, 48 kHz (18-22 kHz); 2-8 mics on a 3-5 cm ring; 15-30 degC;
    20-80 % RH; rooms 2.5-8 x 2.5-8 x 2.4-3.2 m; confusers mixed in. Fine details (paths, unit spread,
    furniture) are left to the render seed.
    """
    if kind is None:
        kinds = list(RANDOM_KINDS)
        p = np.array([RANDOM_KINDS[k] for k in kinds])
        kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
    if kind not in SCENE_KINDS:
        raise SceneError(f"random scene kind {kind!r} unknown (use one of {', '.join(sorted(SCENE_KINDS))})")
    force_confusers = kind.endswith(CONFUSER_SUFFIX)
    kind = kind.removesuffix(CONFUSER_SUFFIX)
    rate = 48000 if rng.random() < 0.25 else 96000
    lo, hi = CARRIER_RANGE_HZ[rate]
    default_s = 40.0 if kind == "seated" else 30.0 if kind in ("negative", "empty", *CONFUSER_TYPES) else 20.0
    dur = float(duration_s) if duration_s else default_s
    spec: dict[str, Any] = {
        "duration_s": dur,
        "sample_rate": rate,
        "carrier_hz": float(round(rng.uniform(lo, hi) / 10.0) * 10.0),
        "temperature_c": _u(rng, 15, 30, 1),
        "humidity_pct": _u(rng, 20, 80, 1),
        "reference": bool(rng.random() < 0.8),
        "room": {"size_m": [_u(rng, 2.5, 8), _u(rng, 2.5, 8), _u(rng, 2.4, 3.2)],
                 "scatterers": int(rng.integers(3, 9))},
        "device": {"n_mics": int(rng.integers(2, 9)), "ring_radius_m": _u(rng, 0.03, 0.05, 4),
                   "mic_height_m": _u(rng, 0.0, 0.05, 4), "emission_dbfs": _u(rng, -14, -3, 1),
                   "self_noise_dbfs": _u(rng, -92, -80, 1)},
        "movers": [],
    }
    movers = spec["movers"]
    confusers: list[str] = []
    if kind in CONFUSER_TYPES:
        confusers = [kind]
        if force_confusers:
            others = [c for c in CONFUSER_TYPES if c != kind]
            confusers += list(rng.choice(others, size=int(rng.integers(1, 3)), replace=False))
    elif kind == "negative":
        n = int(rng.choice([0, 1, 1, 1, 2, 2, 3]))
        confusers = list(rng.choice(CONFUSER_TYPES, size=n, replace=False))
    elif kind in PERSON_KINDS and (force_confusers or rng.random() < 0.5):
        confusers = list(rng.choice(CONFUSER_TYPES, size=int(rng.integers(1, 4 if force_confusers else 3)),
                                    replace=False))
    elif kind == "music_motion":
        confusers = ["music"] + (["fan"] if rng.random() < 0.3 else [])
    for c in confusers:
        m, music = _confuser(rng, str(c), dur)
        if m is not None:
            movers.append(m)
        if music is not None:
            spec["music"] = music
    speed = _u(rng, 0.8, 1.6, 2)
    if kind == "walk" or (kind == "music_motion" and rng.random() < 0.6):
        route = str(rng.choice(["enter", "enter", "enter-leave", "cross", "approach", "wander"]))
        p = {"type": "person", "route": route, "start_s": _u(rng, 0.5, dur * 0.4, 2), "speed_m_s": speed}
        if route == "enter-leave":
            p["stay_s"] = _u(rng, 1.0, max(2.0, dur * 0.4), 2)
        movers.append(p)
    elif kind in ("seated", "music_motion"):
        movers.append({"type": "person", "route": "seated", "start_s": _u(rng, 0.5, 2.0, 2), "speed_m_s": speed,
                       "chair_distance_m": _u(rng, 0.5, 3.0, 2), "action_gap_s": [1.5, 6.0]})
    elif kind == "still":
        movers.append({"type": "person", "route": "still", "chair_distance_m": _u(rng, 0.5, 4.0, 2)})
    elif kind == "far":
        spec["room"]["size_m"] = [_u(rng, 8.5, 11), _u(rng, 4, 8), _u(rng, 2.4, 3.2)]
        sx, sy, _ = spec["room"]["size_m"]
        spec["room"]["device_position_m"] = [_u(rng, 0.15, 0.4), _u(rng, 1.0, sy - 1.0), _u(rng, 0.5, 1.3)]
        movers.append({"type": "person", "route": "far", "start_s": _u(rng, 0.5, dur * 0.3, 2),
                       "speed_m_s": speed})
    return spec
