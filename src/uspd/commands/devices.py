"""`uspd devices` (not implemented yet)."""
from __future__ import annotations

import argparse

from uspd.errors import UspdError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="(not implemented yet)", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise UspdError("'uspd devices' is not implemented yet")
