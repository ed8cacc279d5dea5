r"""Fill NumPy buffers in place from the counter-based kernels.

``fill(out, distribution, key, offset=...)`` writes elements ``[offset, offset + out.size)``
of the stream ``key`` into ``out``: uniforms ``loc + scale * U[0, 1)``, normals
``loc + scale * N(0, 1)``, or truncated normals ``loc + scale * Z``, ``Z ~ N(0, 1) | [low,
high]``. The values are a pure function of ``(key, index, precision)``: the same whatever the
thread count, the offset a slice starts at, or the machine.

``out`` is a 1-D C-contiguous array: float32 or float64, float16 (rounded from the
single-precision values), or the bits of a bfloat16 tensor (a uint16 or int16 view with
``encoding="bfloat16"``). Precision ``"single"`` (the default) computes every value in
float32 arithmetic and stores it rounded to the buffer's dtype (exactly, for float64), so the
values do not depend on the dtype; ``"double"`` computes 53-bit values in float64 arithmetic,
for float64 work that wants them (other values: the two precisions are different streams).

Work is split by size: below :data:`PARALLEL_MIN` elements the calling thread fills alone
(starting threads would cost more than it saves); above, ``threads`` threads (all CPUs by
default, see :mod:`initlab.fastrng.threads`) share the chunks. Partial tiles at either end go
through a one-tile scratch buffer.

>>> import numpy as np
>>> a = fill(np.empty(10, np.float32), "normal", key=7)
>>> b = fill(np.empty(4, np.float32), "normal", key=7, offset=3)
>>> bool(np.array_equal(a[3:7], b))
True
"""

from __future__ import annotations

import functools
import math
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import typeof

from initlab._validation import check_choice, check_int, check_real
from initlab.draw_params import DISTRIBUTIONS, kernel_params
from initlab.fastrng import _kernels
from initlab.fastrng._cache import notice_while_compiling
from initlab.fastrng.threads import available_threads, run_chunked

if TYPE_CHECKING:
    from initlab.rng import Moments

__all__ = [
    "DISTRIBUTIONS",
    "ENCODINGS",
    "PARALLEL_MIN",
    "PreparedFill",
    "fill",
    "fill_constant",
    "philox4x32",
    "prepare",
]

ENCODINGS = ("float16", "bfloat16", "float32", "float64")
#: Fewest elements for which a fill is shared between threads.
PARALLEL_MIN = 1 << 19

_DIST = {"uniform": _kernels.UNIFORM, "normal": _kernels.NORMAL}
_DIST["truncated_normal"] = _kernels.TRUNCATED
_KERNELS = {"single": _kernels.fill_single, "double": _kernels.fill_double}


def _keys(key: int) -> np.ndarray:
    """The key's two 32-bit words, as the kernels take them."""
    if type(key) is not int or not 0 <= key < 1 << 64:
        key = check_int("key", key, minimum=0)
        if key >= 1 << 64:
            raise ValueError(f"key={key!r} is not valid; allowed: an int in [0, 2**64).")
    return np.array((key & 0xFFFFFFFF, key >> 32), dtype=np.uint64)


class _KeyWords(threading.local):
    """This thread's two-word key array for :class:`PreparedFill` (a new array per call
    costs 0.4 us): a serial fill has read the words before it returns, and nothing runs
    between writing them and the kernel's call. Written through a memoryview, cheaper than
    NumPy's item assignment."""

    def __init__(self) -> None:
        self.words = np.empty(2, dtype=np.uint64)
        self.slots = memoryview(self.words)


_KEY_WORDS = _KeyWords()


_BY_DTYPE = {
    np.dtype(np.float16): ("float16", np.int16),
    np.dtype(np.float32): ("float32", None),
    np.dtype(np.float64): ("float64", None),
}
_HOLDERS = {
    "float16": ((np.float16, np.int16, np.uint16), np.int16),
    "bfloat16": ((np.uint16, np.int16), np.uint16),
    "float32": ((np.float32,), None),
    "float64": ((np.float64,), None),
}


def _kernel_view(out: np.ndarray, encoding: str | None) -> tuple[np.ndarray, str]:
    """``out`` as the kernels want it (float16 as int16 bits, bfloat16 as uint16 bits)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out={type(out).__name__} is not valid; allowed: a numpy.ndarray.")
    flags = out.flags
    if out.ndim != 1 or not flags.c_contiguous or not flags.writeable:
        raise ValueError(
            f"out with shape {out.shape} is not valid; allowed: a writeable 1-D C-contiguous "
            "array (reshape(-1) a contiguous array first)."
        )
    if encoding is None:
        found = _BY_DTYPE.get(out.dtype)
        if found is None:
            raise TypeError(
                f"out.dtype={out.dtype.name!r} is not valid; allowed: float16, float32, "
                "float64, or uint16/int16 with encoding='bfloat16' or 'float16'."
            )
        encoding, bits = found
    else:
        check_choice("encoding", encoding, ENCODINGS)
        holders, bits = _HOLDERS[encoding]
        if out.dtype.type not in holders:
            allowed = ", ".join(np.dtype(t).name for t in holders)
            raise TypeError(
                f"out.dtype={out.dtype.name!r} does not hold encoding={encoding!r}; "
                f"allowed: {allowed}."
            )
    return (out if bits is None else out.view(bits)), encoding


@functools.lru_cache(maxsize=1024)
def _params(
    distribution: str,
    precision: str,
    loc: float,
    scale: float,
    low: float,
    high: float,
    clip: tuple[float, float] | None,
) -> tuple[str, np.ndarray]:
    """The kernels' 10 parameters (:func:`initlab.draw_params.kernel_params`) as an array."""
    precision, values = kernel_params(distribution, precision, loc, scale, low, high, clip)
    return precision, np.array(values, dtype=np.float32 if precision == "single" else np.float64)


