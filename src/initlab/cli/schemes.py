"""``initlab schemes``: every scheme name, what it resolves to, and its formula."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from initlab import schemes
from initlab._format import wide_width
from initlab.spellings import registry


def scheme_rows() -> list[dict[str, Any]]:
    """One row per distinct (preset, fixed arguments): its names, resolution and formula.

    >>> rows = scheme_rows()
    >>> he = next(r for r in rows if r["names"][0] == "he_normal")
    >>> he["resolves_to"]
    "variance_scaling(scale=2.0, mode='fan_in', distribution='normal')"
    >>> "kaiming_normal_" in he["names"]
    True
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for name in schemes.SCHEMES:
        groups[(name, "{}")] = [name]
    for alias, (canonical, fixed) in schemes.ALIASES.items():
        groups.setdefault((canonical, json.dumps(fixed, sort_keys=True)), []).append(alias)
    by_factory: dict[int, list[str]] = {}
    for name, factory in registry().items():  # Keras's and JAX's own names
        by_factory.setdefault(id(factory), []).append(name)
    rows = []
    for (_, fixed), names in groups.items():
        rows.append(_row(names, json.loads(fixed)))
    for names in by_factory.values():
        rows.append(_row(names, {}))
    return rows


def _row(names: list[str], fixed: dict[str, Any]) -> dict[str, Any]:
    try:
        resolved = schemes.get_scheme(names[0])
    except ValueError:  # JAX's constant(value) and variance_scaling(scale, mode, ...)
        factory = registry()[names[0]]
        params = ", ".join(inspect.signature(factory).parameters)
        doc = (factory.__doc__ or "").strip().split("\n")[0]
        return {"names": names, "resolves_to": f"{names[0]}({params})", "formula": doc,
                "fixed": fixed}  # fmt: skip
    return {"names": names, "resolves_to": resolved.name, "formula": resolved.formula(),
            "fixed": fixed}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--wide", action="store_true", help="one line per scheme, whatever the terminal"
    )


def run(args: argparse.Namespace) -> int:
    rows = scheme_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="initlab schemes (std = gain * sqrt(scale / n))", show_lines=False)
    table.add_column("names (torch / Keras / JAX spellings)", style="bold", overflow="fold")
    table.add_column("resolves to", overflow="fold")
    table.add_column("formula", overflow="fold")
    for row in rows:
        cells = (", ".join(row["names"]), row["resolves_to"], row["formula"])
        table.add_row(*(Text(c) for c in cells))  # Text: "W[o, i]" is not markup
    note = (
        "Unqualified *_normal names are plain normals (torch); Keras class names and "
        "keras./jax. names are Keras's and JAX's initializers, with their arguments and "
        "meaning (docs/keras_jax.md). Arguments are named: 'he_uniform(mode=fan_out)', "
        "'normal(std=0.02)'; only a one-parameter scheme takes its value unnamed: "
        "'constant(0.5)'."
    )
    if sys.stdout.isatty() and not args.wide:
        console = Console()  # the terminal's width: long cells fold, nothing is cut
    else:  # a pipe, a file or --wide: every row on one line, every value whole
        console = Console(width=wide_width(table), color_system=None)
    console.print(table)
    console.print(Text(note))
    return 0
