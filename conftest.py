"""Suite-wide settings: Keras on its torch backend (doctests included); the Keras and JAX
adapters' doctests left out when those optional test dependencies are not installed; and the
tests that run JAX last, because JAX starts threads when it first computes and a later
``os.fork()`` (tests/test_rng_kernel.py forks) could then deadlock (JAX warns so)."""

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

collect_ignore = [
    f"src/initlab/{name}"
    for name in ("keras", "jax")
    if importlib.util.find_spec(name) is None
]

_JAX_FILES = {"test_parity_jax.py", "test_jax_adapter.py"}
_JAX_PACKAGE = Path(__file__).parent / "src" / "initlab" / "jax"


def _runs_jax(item) -> bool:
    path = Path(str(item.fspath))
    return path.name in _JAX_FILES or _JAX_PACKAGE in path.parents


def pytest_collection_modifyitems(items):
    items[:] = [i for i in items if not _runs_jax(i)] + [i for i in items if _runs_jax(i)]
