"""How initlab writes numbers and tables for people: one place for every report.

* :func:`num`: at most 8 characters, never ambiguous: ``0.576``, ``63.6``, ``1.4e-04``,
  ``-2.5e+28``; 0 as ``0``; None as ``-``.
* :func:`fit`: a rich table whose cells are never cut: numeric columns keep their full
  width, text columns fold onto a second line instead of ending in an ellipsis.
* :func:`to_text`: a renderable as plain text at the terminal's width (``print(report)``),
  at any ``width``, or, when the output is not a terminal (a pipe, a file, a notebook), at
  :func:`wide_width`, where nothing wraps.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import sys
from typing import Any

__all__ = [
    "fit", "natural_width", "num", "pct", "terminal_width", "to_text", "wide_width",
]  # fmt: skip

#: Widest string :func:`num` returns.
NUM_WIDTH = 8


def num(x: float | None, digits: int = 3) -> str:
    """A number in at most 8 characters, readable at a glance and never truncated.

    ``digits`` significant digits between 1e-3 and 1e4, else scientific with
    ``digits - 1`` (a mantissa and a 2- or 3-digit exponent).

    >>> [num(v) for v in (0.5764, 1.36e-4, 63.6, -2.5e28, 0.0, None, float("nan"), 12345.6)]
    ['0.576', '1.4e-04', '63.6', '-2.5e+28', '0', '-', 'nan', '1.2e+04']
    >>> max(len(num(v)) for v in (-1.234e-300, 9.99e300, -0.0012345, -9999.4))
    8
    """
    if x is None:
        return "-"
    x = float(x)
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    if 1e-3 <= abs(x) < 1e4:
        text = f"{x:.{digits}g}"
        if len(text) <= NUM_WIDTH:
            return text
    text = f"{x:.{max(digits - 2, 0)}e}"
    if len(text) > NUM_WIDTH:  # a 3-digit exponent: "4.5e247", else one digit "-5e-247"
        text = text.replace("e+", "e")
    if len(text) > NUM_WIDTH:
        text = f"{x:.0e}"
    return text


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal: ``0.172 -> '17.2%'``.

    >>> pct(0.1723), pct(None)
    ('17.2%', '-')
    """
    return "-" if x is None else f"{100 * x:.1f}%"


def fit(table: Any, numeric: tuple[int, ...] | None = None) -> Any:
    """Make a rich ``Table`` compact and never cut a cell: returns the same table.

    Numeric columns (``numeric``: their indexes; default: the right-justified ones) get a
    minimum width of their widest cell, so rich shrinks text columns instead; every column
    folds (``overflow="fold"``) rather than ending a value with an ellipsis; no outer edge
    and one space between columns, so that more fits in 80 columns. A table whose numeric
    columns alone are wider than the terminal must be split by its owner
    (:func:`natural_width` tells).

    >>> from rich.table import Table
    >>> t = Table("layer", "std")
    >>> t.add_row("a.very.long.layer.name", "1.4e-04")
    >>> fit(t, numeric=(1,)).columns[1].min_width, t.columns[0].overflow
    (7, 'fold')
    """
    from rich import box

    table.box = box.SIMPLE_HEAD
    table.show_edge = False
    table.padding = (0, 1)
    table.collapse_padding = True
    for index, column in enumerate(table.columns):
        column.overflow = "fold"
        is_numeric = index in numeric if numeric is not None else column.justify == "right"
        column.no_wrap = False
        if is_numeric:
            cells = [str(c) for c in column._cells]
            widest = max((len(c) for c in cells), default=0)
            column.min_width = max(column.min_width or 0, widest)  # headers still wrap
    return table


def terminal_width() -> int | None:
    """The terminal's width in columns, ``COLUMNS`` if set; None when output is not a
    terminal (a pipe, a file, a notebook): then nothing needs to wrap.

    >>> width = terminal_width()
    >>> width is None or width >= 20
    True
    """
    if os.environ.get("COLUMNS", "").isdigit():
        return max(int(os.environ["COLUMNS"]), 20)
    if not sys.stdout.isatty():
        return None
    return max(shutil.get_terminal_size((80, 24)).columns, 20)


def natural_width(renderable: Any) -> int:
    """The width ``renderable`` takes when nothing limits it.

    >>> from rich.table import Table
    >>> t = Table("name"); t.add_row("x" * 150)
    >>> natural_width(t) >= 150
    True
    """
    from rich.console import Console

    console = Console(width=10_000, file=io.StringIO(), color_system=None)
    return console.measure(renderable).maximum


def wide_width(renderable: Any) -> int:
    """The width at which ``renderable`` prints without wrapping anything (at least 80).

    >>> from rich.table import Table
    >>> t = Table("name"); t.add_row("x" * 150)
    >>> wide_width(t) >= 154
    True
    """
    return max(80, natural_width(renderable))


def to_text(renderable: Any, width: int | None = None) -> str:
    """``renderable`` as plain text at ``width`` (default: the terminal's width, or wide
    enough that nothing wraps when the output is not a terminal).

    >>> from rich.table import Table
    >>> t = Table("name", "value"); t.add_row("x", num(1.36e-4))
    >>> "1.4e-04" in to_text(t, width=40)
    True
    """
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width or terminal_width() or wide_width(renderable),
        force_terminal=False,
        color_system=None,
        soft_wrap=False,
    )
    console.print(renderable)
    return buffer.getvalue().rstrip()
