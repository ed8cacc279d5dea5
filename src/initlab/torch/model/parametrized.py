"""Parametrized layers (``torch.nn.utils.parametrizations``) in an initialization plan.

A parametrized layer keeps its weight's raw tensors in ``<layer>.parametrizations.weight``:

* **weight_norm**: ``weight = g * v / ||v||``. The direction ``original1`` (``v``) is
  planned as the layer's weight (its fans, what follows it); the magnitude ``original0``
  (``g``) is then set to ``||v||`` per output unit, from the very values drawn for ``v``, so
  the effective weight equals ``v`` and has the scheme's std. A magnitude drawn from the
  scheme instead would be noise of either sign.
* **spectral_norm**: ``original`` is planned as the layer's weight; the parametrization
  divides it by its largest singular value at every forward, as it always does.
* **orthogonal** and unknown parametrizations: left as they are (see :mod:`.known`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from initlab.torch.fill import fill_
from initlab.torch.model.discovery import Discovery
from initlab.torch.model.known import parametrization, weight_norm_magnitude
from initlab.torch.model.layers import BlockSpec, Context

__all__ = ["layer_context", "link_weight_norms"]

_MARK = ".parametrizations."


def _owner(model: nn.Module, path: str) -> tuple[str, str] | None:
    """(layer path, tensor name) of a ParametrizationList at ``path``."""
    if _MARK not in f".{path}" and not path.startswith("parametrizations."):
        return None
    head, _, tensor = f".{path}".rpartition(_MARK)
    return head[1:], tensor


def layer_context(model: nn.Module, ctx: Context, found: Discovery) -> Context:
    """``ctx`` for a weight_norm direction or a spectral_norm original: the context of the
    weight it stands for (the layer, its fans and link); any other ``ctx`` unchanged."""
    kind = parametrization(ctx.module, ctx.local)
    if kind is None or kind[0] not in ("weight_norm_v", "spectral_norm"):
        return ctx
    owner = _owner(model, ctx.path)
    if owner is None:
        return ctx
    layer_path, tensor = owner
    layer = model.get_submodule(layer_path)
    link = found.link_for(layer_path)
    return replace(ctx, module=layer, path=layer_path, local=tensor, link=link)


def link_weight_norms(plans: list[Any], seed: int) -> None:
    """Turn every weight_norm magnitude ``g`` of ``plans`` into ``||v||`` of the values planned
    for its direction ``v`` (kept when ``v`` is not drawn from a scheme)."""
    by_name = {plan.name: plan for plan in plans}
    for plan in plans:
        found = parametrization(plan.module, plan.name.rpartition(".")[2])
        if found is None or found[0] != "weight_norm_g":
            continue
        v_plan = by_name.get(plan.name[: -len("original0")] + "original1")
        if v_plan is None or len(v_plan.blocks) != 1 or len(plan.blocks) != 1:
            continue
        v_block, g_block = v_plan.blocks[0], plan.blocks[0]
        if v_block.choice is None or v_block.filler is not None or g_block.reason.startswith(
            ("excluded", "frozen", "override")
        ):
            continue
        dim = int(getattr(found[1], "dim", 0))
        g_block.filler = _magnitude(v_block, tuple(v_plan.param.shape), seed, dim)
        g_block.reason = ""
        note = "weight_norm magnitude g = ||v||: the effective weight is v, the scheme's std"
        g_block.spec = BlockSpec("skip", note=note)


def _magnitude(v_block: Any, shape: tuple[int, ...], seed: int, dim: int) -> Any:
    def weight_norm_magnitude_of_v(out: torch.Tensor) -> torch.Tensor:
        v = torch.empty(shape, dtype=out.dtype, device=out.device)
        fill_(v, v_block.choice.scheme, seed=seed, name=v_block.stream, fans=v_block.fans
              or v_block.spec.fans)  # fmt: skip
        return weight_norm_magnitude(v, dim).reshape(out.shape).to(out.dtype)

    return weight_norm_magnitude_of_v
