r"""initlab for JAX: initializers like ``jax.nn.initializers``, drawing from initlab's stream.

Importing this module imports JAX. :func:`get` returns a function
``init(key, shape, dtype=None, out_sharding=None) -> jax.Array`` (usable as a flax
``kernel_init``), a pure function of the key, also under ``jax.jit`` and ``jax.vmap``.

How the key maps to initlab's stream: the key's data (``jax.random.key_data``), ``n`` 32-bit
words ``w_0 ... w_{n-1}``, read as one integer ``seed = sum_i w_i 2^(32 (n - 1 - i))`` (for
the default threefry key, ``w_0 2^32 + w_1``), and the values are those of
``initlab.numpy.initialize(scheme, shape, seed=seed, layout="jax")``, i.e. of the stream
``Stream(seed, "")``. So ``jax.random.key(s)`` gives initlab's seed ``s`` (for
``0 <= s < 2^32``), and split keys give unrelated streams.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from initlab.numpy import initialize
from initlab.schemes import Scheme, get_scheme
from initlab.spellings import JAX

__all__ = ["get", "key_to_seed"]

_NAME = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*$")
_CALL_NAME = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\(")
_NUMPY_FLOATS = ("float16", "float32", "float64")


def key_to_seed(key: Any) -> int:
    """initlab's seed for a JAX PRNG key (typed ``jax.random.key`` or raw ``PRNGKey``).

    >>> key_to_seed(jax.random.key(7)), key_to_seed(jax.random.PRNGKey(7))
    (7, 7)
    """
    return _words_to_seed(np.asarray(_key_data(key)))


def _key_data(key: Any) -> Any:
    if jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def _words_to_seed(words: np.ndarray) -> int:
    words = np.asarray(words)
    if words.dtype != np.uint32 or words.ndim != 1:
        raise TypeError(
            f"key with data of dtype {words.dtype} and shape {words.shape} is not valid; "
            "allowed: a single JAX PRNG key (jax.random.key or jax.random.PRNGKey)."
        )
    seed = 0
    for word in words.tolist():
        seed = (seed << 32) | int(word)
    return seed


def _bind(factory: Callable[..., Scheme], args: tuple, kwargs: dict) -> tuple[Scheme, Any]:
    signature = inspect.signature(factory)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as error:
        allowed = list(signature.parameters)
        raise TypeError(f"{factory.__name__}: {error}; allowed: {allowed}.") from None
    dtype = bound.arguments.pop("dtype", None)
    return factory(*bound.args, **bound.kwargs), dtype


def _resolve(identifier: str | Scheme, args: tuple, kwargs: dict) -> tuple[Scheme, Any]:
    if isinstance(identifier, str):
        match = _NAME.match(identifier)
        if match and match.group(1) in JAX:
            return _bind(JAX[match.group(1)], args, kwargs)
        call = _CALL_NAME.match(identifier)
        if call and call.group(1) in JAX and not args:  # "he_normal(in_axis=0)": JAX's
            dtype = kwargs.pop("dtype", None)
            return get_scheme("jax." + identifier.strip(), **kwargs), dtype
    if args:
        raise TypeError(
            f"positional arguments {args!r} need a JAX initializer name; got "
            f"{identifier!r}: pass keyword arguments."
        )
    dtype = kwargs.pop("dtype", None)
    return get_scheme(identifier, **kwargs), dtype


def get(identifier: str | Scheme, *args: Any, **kwargs: Any) -> Callable[..., jax.Array]:
    """An initializer ``(key, shape, dtype=None, out_sharding=None) -> jax.Array``.

    ``identifier``: a ``jax.nn.initializers`` name with that function's arguments
    (``get("variance_scaling", 2.0, "fan_in", "normal", in_axis=(0, 1))``,
    ``get("orthogonal", scale=2.0, column_axis=0)``; ``"zeros"`` and ``"ones"`` take none),
    with JAX's exact semantics; or any initlab scheme name or Scheme (keyword arguments go to
    :func:`initlab.get_scheme`). ``dtype``: the default dtype of the arrays (JAX's default
    float dtype when None). Kernels are read in JAX's layout ``(*k, in, out)``.

    The values are a pure function of the key (see the module docstring for how the key maps
    to initlab's seed): ``get(name)(jax.random.key(s), shape)`` equals
    ``initlab.numpy.initialize(scheme, shape, seed=s, layout="jax")``.

    >>> import jax, initlab.jax
    >>> init = initlab.jax.get("he_normal")
    >>> w = init(jax.random.key(0), (512, 256))
    >>> w.shape, w.dtype, bool(abs(w).max() <= 2 * (2 / 512) ** 0.5 / 0.8796)
    ((512, 256), dtype('float32'), True)
    >>> bool((jax.jit(init, static_argnums=1)(jax.random.key(0), (512, 256)) == w).all())
    True
    """
    scheme, default_dtype = _resolve(identifier, args, dict(kwargs))
    scheme = scheme.for_layout("jax")

    def init(
        key: Any, shape: Sequence[int], dtype: Any = default_dtype, out_sharding: Any = None
    ) -> jax.Array:
        if out_sharding is not None:
            raise NotImplementedError("initlab.jax initializers do not take out_sharding.")
        shape = tuple(int(d) for d in shape)
        dtype = jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float_ if dtype is None else dtype))
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"dtype={dtype.name!r} is not valid for {scheme.name!r}; allowed: a real "
                "floating dtype (float16, bfloat16, float32, float64)."
            )
        compute = dtype.name if dtype.name in _NUMPY_FLOATS else "float32"

        def host(words: np.ndarray) -> np.ndarray:
            values = initialize(scheme, shape, seed=_words_to_seed(words), dtype=compute,
                                layout="jax")  # fmt: skip
            return values.astype(dtype)

        data = _key_data(key)
        if isinstance(data, jax.core.Tracer):
            result = jax.ShapeDtypeStruct(shape, dtype)
            return jax.pure_callback(host, result, data, vmap_method="sequential")
        return jnp.asarray(host(np.asarray(data)), dtype=dtype)

    init.__name__ = f"initlab_{getattr(scheme, 'name', 'init')}"
    init.__doc__ = f"initlab initializer: {scheme.name} ({scheme.formula()})."
    return init
