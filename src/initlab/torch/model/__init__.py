"""Model-level initialization: ``initlab.init(model, scheme)`` and the discovery behind it.

* :func:`init` initializes a whole model and returns an :class:`InitReport`;
* :func:`discover` finds which nonlinearity follows each layer (torch.fx, else one forward
  pass on fake tensors or a recorded one, else known structures and module order), reusable
  on its own: residual branches (:meth:`Discovery.residual_layers`), execution order, the
  data-flow graph.
"""

from initlab.torch.model.activations import Activation
from initlab.torch.model.api import InitError, InitWarning, init
from initlab.torch.model.discovery import Discovery, LayerLink, discover
from initlab.torch.model.report import InitReport, ParamRow
from initlab.torch.model.rules import AUTO_RULES

__all__ = [
    "AUTO_RULES",
    "Activation",
    "Discovery",
    "InitError",
    "InitReport",
    "InitWarning",
    "LayerLink",
    "ParamRow",
    "discover",
    "init",
]
