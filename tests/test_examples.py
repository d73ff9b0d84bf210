"""The example configs shipped in examples/ load, and say what the README says they do."""
from pathlib import Path

import pytest

from uspd.config import load_config
from uspd.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_full_example_config_loads_with_its_routines():
    cfg = load_config(EXAMPLES / "uspd.toml")
    assert cfg.presence.vacancy_timeout_s == 600
    triggers = [r.trigger for r in cfg.routines.rule]
    assert triggers == ["presence_on", "no_motion"]
    assert cfg.routines.rule[1].after_s == 600 and cfg.routines.rule[1].command[0] == "/bin/echo"


def test_demo_config_shortens_the_timeouts_only():
    demo, default = load_config(EXAMPLES / "demo.toml"), load_config(None)
    assert demo.presence.vacancy_timeout_s < default.presence.vacancy_timeout_s
    assert demo.emission.off_after_presence_s < default.emission.off_after_presence_s
    assert demo.detector == default.detector and demo.frontend == default.frontend


def test_a_typo_in_a_config_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((EXAMPLES / "demo.toml").read_text().replace("vacancy_timeout_s", "vacancy_timout_s"))
    with pytest.raises(ConfigError, match="vacancy_timout_s"):
        load_config(bad)
