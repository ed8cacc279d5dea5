r"""The one place initlab's randomness comes from.

A :class:`Stream` is keyed by ``(seed, name)``: the values of a parameter named
``"layers.3.weight"`` depend only on the seed and that name, never on which other parameters
exist or in what order they are initialized. Value ``i`` of a stream is a pure function of
``(seed, name, i)`` and the precision: a counter-based generator (Philox4x32-10, Salmon et al.
2011) hashes a 64-bit block counter under the 64-bit key ``derive_key(seed, name)``, so any
slice ``[start, stop)`` can be drawn on its own and equals the same slice of the whole draw,
and a fill gives the same bits on 1 thread or 16.

Two precisions. Single precision, the default, computes each value in float32 arithmetic
and stores it rounded to the output's dtype (exactly for float64; to nearest even for
bfloat16 and float16), so a tensor's values do not depend on its dtype; it takes 4 values
from each Philox block. Double precision (``precision="double"``) computes 53-bit values in
float64, 2 per block: a different stream, for float64 work that wants them. Per block:

* uniform: ``(word >> 8) 2^-24`` (single), ``(two words >> 11) 2^-53`` (double), in [0, 1);
* normal: Box-Muller, ``r = sqrt(-2 log u1)`` times the cosine and sine of an angle taken
  exactly from the integer bits: a fixed 2 words (single) or 4 (double) per pair of values,
  so any slice is drawn on its own;
* truncated normal on [a, b]: the inverse CDF of the uniform, which is the exact truncated
  distribution (no clamping pile-up at the bounds), computed in the coordinate where it is
  accurate (near zero or deep in a tail, see :mod:`initlab.fastrng.truncation`).

Blocks are laid out in tiles of 64 so that the kernels vectorize; the exact layout, the
statistical tests and the speed measurements are in ``docs/rng.md``. The kernels are numba
code in :mod:`initlab.fastrng`, imported on the first draw.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from initlab._validation import check_choice, check_int, check_real

__all__ = ["DRAW_DISTRIBUTIONS", "Draw", "Moments", "Stream", "derive_key", "philox4x32"]

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_NUMPY_DTYPES = (np.float16, np.float32, np.float64)

#: What a :class:`Draw` can ask for.
DRAW_DISTRIBUTIONS = ("uniform", "normal", "truncated_normal", "constant")


@functools.lru_cache(maxsize=4096, typed=True)  # a pure function; fill_ keys every call
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

    A plain NumPy implementation, the reference the compiled kernels are tested against.
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


@dataclass(frozen=True)
class Draw:
    r"""An elementwise distribution: every value is ``loc + scale * X``, ``X`` i.i.d.

    ``X`` is uniform on [0, 1) (``"uniform"``), standard normal (``"normal"``), standard
    normal conditioned on ``[low, high]`` (``"truncated_normal"``), or 0 (``"constant"``:
    every value is ``loc``). ``clip``, optional absolute bounds, keeps rounded outputs
    inside an interval (the truncated normal's ``[a, b]``). A scheme's
    :meth:`~initlab.schemes.Scheme.draw_spec` gives its Draw, which lets a tensor be filled
    in place, straight from the kernel.

    >>> Draw("uniform", loc=-1.0, scale=2.0)  # U(-1, 1)
    Draw(distribution='uniform', loc=-1.0, scale=2.0, low=-inf, high=inf, clip=None)
    """

    distribution: str
    loc: float = 0.0
    scale: float = 1.0
    low: float = -math.inf
    high: float = math.inf
    clip: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        check_choice("distribution", self.distribution, DRAW_DISTRIBUTIONS)
        check_real("loc", self.loc)
        check_real("scale", self.scale, minimum=0.0)
        if not self.low < self.high or math.isnan(self.low) or math.isnan(self.high):
            raise ValueError(
                f"low={self.low!r}, high={self.high!r} is not valid; allowed: low < high."
            )
        if self.clip is not None and not self.clip[0] <= self.clip[1]:
            raise ValueError(f"clip={self.clip!r} is not valid; allowed: (lo, hi), lo <= hi.")


class Moments:
    r"""Running count, sum and sum of squares of the values a fill wrote (float64).

    The fill kernels return ``sum(x)`` and ``sum(x^2)`` of what they stored (bfloat16 and
    float16 values as stored) for each chunk; a ``Moments`` passed to a fill adds them up, so
    that the mean and standard deviation of the result cost no second pass over memory:
    ``mean = S1 / n``, ``std = sqrt(max(S2 / n - mean^2, 0))`` (the population std,
    ``correction=0``).

    >>> m = Moments()
    >>> m.add(4, 2.0, 2.0)  # four values 0, 0, 1, 1
    >>> m.count, m.mean, m.std
    (4, 0.5, 0.5)
    """

    __slots__ = ("count", "squares", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.squares = 0.0

    def __repr__(self) -> str:
        return f"Moments(count={self.count}, total={self.total!r}, squares={self.squares!r})"

    def add(self, count: int, total: float, squares: float) -> None:
        """Add ``count`` values with sum ``total`` and sum of squares ``squares``."""
        self.count += int(count)
        self.total += float(total)
        self.squares += float(squares)

    @property
    def mean(self) -> float | None:
        """``S1 / n``; None before any value."""
        return self.total / self.count if self.count else None

    @property
    def std(self) -> float | None:
        """Population standard deviation ``sqrt(S2 / n - mean^2)``; None before any value."""
        if not self.count:
            return None
        mean = self.total / self.count
        return math.sqrt(max(self.squares / self.count - mean * mean, 0.0))


def _numpy_dtype(dtype: object) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.type not in _NUMPY_DTYPES:
        raise TypeError(f"dtype={dt.name!r} is not valid; allowed: float16, float32, float64.")
    return dt


class Stream:
    """Counter-based random stream for one named tensor.

    >>> s = Stream(seed=0, name="fc.weight")
    >>> whole = s.normal(10)
    >>> bool(np.array_equal(s.normal(4, offset=3), whole[3:7]))
    True
    >>> s.normal(3, dtype=np.float32).dtype
    dtype('float32')
    """

    def __init__(self, seed: int, name: str = "") -> None:
        self.seed = check_int("seed", seed, minimum=0)
        self.name = name
        self.key = derive_key(seed, name)

    @classmethod
    def from_key(cls, key: int) -> Stream:
        """A stream with an explicit 64-bit Philox key (e.g. drawn from another generator).

        >>> Stream.from_key(12345).key
        12345
        """
        key = check_int("key", key, minimum=0)
        if key >= 1 << 64:
            raise ValueError(f"key={key!r} is not valid; allowed: an int in [0, 2**64).")
        stream = cls.__new__(cls)
        stream.seed, stream.name, stream.key = None, None, key
        return stream

    def __repr__(self) -> str:
        if self.name is None:
            return f"Stream.from_key({self.key})"
        return f"Stream(seed={self.seed}, name={self.name!r})"

    def fill(
        self,
        out: np.ndarray,
        draw: Draw,
        *,
        offset: int = 0,
        encoding: str | None = None,
        precision: str = "single",
        threads: int | None = None,
        moments: Moments | None = None,
    ) -> np.ndarray:
        """Write ``draw``'s values ``[offset, offset + out.size)`` into ``out`` in place.

        ``out`` is a C-contiguous float16/float32/float64 array of any shape (its elements in
        order), or the uint16 bits of a bfloat16 tensor with ``encoding="bfloat16"``. Nothing
        of ``out``'s size is allocated. ``precision``: ``"single"`` (float32 values rounded
        to ``out``'s dtype) or ``"double"``. ``threads`` caps the threads used. ``moments``,
        if given, receives the count, sum and sum of squares of the values written (computed
        by the kernels as they write). Returns ``out``.

        >>> buf = np.empty((2, 3), np.float32)
        >>> _ = Stream(0, "w").fill(buf, Draw("normal", scale=0.02))
        >>> bool(np.array_equal(buf.ravel(), Stream(0, "w").normal(6, dtype=np.float32) * 0.02))
        True
        """
        from initlab import fastrng

        if not isinstance(draw, Draw):
            raise TypeError(f"draw={draw!r} is not valid; allowed: an initlab.rng.Draw.")
        flat = out
        if isinstance(out, np.ndarray) and out.ndim != 1 and out.flags.c_contiguous:
            flat = out.reshape(-1)
        if draw.distribution == "constant":
            fastrng.fill_constant(flat, draw.loc, encoding=encoding, moments=moments)
            return out
        fastrng.fill(
            flat,
            draw.distribution,
            self.key,
            offset=offset,
            loc=draw.loc,
            scale=draw.scale,
            low=draw.low,
            high=draw.high,
            clip=draw.clip,
            encoding=encoding,
            precision=precision,
            threads=threads,
            moments=moments,
        )
        return out

    def draw(
        self,
        draw: Draw,
        n: int,
        *,
        offset: int = 0,
        dtype: object = np.float64,
        precision: str = "single",
    ) -> np.ndarray:
        """A new array of ``draw``'s values ``[offset, offset + n)``.

        >>> Stream(0).draw(Draw("constant", loc=0.5), 2).tolist()
        [0.5, 0.5]
        """
        n = check_int("n", n, minimum=0)
        out = np.empty(n, dtype=_numpy_dtype(dtype))
        return self.fill(out, draw, offset=offset, precision=precision)

    def uniform(
        self, n: int, *, offset: int = 0, dtype: object = np.float64, precision: str = "single"
    ) -> np.ndarray:
        """Values ``[offset, offset + n)`` of the stream as uniforms in [0, 1).

        >>> u = Stream(1, "b").uniform(100_000)
        >>> bool(0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.01)
        True
        """
        return self.draw(Draw("uniform"), n, offset=offset, dtype=dtype, precision=precision)

    def normal(
        self, n: int, *, offset: int = 0, dtype: object = np.float64, precision: str = "single"
    ) -> np.ndarray:
        """Values ``[offset, offset + n)`` as standard normals.

        >>> z = Stream(1, "w").normal(100_000)
        >>> bool(abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01)
        True
        >>> bool((z == z.astype(np.float32)).all())  # float32 values unless precision="double"
        True
        """
        return self.draw(Draw("normal"), n, offset=offset, dtype=dtype, precision=precision)

    def truncated_normal(
        self,
        n: int,
        a: float,
        b: float,
        *,
        offset: int = 0,
        dtype: object = np.float64,
        precision: str = "single",
    ) -> np.ndarray:
        """Standard normals conditioned on [a, b], by the inverse CDF of the uniform.

        >>> z = Stream(1, "w").truncated_normal(10_000, -2.0, 2.0)
        >>> bool(z.min() >= -2.0 and z.max() <= 2.0)
        True
        """
        a = check_real("a", a) if not (isinstance(a, float) and math.isinf(a)) else a
        b = check_real("b", b) if not (isinstance(b, float) and math.isinf(b)) else b
        if not a < b:
            raise ValueError(f"a={a!r}, b={b!r} is not valid; allowed: a < b.")
        spec = Draw("truncated_normal", low=a, high=b, clip=(a, b))
        return self.draw(spec, n, offset=offset, dtype=dtype, precision=precision)
