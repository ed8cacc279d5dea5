"""Applying a scheme to a whole model for :func:`~initlab.torch.probe.compare`.

INTERIM: ``initlab.init`` (issue 3) is the model-level initializer this should call; until it
is on main, :func:`apply_scheme` applies a scheme with :func:`initlab.torch.fill.fill_`
parameter by parameter, with this fixed policy:

* every weight with 2 or more dimensions gets the scheme, with the layer's true fans
  (:func:`initlab.fans.layer_fans` for grouped and transposed convolutions) and the stream
  ``(seed, parameter name)``; ``MultiheadAttention.in_proj_weight`` is filled as its three
  ``(E, E)`` blocks q, k, v (``name[q]``, ...), each with its own fans;
* the gain is the scheme's own (``he`` is ``sqrt(2)`` everywhere, ``xavier`` 1): no
  per-layer activation discovery;
* 1-D weights of normalization layers get 1, every other parameter with fewer than 2
  dimensions (biases) gets 0.

Nothing is half-done: every new value is computed before any parameter changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd

from initlab.fans import Fans, compute_fans, layer_fans
from initlab.schemes import Scheme, get_scheme
from initlab.torch.fill import fill_

__all__ = ["KEEP", "SchemeLike", "apply_scheme", "scheme_label"]

#: The scheme name that leaves a model's own initialization (torch's defaults) in place.
KEEP = "default"

SchemeLike = str | Scheme | Callable[[nn.Module], Any]

_NORMS = (_NormBase, nn.LayerNorm, nn.GroupNorm, *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))


def scheme_label(scheme: SchemeLike) -> str:
    """The label a scheme gets in a comparison.

    >>> scheme_label("he"), scheme_label(get_scheme("xavier_uniform"))
    ('he', "variance_scaling(scale=1.0, mode='fan_avg', distribution='uniform')")
    """
    if isinstance(scheme, str):
        return scheme
    if isinstance(scheme, Scheme):
        return scheme.name
    return getattr(scheme, "__name__", type(scheme).__name__)


def _fans(module: nn.Module, shape: tuple[int, ...]) -> Fans:
    if isinstance(module, _ConvNd):
        return layer_fans(shape, groups=module.groups, transposed=module.transposed)
    return compute_fans(shape)


def _plan(model: nn.Module, scheme: Scheme, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    plan: list[tuple[torch.Tensor, torch.Tensor]] = []
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for param_name, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            name = f"{module_name}.{param_name}" if module_name else param_name
            if p.ndim >= 2:
                blocks = [(p.data, name)]
                if isinstance(module, nn.MultiheadAttention) and param_name == "in_proj_weight":
                    blocks = [
                        (b, f"{name}[{q}]") for b, q in zip(p.data.chunk(3), "qkv", strict=True)
                    ]
                for block, block_name in blocks:
                    shape = tuple(block.shape)
                    new = torch.empty(shape, dtype=block.dtype, device=block.device)
                    fill_(new, scheme, seed=seed, name=block_name, fans=_fans(module, shape))
                    plan.append((block, new))
            else:
                value = 1.0 if isinstance(module, _NORMS) and param_name == "weight" else 0.0
                plan.append((p.data, torch.full_like(p.data, value)))
    return plan


def apply_scheme(model: nn.Module, scheme: SchemeLike, *, seed: int = 0) -> nn.Module:
    """Initialize ``model`` in place with ``scheme``; returns the model.

    ``scheme``: a registry name or :class:`~initlab.schemes.Scheme` (see the module
    docstring for the interim policy), ``"default"`` to keep the model as constructed, or a
    callable ``f(model)`` that initializes it itself.

    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> _ = apply_scheme(net, "zeros")
    >>> float(net[0].weight.detach().abs().sum()), float(net[2].bias.detach().abs().sum())
    (0.0, 0.0)
    """
    if isinstance(scheme, str) and scheme == KEEP:
        return model
    if callable(scheme) and not isinstance(scheme, Scheme):
        scheme(model)
        return model
    resolved = get_scheme(scheme)
    plan = _plan(model, resolved, seed)
    with torch.no_grad():
        for target, values in plan:
            target.copy_(values)
    return model