def fill(
    out: np.ndarray,
    distribution: str,
    key: int,
    *,
    offset: int = 0,
    loc: float = 0.0,
    scale: float = 1.0,
    low: float = -math.inf,
    high: float = math.inf,
    clip: tuple[float, float] | None = None,
    encoding: str | None = None,
    precision: str = "single",
    threads: int | None = None,
    moments: Moments | None = None,
) -> np.ndarray:
    """Write elements ``[offset, offset + out.size)`` of stream ``key`` into ``out``; return it.

    ``value = loc + scale * X``, ``X`` uniform on [0, 1), standard normal, or standard normal
    conditioned on ``[low, high]`` (truncated_normal, exact inverse-CDF sampling); ``clip``
    keeps the outputs inside absolute bounds against the last ulp of rounding. ``precision``
    is ``"single"`` (float32 values, rounded to ``out``'s dtype) or ``"double"`` (float64
    values); ``threads`` caps the threads of a parallel fill (1: always serial). ``moments``
    (an :class:`initlab.rng.Moments`) receives the count, sum and sum of squares of the
    values written, which the kernels add up as they write (float64, per chunk).

    >>> import numpy as np
    >>> u = fill(np.empty(6, np.float64), "uniform", key=1, loc=-1.0, scale=2.0)
    >>> bool(((u >= -1) & (u < 1)).all())
    True
    """
    view, encoding = _kernel_view(out, encoding)
    if type(offset) is not int or offset < 0:
        offset = check_int("offset", offset, minimum=0)
    if threads is not None:
        check_int("threads", threads, minimum=1)
    keys = _keys(key)
    precision, params = _params(distribution, precision, loc, scale, low, high, clip)
    if view.size == 0:
        return out
    kernel, dist = _KERNELS[precision], _DIST[distribution]
    stats = moments is not None
    if view.size < PARALLEL_MIN:
        sums = [kernel(view, offset, keys, params, dist, stats)]
    else:  # the same chunks on any thread count (1 included), so the same sums
        count = available_threads() if threads is None else threads
        sums = []  # list.append is atomic under the GIL

        def work(part: np.ndarray, first: int) -> None:
            sums.append(kernel(part, first, keys, params, dist, stats))

        run_chunked(work, view, offset, count)
    if moments is not None:
        # fsum rounds the exact sum of the chunks' sums: the same on any thread count
        moments.add(view.size, math.fsum(s for s, _ in sums), math.fsum(q for _, q in sums))
    return out


