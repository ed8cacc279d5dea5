"""Which modules the probe measures, and how each one's units are laid out.

A *layer* is any module that owns parameters directly (``Linear``, ``Conv*``,
``ConvTranspose*``, ``Embedding``, normalization layers, RNNs, custom modules with raw
parameters), plus ``MultiheadAttention``. Containers whose parameters all live in children
are not layers; their children are.

``MultiheadAttention`` computes its output projection with ``out_proj.weight`` directly
inside ``F.multi_head_attention_forward``, so hooks on ``out_proj`` never fire (PyTorch issue
#78109). The probe therefore measures the attention module (an atomic, affine kind of the registry,
:mod:`initlab.torch.model.anatomy`) as one layer whose output is its
first output (the attention output, which *is* ``out_proj``'s output) and whose weight is
``out_proj.weight``; modules inside it are skipped so nothing is counted twice.

A layer's *units* lie along one axis of its output: the channel axis for convolutions and
batch/instance/group normalization, the last axis otherwise (Linear, attention, LayerNorm,
Embedding, RNN outputs). Dead-unit fractions and the symmetry check work along that axis.
Both axes come from the layer registry (:meth:`~initlab.torch.model.anatomy.LayerKind.
output_unit_axis`, :meth:`~initlab.torch.model.anatomy.LayerKind.weight_unit_axis`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from initlab.torch.model.anatomy import layer_kind

__all__ = ["LayerInfo", "discover_layers", "weights_identical"]


@dataclass(eq=False)
class LayerInfo:
    """A measured module: its qualified name, the module, and the weight reported for it."""

    name: str
    module: nn.Module
    weight_name: str | None
    weight: torch.Tensor | None
    #: Axis of the weight along which the layer's units lie (None: not checked).
    weight_unit_axis: int | None

    @property
    def kind(self) -> str:
        """The module's class name."""
        return type(self.module).__name__

    def unit_axis(self, output: torch.Tensor) -> int:
        """The axis of ``output`` along which this layer's units lie (non-negative)."""
        kind = layer_kind(self.module)
        if kind is None:
            return max(output.ndim - 1, 0)
        return kind.output_unit_axis(self.module, output.ndim)


def _weight_of(module: nn.Module) -> tuple[str | None, torch.Tensor | None, int | None]:
    kind = layer_kind(module)
    if kind is not None and kind.atomic and kind.weight is not None and kind.affine:
        return kind.weight, module.get_parameter(kind.weight), kind.weight_unit_axis(module)
    direct = dict(module.named_parameters(recurse=False))
    if "weight" in direct:
        name = "weight"
    else:
        matrices = [n for n, p in direct.items() if p.ndim >= 2]
        name = matrices[0] if matrices else next(iter(direct))
    weight = direct[name]
    axis = kind.weight_unit_axis(module) if kind is not None and name == kind.weight else None
    return name, weight, axis


def discover_layers(model: nn.Module) -> list[LayerInfo]:
    """The layers of ``model`` in module-definition order (the probe re-orders by execution).

    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> [(info.name, info.weight_name) for info in discover_layers(net)]
    [('0', 'weight'), ('2', 'weight')]
    >>> mha = nn.Sequential(nn.MultiheadAttention(8, 2))
    >>> [(info.name, info.kind, info.weight_name) for info in discover_layers(mha)]
    [('0', 'MultiheadAttention', 'out_proj.weight')]
    """
    layers: list[LayerInfo] = []
    inside_attention: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(prefix) for prefix in inside_attention):
            continue
        kind = layer_kind(module)
        if kind is not None and kind.atomic and kind.affine:  # measured as one layer
            inside_attention.append(f"{name}." if name else "")
        elif not any(True for _ in module.parameters(recurse=False)):
            continue
        weight_name, weight, axis = _weight_of(module)
        label = name or type(module).__name__
        layers.append(LayerInfo(label, module, weight_name, weight, axis))
    return layers


def weights_identical(info: LayerInfo, rtol: float = 1e-6) -> bool | None:
    """Whether every unit of the layer has the same incoming weights (None: not checkable).

    Units are identical when every slice of the weight along its unit axis equals the first,
    to ``rtol`` times the largest absolute weight (all-zero weights are identical).

    >>> lin = nn.Linear(3, 4)
    >>> _ = nn.init.zeros_(lin.weight)
    >>> weights_identical(discover_layers(lin)[0])
    True
    """
    w, axis = info.weight, info.weight_unit_axis
    if w is None or axis is None or w.ndim <= axis or w.shape[axis] < 2 or w.is_meta:
        return None
    with torch.no_grad():
        rows = w.detach().movedim(axis, 0).reshape(w.shape[axis], -1)
        for block in (rows[:2], rows):  # two rows first: random weights stop there, cheaply
            spread = (block - block[:1]).abs().amax()
            if not bool(spread <= rtol * block.abs().amax()):
                return False
        return True
