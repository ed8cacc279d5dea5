"""Command-line checks shared by the subcommands: a user's mistake is one line on stderr.

Every subcommand checks all its arguments, and that it can write where it will write,
before it starts any work. A mistake raises :class:`UsageError`; ``initlab``'s ``main``
prints it to stderr as ``error: ...`` and exits with status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

__all__ = ["ArgumentParser", "UsageError", "output_folder", "usage_error"]


class UsageError(Exception):
    """A mistake in the command line: shown as ``error: <message>``, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its errors in initlab's form: usage, then ``error: ...``, status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {self.prog}: {message}\n")


def usage_error(message: str) -> int:
    """Print ``error: message`` to stderr; returns the exit status 2.

    >>> usage_error("--depth=0 is not valid; allowed: an integer >= 1.")
    2
    """
    print(f"error: {message}", file=sys.stderr)
    return 2


def output_folder(option: str, path: str | os.PathLike) -> Path:
    """Make sure ``path`` is a folder this process can write into, creating it if needed.

    Checked by writing (and removing) a temporary file there, so that a read-only folder, a
    read-only file system or a path through a file is found before any work, whoever runs
    it (``os.access`` says yes to root even on a read-only folder).

    >>> import tempfile; folder = tempfile.mkdtemp()
    >>> output_folder("--out", folder) == Path(folder)
    True
    >>> output_folder("--out", __file__)
    Traceback (most recent call last):
    ...
    initlab.cli._checks.UsageError: --out=... is a file; allowed: a folder (existing or new).
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(
            f"{option}={str(folder)!r} is a file; allowed: a folder (existing or new)."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".initlab-check-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UsageError(
            f"{option}={str(folder)!r} cannot be written to ({reason}); allowed: a folder "
            "you can write to."
        ) from None
    return folder
