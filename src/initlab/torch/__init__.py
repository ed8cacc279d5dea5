"""initlab for PyTorch: drop-in ``torch.nn.init`` functions and tensor fills.

``import initlab.torch as init`` replaces ``import torch.nn.init as init``.
"""

from initlab.torch.fill import fill_
from initlab.torch.nn_init import (
    calculate_gain,
    constant_,
    dirac_,
    eye_,
    get_default_rng,
    kaiming_normal_,
    kaiming_uniform_,
    normal_,
    ones_,
    orthogonal_,
    set_default_rng,
    sparse_,
    trunc_normal_,
    uniform_,
    xavier_normal_,
    xavier_uniform_,
    zeros_,
)

__all__ = [
    "calculate_gain",
    "constant_",
    "dirac_",
    "eye_",
    "fill_",
    "get_default_rng",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "set_default_rng",
    "sparse_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
