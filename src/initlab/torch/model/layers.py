"""Per-layer handlers: how each parameter of each layer type splits into blocks, with fans.

A handler turns one parameter into :class:`BlockSpec` s: the whole tensor, or row blocks
initialized separately (the q, k and v matrices inside MultiheadAttention's ``in_proj``, the
gates of recurrent layers), each with its true fans and what follows it. The scheme is chosen
later (:mod:`initlab.torch.model.rules`).

=========================  ====================================================================
layer                      parameters
=========================  ====================================================================
Linear, Bilinear           weight ``(out, in)``: fans (in, out); bias
Conv1d/2d/3d               weight ``(out, in/g, *k)``: fans (in/g * k, out/g * k); groups and
                           depthwise included (:func:`initlab.fans.layer_fans`)
ConvTranspose1d/2d/3d      weight ``(in, out/g, *k)``: fans (in/g * k, out/g * k)
Embedding, EmbeddingBag    weight; the ``padding_idx`` row stays zero
MultiheadAttention         in_proj q, k, v as three ``(E, E)`` matrices (or q/k/v_proj_weight);
                           in_proj_bias in three; bias_k, bias_v as biases; out_proj a Linear
RNN, LSTM, GRU             weight_ih / weight_hh per gate; weight_hr (LSTM projection); biases
                           per gate
norms                      weight 1, bias 0 (BatchNorm, LayerNorm, GroupNorm, InstanceNorm,
                           RMSNorm, and a user's module whose class name contains "Norm")
PReLU                      the slope, set to its ``init``
anything else              raw parameters: 2-D or more are weights in torch's ``(out, in, *k)``
                           layout; 1-D whose name contains "bias" are biases; any other is
                           left as it is and the report says so (set it with ``overrides``)
=========================  ====================================================================
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from initlab.fans import Fans, compute_fans, layer_fans
from initlab.torch.model.activations import Activation, make_activation
from initlab.torch.model.anatomy import LayerKind, layer_kind
from initlab.torch.model.discovery import LayerLink
from initlab.torch.model.known import (
    embedding_fans,
    layer_scale,
    parametrization,
    raw_embedding,
    weight_shape,
)

__all__ = ["BlockSpec", "blocks_for"]


@dataclass(frozen=True)
class BlockSpec:
    """One separately initialized part of a parameter.

    ``kind``: ``"weight"``, ``"recurrent"``, ``"embedding"``, ``"bias"``, ``"norm_weight"``,
    ``"norm_bias"``, ``"prelu"`` or ``"skip"``. ``rows``: the slice of dim 0 it covers (None:
    the whole tensor). ``activation``/``follows``/``found_by``: what its output reaches, when a
    handler knows better than the module-level link (attention parts, recurrent gates).
    """

    kind: str
    part: str = ""
    rows: tuple[int, int] | None = None
    fans: Fans | None = None
    link: LayerLink | None = None
    activation: Activation | None = None
    follows: str | None = None
    found_by: str | None = None
    note: str = ""
    value: float | None = None
    zero_rows: tuple[int, ...] = ()

    @property
    def known_activation(self) -> Activation | None:
        """The activation a handler fixed, else the link's."""
        if self.activation is not None or self.follows is not None:
            return self.activation
        return None if self.link is None else self.link.activation


@dataclass(frozen=True)
class Context:
    """What a handler knows: the module, its path, the parameter's local and full names."""

    module: nn.Module
    path: str
    local: str
    name: str
    shape: tuple[int, ...]
    link: LayerLink | None
    custom: str
    kind: LayerKind | None = None


def _weight(ctx: Context, fans: Fans, note: str = "") -> list[BlockSpec]:
    return [BlockSpec("weight", fans=fans, link=ctx.link, note=note)]


def _first_weight_fans(module: nn.Module) -> Fans | None:
    for p in module.parameters(recurse=False):
        if p.dim() >= 2:
            return compute_fans(tuple(p.shape))
    return None


def _fans(ctx: Context, shape: tuple[int, ...]) -> Fans:
    """Fans of a weight in the layout its kind declares (torch's (out, in) by default)."""
    if ctx.kind is None or ctx.kind.layout == "out_in":
        return compute_fans(shape)
    return ctx.kind.fans(shape)


def _linear(ctx: Context) -> list[BlockSpec]:
    m = ctx.module
    if ctx.local == "weight":
        return _weight(ctx, _fans(ctx, ctx.shape))
    if ctx.local == "bias":
        return [BlockSpec("bias", fans=_fans(ctx, weight_shape(m)))]
    return _custom(ctx)


