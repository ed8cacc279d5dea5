r"""Gains: how much a nonlinearity shrinks the second moment of its input.

A weight drawn with ``std = gain / sqrt(fan_in)`` keeps the second moment of the signal
constant from layer to layer when ``gain`` undoes what the nonlinearity ``f`` takes away.
initlab's definition, used for every nonlinearity that has no classic table value, is

.. math::  \mathrm{gain}(f) = 1 / \sqrt{\mathbb{E}[f(z)^2]},\quad z \sim \mathcal{N}(0, 1),

computed by piecewise Gauss-Legendre quadrature split at the function's kinks
(:func:`numeric_gain`, :func:`second_moment`), accurate to 1e-12 for every name below
(``tests/test_gains_accuracy.py`` checks 1e-9 against ``scipy.integrate.quad``). It gives
``sqrt(2)`` for ReLU (``E[relu(z)^2] = 1/2``), ``sqrt(2 / (1 + a^2))`` for Leaky ReLU and
PReLU with slope ``a``, and 1 for the identity: the values of He et al. (2015).

The table (:data:`CLASSIC_GAINS`) keeps ``torch.nn.init.calculate_gain``'s values for the
names torch knows, so that ``calculate_gain`` is a drop-in. Two of them are not the
second-moment definition:

============  ==============  ==========================  ===============================
name          table (torch)   numeric ``1/sqrt(E f^2)``   why the table differs
============  ==============  ==========================  ===============================
tanh          5/3 = 1.667     1.593                       empirical choice (Torch7 era)
sigmoid       1               1.846                       sigmoid is not zero-mean
selu          3/4             1.000                       chosen for gradient flow (torch)
============  ==============  ==========================  ===============================

Every other name (gelu, silu, mish, elu, ...) and any Python callable gets the numeric gain.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from numbers import Real

import numpy as np
from scipy import special

from initlab._validation import choice_error

__all__ = [
    "CLASSIC_GAINS",
    "NUMERIC_NONLINEARITIES",
    "calculate_gain",
    "gain_names",
    "numeric_gain",
    "second_moment",
]

#: Gauss-Legendre nodes per piece; pieces are at most PIECE wide, cut at every multiple of
#: PIECE and at the function's kinks, over [-REACH, REACH] (z^2 phi(z) < 1e-80 beyond). A
#: smooth piece converges exponentially, so the error is below 1e-13 for every catalogue
#: function; a callable whose kink is not a multiple of 0.5 (and not declared) converges
#: more slowly.
QUADRATURE_NODES = 24
PIECE = 0.5
REACH = 20.0

_LINEAR_NAMES = (
    "linear",
    "identity",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)

#: torch.nn.init.calculate_gain's table (``leaky_relu`` and ``prelu`` depend on the slope).
CLASSIC_GAINS: dict[str, float] = {
    **dict.fromkeys(_LINEAR_NAMES, 1.0),
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4.0,
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return special.expit(x)


def _softplus(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    bx = beta * x
    return np.where(bx > threshold, x, np.log1p(np.exp(np.minimum(bx, threshold))) / beta)


def _elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _celu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0) / alpha))


def _hardtanh(x: np.ndarray, min_val: float = -1.0, max_val: float = 1.0) -> np.ndarray:
    return np.clip(x, min_val, max_val)


#: Activations whose gain is the numeric one. Each maps ``(x, param)`` to ``f(x)``; ``param``
#: is the activation's one optional parameter (alpha for elu/celu, beta for softplus).
NUMERIC_NONLINEARITIES: dict[str, Callable[..., np.ndarray]] = {
    "gelu": lambda x: 0.5 * x * (1.0 + special.erf(x / math.sqrt(2.0))),
    "gelu_tanh": lambda x: (
        0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    ),
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "elu": _elu,
    "celu": _celu,
    "softplus": _softplus,
    "hardswish": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "hardtanh": _hardtanh,
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
}


#: Where each catalogue function is not smooth, as a function of its parameter (None: the
#: default). The quadrature splits its pieces there.
KINKS: dict[str, Callable[[float | None], tuple[float, ...]]] = {
    "elu": lambda a: (0.0,),
    "celu": lambda a: (0.0,),
    "hardswish": lambda a: (-3.0, 3.0),
    "hardtanh": lambda a: (-1.0, 1.0),
    "relu6": lambda a: (0.0, 6.0),
    "softsign": lambda a: (0.0,),
    "softplus": lambda b: (20.0 / (1.0 if b is None else b),),  # torch's threshold switch
}


def gain_names() -> tuple[str, ...]:
    """All nonlinearity names :func:`calculate_gain` accepts.

    >>> "relu" in gain_names() and "gelu" in gain_names()
    True
    """
    return (*CLASSIC_GAINS, "leaky_relu", "prelu", *NUMERIC_NONLINEARITIES)


@lru_cache(maxsize=64)
def _nodes(kinks: tuple[float, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``x`` and weights ``w`` with ``sum w g(x) ~ E[g(z)]``, ``z ~ N(0, 1)``."""
    cuts = np.arange(-REACH, REACH + PIECE / 2, PIECE)
    inside = [k for k in kinks if -REACH < k < REACH]
    cuts = np.unique(np.concatenate([cuts, np.asarray(inside, dtype=np.float64)]))
    t, v = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    lo, hi = cuts[:-1, None], cuts[1:, None]
    x = (0.5 * (hi - lo) * t + 0.5 * (hi + lo)).ravel()
    w = (0.5 * (hi - lo) * v).ravel() * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return x, w


