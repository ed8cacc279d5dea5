"""Model-level initialization: ``initlab.init(model, scheme)`` and the discovery behind it.

* :func:`init` initializes a whole model and returns an :class:`InitReport`;
* :func:`discover` finds which nonlinearity follows each layer (torch.fx, else one forward
  pass on fake tensors or a recorded one, else known structures and module order), reusable
  on its own: residual branches (:meth:`Discovery.residual_layers`), execution order, the
  data-flow graph.
"""

import importlib

#: Public names, each imported from its module on first use, so that importing one part of
#: the anatomy (``initlab.torch.model.graph``) does not import the whole of ``init``.
_LAZY = {
    "AUTO_RULES": "rules",
    "Activation": "activations",
    "Discovery": "discovery",
    "InitError": "api",
    "InitOptions": "options",
    "InitReport": "report",
    "InitWarning": "api",
    "LayerLink": "discovery",
    "ParamRow": "report",
    "discover": "discovery",
    "init": "api",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AUTO_RULES",
    "Activation",
    "Discovery",
    "InitError",
    "InitOptions",
    "InitReport",
    "InitWarning",
    "LayerLink",
    "ParamRow",
    "discover",
    "init",
]
