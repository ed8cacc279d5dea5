"""The ``initlab`` command. Each subcommand lives in its own module of this package.

A subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; it is imported only when its subcommand runs, so ``initlab schemes``
never imports torch. A subcommand checks every argument before any work and raises
:class:`~initlab.cli._checks.UsageError` for a user's mistake: one line ``error: ...`` on
stderr, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from initlab.cli._checks import ArgumentParser, UsageError, usage_error

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "schemes": ("initlab.cli.schemes", "list every initialization scheme, its aliases and formula"),
    "probe": (
        "initlab.cli.probe",
        "probe a model under several schemes: per-layer statistics, verdicts, plots, JSON",
    ),
    "demo": ("initlab.cli.demo", "run the studies (circles, depth, propagation) with plots"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = ArgumentParser(
        prog="initlab", description="Neural-network weight initialization, measured."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``initlab`` command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except UsageError as error:
        return usage_error(str(error))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
