"""Run Keras on its torch backend in the whole suite (doctests included), and leave the Keras
and JAX adapters' doctests out when those optional test dependencies are not installed."""

import importlib.util
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

collect_ignore = [
    f"src/initlab/{name}"
    for name in ("keras", "jax")
    if importlib.util.find_spec(name) is None
]