def _conv(ctx: Context) -> list[BlockSpec]:
    m = ctx.module
    transposed = ctx.kind is not None and ctx.kind.layout == "transposed"
    fans = layer_fans(weight_shape(m), groups=m.groups, transposed=transposed)
    if ctx.local == "weight":
        notes = []
        if transposed:
            notes.append("transposed: weight (in, out/groups, *k)")
        if m.groups > 1:
            depthwise = m.groups == m.in_channels
            notes.append(f"{'depthwise' if depthwise else 'grouped'} (groups={m.groups})")
        return _weight(ctx, fans, "; ".join(notes))
    if ctx.local == "bias":
        return [BlockSpec("bias", fans=fans)]
    return _custom(ctx)


def _embedding(ctx: Context) -> list[BlockSpec]:
    m = ctx.module
    if ctx.local != "weight":
        return _custom(ctx)
    padding = getattr(m, "padding_idx", None)
    zero = () if padding is None else (int(padding) % ctx.shape[0],)
    note = "" if padding is None else f"padding_idx={padding}: row kept at zero"
    return [BlockSpec("embedding", fans=compute_fans(ctx.shape), zero_rows=zero, note=note)]


_QKV = ("q", "k", "v")
_ATTENTION = "structure (MultiheadAttention)"


def _qkv_follows(part: str) -> str:
    if part == "v":
        return "attention-weighted sum, then out_proj"
    return "attention logits (q . k)"


def _attention(ctx: Context) -> list[BlockSpec]:
    m = ctx.module
    e = m.embed_dim
    if ctx.local == "in_proj_weight":
        return [
            BlockSpec("weight", p, (i * e, (i + 1) * e), Fans(ctx.shape[1], e),
                      follows=_qkv_follows(p), found_by=_ATTENTION)
            for i, p in enumerate(_QKV)
        ]  # fmt: skip
    match = re.fullmatch(r"([qkv])_proj_weight", ctx.local)
    if match:
        p = match.group(1)
        return [
            BlockSpec("weight", p, None, Fans(ctx.shape[1], ctx.shape[0]),
                      follows=_qkv_follows(p), found_by=_ATTENTION)
        ]  # fmt: skip
    if ctx.local == "in_proj_bias":
        return [BlockSpec("bias", p, (i * e, (i + 1) * e), Fans(e, e)) for i, p in enumerate(_QKV)]
    if ctx.local in ("bias_k", "bias_v"):
        return [BlockSpec("bias", fans=Fans(e, e), note="key/value bias appended to the sequence")]
    return _custom(ctx)


