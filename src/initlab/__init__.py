"""initlab: neural-network weight initialization, correct in one call and proven by measurement.

The core (gains, fans, schemes, rng, NumPy initializers) needs no deep-learning framework;
:mod:`initlab.torch` holds the PyTorch side.

>>> import initlab
>>> initlab.get_scheme("he_normal").formula()
'N(0, std^2), std = sqrt(2 / fan_in)'
"""

from initlab import spellings as _spellings  # noqa: F401  (registers Keras's and JAX's names)
from initlab.fans import Fans, compute_fans, layer_fans
from initlab.gains import calculate_gain, numeric_gain
from initlab.rng import Stream
from initlab.schemes import Scheme, VarianceScaling, get_scheme, scheme_names

__version__ = "0.1.0"

#: Public names that need torch, imported on first use: ``import initlab`` stays light.
_LAZY: dict[str, tuple[str, str]] = {
    "init": ("initlab.torch.model", "init"),
    "InitReport": ("initlab.torch.model", "InitReport"),
    "probe": ("initlab.torch.probe", "probe"),
    "ProbeReport": ("initlab.torch.probe", "ProbeReport"),
    "compare": ("initlab.torch.probe", "compare"),
    "lsuv": ("initlab.torch.lsuv", "lsuv"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'initlab' has no attribute {name!r}")


__all__ = [
    "Fans",
    "Scheme",
    "Stream",
    "VarianceScaling",
    "__version__",
    "calculate_gain",
    "compute_fans",
    "get_scheme",
    "layer_fans",
    "numeric_gain",
    "scheme_names",
]