class PreparedFill:
    """One kind of fill, checked once: :func:`fill` of a distribution with its parameters,
    encoding and precision, for any buffer, key and offset. Made by :func:`prepare`.

    Why: on a small buffer :func:`fill` spends almost as long checking its arguments as the
    kernel spends drawing (2.5 us of a 5.8 us fill of 1000 normals), and the drop-ins of
    ``torch.nn.init`` and ``fill_`` fill many small tensors of one kind. ``plan(out, key)``
    writes exactly what ``fill(out, distribution, key, ...)`` writes. A buffer of the plan's
    dtype (:attr:`holder`), 1-D, C-contiguous, aligned and writeable, below
    :data:`PARALLEL_MIN` elements, with an int key and offset in range, goes straight to the
    kernel compiled for exactly those types (:func:`_entry_point`); any other call goes
    through :func:`fill`, its checks and its errors.

    >>> import numpy as np
    >>> plan = prepare("normal", 0.0, 0.5, encoding="float32")
    >>> a, b = np.empty(8, np.float32), np.empty(8, np.float32)
    >>> bool(np.array_equal(plan(a, 7, offset=3), fill(b, "normal", 7, offset=3, scale=0.5)))
    True
    """

    __slots__ = ("_arguments", "_dist", "_kernel", "_params", "holder")

    def __init__(
        self,
        distribution: str,
        loc: float,
        scale: float,
        low: float,
        high: float,
        clip: tuple[float, float] | None,
        encoding: str,
        precision: str,
    ) -> None:
        computed, self._params = _params(distribution, precision, loc, scale, low, high, clip)
        #: The dtype of the buffers it writes directly (float16 / bfloat16: int16 / uint16 bits).
        self.holder = np.dtype(_HOLDERS[encoding][1] or _HOLDERS[encoding][0][0])
        self._dist = _DIST[distribution]
        self._arguments = {"distribution": distribution, "loc": loc, "scale": scale, "low": low,
                           "high": high, "clip": clip, "encoding": encoding,
                           "precision": precision}  # fmt: skip
        sample = np.empty(1, self.holder)
        self._checked(sample, 0)  # numba compiles (or loads) the kernel now
        self._kernel = _entry_point(
            _KERNELS[computed], (sample, 0, _KEY_WORDS.words, self._params, self._dist, False)
        )

    def __call__(
        self, out: np.ndarray, key: int, offset: int = 0, moments: Moments | None = None
    ) -> np.ndarray:
        """Write elements ``[offset, offset + out.size)`` of stream ``key`` into ``out`` (and
        their count, sum and sum of squares into ``moments``); return it."""
        if not (
            out.dtype is self.holder
            and out.ndim == 1
            and out.flags.carray  # C-contiguous, aligned, writeable: numba's usual type
            and 0 < out.size < PARALLEL_MIN
            and type(key) is int
            and 0 <= key < 1 << 64
            and type(offset) is int
            and 0 <= offset < 1 << 63
        ):
            return self._checked(out, key, offset, moments)
        stats, words = moments is not None, _KEY_WORDS
        words.slots[0], words.slots[1] = key & 0xFFFFFFFF, key >> 32
        sums = self._kernel(out, offset, words.words, self._params, self._dist, stats)
        if stats:  # as fill adds up its chunks' sums (here one chunk)
            moments.add(out.size, math.fsum(sums[:1]), math.fsum(sums[1:]))
        return out

    def _checked(
        self, out: np.ndarray, key: int, offset: int = 0, moments: Moments | None = None
    ) -> np.ndarray:
        """Through :func:`fill`: its checks, its threads, and (as the public
        :func:`initlab.fastrng.fill`) a word on stderr while numba compiles."""
        return _noticed_fill(out, key=key, offset=offset, moments=moments, **self._arguments)


def _entry_point(kernel: Any, arguments: tuple) -> Any:
    """The kernel numba compiled for these arguments' types (the dispatcher if none).

    Why: numba's dispatcher types every argument of every call, 0.2 us of a 3 us fill of
    1000 normals. The entry point checks nothing (handed a strided, 2-D or read-only array it
    writes the memory as if it were this type), so :class:`PreparedFill` calls it only with
    arguments whose types it has just checked to be these.
    """
    overload = kernel.overloads.get(tuple(typeof(a) for a in arguments))
    return kernel if overload is None else overload.entry_point


@functools.lru_cache(maxsize=4096)
def prepare(
    distribution: str,
    loc: float = 0.0,
    scale: float = 1.0,
    low: float = -math.inf,
    high: float = math.inf,
    clip: tuple[float, float] | None = None,
    *,
    encoding: str = "float32",
    precision: str = "single",
) -> PreparedFill:
    """The :class:`PreparedFill` of these :func:`fill` arguments, checked here once (cached).

    >>> prepare("uniform", -1.0, 2.0).holder
    dtype('float32')
    >>> prepare("normal", encoding="bfloat16").holder
    dtype('uint16')
    """
    check_choice("encoding", encoding, ENCODINGS)
    return PreparedFill(distribution, loc, scale, low, high, clip, encoding, precision)


_noticed_fill = notice_while_compiling(fill)


def fill_constant(
    out: np.ndarray, value: float, *, encoding: str | None = None, moments: Moments | None = None
) -> np.ndarray:
    """Set every element of ``out`` (same buffers as :func:`fill`) to ``value``; return it.

    ``moments`` receives the count, sum and sum of squares of the value as stored.

    >>> fill_constant(np.empty(3, np.float32), 0.25).tolist()
    [0.25, 0.25, 0.25]
    """
    view, encoding = _kernel_view(out, encoding)
    value = check_real("value", value)
    if encoding in ("float16", "bfloat16"):
        bits = np.empty(1, dtype=view.dtype)
        _kernels.encode_half(np.array([value], dtype=np.float32), bits)
        view[:] = bits[0]
    else:
        view[:] = value
    if moments is not None and view.size:
        stored = float(_kernels.stored_value(view[:1]))
        moments.add(view.size, view.size * stored, view.size * stored * stored)
    return out


def philox4x32(counters: np.ndarray, key: int) -> np.ndarray:
    """Philox4x32-10 of the rows of ``counters`` (``(n, 4)`` uint32) under the 64-bit ``key``.

    The generator every value comes from. Known-answer vectors of Random123:

    >>> out = philox4x32(np.zeros((1, 4), dtype=np.uint32), 0)
    >>> [f"{w:08x}" for w in out[0]]
    ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    counters = np.asarray(counters)
    if counters.ndim != 2 or counters.shape[1] != 4:
        raise ValueError(f"counters of shape {counters.shape} is not valid; allowed: (n, 4).")
    keys = _keys(key)
    words = _kernels.philox_blocks(counters.astype(np.uint64), keys[0], keys[1])
    return words.astype(np.uint32)
