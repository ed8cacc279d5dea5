r"""Nonlinearities as initlab sees them: which family a nonlinearity belongs to and its gain.

An :class:`Activation` is what follows a layer. Its ``family`` picks the ``"auto"`` rule
(:mod:`initlab.torch.model.rules`) and its ``gain`` the factor in ``std = gain / sqrt(fan)``:

* ``relu`` family (ReLU, Leaky ReLU, PReLU, RReLU, ReLU6): He, ``gain = sqrt(2 / (1 + a^2))``
  with ``a`` the negative slope (0 for ReLU; PReLU's ``init``; RReLU's mean slope);
* ``xavier`` family (tanh, sigmoid): Xavier, torch's table gain (5/3 and 1);
* ``selu``: LeCun, gain 1 (Klambauer et al. 2017);
* ``numeric`` (GELU, SiLU, Mish, ELU, any other elementwise function, including a user's own
  module): ``gain = 1 / sqrt(E[f(z)^2])``, ``z ~ N(0, 1)`` (:func:`initlab.gains.numeric_gain`).

Any function that maps a tensor elementwise (checked numerically: the same values whatever the
shape and order of its input) counts as a nonlinearity with the numeric gain.

>>> module_activation(torch.nn.LeakyReLU(0.2)).label
'leaky_relu(0.2)'
>>> round(module_activation(torch.nn.LeakyReLU(0.2)).gain, 6)
1.38675
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from initlab import gains as _gains
from initlab.torch.nn_init import calculate_gain as _torch_gain

__all__ = [
    "CATALOGUE",
    "Activation",
    "Nonlinearity",
    "function_activation",
    "is_elementwise",
    "make_activation",
    "module_activation",
]

RELU_FAMILY = frozenset({"relu", "leaky_relu", "prelu", "rrelu", "relu6"})
XAVIER_FAMILY = frozenset({"tanh", "sigmoid"})
LECUN_FAMILY = frozenset({"selu"})


@dataclass(frozen=True)
class Activation:
    """A nonlinearity: its name, its one parameter (a slope, alpha or beta), family and gain.

    >>> Activation("relu", None, "relu", math.sqrt(2)).label
    'relu'
    """

    name: str
    param: float | None
    family: str
    gain: float

    @property
    def label(self) -> str:
        """``name`` or ``name(param)``, as the report shows it."""
        return self.name if self.param is None else f"{self.name}({self.param:g})"

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON."""
        return {"name": self.name, "param": self.param, "family": self.family, "gain": self.gain}


@dataclass(frozen=True)
class Nonlinearity:
    """An entry of the activation catalogue: what initlab knows of a nonlinearity by name.

    ``family`` picks the ``"auto"`` rule (``relu``, ``xavier``, ``selu`` or ``numeric``);
    ``bounds`` is the output range of a bounded one (the probe measures its saturation; for
    hardtanh the range comes from the call's arguments, ``bounds_from_args``);
    ``nonnegative``: every output is >= 0. The gain comes from :func:`make_activation`.

    >>> CATALOGUE["tanh"].family, CATALOGUE["tanh"].bounds, CATALOGUE["tanh"].saturates
    ('xavier', (-1.0, 1.0), True)
    """

    name: str
    bounds: tuple[float, float] | None = None
    nonnegative: bool = False
    bounds_from_args: Callable[[tuple, Mapping[str, Any]], tuple[float, float]] | None = None

    @property
    def family(self) -> str:
        """The ``"auto"`` rule's family."""
        return _family(self.name)

    @property
    def saturates(self) -> bool:
        """Whether the nonlinearity is bounded, so that saturation is measured."""
        return self.bounds is not None or self.bounds_from_args is not None

    def range_for(self, args: tuple, kwargs: Mapping[str, Any]) -> tuple[float, float] | None:
        """The output range of one call (None for an unbounded nonlinearity)."""
        if self.bounds_from_args is not None:
            return self.bounds_from_args(args, kwargs)
        return self.bounds


def _hardtanh_range(args: tuple, kwargs: Mapping[str, Any]) -> tuple[float, float]:
    low = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
    high = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
    return float(low), float(high)


#: The activation catalogue: every nonlinearity known by name (functions ``F.name``,
#: ``torch.name``, ``Tensor.name`` and their in-place ``name_`` forms).
CATALOGUE: dict[str, Nonlinearity] = {
    n.name: n
    for n in (
        Nonlinearity("relu", nonnegative=True),
        Nonlinearity("relu6", (0.0, 6.0), nonnegative=True),
        Nonlinearity("leaky_relu"),
        Nonlinearity("prelu"),
        Nonlinearity("rrelu"),
        Nonlinearity("elu"),
        Nonlinearity("selu"),
        Nonlinearity("celu"),
        Nonlinearity("gelu"),
        Nonlinearity("silu"),
        Nonlinearity("mish"),
        Nonlinearity("softplus"),
        Nonlinearity("hardswish"),
        Nonlinearity("tanh", (-1.0, 1.0)),
        Nonlinearity("sigmoid", (0.0, 1.0)),
        Nonlinearity("hardsigmoid", (0.0, 1.0)),
        Nonlinearity("softsign", (-1.0, 1.0)),
        Nonlinearity("hardtanh", bounds_from_args=_hardtanh_range),
    )
}


