"""How the studies build a PyTorch model and give it an initialization scheme."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from initlab.torch.fill import fill_

__all__ = ["TORCH_DEFAULT", "apply_scheme", "build_model", "has_model_init"]

#: The scheme name that means "leave the modules as their constructors left them".
TORCH_DEFAULT = "torch_default"


def has_model_init() -> bool:
    """Whether :func:`initlab.init` (the model-level API) is installed."""
    try:
        import initlab.torch.model  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


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
    it was given (when the report states one) and ``"warnings"`` to the warnings
    ``initlab.init`` raised (the symmetry warning of ``"zeros"``, deliberately shown).

    Interim, until ``initlab.init`` (issue 3) is on main: every ``nn.Linear`` weight gets
    ``fill_(weight, scheme, seed=seed, name="<module>.weight")`` and its bias zeros, which
    is what ``initlab.init`` does for the Linear/activation stacks of the studies (the same
    streams, so the same bits).
    """
    if scheme == TORCH_DEFAULT:
        return {}
    if has_model_init():
        from initlab.torch.model import init

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = init(model, scheme, seed=seed, measure=False)
        applied: dict[str, object] = {}
        for name, parameter in model.named_parameters():
            if name.endswith("weight") and parameter.dim() >= 2:
                std = getattr(report[name], "std", None)
                if isinstance(std, float):
                    applied[name] = std
        applied["warnings"] = [str(w.message) for w in caught]
        return applied
    if scheme == "auto":
        raise ValueError(
            "scheme='auto' needs initlab.init (initlab.torch.model), which is not installed."
        )
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear):
                fill_(module.weight, scheme, seed=seed, name=f"{name}.weight")
                if module.bias is not None:
                    module.bias.zero_()
    return {"warnings": []}
