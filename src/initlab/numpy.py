"""Initializers for NumPy arrays: any registry scheme, any shape, a given dtype.

>>> w = initialize("he_normal", (256, 128), seed=0)
>>> w.shape, w.dtype
((256, 128), dtype('float32'))
>>> bool(abs(w.std() - (2 / 128) ** 0.5) < 0.005)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from initlab.fans import Fans, Layout
from initlab.rng import Stream
from initlab.schemes import Scheme, get_scheme

__all__ = ["initialize"]

_FLOATS = (np.float16, np.float32, np.float64)


def initialize(
    scheme: str | Scheme,
    shape: Sequence[int],
    *,
    seed: int = 0,
    name: str = "",
    dtype: np.dtype | type | str = np.float32,
    layout: Layout = "torch",
    fans: Fans | None = None,
) -> np.ndarray:
    """A new array of ``shape`` and ``dtype`` filled by ``scheme``.

    The values depend only on ``(seed, name)`` and the shape: the same call gives the same
    array in any process. ``layout`` says how to read the fans from the shape (``"torch"``:
    ``(out, in, *k)``; ``"keras"``/``"jax"``: ``(*k, in, out)``) and which axis orthogonal
    schemes flatten against (:meth:`~initlab.schemes.Scheme.for_layout`); ``fans`` overrides
    the fans. Values are computed in float64 and rounded to ``dtype``.

    >>> initialize("xavier_uniform", (3, 3, 16, 32), layout="keras", seed=1).shape
    (3, 3, 16, 32)
    >>> initialize("zeros", (2,), dtype="float64").tolist()
    [0.0, 0.0]
    """
    resolved = get_scheme(scheme).for_layout(layout)
    dt = np.dtype(dtype)
    if dt.type not in _FLOATS:
        allowed = ", ".join(np.dtype(f).name for f in _FLOATS)
        raise TypeError(f"dtype={dt.name!r} is not valid; allowed: {allowed}.")
    shape = tuple(int(d) for d in shape)
    if fans is None:
        fans = resolved.fans_for(shape, layout)
    return resolved.sample(shape, Stream(seed, name), fans).astype(dt)
