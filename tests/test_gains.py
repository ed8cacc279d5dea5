"""Gains: torch's table, the numeric definition 1/sqrt(E[f(z)^2]), and bad input."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch.nn.init as torch_init

import initlab.torch as il_torch
from initlab.gains import calculate_gain, gain_names, numeric_gain, second_moment

TORCH_NAMES = [
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_table_equals_torch(name):
    assert calculate_gain(name) == torch_init.calculate_gain(name)
    assert il_torch.calculate_gain(name) == torch_init.calculate_gain(name)


@pytest.mark.parametrize("slope", [0, 0.01, 0.2, 1, 3, 0.5])
def test_leaky_relu_slopes_equal_torch(slope):
    assert calculate_gain("leaky_relu", slope) == pytest.approx(
        torch_init.calculate_gain("leaky_relu", slope), rel=1e-15
    )


def test_classic_values():
    assert calculate_gain("tanh") == 5.0 / 3.0
    assert calculate_gain("relu") == math.sqrt(2.0)
    assert calculate_gain("selu") == 0.75
    assert calculate_gain("sigmoid") == 1.0
    assert calculate_gain("prelu") == pytest.approx(math.sqrt(2.0 / (1 + 0.25**2)), rel=1e-15)
    assert calculate_gain("prelu", 0.1) == pytest.approx(math.sqrt(2.0 / 1.01), rel=1e-15)


@pytest.mark.parametrize("bad", [True, False, "0.2", [0.2], None.__class__])
def test_bool_or_non_number_slope_is_value_error_like_torch(bad):
    with pytest.raises(ValueError, match="negative_slope"):
        calculate_gain("leaky_relu", bad)
    with pytest.raises(ValueError):
        torch_init.calculate_gain("leaky_relu", bad)


def test_unknown_nonlinearity_names_parameter_and_suggests():
    with pytest.raises(ValueError, match=r"nonlinearity='rleu'.*Did you mean 'relu'"):
        calculate_gain("rleu")
    with pytest.raises(ValueError):
        torch_init.calculate_gain("rleu")  # torch raises the same type


def relu(z):
    return np.maximum(z, 0.0)


@pytest.mark.parametrize(
    ("f", "closed_form"),
    [
        (relu, math.sqrt(2.0)),
        (lambda z: z, 1.0),
        (lambda z: 3.0 * z, 1.0 / 3.0),
        *[
            (lambda z, a=a: np.where(z > 0, z, a * z), math.sqrt(2.0 / (1 + a * a)))
            for a in (0.01, 0.1, 0.2, 0.25, 0.5, 1.0)
        ],
    ],
)
def test_quadrature_equals_closed_form_to_1e9(f, closed_form):
    assert numeric_gain(f) == pytest.approx(closed_form, rel=1e-9, abs=0)


def test_second_moment_of_relu_is_one_half_exactly():
    assert second_moment(relu) == pytest.approx(0.5, abs=1e-13)


@pytest.mark.parametrize(
    ("name", "fn"),
    [("gelu", F.gelu), ("silu", F.silu), ("mish", F.mish), ("elu", F.elu), ("celu", F.celu)],
)
def test_numeric_gain_preserves_second_moment_within_1pct_on_1e6_samples(name, fn):
    # Independent check: torch's own activation on 1e6 draws, scaled by initlab's gain.
    z = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    moment = (calculate_gain(name) * fn(z)).pow(2).mean().item()
    assert moment == pytest.approx(1.0, rel=0.01)


@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("gelu", F.gelu),
        ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")),
        ("silu", F.silu),
        ("swish", F.silu),
        ("mish", F.mish),
        ("elu", F.elu),
        ("celu", F.celu),
        ("softplus", F.softplus),
        ("hardswish", F.hardswish),
        ("hardtanh", F.hardtanh),
        ("relu6", F.relu6),
        ("softsign", F.softsign),
    ],
)
def test_named_numeric_gains_match_torch_activations(name, fn):
    """initlab's NumPy activations agree with torch's: same quadrature, same gain."""
    assert calculate_gain(name) == pytest.approx(il_torch.calculate_gain(fn), rel=1e-9)


def test_param_reaches_numeric_activations():
    assert calculate_gain("elu", 0.5) == pytest.approx(
        il_torch.calculate_gain(lambda x: F.elu(x, alpha=0.5)), rel=1e-9
    )
    assert calculate_gain("elu", 0.5) != calculate_gain("elu")


def test_torch_modules_and_functions_are_callables():
    assert il_torch.calculate_gain(torch.nn.ReLU()) == pytest.approx(math.sqrt(2), rel=1e-12)
    assert il_torch.calculate_gain(torch.tanh) == pytest.approx(numeric_gain(np.tanh), rel=1e-12)


def test_classic_tanh_differs_from_numeric_definition_as_documented():
    assert calculate_gain("tanh") == pytest.approx(1.6667, abs=1e-4)
    assert numeric_gain(np.tanh) == pytest.approx(1.5925, abs=1e-4)


def test_every_listed_name_has_a_positive_finite_gain():
    for name in gain_names():
        g = calculate_gain(name)
        assert math.isfinite(g) and g > 0, name


def test_callable_that_cannot_run_on_arrays_gets_clear_type_error():
    def needs_dict(x):
        return x["a"]

    with pytest.raises(TypeError, match=r"nonlinearity=.*could not be evaluated"):
        numeric_gain(needs_dict)


def test_zero_function_has_no_gain():
    with pytest.raises(ValueError, match="second moment"):
        numeric_gain(lambda z: 0.0 * z)
