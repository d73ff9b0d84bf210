"""The ``uspd`` command: one entry point, one subcommand per module in ``uspd.commands``.

Each module in ``uspd/commands/`` defines ``register(subparsers)`` which adds its parser and sets
``func=run`` where ``run(args) -> int`` returns the exit code. Errors derived from
:class:`uspd.errors.UspdError` are printed as one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

from uspd import __version__
from uspd.errors import UspdError

log = logging.getLogger(__name__)

#: Subcommand modules, in the order ``uspd --help`` lists them (data-flow order).
COMMANDS = [
    "simulate",
    "spectrogram",
    "detect",
    "evaluate",
    "dataset",
    "train",
    "run",
    "devices",
    "events",
]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" only for real defaults; options without one (None/False) explain themselves in the text."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uspd",
        description="Ultrasonic motion and presence sensing with a loudspeaker and microphones.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"uspd {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"uspd.commands.{name}")
        module.register(sub)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    """Log uspd's own messages at the chosen level; other libraries stay at WARNING (no font-search floods)."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr,
                        force=True)
    logging.getLogger("uspd").setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UspdError as exc:
        print(f"uspd: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"uspd: error: no space left on the disk{where}: free some and run the command again "
              "(dataset runs resume from their complete clips and shards)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("uspd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
