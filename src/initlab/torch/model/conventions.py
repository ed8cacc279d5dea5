"""A model's deliberate choices that initialization keeps unless asked: zero-initialized norms.

Some residual networks start each block's last normalization with weight 0 (Goyal et al.
2017's "zero gamma", timm's ``zero_init_last``, several transformers vision models), so that
every block is the identity at the start of training. Resetting that weight to 1 undoes the
model's intent. ``norms=`` of :func:`initlab.init` says what happens to normalization
parameters:

* ``"auto"`` (default): weight 1 and bias 0, except a norm weight that is all zeros before the
  call while other norm weights of the model are not: that is a deliberate zero-init, and it
  is kept (with its bias). When every norm weight is zero, the memory is fresh (``to_empty``
  on zeroed pages, a ``torch.zeros`` model), not a choice, and all are reset. A sharded
  (DTensor) parameter is never read for this: its values come from ``to_empty``, and ranks
  that judged their own shards could disagree;
* ``"reset"``: weight 1 and bias 0 everywhere;
* ``"keep"``: every norm parameter is left as it is.
"""

from __future__ import annotations

from typing import Any

import torch

from initlab.torch.distributed import is_dtensor

__all__ = ["NORM_POLICIES", "apply_norm_policy"]

NORM_POLICIES = ("auto", "reset", "keep")


def _all_zero(p: torch.Tensor) -> bool:
    if p.is_meta or p.numel() == 0 or is_dtensor(p):
        return False
    with torch.no_grad():
        return not bool(torch.count_nonzero(p.detach()))


def apply_norm_policy(plans: list[Any], policy: str) -> list[str]:
    """Mark the norm blocks of ``plans`` that ``policy`` keeps; returns the layers whose
    zero-initialized norm weight was kept."""
    kept: list[str] = []
    if policy == "reset":
        return kept
    zero_layers = set()
    if policy == "auto":
        norm_plans = [p for p in plans if "norm_weight" in {b.spec.kind for b in p.blocks}]
        zero_layers = {p.path for p in norm_plans if _all_zero(p.param)}
        if len(zero_layers) == len(norm_plans):  # fresh memory, not a model's choice
            zero_layers = set()
    for plan in plans:
        for block in plan.blocks:
            if block.spec.kind not in ("norm_weight", "norm_bias") or block.choice is None:
                continue
            if block.choice.rule == "override":
                continue
            if policy == "keep":
                block.choice, block.reason = None, "norms='keep'"
            elif plan.path in zero_layers:
                block.choice = None
                block.reason = (
                    "a zero-initialized norm (the model's own choice: its block starts as the "
                    "identity): kept; norms='reset' sets it to 1"
                )
                if block.spec.kind == "norm_weight" and plan.path not in kept:
                    kept.append(plan.path)
    return kept
