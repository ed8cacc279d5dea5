r"""What initlab knows about layers beyond torch's own: layouts, parametrizations, raw parameters.

=========================================  =================================================
parameter                                  rule
=========================================  =================================================
transformers' ``Conv1D`` (GPT-2, GPT-J     weight stored ``(in_features, out_features)``:
family) and any layer with ``nf``/``nx``   fans read as (shape[0], shape[1]), the rule as
                                           for a Linear
``parametrizations.weight.original1``      weight_norm's direction ``v``: initialized as the
                                           weight it stands for (the layer's fans and link)
``parametrizations.weight.original0``      weight_norm's magnitude ``g``: set to ``||v||``
                                           (per output unit), so that the effective weight
                                           ``g v / ||v||`` is exactly ``v``: the scheme's std
``parametrizations.weight.original``       spectral_norm: initialized as the weight (the
(spectral_norm)                            parametrization then divides by its largest
                                           singular value, as it does at every forward)
``parametrizations.weight.original``       left as it is: the parametrization makes the
(orthogonal)                               weight orthogonal whatever it holds
position embeddings (``position_embed*``,  like an embedding, ``std = 1 / sqrt(d)`` with
``pos_embed``, ``absolute_pos_embed``)     ``d`` the last dimension
class / distillation / mask / register     like an embedding
tokens (``cls_token``, ``mask_token``, ...)
layer scales (``layer_scale*``,            kept: a model's deliberate small scale of its
``lambda1``, ``gamma`` of shape (d,))      residual branches
any other raw parameter of 2 or more dims  reported and left as it is unless discovery saw its
                                           module used as a layer (then a weight in torch's
                                           ``(out, in, *k)`` layout, as before)
=========================================  =================================================

Embeddings (``nn.Embedding`` and the embedding-like parameters above) get
``std = 1 / sqrt(d)``, ``d`` the embedding width: the rule of a layer whose output reaches
nothing nonlinear, read with the width as fan. So an embedding tied to the output layer
(GPT-2's ``wte`` and ``lm_head``, BERT's word embeddings and MLM decoder) gives logits of std
about 1 on a normalized final hidden state, and untied ones are on the same scale as the
position embeddings added to them (see docs/init.md for how GPT-2, Llama, T5 and BERT do it).

>>> import torch
>>> from transformers.pytorch_utils import Conv1D
>>> in_out_layout(Conv1D(12, 4)), in_out_layout(torch.nn.Linear(4, 12))
(True, False)
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import nn

from initlab.fans import Fans
from initlab.schemes import VarianceScaling

__all__ = [
    "EMBEDDING_NOTE",
    "embedding_fans",
    "embedding_scheme",
    "in_out_layout",
    "is_parametrization_list",
    "layer_scale",
    "normalized_next",
    "parametrization",
    "raw_embedding",
    "weight_norm_magnitude",
    "weight_shape",
]

EMBEDDING_NOTE = "std 1/sqrt(d), d the embedding width"


def embedding_scheme(distribution: str = "normal") -> VarianceScaling:
    """``std = 1 / sqrt(d)``: LeCun with the embedding width as fan_in."""
    return VarianceScaling(1.0, "fan_in", distribution, 1.0)


def in_out_layout(module: nn.Module) -> bool:
    """Whether ``module`` stores its weight as ``(in_features, out_features)`` (transformers'
    ``Conv1D``: ``y = x @ W + b``)."""
    if type(module).__name__ != "Conv1D" or not hasattr(module, "nf"):
        return False
    shape = weight_shape(module)
    return len(shape) == 2 and shape[1] == module.nf


_POSITION = re.compile(r"(^|_)(pos|position|positional)(_?embed\w*|_?emb|_?encoding|s)?$|"
                       r"^(absolute_)?pos(ition)?_?embed(ding)?s?$|position_embeddings?$")
_TOKEN = re.compile(r"^(cls|class|dist|distillation|mask|register|query|prompt)_?tokens?$|"
                    r"^(register|query)_tokens$")
_LAYER_SCALE = re.compile(r"^(layer_scale\w*|lambda\d*|gamma\d*|ls\d*|ls_gamma)$")


def raw_embedding(local: str, shape: tuple[int, ...]) -> str | None:
    """``"position embedding"`` or ``"token"`` when a raw parameter is one by its name."""
    if len(shape) < 1 or shape[-1] < 1:
        return None
    name = local.lower()
    if _POSITION.search(name):
        return "position embedding"
    if _TOKEN.search(name):
        return "token"
    return None


def embedding_fans(shape: tuple[int, ...]) -> Fans:
    """(width, everything else): the width is the last dimension."""
    width = shape[-1]
    return Fans(width, max(1, math.prod(shape[:-1])))


def layer_scale(local: str, shape: tuple[int, ...]) -> bool:
    """A layer scale (ConvNeXt, CaiT, DINOv2): a 1-D per-channel factor named like one."""
    return len(shape) == 1 and bool(_LAYER_SCALE.match(local.lower()))


def is_parametrization_list(module: nn.Module) -> bool:
    """The container of a parametrized tensor's originals (``<layer>.parametrizations.w``)."""
    return type(module).__name__ == "ParametrizationList"


def parametrization(module: nn.Module, local: str) -> tuple[str, Any] | None:
    """For a parameter of a ``ParametrizationList``: (``"weight_norm_g"``, ``"weight_norm_v"``,
    ``"spectral_norm"``, ``"orthogonal"`` or ``"other"``, the parametrization)."""
    if type(module).__name__ != "ParametrizationList" or len(module) == 0:
        return None
    first = module[0]
    kind = type(first).__name__
    if kind == "_WeightNorm":
        return ("weight_norm_g" if local == "original0" else "weight_norm_v"), first
    if kind == "_SpectralNorm":
        return "spectral_norm", first
    if kind == "_Orthogonal":
        return "orthogonal", first
    return "other", first


def weight_norm_magnitude(v: torch.Tensor, dim: int) -> torch.Tensor:
    """``||v||`` over every dimension but ``dim`` (keepdim), as weight_norm computes it."""
    if dim == -1 or v.dim() == 0:
        return v.norm()
    dims = [d for d in range(v.dim()) if d != dim % v.dim()]
    return v.norm(dim=dims, keepdim=True)


def weight_shape(module: nn.Module) -> tuple[int, ...]:
    """The shape of ``module.weight`` without computing it: reading a parametrized weight runs
    its parametrization (spectral_norm's power iteration moves its ``u``/``v`` buffers)."""
    lists = getattr(module, "parametrizations", None)
    if lists is not None and "weight" in lists:
        originals = lists["weight"]
        raw = getattr(originals, "original", None)
        if raw is None:
            raw = getattr(originals, "original1", None)  # weight_norm's direction v
        if raw is not None:
            return tuple(raw.shape)
    return tuple(module.weight.shape)


def normalized_next(spec: Any) -> bool:
    """Whether a weight block's output goes through a normalization before anything else.

    Then the norm sets the forward scale whatever the weight's, and "auto" sizes the weight
    for the backward pass: its rule with ``mode="fan_out"`` (He et al. 2015, section 2.2;
    torchvision's and transformers' ResNets do the same), unless ``mode`` is given.
    """
    link = getattr(spec, "link", None)
    return (
        spec.kind == "weight"
        and spec.activation is None
        and spec.follows is None
        and link is not None
        and bool(link.norms)
    )
