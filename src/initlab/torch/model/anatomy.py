"""The layer registry: what initlab knows about each kind of layer, in one table.

init, discovery, the probe, LSUV and the residual policies all ask :func:`layer_kind`
instead of keeping their own lists of layer types. A :class:`LayerKind` says:

* ``weight`` / ``bias``: the parameter names (attention's are those of ``out_proj``);
* ``blocks``: which handler splits its parameters into separately initialized blocks (q/k/v
  of attention, recurrent gates; :mod:`initlab.torch.model.layers`);
* ``layout``: how the weight's axes map to fans: ``"out_in"`` (torch's ``(out, in, *k)``),
  ``"transposed"`` (ConvTranspose: ``(in, out/groups, *k)``) or ``"in_out"`` (``(in, out)``,
  e.g. transformers' Conv1D); :meth:`LayerKind.fans` gives the fans for each;
* ``units``: where its units lie in its output: ``"last"`` axis, ``"channel"`` (axis 1 of a
  batched input, the channels of a normalization) or ``"conv"`` (before the spatial axes);
  :meth:`LayerKind.weight_unit_axis` gives the axis of the weight holding one unit's fan-in;
* ``norm``: a normalization (weight 1, bias 0; passed through by discovery);
* ``affine``: its output is affine in one weight, ``y = A(W) x + b``, so LSUV can rescale it
  and a residual policy can scale or zero it;
* ``atomic``: one layer although it has children (attention's ``out_proj``, RNN cells).

A new layer type is one :func:`register_layer` call:

>>> import torch
>>> layer_kind(torch.nn.Conv2d(3, 8, 3)).name, layer_kind(torch.nn.LayerNorm(4)).norm
('conv', True)
>>> layer_kind(torch.nn.ConvTranspose2d(8, 4, 2)).fans((8, 4, 2, 2), groups=1)
Fans(fan_in=32, fan_out=16)
>>> layer_kind(torch.nn.ReLU()) is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd

from initlab.fans import Fans, compute_fans, layer_fans
from initlab.torch.model.known import in_out_layout, is_parametrization_list

__all__ = [
    "LAYOUTS",
    "LayerKind",
    "atomic_types",
    "is_norm",
    "layer_kind",
    "layer_kinds",
    "register_layer",
]

LAYOUTS = ("out_in", "transposed", "in_out")
UNITS = ("last", "channel", "conv")


@dataclass(frozen=True)
class LayerKind:
    """One entry of the registry (see the module docstring for the fields)."""

    name: str
    match: tuple[type, ...] | Callable[[nn.Module], bool]
    blocks: str
    weight: str | None = "weight"
    bias: str | None = "bias"
    layout: str = "out_in"
    units: str = "last"
    norm: bool = False
    affine: bool = False
    atomic: bool = False

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout={self.layout!r} is not valid; allowed: {LAYOUTS}.")
        if self.units not in UNITS:
            raise ValueError(f"units={self.units!r} is not valid; allowed: {UNITS}.")

    def matches(self, module: nn.Module) -> bool:
        """Whether ``module`` is of this kind."""
        if isinstance(self.match, tuple):
            return isinstance(module, self.match)
        return bool(self.match(module))

    def fans(self, shape: tuple[int, ...], groups: int = 1) -> Fans:
        """The fans of a weight of this kind with ``shape`` (grouped convolutions included).

        >>> layer_kind(nn.Linear(3, 5)).fans((5, 3))
        Fans(fan_in=3, fan_out=5)
        """
        if self.layout == "in_out":
            return compute_fans((shape[1], shape[0], *shape[2:]))
        if len(shape) > 2 or groups > 1 or self.layout == "transposed":
            return layer_fans(shape, groups=groups, transposed=self.layout == "transposed")
        return compute_fans(shape)

    def weight_unit_axis(self, module: nn.Module) -> int | None:
        """The axis of the weight along which one slice is one unit's incoming weights
        (None: no such axis, e.g. a grouped transposed convolution)."""
        if self.norm or self.name in ("recurrent", "prelu"):
            return None
        if self.layout == "transposed":
            return 1 if getattr(module, "groups", 1) == 1 else None
        if self.layout == "in_out" or self.name == "embedding":
            return 1
        return 0

    def output_unit_axis(self, module: nn.Module, ndim: int) -> int:
        """The axis of an output with ``ndim`` dimensions along which the units lie."""
        if self.units == "conv":
            return max(ndim - len(getattr(module, "kernel_size", ())) - 1, 0)
        if self.units == "channel":
            return 1 if ndim >= 2 else 0
        return max(ndim - 1, 0)


def _named_norm(module: nn.Module) -> bool:
    """A user's normalization, by its class name (``LlamaRMSNorm``, ``T5LayerNorm``)."""
    return "Norm" in type(module).__name__


