r"""The one place initlab's randomness comes from.

A :class:`Stream` is keyed by ``(seed, name)``: the values of a parameter named
``"layers.3.weight"`` depend only on the seed and that name, never on which other parameters
exist or in what order they are initialized. Value ``i`` of a stream is a pure function of
``(seed, name, i)`` (a counter-based generator, Philox4x32-10 of Salmon et al. 2011), so any
slice ``[start, stop)`` can be drawn on its own and equals the same slice of the whole draw.

Mapping from 32-bit words to values, per 128-bit Philox block ``j`` (words ``w0..w3``):

* uniform, values ``2j`` and ``2j + 1``: 53-bit floats in [0, 1) from ``(w0, w1)`` and
  ``(w2, w3)``;
* normal, values ``2j`` and ``2j + 1``: Box-Muller on ``u1 = (w0, w1)``, ``u2 = (w2, w3)``,
  ``r cos(2 pi u2)`` and ``r sin(2 pi u2)`` with ``r = sqrt(-2 log(1 - u1))``;
* truncated normal on [a, b], value ``i``: inverse CDF of the uniform value ``i``, which is
  the exact truncated distribution (no clamping pile-up at the bounds).

Every value is computed in float64; lower precisions round from it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import numpy as np
from scipy import special

from initlab._validation import check_int, check_real

__all__ = ["Stream", "derive_key", "philox4x32"]

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_CHUNK_BLOCKS = 1 << 18  # 256k blocks (1M words) per vectorized pass, bounded memory


def derive_key(seed: int, name: str = "") -> int:
    """64-bit Philox key for ``(seed, name)``, stable across processes and platforms.

    >>> derive_key(0, "w") == derive_key(0, "w") != derive_key(1, "w")
    True
    """
    seed = check_int("seed", seed, minimum=0)
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} is not valid; allowed: a str.")
    digest = hashlib.blake2b(f"{seed}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def philox4x32(counters: np.ndarray, key: int, rounds: int = 10) -> np.ndarray:
    """Philox4x32 (Salmon et al. 2011) of ``counters`` (shape ``(n, 4)``, uint32) under ``key``.

    Returns the ``(n, 4)`` uint32 output words. Known-answer vector from Random123:

    >>> out = philox4x32(np.zeros((1, 4), dtype=np.uint32), 0)
    >>> [f"{w:08x}" for w in out[0]]
    ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    c = [counters[:, k].astype(np.uint64) for k in range(4)]
    k0, k1 = key & 0xFFFFFFFF, (key >> 32) & 0xFFFFFFFF
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
        p0 = _M0 * c[0]
        p1 = _M1 * c[2]
        c = [
            (p1 >> _SHIFT32) ^ c[1] ^ np.uint64(k0),
            p1 & _MASK32,
            (p0 >> _SHIFT32) ^ c[3] ^ np.uint64(k1),
            p0 & _MASK32,
        ]
    return np.stack(c, axis=1).astype(np.uint32)


def _blocks(key: int, first: int, count: int) -> np.ndarray:
    j = np.arange(first, first + count, dtype=np.uint64)
    counters = np.zeros((count, 4), dtype=np.uint32)
    counters[:, 0] = (j & _MASK32).astype(np.uint32)
    counters[:, 1] = (j >> _SHIFT32).astype(np.uint32)
    return philox4x32(counters, key)


def _unit(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """53-bit uniform in [0, 1) from two uint32 words."""
    a = (hi >> 5).astype(np.float64)
    b = (lo >> 6).astype(np.float64)
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0)


def _uniform_pairs(words: np.ndarray) -> np.ndarray:
    return np.stack([_unit(words[:, 0], words[:, 1]), _unit(words[:, 2], words[:, 3])], axis=1)


def _normal_pairs(words: np.ndarray) -> np.ndarray:
    u1 = _unit(words[:, 0], words[:, 1])
    u2 = _unit(words[:, 2], words[:, 3])
    r = np.sqrt(-2.0 * np.log1p(-u1))
    theta = 2.0 * math.pi * u2
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


class Stream:
    """Counter-based random stream for one named tensor.

    >>> s = Stream(seed=0, name="fc.weight")
    >>> whole = s.normal(10)
    >>> bool(np.array_equal(s.normal(4, offset=3), whole[3:7]))
    True
    """

    def __init__(self, seed: int, name: str = "") -> None:
        self.seed = check_int("seed", seed, minimum=0)
        self.name = name
        self.key = derive_key(seed, name)

    def __repr__(self) -> str:
        return f"Stream(seed={self.seed}, name={self.name!r})"

    def _draw(self, n: int, offset: int, pairs: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        n = check_int("n", n, minimum=0)
        offset = check_int("offset", offset, minimum=0)
        out = np.empty(n, dtype=np.float64)
        if n == 0:
            return out
        first_block, last_block = offset // 2, (offset + n - 1) // 2
        skip = offset % 2
        done = 0
        for start in range(first_block, last_block + 1, _CHUNK_BLOCKS):
            count = min(_CHUNK_BLOCKS, last_block + 1 - start)
            values = pairs(_blocks(self.key, start, count)).reshape(-1)
            if start == first_block:
                values = values[skip:]
            take = min(len(values), n - done)
            out[done : done + take] = values[:take]
            done += take
        return out

    def uniform(self, n: int, *, offset: int = 0) -> np.ndarray:
        """Values ``[offset, offset + n)`` of the stream as uniforms in [0, 1), float64.

        >>> u = Stream(1, "b").uniform(100_000)
        >>> bool(0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.01)
        True
        """
        return self._draw(n, offset, _uniform_pairs)

    def normal(self, n: int, *, offset: int = 0) -> np.ndarray:
        """Values ``[offset, offset + n)`` as standard normals, float64.

        >>> z = Stream(1, "w").normal(100_000)
        >>> bool(abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01)
        True
        """
        return self._draw(n, offset, _normal_pairs)

    def truncated_normal(self, n: int, a: float, b: float, *, offset: int = 0) -> np.ndarray:
        """Standard normals conditioned on [a, b], by the inverse CDF of :meth:`uniform`.

        >>> z = Stream(1, "w").truncated_normal(10_000, -2.0, 2.0)
        >>> bool(z.min() >= -2.0 and z.max() <= 2.0)
        True
        """
        a = check_real("a", a)
        b = check_real("b", b)
        if not a < b:
            raise ValueError(f"a={a!r}, b={b!r} is not valid; allowed: a < b.")
        u = self.uniform(n, offset=offset)
        # Work on the side of the axis with more precision: mirror intervals above zero.
        flip = a > 0
        lo, hi = (-b, -a) if flip else (a, b)
        p_lo, p_hi = special.ndtr(lo), special.ndtr(hi)
        z = special.ndtri(p_lo + u * (p_hi - p_lo))
        z = np.clip(z, lo, hi)  # guards the last ulp of rounding, not a pile-up
        return -z if flip else z
