"""The one TOML config file that every ``uspd`` command accepts with ``--config``.

Each section is a dataclass owned by the folder it configures (see ``SECTIONS``); this module only loads, validates
and assembles them. Unknown sections or keys and wrongly typed values are a one-line :class:`ConfigError`.
A section class may define ``from_dict(d: dict, where: str)`` for nested content (e.g. a list of routines);
otherwise its fields are filled from the table, with ints accepted for float fields.

Example::

    [presence]
    vacancy_timeout_s = 600
    [detector]
    name = "classic"
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uspd.errors import ConfigError

#: section name -> "module:Class". The class must be a dataclass whose fields all have defaults.
SECTIONS: dict[str, str] = {
    "frontend": "uspd.features.frontend:FrontEndConfig",
    "detector": "uspd.detector.base:DetectorConfig",
    "presence": "uspd.presence.tracker:PresenceConfig",
    "device": "uspd.live.config:DeviceConfig",
    "emission": "uspd.live.config:EmissionConfig",
    "routines": "uspd.routines.config:RoutinesConfig",
    "mqtt": "uspd.routines.mqtt:MqttConfig",
    "log": "uspd.routines.eventlog:LogConfig",
}


def _section_class(name: str) -> type | None:
    module_name, _, cls_name = SECTIONS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("uspd"):
            return None  # that part of uspd does not exist yet
        raise
    return getattr(module, cls_name, None)


def coerce_value(value: Any, tp: Any, where: str, error: type[Exception] = ConfigError,
                 lenient_numbers: bool = False) -> Any:
    """Check ``value`` (parsed TOML/JSON) against type hint ``tp``; raise ``error`` with a one-line message.

    Shared by the config loader and the simulator's scene specs. ``lenient_numbers`` also accepts integral floats
    for ints (3.0 -> 3) and the strings "inf"/"infinity" for floats (JSON has no infinity).
    """
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce_value(value, a, where, error, lenient_numbers)
            except error as exc:
                errors.append(str(exc))
        raise error(errors[0] if errors else f"{where}: invalid value {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if lenient_numbers and isinstance(value, str) and value.strip().lower() in ("inf", "infinity"):
            return math.inf
        raise error(f"{where}: expected a number, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if lenient_numbers and isinstance(value, float) and value.is_integer():
            return int(value)
        raise error(f"{where}: expected an integer, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise error(f"{where}: expected true or false, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise error(f"{where}: expected a string, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise error(f"{where}: expected a list, got {value!r}")
        (inner,) = typing.get_args(tp)[:1] or (Any,)
        return [coerce_value(v, inner, f"{where}[{i}]", error, lenient_numbers) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise error(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return section_from_dict(tp, value, where)
    return value


def section_from_dict(cls: type, d: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a TOML table, validating keys and types."""
    if hasattr(cls, "from_dict"):
        return cls.from_dict(d, where)
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
    kwargs = {k: coerce_value(v, hints[k], f"{where}.{k}") for k, v in d.items()}
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate(where)
    return obj


@dataclass
class Config:
    """All sections; a section whose folder does not exist yet is None."""

    sections: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __getattr__(self, name: str) -> Any:
        if name in SECTIONS:
            return self.sections.get(name)
        raise AttributeError(name)


def load_config(path: str | os.PathLike | None = None, overrides: dict[str, dict] | None = None) -> Config:
    """Load ``path`` (TOML) over the defaults; ``overrides`` (section -> key -> value) win over both."""
    data: dict[str, Any] = {}
    where = "config"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.exists():
            raise ConfigError(f"{p}: config file not found")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: malformed TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: cannot read config: {exc}") from None
    for sec, values in (overrides or {}).items():
        data.setdefault(sec, {})
        if isinstance(data[sec], dict):
            data[sec].update(values)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    cfg = Config(path=Path(path) if path else None)
    for name in SECTIONS:
        cls = _section_class(name)
        if cls is None:
            if name in data:
                raise ConfigError(f"{where}: section [{name}] is not supported by this version of uspd")
            continue
        cfg.sections[name] = section_from_dict(cls, data.get(name, {}), f"{where}: [{name}]")
    return cfg
