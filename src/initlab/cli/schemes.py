"""``initlab schemes``: every scheme name, what it resolves to, and its formula."""

from __future__ import annotations

import argparse
import inspect
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from initlab import schemes
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


def run(args: argparse.Namespace) -> int:
    rows = scheme_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="initlab schemes (std = gain * sqrt(scale / n))", show_lines=False)
    table.add_column("names (torch / Keras / JAX spellings)", style="bold")
    table.add_column("resolves to")
    table.add_column("formula")
    for row in rows:
        table.add_row(", ".join(row["names"]), row["resolves_to"], row["formula"])
    console = Console()
    console.print(table)
    console.print(
        "Unqualified *_normal names are plain normals (torch); Keras class names and "
        "keras./jax. names are Keras's and JAX's initializers, with their arguments and "
        "meaning (docs/keras_jax.md). Arguments: 'he_uniform(mode=fan_out)'."
    )
    return 0
