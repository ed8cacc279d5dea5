"""initlab's fast counter-based generator: Philox4x32-10 kernels compiled by numba.

Everything random in initlab comes through :class:`initlab.rng.Stream`, which calls
:func:`fill` here. Importing this package imports numba and loads the kernels (compiled on
first use, then cached on disk), so :mod:`initlab.rng` imports it only when values are drawn.
See ``docs/rng.md`` for the design, the measurements behind it and the statistical tests.
"""

from initlab.fastrng.dispatch import (
    DISTRIBUTIONS,
    ENCODINGS,
    PARALLEL_MIN,
    fill,
    fill_constant,
    philox4x32,
)

__all__ = ["DISTRIBUTIONS", "ENCODINGS", "PARALLEL_MIN", "fill", "fill_constant", "philox4x32"]
