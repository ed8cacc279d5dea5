"""LSUV: layer-sequential unit-variance initialization in one forward pass.

:func:`lsuv` (also ``initlab.lsuv``) and its :class:`LSUVReport`; see :mod:`.core` for the
method and :mod:`.layers` for the layers it rescales.
"""

from initlab.torch.lsuv.core import lsuv
from initlab.torch.lsuv.report import LSUVLayer, LSUVReport

__all__ = ["LSUVLayer", "LSUVReport", "lsuv"]
