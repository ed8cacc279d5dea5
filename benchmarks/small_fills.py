"""Per-call cost of small fills: every drawing drop-in of initlab.torch and fill_, against
torch.nn.init, side by side.

For each size (default 1e3 elements, shape (n / cols, cols) as in benchmarks/fill.py) and each
initializer, two ways of calling:

* ``again``: the same preallocated tensor filled over and over (what benchmarks/fill.py
  times; initlab remembers the tensor's memory view by its address);
* ``fresh``: every call on a tensor never filled before (a model's weights, initialized once),
  from a pool of live tensors, so nothing is remembered from an earlier call.

torch and initlab calls are interleaved round-robin; a figure is the best time of many calls
(noise only adds time), in microseconds, and the ratio is torch's time over initlab's, both
from this run (above 1: initlab is faster). ``fill_`` is ``initlab.torch.fill_`` with the
scheme of the same distribution, against the same torch function. The load average is
printed: other people's work on a shared machine moves every figure.

    PYTHONPATH=src python benchmarks/small_fills.py [--sizes 1e3,1e4] [--repeats 300]
        [--dtype float32|bfloat16]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.init as tinit
from rich.console import Console
from rich.table import Table

import initlab.torch as init
from initlab.torch.fill import fill_

#: (drop-in, fill_ scheme of the same distribution, or None).
CASES = [
    ("kaiming_normal_", "he_normal(nonlinearity='leaky_relu')"),
    ("kaiming_uniform_", "he_uniform(nonlinearity='leaky_relu')"),
    ("xavier_normal_", "xavier_normal"),
    ("xavier_uniform_", "xavier_uniform"),
    ("normal_", None),
    ("uniform_", None),
    ("trunc_normal_", "trunc_normal"),
]


def shape_for(n: int) -> tuple[int, int]:
    cols = min(1000, max(1, n // 10))
    return n // cols, cols


def best_times(
    calls: dict[str, Callable[[torch.Tensor], object]],
    tensors: Callable[[str, int], torch.Tensor],
    repeats: int,
) -> dict[str, float]:
    """Best time in microseconds of each call, round-robin, on ``tensors(name, i)``."""
    best = dict.fromkeys(calls, math.inf)
    for name, call in calls.items():
        call(tensors(name, -1))  # warm-up (numba loads, caches fill)
    for i in range(repeats):
        for name, call in calls.items():
            tensor = tensors(name, i)
            start = time.perf_counter()
            call(tensor)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: seconds * 1e6 for name, seconds in best.items()}


def measure(n: int, dtype: torch.dtype, repeats: int) -> list[dict]:
    shape = shape_for(n)
    rows = []
    for fn, scheme in CASES:
        calls: dict[str, Callable[[torch.Tensor], object]] = {
            "torch": getattr(tinit, fn),
            "initlab": getattr(init, fn),
        }
        if scheme is not None:
            calls["fill_"] = lambda t, s=scheme: fill_(t, s, seed=0, name="w")
        again = torch.zeros(shape, dtype=dtype)
        pool = {name: [torch.zeros(shape, dtype=dtype) for _ in range(repeats + 1)]
                for name in calls}  # fmt: skip
        row = {"fn": fn, "n": math.prod(shape)}
        for mode, tensors in (
            ("again", lambda name, i, again=again: again),
            ("fresh", lambda name, i, pool=pool: pool[name][i]),
        ):
            times = best_times(calls, tensors, repeats)
            row.update({f"{mode}_{name}": t for name, t in times.items()})
        rows.append(row)
    return rows


def _ratio(value: float) -> str:
    style = "green" if value >= 1.0 else "red"
    return f"[{style}]{value:.2f}x[/{style}]"


def table(rows: list[dict], mode: str, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("function", "n", "torch us", "initlab us", "ratio", "fill_ us", "ratio"):
        t.add_column(col, justify="left" if col == "function" else "right")
    for r in rows:
        torch_us, ours = r[f"{mode}_torch"], r[f"{mode}_initlab"]
        fill_us = r.get(f"{mode}_fill_")
        t.add_row(
            r["fn"], f"{r['n']:.0e}", f"{torch_us:.2f}", f"{ours:.2f}", _ratio(torch_us / ours),
            "-" if fill_us is None else f"{fill_us:.2f}",
            "-" if fill_us is None else _ratio(torch_us / fill_us),
        )  # fmt: skip
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e3")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    dtype = getattr(torch, args.dtype)
    load_before = os.getloadavg()[0]
    rows = [row for n in sizes for row in measure(n, dtype, args.repeats)]
    load_after = os.getloadavg()[0]
    console = Console()
    console.print(
        f"[bold]small fills[/bold], {args.dtype}, best of {args.repeats} round-robin calls; "
        f"ratio = torch / initlab time. Load average {load_before:.2f} before, "
        f"{load_after:.2f} after."
    )
    console.print(table(rows, "again", "Same tensor again (as benchmarks/fill.py)"))
    console.print(table(rows, "fresh", "A fresh tensor each call (a model's first init)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
