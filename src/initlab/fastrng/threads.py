r"""Run a fill on several threads: chunks handed out one at a time, the caller working too.

The kernels release the GIL (``nogil``), so Python threads run them in parallel. A fill is
cut into chunks of :data:`CHUNK` elements whose boundaries fall on whole tiles of the stream;
the calling thread and up to ``threads - 1`` pool threads take chunks from a shared counter
until none is left, and the caller waits only for chunks someone has taken. A pool thread
that the OS schedules late (another process on its core) then finds no work instead of
holding the fill up, which a fork-join runtime (OpenMP's barrier) cannot avoid; measured on
a loaded 2-core machine, 1M-element fills went from ~10 ms (numba's OpenMP ``prange``) to
the single-thread time or better. The values cannot depend on any of this: each element is a
pure function of its index.

The pool is created on first use and re-created in a forked child (a child has none of its
parent's threads).

>>> import numpy as np
>>> out = np.zeros(10)
>>> run_chunked(lambda part, first: part.__setitem__(slice(None), first), out, 0, 2, chunk=4)
>>> out.tolist()
[0.0, 0.0, 0.0, 0.0, 4.0, 4.0, 4.0, 4.0, 8.0, 8.0]
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from initlab._validation import check_int

__all__ = ["CHUNK", "available_threads", "run_chunked"]

#: Elements per chunk: 5 * 2^16, a multiple of every tile size (128, 256, 320).
CHUNK = 5 << 16

_POOL: dict[str, object] = {"pid": None, "executor": None, "size": 0}
_POOL_LOCK = threading.Lock()


def available_threads() -> int:
    """CPUs this process may run on (``INITLAB_THREADS`` overrides).

    >>> available_threads() >= 1
    True
    """
    configured = os.environ.get("INITLAB_THREADS")
    if configured is not None:
        try:
            return check_int("INITLAB_THREADS", int(configured), minimum=1)
        except ValueError:
            raise ValueError(
                f"INITLAB_THREADS={configured!r} is not valid; allowed: an integer >= 1."
            ) from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


def _executor(workers: int) -> ThreadPoolExecutor:
    with _POOL_LOCK:
        if _POOL["pid"] != os.getpid() or _POOL["size"] < workers:
            _POOL["executor"] = ThreadPoolExecutor(workers, thread_name_prefix="initlab-fill")
            _POOL["pid"], _POOL["size"] = os.getpid(), workers
        return _POOL["executor"]  # type: ignore[return-value]


def run_chunked(
    work: Callable[[np.ndarray, int], None],
    out: np.ndarray,
    first: int,
    threads: int,
    *,
    chunk: int = CHUNK,
) -> None:
    """Call ``work(out[a:b], first + a)`` over chunks of ``out`` on ``threads`` threads.

    Chunk boundaries are multiples of ``chunk`` in stream coordinates (``first + a``). Returns
    when every chunk is done; re-raises the first exception a chunk raised.
    """
    n = out.size
    start = (first // chunk + 1) * chunk
    bounds = [first, *range(start, first + n, chunk), first + n]
    parts = [(a - first, b - first) for a, b in itertools.pairwise(bounds) if b > a]
    if threads <= 1 or len(parts) <= 1:
        for a, b in parts:
            work(out[a:b], first + a)
        return
    claim = itertools.count()  # next() is atomic under the GIL
    finished = threading.Semaphore(0)
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            i = next(claim)
            if i >= len(parts):
                return
            a, b = parts[i]
            try:
                if not errors:
                    work(out[a:b], first + a)
            except BaseException as error:  # re-raised by the caller below
                errors.append(error)
            finally:
                finished.release()

    executor = _executor(threads - 1)
    for _ in range(min(threads - 1, len(parts) - 1)):
        executor.submit(worker)
    worker()
    for _ in parts:
        finished.acquire()
    if errors:
        raise errors[0]