def _classes(*names: str) -> tuple[type, ...]:
    return tuple(getattr(nn, n) for n in names if hasattr(nn, n))


_KINDS: list[LayerKind] = [
    LayerKind("attention", (nn.MultiheadAttention,), "attention", "out_proj.weight",
              "out_proj.bias", affine=True, atomic=True),
    LayerKind("recurrent", (nn.RNNBase,), "recurrent", "weight_ih_l0", "bias_ih_l0",
              atomic=True),
    LayerKind("conv_transpose", (_ConvTransposeNd,), "conv", layout="transposed", units="conv",
              affine=True),
    LayerKind("conv", (_ConvNd,), "conv", units="conv", affine=True),
    LayerKind("in_out_linear", in_out_layout, "in_out", layout="in_out", affine=True),
    LayerKind("parametrization", is_parametrization_list, "parametrization", weight=None,
              bias=None),
    LayerKind("linear", (nn.Linear,), "linear", affine=True),
    LayerKind("bilinear", (nn.Bilinear,), "linear"),
    LayerKind("embedding", (nn.Embedding, nn.EmbeddingBag), "embedding", bias=None),
    LayerKind("prelu", (nn.PReLU,), "prelu", bias=None),
    LayerKind("channel_norm", (_NormBase, *_classes("GroupNorm", "LocalResponseNorm",
                                                    "CrossMapLRN2d")),
              "norm", units="channel", norm=True),
    LayerKind("norm", _classes("LayerNorm", "RMSNorm"), "norm", norm=True),
    LayerKind("named_norm", _named_norm, "norm", norm=True),
]  # fmt: skip


def register_layer(kind: LayerKind, *, first: bool = True) -> None:
    """Add a layer kind to the registry (``first``: before the built-in ones, so that it
    wins over a base class they match). Replaces a kind of the same name."""
    _KINDS[:] = [k for k in _KINDS if k.name != kind.name]
    if first:
        _KINDS.insert(0, kind)
    else:
        _KINDS.append(kind)


def layer_kinds() -> tuple[LayerKind, ...]:
    """Every registered kind, in matching order."""
    return tuple(_KINDS)


def layer_kind(module: nn.Module) -> LayerKind | None:
    """The registry's entry for ``module`` (the first kind that matches), or None."""
    for kind in _KINDS:
        if kind.matches(module):
            return kind
    return None


def is_norm(module: nn.Module) -> bool:
    """torch's normalization layers, and a user's module whose class name contains "Norm".

    >>> import torch
    >>> is_norm(torch.nn.BatchNorm2d(3)), is_norm(torch.nn.Linear(2, 2))
    (True, False)
    """
    kind = layer_kind(module)
    return kind is not None and kind.norm


def atomic_types() -> tuple[type, ...]:
    """Module types that are one layer although they have children."""
    out: list[type] = []
    for kind in _KINDS:
        if kind.atomic and isinstance(kind.match, tuple):
            out.extend(kind.match)
    return tuple(out)
