"""``initlab.keras.get``: Keras initializers that draw from initlab's stream.

A Keras name means what it means in Keras (``"he_normal"``, ``"HeNormal"``,
``"VarianceScaling(scale=2.0, distribution='normal')"``: truncated normals), with every
argument of the Keras initializer; any other initlab scheme name keeps initlab's meaning.
The values of ``get(identifier, seed=s)(shape)`` are those of
``initlab.numpy.initialize(scheme, shape, seed=s, layout="keras")``: a pure function of the
seed and the shape.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from initlab._validation import check_int
from initlab.numpy import initialize
from initlab.schemes import Scheme, get_scheme
from initlab.spellings import KERAS

__all__ = ["Initializer", "get", "keras_scheme"]

_NAME = re.compile(r"^\s*([A-Za-z_][\w.]*)")
_NUMPY_FLOATS = ("float16", "float32", "float64")


def keras_scheme(identifier: str | Scheme, **config: Any) -> Scheme:
    """The scheme a Keras identifier names: a Keras initializer name (looked up first, with
    Keras's semantics and arguments) or any initlab scheme name.

    >>> keras_scheme("he_normal").distribution  # Keras: truncated
    'truncated_normal'
    >>> keras_scheme("VarianceScaling", scale=2.0, distribution="normal").distribution
    'truncated_normal'
    >>> keras_scheme("kaiming_normal_").distribution  # not a Keras name: initlab's (torch's)
    'normal'
    """
    if isinstance(identifier, str):
        match = _NAME.match(identifier)
        if match and match.group(1) in KERAS:
            identifier = "keras." + identifier.strip()
    return get_scheme(identifier, **config)


def _seed(seed: Any) -> int:
    if seed is None:  # as Keras: Python's generator, which keras.utils.set_random_seed seeds
        return random.randint(0, 2**31 - 1)
    return check_int("seed", seed, minimum=0)


@keras.saving.register_keras_serializable(package="initlab")
class Initializer(keras.initializers.Initializer):
    """A Keras initializer that fills with an initlab scheme from initlab's stream.

    ``scheme``: a Scheme or a registry name (resolved by :func:`initlab.get_scheme`; use
    :func:`get` for Keras's own names). ``seed``: an int, or None for one drawn from Python's
    ``random`` (as Keras does, so ``keras.utils.set_random_seed`` makes it reproducible).
    Like a seeded Keras initializer, every call with the same shape returns the same values.
    Kernels are read in Keras's layout ``(*k, in, out)``.

    >>> init = Initializer("he_uniform", seed=0)
    >>> init.get_config()
    {'scheme': "variance_scaling(scale=2.0, mode='fan_in', distribution='uniform')", 'seed': 0}
    >>> w = keras.ops.convert_to_numpy(init((64, 32)))
    >>> bool(abs(w).max() <= (6 / 64) ** 0.5), w.dtype
    (True, dtype('float32'))
    """

    def __init__(self, scheme: str | Scheme = "keras.glorot_uniform", seed: int | None = None):
        self.scheme = get_scheme(scheme)
        self._init_seed = seed
        self.seed = _seed(seed)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        dtype = keras.backend.standardize_dtype(dtype)
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                f"dtype={dtype!r} is not valid for initializer {self.scheme.name!r}; "
                "allowed: a floating dtype."
            )
        values = initialize(
            self.scheme,
            tuple(int(d) for d in shape),
            seed=self.seed,
            dtype=dtype if dtype in _NUMPY_FLOATS else "float32",
            layout="keras",
        )
        return keras.ops.convert_to_tensor(values, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"scheme": self.scheme.name, "seed": self._init_seed}

    def __repr__(self) -> str:
        return f"initlab.keras.Initializer({self.scheme.name!r}, seed={self._init_seed!r})"


def _from_config(class_name: str, config: Mapping[str, Any], seed: int | None) -> Initializer:
    config = dict(config)
    config_seed = config.pop("seed", None)
    if isinstance(config_seed, dict) or (config_seed is not None and not isinstance(
        config_seed, int
    )):
        config_seed = None  # a serialized SeedGenerator: not an int initlab can use
    if class_name in ("Initializer", "initlab>Initializer"):
        return Initializer(config["scheme"], seed if seed is not None else config_seed)
    return Initializer(
        keras_scheme(class_name, **config), seed if seed is not None else config_seed
    )


def get(identifier: Any, seed: int | None = None) -> Initializer:
    """A ``keras.initializers.Initializer`` for ``identifier``, drawing from initlab's stream.

    ``identifier``: a Keras initializer name (``"he_normal"``, ``"GlorotUniform"``,
    ``"VarianceScaling(scale=2, mode='fan_out')"``: Keras's exact semantics), any initlab
    scheme name (``"delta_orthogonal"``, ``"he_uniform(mode=fan_out)"``), a Scheme, a Keras
    config dict (``{"class_name": "HeNormal", "config": {"seed": 1}}``) or a Keras
    initializer instance (its class and config, drawn by initlab). ``seed`` overrides a seed
    in the config; None takes the config's, else a fresh one.

    The values of ``get(name, seed=s)(shape)`` equal
    ``initlab.numpy.initialize(scheme, shape, seed=s, layout="keras")``.

    >>> import keras, initlab.keras
    >>> layer = keras.layers.Dense(128, activation="relu",
    ...                            kernel_initializer=initlab.keras.get("he_normal", seed=0))
    >>> layer.build((None, 512))
    >>> w = keras.ops.convert_to_numpy(layer.kernel)
    >>> bool(abs(w).max() <= 2 * (2 / 512) ** 0.5 / 0.8796), round(float(w.std()), 2)
    (True, 0.06)
    """
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    if isinstance(identifier, Initializer):
        if seed is None:
            return identifier
        return Initializer(identifier.scheme, seed)
    if isinstance(identifier, (str, Scheme)):
        return Initializer(keras_scheme(identifier), seed)
    if isinstance(identifier, Mapping):
        if "class_name" not in identifier:
            raise ValueError(
                f"identifier={identifier!r} is not valid; allowed: a Keras config dict with "
                "'class_name' and 'config'."
            )
        name = str(identifier["class_name"]).split(">")[-1]
        return _from_config(name, identifier.get("config") or {}, seed)
    if isinstance(identifier, keras.initializers.Initializer):
        return _from_config(type(identifier).__name__, identifier.get_config(), seed)
    if isinstance(identifier, type) and issubclass(identifier, keras.initializers.Initializer):
        return _from_config(identifier.__name__, {}, seed)
    raise TypeError(
        f"identifier={identifier!r} is not valid; allowed: a Keras initializer name, an "
        "initlab scheme name or Scheme, a Keras config dict or a Keras Initializer."
    )


def sample_keras(scheme: Scheme, shape: Sequence[int], seed: int, name: str) -> np.ndarray:
    """Float64 values of ``scheme`` for a Keras variable of ``shape`` named ``name``."""
    return initialize(scheme, shape, seed=seed, name=name, dtype="float64", layout="keras")
