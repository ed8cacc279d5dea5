"""Property: any scheme string and argument values give finite weights or an error before
any write (hypothesis, bounded: a few seconds)."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import initlab
from initlab.schemes import SCHEMES
from initlab.torch import fill_
from initlab.torch.model import InitError

NAMES = [*sorted(SCHEMES), "he", "xavier_uniform", "HeNormal", "jax.normal", "keras.he_uniform",
         "RandomNormal", "TruncatedNormal", "small_random", "kaiming_uniform_"]  # fmt: skip
WORDS = ["fan_in", "fan_out", "fan_avg", "normal", "uniform", "truncated_normal", "relu", "tanh",
         "leaky_relu", "selu", "gelu", "bogus"]  # fmt: skip
NUMBERS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 1e-300, 1e-45, 1e5, 6e4, 1e38, 3.5e38,
                     1e300, -1e300, math.inf, -math.inf, math.nan, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-3, max_value=5),
)  # fmt: skip
VALUES = st.one_of(NUMBERS, st.sampled_from(WORDS), st.booleans())


def _literal(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return {math.inf: "1e999", -math.inf: "-1e999"}.get(value, "nan")  # nan: a bare word
    return repr(value) if not isinstance(value, str) else value


@st.composite
def scheme_strings(draw):
    name = draw(st.sampled_from(NAMES))
    factory = SCHEMES.get(name)
    params = list(inspect.signature(factory).parameters) if factory else ["std", "mean", "a"]
    keys = draw(st.lists(st.sampled_from([*params, "gain", "scale", "bogus"]), max_size=3,
                         unique=True))  # fmt: skip
    parts = [f"{k}={_literal(draw(VALUES))}" for k in keys]
    if draw(st.booleans()) and draw(st.booleans()):
        parts.insert(0, _literal(draw(NUMBERS)))  # an unnamed value: allowed only sometimes
    return f"{name}({', '.join(parts)})" if parts or draw(st.booleans()) else name


DTYPES = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16])
SHAPES = st.sampled_from([(6, 4), (4, 6), (3, 2, 3), (4, 2, 3, 3), (5,), (0, 3), (2, 2)])


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(scheme=scheme_strings(), dtype=DTYPES, shape=SHAPES)
def test_fill_gives_finite_values_or_an_error_before_writing(scheme, dtype, shape):
    t = torch.full(shape, 7.0, dtype=dtype)
    version = t._version
    try:
        fill_(t, scheme, seed=0, name="w")
    except (ValueError, TypeError):
        assert bool((t == 7.0).all()) and t._version == version, scheme
        return
    assert bool(torch.isfinite(t).all()), scheme


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(scheme=scheme_strings(), dtype=DTYPES)
def test_init_gives_finite_weights_or_changes_nothing(scheme, dtype):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).to(dtype)
    before = [p.detach().clone() for p in model.parameters()]
    try:
        initlab.init(model, scheme, seed=0, measure=False)
    except (InitError, ValueError, TypeError):
        after = list(model.parameters())
        assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True)), scheme
        return
    for p in model.parameters():
        assert bool(torch.isfinite(p).all()), scheme


@pytest.mark.parametrize("scheme", ["normal(std=1e300)", "uniform(a=-1e999, b=0)",
                                    "orthogonal(gain=1e300)", "leaky_relu_he(a=nan)",
                                    "he_normal(nonlinearity=leaky_relu, a=nan)"])  # fmt: skip
def test_examples_from_the_issue(scheme):
    t = torch.full((4, 4), 7.0)
    with pytest.raises((ValueError, TypeError)):
        fill_(t, scheme, seed=0)
    assert bool((t == 7.0).all())