def _evaluate(f: Callable, x: np.ndarray) -> np.ndarray:
    try:
        y = np.asarray(f(x), dtype=np.float64)
        if y.shape == x.shape:
            return y
    except Exception:
        pass
    try:
        return np.array([float(f(float(v))) for v in x], dtype=np.float64)
    except Exception as error:
        raise TypeError(
            f"nonlinearity={f!r} could not be evaluated on NumPy arrays or Python floats "
            f"({type(error).__name__}: {error}); pass a function of a NumPy array, or use "
            "initlab.torch.calculate_gain for torch callables and modules."
        ) from error


def second_moment(f: Callable[[np.ndarray], np.ndarray], kinks: tuple[float, ...] = ()) -> float:
    r"""``E[f(z)^2]`` for ``z ~ N(0, 1)``: :math:`\int f(z)^2 \varphi(z)\,dz`.

    Piecewise Gauss-Legendre on [-20, 20], cut at every multiple of 0.5 and at ``kinks``
    (where ``f`` is not smooth: hardtanh's -1 and 1, relu6's 0 and 6, ...), so that each piece
    is smooth and converges exponentially.

    >>> round(second_moment(lambda z: np.maximum(z, 0.0)), 14)
    0.5
    >>> round(second_moment(lambda z: np.clip(z, -0.3, 0.3), kinks=(-0.3, 0.3)), 10)
    0.0757660991
    """
    x, w = _nodes(tuple(float(k) for k in kinks))
    y = _evaluate(f, x) ** 2
    return float(np.dot(w, y))


def numeric_gain(f: Callable[[np.ndarray], np.ndarray], kinks: tuple[float, ...] = ()) -> float:
    r"""Gain of any callable: ``1 / sqrt(E[f(z)^2])``, ``z ~ N(0, 1)``.

    ``f`` takes a NumPy array (or a Python float) and returns the activation of it;
    ``kinks`` lists where it is not smooth, if anywhere but multiples of 0.5.

    >>> round(numeric_gain(lambda z: np.maximum(z, 0.0)), 12) == round(math.sqrt(2), 12)
    True
    >>> round(numeric_gain(np.tanh), 4)
    1.5925
    """
    if not callable(f):
        raise TypeError(f"f={f!r} is not valid; allowed: a callable on NumPy arrays.")
    moment = second_moment(f, kinks)
    if not math.isfinite(moment) or moment <= 0.0:
        raise ValueError(
            f"f={f!r} has E[f(z)^2]={moment!r} under z ~ N(0, 1); a gain needs a finite, "
            "positive second moment."
        )
    return 1.0 / math.sqrt(moment)


def _slope(param: object, default: float, name: str = "negative_slope") -> float:
    if param is None:
        return default
    if isinstance(param, bool) or not isinstance(param, Real):
        raise ValueError(f"{name} {param} not a valid number; allowed: an int or float")
    return float(param)


@lru_cache(maxsize=256)
def _numeric_named(name: str, param: float | None) -> float:
    fn = NUMERIC_NONLINEARITIES[name]
    kinks = KINKS.get(name, lambda p: ())(param)
    if param is None:
        return numeric_gain(fn, kinks)
    return numeric_gain(lambda x: fn(x, param), kinks)


def calculate_gain(nonlinearity: str | Callable, param: float | None = None) -> float:
    r"""Recommended gain for a nonlinearity: torch's table, extended.

    * ``linear``, ``identity``, ``conv*``, ``conv_transpose*``, ``sigmoid``: 1
    * ``tanh``: 5/3; ``selu``: 3/4; ``relu``: :math:`\sqrt{2}`
    * ``leaky_relu``: :math:`\sqrt{2 / (1 + a^2)}`, ``a = param`` (default 0.01)
    * ``prelu``: the same formula, ``a = param`` (default 0.25, PReLU's initial slope)
    * ``gelu``, ``gelu_tanh``, ``silu``/``swish``, ``mish``, ``elu`` (param alpha),
      ``celu`` (alpha), ``softplus`` (beta), ``hardswish``, ``hardtanh``, ``relu6``,
      ``softsign`` and any callable: :math:`1/\sqrt{E[f(z)^2]}`, see :func:`numeric_gain`.

    Raises ValueError for an unknown name, or a ``param`` that is a bool or not a number.

    >>> calculate_gain("relu") == math.sqrt(2)
    True
    >>> round(calculate_gain("leaky_relu", 0.2), 6)
    1.386750
    >>> round(calculate_gain("gelu"), 4)
    1.5335
    """
    if callable(nonlinearity) and not isinstance(nonlinearity, str):
        return numeric_gain(nonlinearity)
    if not isinstance(nonlinearity, str):
        raise choice_error("nonlinearity", nonlinearity, gain_names())
    if nonlinearity in CLASSIC_GAINS:
        return CLASSIC_GAINS[nonlinearity]
    if nonlinearity in ("leaky_relu", "prelu"):
        a = _slope(param, 0.01 if nonlinearity == "leaky_relu" else 0.25)
        return math.sqrt(2.0 / (1.0 + a**2))
    if nonlinearity in NUMERIC_NONLINEARITIES:
        p = None if param is None else _slope(param, 0.0, name="param")
        return _numeric_named(nonlinearity, p)
    raise choice_error("nonlinearity", nonlinearity, gain_names())