def _family(name: str) -> str:
    if name in RELU_FAMILY:
        return "relu"
    if name in XAVIER_FAMILY:
        return "xavier"
    if name in LECUN_FAMILY:
        return "selu"
    return "numeric"


def make_activation(
    name: str, param: float | None = None, fn: Callable[[torch.Tensor], Any] | None = None
) -> Activation:
    """The :class:`Activation` for a named nonlinearity, or any elementwise torch callable.

    ``fn`` gives the numeric gain of a nonlinearity that :func:`initlab.gains.calculate_gain`
    does not know by name (or knows with other parameters).

    >>> make_activation("tanh").gain == 5 / 3
    True
    >>> make_activation("selu").gain
    1.0
    >>> round(make_activation("gelu").gain, 4)
    1.5335
    """
    family = _family(name)
    if family == "selu":
        gain = 1.0  # LeCun: SELU's fixed point needs unit variance, not torch's 3/4.
    elif name == "rrelu":
        gain = _gains.calculate_gain("leaky_relu", param)
    elif fn is None or name in _gains.CLASSIC_GAINS or name in ("leaky_relu", "prelu"):
        gain = _gains.calculate_gain(name, param)
    else:
        gain = _torch_gain(fn)
    return Activation(name, None if param is None else float(param), family, float(gain))


# --------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------


def _prelu_slope(module: nn.PReLU) -> float:
    # PReLU is (re)initialized to its ``init`` slope, which initlab.init also does.
    return float(getattr(module, "init", 0.25))


def _module_rule(module: nn.Module) -> tuple[str, float | None] | None:
    """(name, param) for torch's activation modules with a named gain, else None."""
    if isinstance(module, nn.ReLU6):  # a Hardtanh subclass: test it first
        return "relu6", None
    if isinstance(module, nn.ReLU):
        return "relu", None
    if isinstance(module, nn.LeakyReLU):
        return "leaky_relu", float(module.negative_slope)
    if isinstance(module, nn.PReLU):
        return "prelu", _prelu_slope(module)
    if isinstance(module, nn.RReLU):
        return "rrelu", (float(module.lower) + float(module.upper)) / 2.0
    if isinstance(module, nn.SELU):
        return "selu", None
    if isinstance(module, nn.Tanh):
        return "tanh", None
    if isinstance(module, nn.Sigmoid):
        return "sigmoid", None
    if isinstance(module, nn.GELU):
        return ("gelu_tanh" if module.approximate == "tanh" else "gelu"), None
    if isinstance(module, nn.SiLU):
        return "silu", None
    if isinstance(module, nn.Mish):
        return "mish", None
    if isinstance(module, nn.ELU):
        return "elu", float(module.alpha)
    if isinstance(module, nn.CELU):
        return "celu", float(module.alpha)
    if isinstance(module, nn.Softplus) and float(module.threshold) == 20.0:
        return "softplus", float(module.beta)
    if isinstance(module, nn.Hardswish):
        return "hardswish", None
    if isinstance(module, nn.Softsign):
        return "softsign", None
    if isinstance(module, nn.Hardtanh) and (module.min_val, module.max_val) == (-1.0, 1.0):
        return "hardtanh", None
    return None


#: Modules that end a layer's signal without being a nonlinearity with a gain.
SOFTMAX_MODULES = (nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d)


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def module_activation(module: nn.Module) -> Activation | None:
    """The nonlinearity a parameter-free module applies, or None if it is not elementwise.

    torch's activation modules are read by type (with their slopes); any other parameter-free
    module that maps its input elementwise gets the numeric gain.

    >>> module_activation(torch.nn.PReLU(init=0.25)).label
    'prelu(0.25)'
    >>> module_activation(torch.nn.Flatten()) is None
    True
    """
    rule = _module_rule(module)
    if rule is not None:
        name, param = rule
        return make_activation(name, param)
    if isinstance(module, SOFTMAX_MODULES):
        return None
    if any(True for _ in module.parameters()) or not is_elementwise(module):
        return None
    return make_activation(_class_label(type(module).__name__), None, fn=module)


_NAMED = frozenset({"relu", "gelu", "silu", "swish", "mish", "elu", "selu", "tanh", "sigmoid",
                    "softplus", "hardswish"})


def _class_label(name: str) -> str:
    """``SiLUActivation`` -> ``silu``, ``NewGELUActivation`` -> ``new_gelu``, ``MyAct`` ->
    ``my_act``: a class name as an activation's label."""
    if name.endswith("Activation") and len(name) > len("Activation"):
        name = name[: -len("Activation")]
    if name.lower() in _NAMED:
        return name.lower()
    return _snake(name)