_GATES = {"LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}
_GATE_ACTIVATION = {"i": "sigmoid", "f": "sigmoid", "o": "sigmoid", "r": "sigmoid",
                    "z": "sigmoid", "g": "tanh", "n": "tanh"}  # fmt: skip


def _recurrent(ctx: Context) -> list[BlockSpec]:
    m = ctx.module
    h = m.hidden_size
    how = f"structure ({type(m).__name__})"
    if m.mode in _GATES:
        gates = _GATES[m.mode]
        gate_activation = {g: make_activation(_GATE_ACTIVATION[g]) for g in gates}
    else:
        nonlinearity = "relu" if m.mode == "RNN_RELU" else "tanh"
        gates = ("",)
        gate_activation = {"": make_activation(nonlinearity)}
    local = ctx.local
    if local.startswith("weight_hr"):
        return [BlockSpec("weight", fans=Fans(ctx.shape[1], ctx.shape[0]),
                          follows="projection of the hidden state (no nonlinearity)",
                          found_by=how)]  # fmt: skip
    kind = None
    if local.startswith("weight_ih"):
        kind = "weight"
    elif local.startswith("weight_hh"):
        kind = "recurrent"
    elif local.startswith(("bias_ih", "bias_hh")):
        kind = "bias"
    if kind is None:
        return _custom(ctx)
    blocks = []
    for i, gate in enumerate(gates):
        rows = (i * h, (i + 1) * h) if len(gates) > 1 else None
        activation = gate_activation[gate]
        follows = f"{'gate ' + gate if gate else 'hidden state'}: {activation.label}"
        if kind == "bias":
            blocks.append(BlockSpec("bias", gate, rows, Fans(h, h)))
        else:
            fans = Fans(ctx.shape[1], h)
            blocks.append(BlockSpec(kind, gate, rows, fans, activation=activation,
                                    follows=follows, found_by=how))  # fmt: skip
    return blocks


_NORM_WEIGHT = ("weight", "scale", "gamma", "g", "alpha")
_NORM_BIAS = ("bias", "beta", "b", "shift")


def _norm(ctx: Context) -> list[BlockSpec]:
    if ctx.local in _NORM_WEIGHT:
        return [BlockSpec("norm_weight")]
    if ctx.local in _NORM_BIAS:
        return [BlockSpec("norm_bias")]
    return _custom(ctx)


def _prelu(ctx: Context) -> list[BlockSpec]:
    value = float(getattr(ctx.module, "init", 0.25))
    return [BlockSpec("prelu", value=value, note="PReLU slope, its init value")]


def _in_out(ctx: Context) -> list[BlockSpec]:
    """transformers' Conv1D: ``y = x @ W + b`` with ``W`` of shape (in, out)."""
    fans = Fans(ctx.shape[0], ctx.shape[1]) if len(ctx.shape) == 2 else None
    if ctx.local == "weight" and fans is not None:
        return _weight(ctx, fans, "weight stored (in, out)")
    if ctx.local == "bias":
        w = weight_shape(ctx.module)
        return [BlockSpec("bias", fans=Fans(w[0], w[1]))]
    return _custom(ctx)


def _parametrized(ctx: Context) -> list[BlockSpec]:
    """A parameter of a parametrization that :mod:`.parametrized` did not map to its layer."""
    found = parametrization(ctx.module, ctx.local)
    kind = found[0] if found else "other"
    if kind == "weight_norm_g":
        note = "weight_norm magnitude g: set to ||v|| once v is drawn"
    elif kind == "orthogonal":
        note = "orthogonal parametrization: the weight is orthogonal whatever this holds; kept"
    else:
        note = f"parametrization {type(found[1]).__name__ if found else '?'}: no rule; kept"
    return [BlockSpec("skip", note=note)]


def _custom(ctx: Context) -> list[BlockSpec]:
    kind = type(ctx.module).__name__
    if ctx.custom == "skip":
        return [BlockSpec("skip", note=f"custom parameter of {kind}: custom='skip'")]
    # issue 11: raw parameters with a stated rule (initlab.torch.model.known)
    role = raw_embedding(ctx.local, ctx.shape)
    if role is not None:
        return [BlockSpec("embedding", fans=embedding_fans(ctx.shape),
                          note=f"{role} of {kind}: like an embedding")]  # fmt: skip
    if layer_scale(ctx.local, ctx.shape):
        return [BlockSpec("skip", note=f"layer scale of {kind}: kept (the model's own scale "
                          "of its residual branch); set it with overrides")]  # fmt: skip
    # Seen as a weight: its module called as a layer, or a matrix read in forward, where
    # discovery could see it.
    seen = (
        ctx.link is not None and ctx.link.found_by in ("fx", "fake", "hooks")
        and (ctx.link.target == ctx.path or len(ctx.shape) == 2)
    )  # fmt: skip
    if len(ctx.shape) >= 2 and not seen:
        return [BlockSpec("skip", note=(
            f"custom parameter of {kind} {ctx.shape}: not a known layer's weight and not seen "
            "used as one; left as it is, set it with overrides"))]  # fmt: skip
    if len(ctx.shape) >= 2:
        note = (f"custom parameter of {kind}: torch layout (out, in, *k) assumed; "
                "set it with overrides if not")  # fmt: skip
        return [BlockSpec("weight", fans=compute_fans(ctx.shape), link=ctx.link, note=note)]
    if "bias" in ctx.local.lower():
        return [BlockSpec("bias", fans=_first_weight_fans(ctx.module),
                          note=f"custom parameter of {kind}, a bias by its name")]  # fmt: skip
    what = "scalar" if len(ctx.shape) == 0 else "1-D"
    return [
        BlockSpec(
            "skip",
            note=(
                f"custom {what} parameter of {kind}: no safe default (a scale, a slope, a "
                "temperature?); left as it is, set it with overrides"
            ),
        )
    ]


#: The registry's ``blocks`` names (:mod:`initlab.torch.model.anatomy`) -> handler.
BLOCK_HANDLERS: dict[str, Callable[[Context], list[BlockSpec]]] = {
    "attention": _attention,
    "recurrent": _recurrent,
    "conv": _conv,
    "linear": _linear,
    "in_out": _in_out,
    "parametrization": _parametrized,
    "embedding": _embedding,
    "prelu": _prelu,
    "norm": _norm,
}


def layer_type(module: nn.Module) -> str:
    """The name the report shows for a module's type."""
    return type(module).__name__


def blocks_for(ctx: Context) -> list[BlockSpec]:
    """The blocks of one parameter, by the handler for its module's type.

    >>> import torch
    >>> attention = torch.nn.MultiheadAttention(8, 2)
    >>> ctx = Context(attention, "attn", "in_proj_weight", "attn.in_proj_weight", (24, 8),
    ...               None, "init")
    >>> [(b.part, b.rows, b.fans) for b in blocks_for(ctx)]  # doctest: +NORMALIZE_WHITESPACE
    [('q', (0, 8), Fans(fan_in=8, fan_out=8)), ('k', (8, 16), Fans(fan_in=8, fan_out=8)),
     ('v', (16, 24), Fans(fan_in=8, fan_out=8))]
    """
    kind = ctx.kind if ctx.kind is not None else layer_kind(ctx.module)
    if kind is None:
        return _custom(ctx)
    if ctx.kind is None:
        ctx = dataclasses.replace(ctx, kind=kind)
    return BLOCK_HANDLERS[kind.blocks](ctx)
