"""Where numba keeps initlab's compiled kernels, and a word while it compiles them.

Cache folder, first that applies:

1. ``NUMBA_CACHE_DIR``, if set: numba's own rule, for every numba user in the process;
2. ``INITLAB_CACHE_DIR``/numba;
3. ``$XDG_CACHE_HOME/initlab/numba``;
4. ``~/.cache/initlab/numba``;

and, should none of these be writable, numba's defaults (next to the package, then
``~/.cache/numba``). Only initlab's own kernels go to 2-4, never into the installed package's
folder, so a read-only install (a system site-packages, a container image) compiles once per
user, not once per process.

The first fill of each kind in a process that takes more than five seconds (numba compiling, not
loading from the cache) prints one line on stderr, so that a cold start is not 15 s of
silence.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["cache_dir", "install_cache_locator", "notice_while_compiling"]

_F = TypeVar("_F", bound=Callable[..., Any])
_PACKAGE = str(Path(__file__).resolve().parents[1])  # .../initlab
NOTICE_AFTER_S = 5.0  # loading from the cache takes well under a second on an idle machine


def cache_dir() -> Path:
    """The folder for initlab's compiled kernels (see the module docstring).

    >>> cache_dir().name
    'numba'
    """
    if os.environ.get("INITLAB_CACHE_DIR"):
        base = Path(os.environ["INITLAB_CACHE_DIR"]).expanduser()
    elif os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "initlab"
    else:
        base = Path.home() / ".cache" / "initlab"
    return base / "numba"


def install_cache_locator() -> bool:
    """Send the kernels of initlab's own files to :func:`cache_dir`; returns whether it could.

    Registered after numba's ``NUMBA_CACHE_DIR`` locator (which keeps precedence) and before
    the in-tree one. Uses numba's cache-locator hook; with a numba that lacks it, numba's
    defaults apply.
    """
    try:
        from numba.core import caching
    except ImportError:  # pragma: no cover
        return False
    impl = getattr(caching, "CacheImpl", None)
    base = getattr(caching, "UserWideCacheLocator", None)
    if impl is None or base is None or not hasattr(impl, "_locator_classes"):
        return False  # pragma: no cover

    class InitlabCacheLocator(base):  # type: ignore[misc, valid-type]
        """numba cache locator for functions defined in initlab's package files."""

        def __init__(self, py_func: Any, py_file: str) -> None:
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = str(cache_dir() / self.get_suitable_cache_subpath(py_file))

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            if not os.path.abspath(py_file).startswith(_PACKAGE):
                return None
            return super().from_function(py_func, py_file)  # None if not writable

    classes = impl._locator_classes
    if any(c.__name__ == "InitlabCacheLocator" for c in classes):
        return True
    after = [i for i, c in enumerate(classes) if c.__name__ == "UserProvidedCacheLocator"]
    classes.insert(after[0] + 1 if after else 0, InitlabCacheLocator)
    return True


def notice_while_compiling(fn: _F) -> _F:
    """Wrap a fill function: the first call of each (distribution, dtype, precision) in this
    process prints one line on stderr if it is still running after five seconds."""
    seen: set[tuple] = set()
    lock = threading.Lock()

    @functools.wraps(fn)
    def wrapper(out: Any, distribution: str, *args: Any, **kwargs: Any) -> Any:
        kind = (distribution, getattr(out, "dtype", None), kwargs.get("encoding"),
                kwargs.get("precision"))  # fmt: skip
        if kind in seen:
            return fn(out, distribution, *args, **kwargs)
        with lock:
            seen.add(kind)
        timer = threading.Timer(NOTICE_AFTER_S, _notice, (distribution,))
        timer.daemon = True
        timer.start()
        try:
            return fn(out, distribution, *args, **kwargs)
        finally:
            timer.cancel()

    return wrapper  # type: ignore[return-value]


def _notice(distribution: str) -> None:
    print(
        f"initlab: compiling the {distribution} kernels (first use; about 15 s, then cached in "
        f"{cache_dir()})...",
        file=sys.stderr,
        flush=True,
    )
