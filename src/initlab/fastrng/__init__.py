"""initlab's fast counter-based generator: Philox4x32-10 kernels compiled by numba.

Everything random in initlab comes through :class:`initlab.rng.Stream`, which calls
:func:`fill` here. Importing this package imports numba and loads the kernels (compiled on
first use, then cached on disk in a user folder: see :mod:`initlab.fastrng._cache`), so
:mod:`initlab.rng` imports it only when values are drawn.
See ``docs/rng.md`` for the design, the measurements behind it and the statistical tests.
"""

from initlab.fastrng._cache import install_cache_locator, notice_while_compiling

install_cache_locator()  # before the kernels are defined: their cache goes to a user folder

from initlab.fastrng.dispatch import (  # noqa: E402
    DISTRIBUTIONS,
    ENCODINGS,
    PARALLEL_MIN,
    fill_constant,
    philox4x32,
)
from initlab.fastrng.dispatch import fill as _fill  # noqa: E402

fill = notice_while_compiling(_fill)  # one line on stderr while numba compiles

__all__ = ["DISTRIBUTIONS", "ENCODINGS", "PARALLEL_MIN", "fill", "fill_constant", "philox4x32"]
