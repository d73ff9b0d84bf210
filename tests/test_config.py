"""The TOML config loader (uspd.config): one-line ConfigError for every mistake, defaults, overrides.

The loader is tested on a local stand-in section (so it does not depend on other folders), and then on every real
section that exists in this checkout (sections whose module is missing are skipped).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

import pytest

from uspd import config
from uspd.config import Config, load_config
from uspd.errors import ConfigError


@dataclass
class DemoInner:
    gain_db: float = 0.0


@dataclass
class DemoConfig:
    """Stand-in section with one field of every kind the loader handles."""

    rate_hz: float = 1000.0
    count: int = 3
    enabled: bool = True
    name: str = "demo"
    gains_db: list[float] = field(default_factory=lambda: [0.0, 1.0])
    limit_s: float | None = None
    inner: DemoInner = field(default_factory=DemoInner)

    def validate(self, where: str) -> None:
        if self.rate_hz <= 0:
            raise ConfigError(f"{where}.rate_hz: must be positive (Hz), got {self.rate_hz}")


@pytest.fixture
def demo_sections(monkeypatch):
    """SECTIONS = {demo: DemoConfig, absent: a module that does not exist}."""
    monkeypatch.setattr(config, "SECTIONS", {"demo": f"{__name__}:DemoConfig",
                                             "absent": "uspd.no_such_folder.cfg:Nothing"})


def write(tmp_path, text: str, name: str = "uspd.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path, **kwargs) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(path, **kwargs)
    msg = str(err.value)
    assert "\n" not in msg, msg
    return msg


# --- the loader, on the stand-in section -----------------------------------------------------------------------------

def test_defaults_without_a_file(demo_sections):
    cfg = load_config(None)
    assert cfg.demo == DemoConfig() and cfg.absent is None and cfg.path is None
    with pytest.raises(AttributeError):
        cfg.no_such_section


def test_valid_file_overrides_defaults_and_ints_are_floats(demo_sections, tmp_path):
    path = write(tmp_path, '[demo]\nrate_hz = 48000\ncount = 7\nenabled = false\nname = "kitchen"\n'
                           'gains_db = [1, -2.5]\nlimit_s = 3\n[demo.inner]\ngain_db = -6\n')
    d = load_config(path).demo
    assert d == DemoConfig(48000.0, 7, False, "kitchen", [1.0, -2.5], 3.0, DemoInner(-6.0))
    assert type(d.rate_hz) is float and type(d.limit_s) is float and type(d.inner.gain_db) is float
    assert all(type(g) is float for g in d.gains_db)
    partial = load_config(write(tmp_path, "[demo]\ncount = 9\n", "partial.toml")).demo
    assert partial == DemoConfig(count=9)  # keys not in the file keep their defaults


def test_overrides_win_over_the_file(demo_sections, tmp_path):
    path = write(tmp_path, "[demo]\nrate_hz = 100\ncount = 2\n")
    d = load_config(path, overrides={"demo": {"count": 5}}).demo
    assert (d.rate_hz, d.count) == (100.0, 5)


def test_missing_file(tmp_path):
    msg = config_error(tmp_path / "nope.toml")
    assert "nope.toml" in msg and "not found" in msg


def test_malformed_toml(demo_sections, tmp_path):
    path = write(tmp_path, "[demo]\nrate_hz = = 3\n")
    msg = config_error(path)
    assert msg.startswith(str(path)) and "malformed TOML" in msg and "line 2" in msg


def test_unknown_section(demo_sections, tmp_path):
    msg = config_error(write(tmp_path, "[demo]\ncount = 1\n[dmeo]\ncount = 2\n"))
    assert "uspd.toml" in msg and "unknown section" in msg and "dmeo" in msg and "demo" in msg


def test_unknown_key_names_section_and_key(demo_sections, tmp_path):
    msg = config_error(write(tmp_path, "[demo]\nrate_hz = 1\nrate = 2\n"))
    assert "uspd.toml" in msg and "[demo]" in msg and "unknown key(s) rate" in msg and "rate_hz" in msg
    nested = config_error(write(tmp_path, "[demo.inner]\ngain = 1\n", "n.toml"))
    assert "n.toml" in nested and "inner" in nested and "gain" in nested


@pytest.mark.parametrize("line, key", [
    ('rate_hz = "fast"', "rate_hz"),
    ("rate_hz = true", "rate_hz"),
    ("count = 1.5", "count"),
    ("count = true", "count"),
    ('enabled = "yes"', "enabled"),
    ("enabled = 1", "enabled"),
    ("name = 3", "name"),
    ("gains_db = 3", "gains_db"),
    ('gains_db = [1, "x"]', "gains_db[1]"),
    ('limit_s = "never"', "limit_s"),
    ("inner = 4", "inner"),
])
def test_wrong_type_names_the_key(demo_sections, tmp_path, line, key):
    msg = config_error(write(tmp_path, f"[demo]\n{line}\n"))
    assert msg.startswith(str(tmp_path / "uspd.toml")) and f"[demo].{key}" in msg, msg


def test_section_that_is_not_a_table(demo_sections, tmp_path):
    msg = config_error(write(tmp_path, "demo = 3\n"))
    assert "[demo]" in msg and "table" in msg


def test_section_validate_hook(demo_sections, tmp_path):
    msg = config_error(write(tmp_path, "[demo]\nrate_hz = -1\n"))
    assert "[demo].rate_hz" in msg and "positive" in msg


def test_section_of_a_missing_folder(demo_sections, tmp_path):
    assert load_config(write(tmp_path, "[demo]\n")).absent is None
    msg = config_error(write(tmp_path, "[absent]\nx = 1\n", "b.toml"))
    assert "b.toml" in msg and "[absent]" in msg and "not supported" in msg


# --- every real section that exists --------------------------------------------------------------------------------

def real_section(name: str):
    cls = config._section_class(name)
    if cls is None:
        pytest.skip(f"section [{name}]: its folder does not exist yet")
    return cls


def simple_fields(cls) -> list[tuple[str, type]]:
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls) if hints[f.name] in (float, int, bool, str)]


@pytest.mark.parametrize("name", list(config.SECTIONS))
def test_real_section_defaults_and_unknown_key(name, tmp_path):
    cls = real_section(name)
    assert isinstance(load_config(None).sections[name], cls)
    msg = config_error(write(tmp_path, f"[{name}]\nno_such_key_xyz = 1\n"))
    assert "uspd.toml" in msg and f"[{name}]" in msg and "no_such_key_xyz" in msg


@pytest.mark.parametrize("name", list(config.SECTIONS))
def test_real_section_wrong_type(name, tmp_path):
    cls = real_section(name)
    fields = simple_fields(cls)
    if not fields:
        pytest.skip(f"[{name}] has no plain scalar field")
    key, tp = fields[0]
    bad = '"not a number"' if tp in (float, int) else ("42" if tp is str else '"yes"')
    msg = config_error(write(tmp_path, f"[{name}]\n{key} = {bad}\n"))
    assert f"[{name}].{key}" in msg, msg


@pytest.mark.parametrize("name", list(config.SECTIONS))
def test_real_section_accepts_ints_for_floats(name, tmp_path):
    cls = real_section(name)
    defaults = cls()
    floats = [k for k, tp in simple_fields(cls) if tp is float and float(getattr(defaults, k)).is_integer()]
    if not floats:
        pytest.skip(f"[{name}] has no float field with a whole-number default")
    key = floats[0]
    value = int(getattr(defaults, key))
    loaded = getattr(getattr(load_config(write(tmp_path, f"[{name}]\n{key} = {value}\n")), name), key)
    assert type(loaded) is float and loaded == value


def test_real_file_overrides_defaults(tmp_path):
    """A realistic file; keys of sections or fields that do not exist in this checkout are left out."""
    wanted = {"presence": {"vacancy_timeout_s": 600}, "frontend": {"window_s": 0.2, "band_hz": 800.0},
              "mqtt": {"host": "broker.lan", "port": 1884}, "emission": {"level_dbfs": -30.0},
              "detector": {"name": "classic"}}
    lines, expected = [], {}
    for sec, values in wanted.items():
        cls = config._section_class(sec)
        if cls is None:
            continue
        known = {f.name for f in dataclasses.fields(cls)}
        keep = {k: v for k, v in values.items() if k in known}
        if keep:
            lines.append(f"[{sec}]")
            lines += [f"{k} = {v!r}".replace("'", '"') for k, v in keep.items()]
            expected[sec] = keep
    if not expected:
        pytest.skip("none of the sections exists yet")
    cfg = load_config(write(tmp_path, "\n".join(lines) + "\n"))
    assert isinstance(cfg, Config)
    for sec, values in expected.items():
        for key, value in values.items():
            assert getattr(cfg.sections[sec], key) == value, (sec, key)
            assert getattr(cfg.sections[sec], key) != getattr(type(cfg.sections[sec])(), key)
