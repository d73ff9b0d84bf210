"""The `uspd` command line: help of every (sub)command with defaults, version from package metadata, -v/-q."""
from __future__ import annotations

import argparse
import importlib.metadata
import re
import subprocess
import sys

import pytest
from rec_helpers import write_tones

from uspd import cli


def _subparsers(parser: argparse.ArgumentParser, prefix=()):
    """(command path, parser) for every subcommand, nested ones included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subparsers(sub, (*prefix, name))


ALL_COMMANDS = [path for path, _ in _subparsers(cli.build_parser())]


def run_help(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    text = run_help([], capsys)
    for name in cli.COMMANDS:
        assert re.search(rf"^\s+{name}\s", text, re.M), f"{name} missing from uspd --help"
    assert "--version" in text and "-v, --verbose" in text and "-q, --quiet" in text


def test_every_command_is_registered():
    assert sorted(p[0] for p in ALL_COMMANDS if len(p) == 1) == sorted(cli.COMMANDS)


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_subcommand_help_documents_options_and_defaults(path, capsys):
    text = " ".join(run_help(list(path), capsys).split())  # argparse wraps lines; compare on one line
    assert text.startswith("usage: uspd " + " ".join(path))
    parser = dict(_subparsers(cli.build_parser()))[path]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or not action.option_strings:
            continue
        assert action.help, f"uspd {' '.join(path)} {action.option_strings[0]} has no help text"
        if action.default not in (None, False, argparse.SUPPRESS) and not isinstance(action, argparse._AppendAction):
            assert str(action.default) in text, f"{action.option_strings[0]}: default {action.default!r} not shown"


def test_spectrogram_help_gives_units_and_defaults(capsys):
    text = " ".join(run_help(["spectrogram"], capsys).split())
    for fragment in ("--band-hz", "in Hz (default: 1000.0)", "--window-s", "in seconds", "(default: 0.1)",
                     "--mic", "(default: all)", "--start-s", "--end-s", "--range-db", "in dB", "--out"):
        assert fragment in text, fragment


def _uspd(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "uspd", *argv], capture_output=True, text=True, timeout=120)


def test_version_comes_from_package_metadata():
    proc = _uspd("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"uspd {importlib.metadata.version('uspd')}"


def test_no_command_prints_help(capsys):
    assert cli.main(["-q"]) == 0
    assert "usage: uspd" in capsys.readouterr().out


def test_unknown_command_and_bad_option_are_usage_errors(capsys):
    for argv in (["no-such-command"], ["spectrogram", "x.wav", "--mic", "left"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("flag, info, debug", [("-q", False, False), ("-v", True, False), ("-vv", True, True)])
def test_verbosity_flags(tmp_path, flag, info, debug):
    wav = write_tones(tmp_path / "v.wav", duration_s=0.3)
    proc = _uspd(flag, "spectrogram", str(wav), "--out", str(tmp_path / "v.png"))
    assert proc.returncode == 0, proc.stderr
    assert ("INFO uspd.commands.spectrogram: wrote" in proc.stderr) == info
    assert ("DEBUG uspd.viz.spectrogram: spectrogram: decimate by" in proc.stderr) == debug
    assert "findfont" not in proc.stderr  # uspd's -vv is about uspd, not matplotlib's font search


def test_a_full_disk_is_a_one_line_error_and_other_os_errors_are_not_hidden(tmp_path, monkeypatch, capsys):
    import errno

    import uspd.evaluate.dataset as dataset

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "set" / "clip.wav"))

    monkeypatch.setattr(dataset, "build_eval_set", full)
    assert cli.main(["-q", "dataset", "eval", "--seed", "9000", "--out", str(tmp_path / "set")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left on the disk" in err and "clip.wav" in err

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(dataset, "build_eval_set", broken)
    with pytest.raises(OSError, match="Input/output error"):
        cli.main(["-q", "dataset", "eval", "--seed", "9000", "--out", str(tmp_path / "set")])
