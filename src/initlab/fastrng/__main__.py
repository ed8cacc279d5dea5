"""Compile every kernel into numba's on-disk cache: ``python -m initlab.fastrng``.

The first fill on a machine compiles the kernels it needs (about 12 s for float32, 28 s for
everything); later processes load them from the cache in a fraction of a second. Run this
once after installing (for example in a container build) so that no user process ever pays
the compilation.
"""

from __future__ import annotations

import time

import numpy as np

from initlab.fastrng.dispatch import DISTRIBUTIONS, fill


def warm() -> list[tuple[str, str, float]]:
    """Fill a small buffer of every dtype, distribution and precision; return the timings."""
    timings = []
    buffers = [
        ("float32", np.empty(1000, np.float32), None),
        ("float64", np.empty(1000, np.float64), None),
        ("float16", np.empty(1000, np.float16), None),
        ("bfloat16", np.empty(1000, np.uint16), "bfloat16"),
    ]
    for precision in ("single", "double"):
        for label, buffer, encoding in buffers:
            start = time.perf_counter()
            for distribution in DISTRIBUTIONS:
                fill(buffer, distribution, 0, encoding=encoding, precision=precision)
            timings.append((precision, label, time.perf_counter() - start))
    return timings


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="initlab.fastrng kernels compiled (or loaded from the cache)")
    for col in ("precision", "dtype", "seconds"):
        table.add_column(col, justify="right")
    for precision, label, seconds in warm():
        table.add_row(precision, label, f"{seconds:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
