"""Which torch calls are nonlinearities, and the range of those that saturate.

The probe watches every torch function called during the forward pass (a
:class:`~torch.overrides.TorchFunctionMode`); a torch function, method or in-place form whose
name is in initlab's activation catalogue (:data:`initlab.torch.model.activations.CATALOGUE`)
and whose input is a layer's output is that layer's activation. Module activations
(``nn.ReLU``, ``nn.Tanh``, ...) call these same functions, so modules, functional calls
(``F.relu(x)``, ``torch.tanh(x)``) and tensor methods (``x.relu()``) are all seen.

A bounded activation with range ``[low, high]`` is *saturated* at a value ``a`` when
``|a - c| >= level * h`` with centre ``c = (low + high) / 2`` and half-range
``h = (high - low) / 2``; ``level`` is 0.99 by default (tanh: ``|a| >= 0.99``; sigmoid:
``a <= 0.005`` or ``a >= 0.995``).
"""

from __future__ import annotations

from typing import Any

from initlab.torch.model.activations import CATALOGUE, Nonlinearity

__all__ = ["ActivationSpec", "activation_spec"]

#: The catalogue's entry type, under the name the probe has always used.
ActivationSpec = Nonlinearity

_TORCH_MODULES = ("torch", "torch.nn.functional", "torch._C._nn", "torch._C._VariableFunctions")


def _from_torch(func: Any) -> bool:
    module = getattr(func, "__module__", None) or ""
    qualname = getattr(func, "__qualname__", "") or ""
    return module.startswith("torch") or qualname.startswith(("Tensor.", "TensorBase."))


def activation_spec(func: Any) -> Nonlinearity | None:
    """The catalogue entry of a torch callable, or ``None`` if it is not a nonlinearity.

    >>> import torch
    >>> activation_spec(torch.tanh).name, activation_spec(torch.matmul)
    ('tanh', None)
    >>> activation_spec(torch.Tensor.relu_).nonnegative
    True
    """
    name = getattr(func, "__name__", None)
    if not isinstance(name, str) or not _from_torch(func):
        return None
    if name.endswith("_") and not name.startswith("_"):
        name = name[:-1]
    return CATALOGUE.get(name)
