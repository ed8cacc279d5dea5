"""How the studies build a PyTorch model and give it an initialization scheme."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

import initlab

__all__ = ["TORCH_DEFAULT", "apply_scheme", "build_model"]

#: The scheme name that means "leave the modules as their constructors left them".
TORCH_DEFAULT = "torch_default"


def build_model(constructor: Callable[[], nn.Module], *, seed: int) -> nn.Module:
    """``constructor()`` run under ``torch.manual_seed(seed)``, without touching the
    caller's global random state (torch's default initialization draws from it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return constructor()


def apply_scheme(model: nn.Module, scheme: str, *, seed: int) -> dict[str, object]:
    """Initialize ``model`` with ``scheme`` under ``seed``; returns what was applied.

    ``"torch_default"`` leaves the model as constructed. Any other name goes to
    ``initlab.init(model, scheme, seed=seed)``: weights from the stream
    ``(seed, parameter name)``, biases zero. The result maps each weight's name to the std
    its report row states and ``"warnings"`` to the warnings ``initlab.init`` raised (the
    symmetry warning of ``"zeros"`` is expected there: the study shows that failure).
    """
    if scheme == TORCH_DEFAULT:
        return {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = initlab.init(model, scheme, seed=seed, measure=False)
    applied: dict[str, object] = {}
    for name, parameter in model.named_parameters():
        if name.endswith("weight") and parameter.dim() >= 2:
            std = getattr(report[name], "std", None)
            if isinstance(std, float):
                applied[name] = std
    applied["warnings"] = [str(w.message) for w in caught]
    return applied
