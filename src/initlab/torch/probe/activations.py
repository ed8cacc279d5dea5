"""Which torch calls are nonlinearities, and the range of those that saturate.

The probe watches every torch function called during the forward pass (a
:class:`~torch.overrides.TorchFunctionMode`); a call listed here whose input is a layer's
output is that layer's activation. Module activations (``nn.ReLU``, ``nn.Tanh``, ...) call
these same functions, so modules, functional calls (``F.relu(x)``, ``torch.tanh(x)``) and
tensor methods (``x.relu()``) are all seen.

A bounded activation with range ``[low, high]`` is *saturated* at a value ``a`` when
``|a - c| >= level * h`` with centre ``c = (low + high) / 2`` and half-range
``h = (high - low) / 2``; ``level`` is 0.99 by default (tanh: ``|a| >= 0.99``; sigmoid:
``a <= 0.005`` or ``a >= 0.995``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["ACTIVATIONS", "ActivationSpec", "activation_spec"]


@dataclass(frozen=True)
class ActivationSpec:
    """A nonlinearity: its name and, when it is bounded, its range.

    >>> ActivationSpec("tanh", (-1.0, 1.0)).saturates
    True
    """

    name: str
    bounds: tuple[float, float] | None = None
    #: Whether every output is >= 0 (ReLU, ReLU6): dead units need no ``abs`` pass.
    nonnegative: bool = False
    #: For functions whose range depends on their arguments (hardtanh): args, kwargs -> range.
    bounds_from_args: Callable[[tuple, Mapping[str, Any]], tuple[float, float]] | None = None

    @property
    def saturates(self) -> bool:
        """Whether the activation is bounded, so that saturation is measured."""
        return self.bounds is not None or self.bounds_from_args is not None

    def range_for(self, args: tuple, kwargs: Mapping[str, Any]) -> tuple[float, float] | None:
        """The output range of this call (``None`` for an unbounded activation)."""
        if self.bounds_from_args is not None:
            return self.bounds_from_args(args, kwargs)
        return self.bounds


def _hardtanh_range(args: tuple, kwargs: Mapping[str, Any]) -> tuple[float, float]:
    low = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
    high = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
    return float(low), float(high)


_TANH = ActivationSpec("tanh", (-1.0, 1.0))
_SIGMOID = ActivationSpec("sigmoid", (0.0, 1.0))
_RELU = ActivationSpec("relu", nonnegative=True)

#: torch callable -> what it is. Keys are the objects a TorchFunctionMode receives.
ACTIVATIONS: dict[Any, ActivationSpec] = {
    F.relu: _RELU,
    F.relu_: _RELU,
    torch.relu: _RELU,
    torch.relu_: _RELU,
    torch.Tensor.relu: _RELU,
    torch.Tensor.relu_: _RELU,
    F.relu6: ActivationSpec("relu6", (0.0, 6.0), nonnegative=True),
    F.leaky_relu: ActivationSpec("leaky_relu"),
    F.leaky_relu_: ActivationSpec("leaky_relu"),
    F.prelu: ActivationSpec("prelu"),
    torch.prelu: ActivationSpec("prelu"),
    F.rrelu: ActivationSpec("rrelu"),
    F.elu: ActivationSpec("elu"),
    F.elu_: ActivationSpec("elu"),
    F.selu: ActivationSpec("selu"),
    torch.selu: ActivationSpec("selu"),
    F.celu: ActivationSpec("celu"),
    torch.celu: ActivationSpec("celu"),
    F.gelu: ActivationSpec("gelu"),
    F.silu: ActivationSpec("silu"),
    F.mish: ActivationSpec("mish"),
    F.softplus: ActivationSpec("softplus"),
    F.hardswish: ActivationSpec("hardswish"),
    F.tanh: _TANH,
    torch.tanh: _TANH,
    torch.tanh_: _TANH,
    torch.Tensor.tanh: _TANH,
    torch.Tensor.tanh_: _TANH,
    F.sigmoid: _SIGMOID,
    torch.sigmoid: _SIGMOID,
    torch.sigmoid_: _SIGMOID,
    torch.Tensor.sigmoid: _SIGMOID,
    torch.Tensor.sigmoid_: _SIGMOID,
    F.hardsigmoid: ActivationSpec("hardsigmoid", (0.0, 1.0)),
    F.softsign: ActivationSpec("softsign", (-1.0, 1.0)),
    F.hardtanh: ActivationSpec("hardtanh", bounds_from_args=_hardtanh_range),
    F.hardtanh_: ActivationSpec("hardtanh", bounds_from_args=_hardtanh_range),
}


def activation_spec(func: Any) -> ActivationSpec | None:
    """The spec of a torch callable, or ``None`` if it is not a known nonlinearity.

    >>> activation_spec(torch.tanh).name, activation_spec(torch.matmul)
    ('tanh', None)
    """
    try:
        return ACTIVATIONS.get(func)
    except TypeError:  # an unhashable callable
        return None
