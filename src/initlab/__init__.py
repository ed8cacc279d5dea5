"""initlab: neural-network weight initialization, correct in one call and proven by measurement.

The core (gains, fans, schemes, rng, NumPy initializers) needs no deep-learning framework;
:mod:`initlab.torch` holds the PyTorch side.

>>> import initlab
>>> initlab.get_scheme("he_normal").formula()
'N(0, std^2), std = sqrt(2 / fan_in)'
"""

from initlab.fans import Fans, compute_fans, layer_fans
from initlab.gains import calculate_gain, numeric_gain
from initlab.rng import Stream
from initlab.schemes import Scheme, VarianceScaling, get_scheme, scheme_names

__version__ = "0.1.0"

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
