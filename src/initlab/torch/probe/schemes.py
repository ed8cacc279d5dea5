"""Applying a scheme to a whole model for :func:`~initlab.torch.probe.compare`.

A scheme name or :class:`~initlab.schemes.Scheme` goes through :func:`initlab.init`
(``initlab.init(model, scheme, seed=seed)``): every weight model-wide with its layer's true
fans, q/k/v and recurrent gates apart, norms at 1 and biases at 0, values from the stream
``(seed, parameter name)``. ``"auto"`` is initlab.init's per-layer rule. Two more choices
exist for comparisons: ``"default"`` keeps the model as constructed (torch's own
initialization), and a callable ``f(model)`` initializes the model itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from torch import nn

from initlab.schemes import Scheme, get_scheme

__all__ = ["KEEP", "SchemeLike", "apply_scheme", "scheme_label"]

#: The scheme name that leaves a model's own initialization (torch's defaults) in place.
KEEP = "default"

SchemeLike = str | Scheme | Callable[[nn.Module], Any]


def scheme_label(scheme: SchemeLike) -> str:
    """The label a scheme gets in a comparison.

    >>> scheme_label("he"), scheme_label(get_scheme("xavier_uniform"))
    ('he', "variance_scaling(scale=1.0, mode='fan_avg', distribution='uniform')")
    """
    if isinstance(scheme, str):
        return scheme
    if isinstance(scheme, Scheme):
        return scheme.name
    return getattr(scheme, "__name__", type(scheme).__name__)


def check_scheme(scheme: SchemeLike) -> None:
    """Raise the registry's error (naming the closest valid name) for an unknown scheme.

    >>> check_scheme("default"), check_scheme("auto"), check_scheme("he")
    (None, None, None)
    """
    if isinstance(scheme, str) and scheme in (KEEP, "auto"):
        return
    if isinstance(scheme, (str, Scheme)):
        get_scheme(scheme)
    elif not callable(scheme):
        raise TypeError(
            f"scheme={scheme!r} is not valid; allowed: a scheme name, a Scheme, 'default' "
            "or a callable f(model)."
        )


def apply_scheme(model: nn.Module, scheme: SchemeLike, *, seed: int = 0) -> list[str]:
    """Initialize ``model`` in place with ``scheme``; returns initlab.init's warnings.

    The warnings (for instance the symmetry of a constant scheme, which the probe reports
    itself) are returned rather than raised, so that a deliberate comparison stays quiet.

    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> notes = apply_scheme(net, "zeros")
    >>> float(net[0].weight.detach().abs().sum()), notes[0].startswith("symmetry")
    (0.0, True)
    """
    check_scheme(scheme)
    if isinstance(scheme, str) and scheme == KEEP:
        return []
    if callable(scheme) and not isinstance(scheme, Scheme):
        scheme(model)
        return []
    from initlab.torch.model import InitWarning, init

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InitWarning)
        report = init(model, scheme, seed=seed, measure=False, progress=False)
    return list(report.warnings)
