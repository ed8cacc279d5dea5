"""The layers LSUV rescales, and how to read and rewrite their outputs.

A layer is rescalable when its output is affine in one weight, ``y = A(W) x + b`` with ``A``
linear: then multiplying ``W`` by ``alpha`` turns the output into ``alpha (y - b) + b``
without evaluating the layer again. That holds for Linear, Conv1d/2d/3d (grouped included)
and ConvTranspose1d/2d/3d, and for MultiheadAttention through its output projection:
``attn = out_proj(softmax(q k^T) v)`` is affine in ``out_proj.weight``. The attention
module, not its ``out_proj``, is the layer: MultiheadAttention applies ``out_proj``
functionally, so hooks on ``out_proj`` never fire (PyTorch issue #78109).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from initlab.torch.model.anatomy import layer_kind

__all__ = ["Target", "find_targets", "preinit_parameters", "rescalable"]


def rescalable(module: nn.Module) -> bool:
    """Whether the registry says the module's output is affine in one weight
    (:mod:`initlab.torch.model.anatomy`: Linear, Conv, ConvTranspose, MultiheadAttention)."""
    kind = layer_kind(module)
    return kind is not None and kind.affine


@dataclass(eq=False)
class Target:
    """A rescalable layer: the module hooked, the weight rescaled, the bias beside it."""

    name: str
    module: nn.Module
    weight: nn.Parameter
    bias: nn.Parameter | None
    weight_name: str
    kind: str

    def output(self, output: Any) -> torch.Tensor | None:
        """The tensor the weight produced, or None when the output has another form."""
        if isinstance(self.module, nn.MultiheadAttention):
            output = output[0] if isinstance(output, tuple) and output else None
        return output if isinstance(output, torch.Tensor) else None

    def replace(self, output: Any, new: torch.Tensor) -> Any:
        """``output`` with its weight-produced tensor replaced by ``new``."""
        if isinstance(self.module, nn.MultiheadAttention):
            return (new, *output[1:])
        return new

    def channel_dim(self, y: torch.Tensor) -> int:
        """The output dimension the bias runs along."""
        kind = layer_kind(self.module)
        if kind is not None and kind.units == "conv":
            # Batched (N, C, *spatial) has as many dimensions as the weight; unbatched one fewer.
            return 1 if y.dim() == self.weight.dim() else 0
        return y.dim() - 1

    def bias_view(self, y: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``bias`` shaped to broadcast against the output ``y``."""
        dim = self.channel_dim(y)
        shape = [1] * y.dim()
        shape[dim] = -1
        return bias.reshape(shape)

    def channel_mean(self, y: torch.Tensor) -> torch.Tensor:
        """Mean of ``y`` per output channel (over batch and positions)."""
        dim = self.channel_dim(y)
        return y.movedim(dim, -1).reshape(-1, y.shape[dim]).mean(0)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def find_targets(model: nn.Module, exclude: Sequence[str] = ()) -> list[Target]:
    """Every rescalable layer of ``model`` in registration order, shared modules once.

    ``exclude`` holds glob patterns on module names (``"head"``, ``"blocks.*.fc2"``) or on
    the weight's parameter name (``"head.weight"``), as ``initlab.init``'s ``exclude``.
    A layer whose weight is not a plain :class:`~torch.nn.Parameter` (weight-norm or
    parametrized weights) is left out: its output is not affine in one tensor.
    """
    param_names = {id(p): n for n, p in model.named_parameters()}
    inside_atomic = {  # attention's out_proj: rescaled through its attention module
        id(child)
        for m in model.modules()
        if (kind := layer_kind(m)) is not None and kind.atomic
        for child in m.modules()
        if child is not m
    }
    targets: list[Target] = []
    for name, module in model.named_modules():
        kind = layer_kind(module)
        if kind is None or not kind.affine or id(module) in inside_atomic:
            continue
        weight = _registered(module, kind.weight)
        if not isinstance(weight, nn.Parameter) or id(weight) not in param_names:
            continue
        if _matches(name, exclude) or _matches(param_names[id(weight)], exclude):
            continue
        bias = _registered(module, kind.bias)
        targets.append(
            Target(
                name=name or "<model>",
                module=module,
                weight=weight,
                bias=bias if isinstance(bias, nn.Parameter) else None,
                weight_name=param_names[id(weight)],
                kind=type(module).__name__,
            )
        )
    return targets


def _registered(module: nn.Module, name: str | None) -> Any:
    """The tensor registered as parameter ``name`` (dotted: ``out_proj.weight``), or None;
    a parametrized weight is not registered under its name, so it is None too."""
    if name is None:
        return None
    path, _, local = name.rpartition(".")
    return (module.get_submodule(path) if path else module)._parameters.get(local)


def preinit_parameters(
    model: nn.Module, targets: Iterable[Target]
) -> tuple[list[tuple[str, torch.Tensor]], list[torch.Tensor]]:
    """What the orthogonal pre-initialization fills: ``(stream name, tensor)`` pairs, biases.

    Each target's weight, keyed by its parameter name; MultiheadAttention's packed
    ``in_proj_weight`` as three orthogonal blocks q, k, v (keys ``name[q]`` ...), or its
    separate q/k/v weights. The biases listed are set to zero. Tied tensors appear once.
    """
    names = {id(p): n for n, p in model.named_parameters()}
    weights: dict[tuple[int, int], tuple[str, torch.Tensor]] = {}
    biases: dict[int, torch.Tensor] = {}

    def add_bias(b: torch.Tensor | None) -> None:
        if isinstance(b, nn.Parameter):
            biases.setdefault(id(b), b)

    for target in targets:
        weights.setdefault((id(target.weight), -1), (target.weight_name, target.weight))
        add_bias(target.bias)
        module = target.module
        if not isinstance(module, nn.MultiheadAttention):
            continue
        if module.in_proj_weight is not None:
            packed = module.in_proj_weight
            name = names[id(packed)]
            for k, block in enumerate(packed.chunk(3, dim=0)):
                weights.setdefault((id(packed), k), (f"{name}[{'qkv'[k]}]", block))
        else:
            for w in (module.q_proj_weight, module.k_proj_weight, module.v_proj_weight):
                if w is not None:
                    weights.setdefault((id(w), -1), (names[id(w)], w))
        add_bias(module.in_proj_bias)
    return list(weights.values()), list(biases.values())
