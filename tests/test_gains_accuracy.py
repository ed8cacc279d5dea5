"""Every catalogue gain to 1e-9, against scipy.integrate.quad split at the kinks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate

import initlab.torch as il_torch
from initlab.gains import KINKS, NUMERIC_NONLINEARITIES, calculate_gain, numeric_gain

PARAMETRIZED = ("elu", "celu", "softplus")
CASES = [(name, None) for name in NUMERIC_NONLINEARITIES] + [
    (name, p) for name in PARAMETRIZED for p in (0.3, 2.0)
]


def quad_gain(f, kinks) -> float:
    """1 / sqrt(E f(z)^2) by adaptive quadrature on each smooth piece of [-40, 40]."""
    points = [-40.0, *sorted(set(kinks)), 40.0]
    total = 0.0
    for lo, hi in itertools.pairwise(points):
        value, _ = integrate.quad(
            lambda z: float(f(np.array([z]))[0]) ** 2 * math.exp(-0.5 * z * z),
            lo,
            hi,
            epsabs=1e-14,
            epsrel=1e-13,
            limit=400,
        )
        total += value
    return 1.0 / math.sqrt(total / math.sqrt(2.0 * math.pi))


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize(("name", "param"), CASES)
def test_catalogue_gain_accurate_to_1e_9(name, param):
    fn = NUMERIC_NONLINEARITIES[name]
    f = fn if param is None else (lambda x: fn(x, param))
    kinks = KINKS.get(name, lambda p: ())(param)
    assert abs(calculate_gain(name, param) - quad_gain(f, kinks)) < 1e-9


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_hardtanh_no_longer_low():
    """Gauss-Hermite gave 0.6% low; the reference is 1 / sqrt(E[clip(z, -1, 1)^2])."""
    # E[clip(z)^2] = P(|z|<1) - 2 phi(1) + P(|z|>1)... closed form: erf(1/sqrt2) - 2 phi(1) + erfc
    phi1 = math.exp(-0.5) / math.sqrt(2 * math.pi)
    inside = math.erf(1 / math.sqrt(2)) - 2 * phi1  # E[z^2; |z| < 1]
    outside = math.erfc(1 / math.sqrt(2))  # P(|z| > 1) * 1^2
    assert calculate_gain("hardtanh") == pytest.approx(1 / math.sqrt(inside + outside), abs=1e-12)


@pytest.mark.parametrize(
    ("name", "module"),
    [("hardtanh", F.hardtanh), ("relu6", F.relu6), ("hardswish", F.hardswish),
     ("elu", F.elu), ("softsign", F.softsign), ("gelu", F.gelu), ("silu", F.silu)],
)  # fmt: skip
def test_torch_callables_give_the_catalogue_gain(name, module):
    """Kinks at multiples of 0.5 are cut even for a callable that declares none."""
    assert il_torch.calculate_gain(module) == pytest.approx(calculate_gain(name), abs=1e-9)


def test_declared_kinks_make_any_callable_exact():
    f = lambda z: np.clip(z, -0.3, 0.7)  # noqa: E731
    exact = numeric_gain(f, kinks=(-0.3, 0.7))
    assert exact == pytest.approx(quad_gain(f, (-0.3, 0.7)), abs=1e-9)
    assert torch.isfinite(torch.tensor(exact))
