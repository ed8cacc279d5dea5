"""How the studies build a PyTorch model and give it an initialization scheme."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from initlab.torch.fill import fill_

__all__ = ["TORCH_DEFAULT", "apply_scheme", "build_model"]

#: The scheme name that means "leave the modules as their constructors left them".
TORCH_DEFAULT = "torch_default"


def build_model(constructor: Callable[[], nn.Module], *, seed: int) -> nn.Module:
    """``constructor()`` run under ``torch.manual_seed(seed)``, without touching the
    caller's global random state (torch's default initialization draws from it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return constructor()


def apply_scheme(model: nn.Module, scheme: str, *, seed: int) -> nn.Module:
    """Initialize ``model`` with ``scheme`` (an initlab scheme name) under ``seed``.

    ``"torch_default"`` leaves the model as constructed. Otherwise every ``nn.Linear``
    weight gets ``fill_(weight, scheme, seed=seed, name="<module>.weight")`` and its bias
    zeros.

    Interim: this is what ``initlab.init(model, scheme, seed=seed)`` (issue 3) does for the
    plain Linear/activation stacks of the studies; the studies move to it once it is on main.
    """
    if scheme == TORCH_DEFAULT:
        return model
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear):
                fill_(module.weight, scheme, seed=seed, name=f"{name}.weight")
                if module.bias is not None:
                    module.bias.zero_()
    return model