# --------------------------------------------------------------------------------------
# Functions and methods (torch.tanh, F.relu, x.relu(), F.leaky_relu(x, 0.2), ...)
# --------------------------------------------------------------------------------------


def _arg(args: tuple, kwargs: dict, index: int, key: str, default: Any) -> Any:
    if key in kwargs:
        value = kwargs[key]
    elif len(args) > index:
        value = args[index]
    else:
        return default
    return value


def _number(value: Any, default: float) -> float:
    if isinstance(value, torch.Tensor):
        if value.is_meta or value.numel() == 0:
            return default
        return float(value.detach().float().mean())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


def function_activation(name: str, args: tuple, kwargs: dict) -> Activation | None:
    """The nonlinearity a functional call applies, from its normalized name and arguments.

    ``args`` excludes nothing: ``args[0]`` is the input, as in ``F.leaky_relu(x, 0.2)``.

    >>> function_activation("leaky_relu", ("x", 0.2), {}).label
    'leaky_relu(0.2)'
    >>> function_activation("gelu", ("x",), {"approximate": "tanh"}).name
    'gelu_tanh'
    >>> function_activation("view", ("x",), {}) is None
    True
    """
    if name in ("relu", "selu", "tanh", "sigmoid", "silu", "mish", "hardswish", "softsign"):
        return make_activation(name)
    if name == "relu6":
        return make_activation("relu6")
    if name == "leaky_relu":
        return make_activation(name, _number(_arg(args, kwargs, 1, "negative_slope", 0.01), 0.01))
    if name == "prelu":
        return make_activation(name, _number(_arg(args, kwargs, 1, "weight", 0.25), 0.25))
    if name == "rrelu":
        lower = _number(_arg(args, kwargs, 1, "lower", 1.0 / 8.0), 1.0 / 8.0)
        upper = _number(_arg(args, kwargs, 2, "upper", 1.0 / 3.0), 1.0 / 3.0)
        return make_activation("rrelu", (lower + upper) / 2.0)
    if name in ("elu", "celu"):
        return make_activation(name, _number(_arg(args, kwargs, 1, "alpha", 1.0), 1.0))
    if name == "gelu":
        approximate = _arg(args, kwargs, 1, "approximate", "none")
        return make_activation("gelu_tanh" if approximate == "tanh" else "gelu")
    if name == "softplus":
        beta = _number(_arg(args, kwargs, 1, "beta", 1.0), 1.0)
        threshold = _number(_arg(args, kwargs, 2, "threshold", 20.0), 20.0)
        if threshold == 20.0:
            return make_activation("softplus", beta)
        return make_activation(
            "softplus", beta, fn=lambda t: torch.nn.functional.softplus(t, beta, threshold)
        )
    if name == "hardtanh":
        lo = _number(_arg(args, kwargs, 1, "min_val", -1.0), -1.0)
        hi = _number(_arg(args, kwargs, 2, "max_val", 1.0), 1.0)
        if (lo, hi) == (-1.0, 1.0):
            return make_activation("hardtanh")
        return make_activation(
            "hardtanh", None, fn=lambda t: torch.nn.functional.hardtanh(t, lo, hi)
        )
    return None


# --------------------------------------------------------------------------------------
# Elementwise test
# --------------------------------------------------------------------------------------

_PROBE = torch.from_numpy(np.linspace(-4.0, 4.0, 48))


def is_elementwise(fn: Callable[[torch.Tensor], Any]) -> bool:
    """Whether ``fn`` maps a float64 tensor elementwise: same shape out, and the same value for
    an input value whatever its position or the tensor's shape. Never consumes torch's RNG.

    >>> is_elementwise(torch.tanh), is_elementwise(lambda t: t.flatten()[:3])
    (True, False)
    >>> is_elementwise(lambda t: t - t.mean())
    False
    """
    x = _PROBE.clone()
    perm = torch.arange(x.numel() - 1, -1, -1)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            y = fn(x.clone())
            y_perm = fn(x[perm].clone())
            y_shaped = fn(x.clone().reshape(4, 3, 4))
            y_half = fn(x[: x.numel() // 2].clone())
    except Exception:
        return False
    outs = (y, y_perm, y_shaped, y_half)
    if not all(isinstance(o, torch.Tensor) and o.is_floating_point() for o in outs):
        return False
    if y.shape != x.shape or y_perm.shape != x.shape or y_shaped.shape != (4, 3, 4):
        return False
    if y_half.shape != (x.numel() // 2,):
        return False
    y = y.double()
    if not bool(torch.isfinite(y).all()):
        return False
    same = (
        torch.allclose(y_perm.double()[perm], y, rtol=1e-6, atol=1e-9)
        and torch.allclose(y_shaped.double().reshape(-1), y, rtol=1e-6, atol=1e-9)
        and torch.allclose(y_half.double(), y[: x.numel() // 2], rtol=1e-6, atol=1e-9)
    )
    if not same:
        return False
    # A second moment a gain can undo: finite and positive.
    return math.isfinite(float((y**2).mean())) and float((y**2).mean()) > 0.0
