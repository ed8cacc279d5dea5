"""The propagation study: measured std curves against the mean-field theory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initlab.studies.propagation import ACTIVATIONS, SCHEMES, run_propagation, theory


@pytest.fixture(scope="module")
def relu_wide():
    """ReLU at depth 100, width 512 (the full study's width), 3 seeds."""
    return run_propagation(
        activations=("relu",), schemes=("he", "xavier"), width=512, batch=32, seeds=3
    ).data["results"]["relu"]


@pytest.fixture(scope="module")
def quick():
    """The quick study as `initlab demo propagation` runs it."""
    return run_propagation(quick=True)


def test_he_keeps_relu_activations_and_gradients_within_a_factor_2(relu_wide):
    he = relu_wide["he"]["measured"]
    for key in ("activation_std", "gradient_std"):
        curve = np.asarray(he[key])
        ratio = curve / curve[0] if key == "activation_std" else curve / curve[-1]
        assert 0.5 < ratio.min() and ratio.max() < 2.0, key


def test_xavier_and_small_random_vanish_with_relu_as_predicted(relu_wide, quick):
    xavier = relu_wide["xavier"]["measured"]
    random = quick.data["results"]["relu"]["random"]["measured"]
    assert xavier["forward_ratio"] < 1e-12 and xavier["backward_ratio"] < 1e-12
    assert random["forward_ratio"] < 1e-60 and random["backward_ratio"] < 1e-60
    # He et al.'s product: each ReLU layer halves the variance under Var[w] = 1/n.
    predicted = 0.5 ** (99 / 2)
    assert abs(math.log(xavier["forward_ratio"] / predicted)) < math.log(3)
    assert abs(math.log(xavier["backward_ratio"] / predicted)) < math.log(3)


def test_every_cell_follows_the_theory(quick):
    results = quick.data["results"]
    assert set(results) == set(ACTIVATIONS)
    for activation, rows in results.items():
        assert set(rows) == set(SCHEMES)
        for scheme, row in rows.items():
            for key in ("forward_ratio", "backward_ratio"):
                measured, predicted = row["measured"][key], row["theory"][key]
                assert measured > 0 and predicted > 0, (activation, scheme, key)
                # Values range over 200 decades; finite width (256) moves them by < 20x.
                assert abs(math.log10(measured / predicted)) < math.log10(20), (
                    activation, scheme, key, measured, predicted,
                )  # fmt: skip


def test_per_layer_curves_follow_the_theory(quick):
    for activation in ("relu", "tanh", "selu"):
        for scheme in ("xavier", "torch_default"):
            row = quick.data["results"][activation][scheme]
            measured = np.asarray(row["measured"]["activation_std"])
            predicted = np.asarray(row["theory"]["activation_std"])
            assert np.max(np.abs(np.log10(measured / predicted))) < 1.0, (activation, scheme)


def test_prelu_under_relus_he_grows_as_its_gain_says(quick):
    # He with ReLU's gain before PReLU(0.25): variance x (1 + 0.25^2) per layer.
    ratio = quick.data["results"]["prelu"]["he"]["measured"]["forward_ratio"]
    assert abs(math.log(ratio / (1 + 0.25**2) ** (99 / 2))) < math.log(3)


def test_auto_matches_each_activations_gain(quick):
    results = quick.data["results"]
    width = quick.config["width"]
    assert results["relu"]["auto"]["weight_std"] == pytest.approx(math.sqrt(2 / width))
    assert results["prelu"]["auto"]["weight_std"] == pytest.approx(
        math.sqrt(2 / (1 + 0.25**2) / width)
    )
    assert results["selu"]["auto"]["weight_std"] == pytest.approx(math.sqrt(1 / width))
    # The ReLU family and SELU keep their scale through 100 layers under auto...
    for activation in ("relu", "leaky_relu", "prelu", "selu"):
        ratio = results[activation]["auto"]["measured"]["forward_ratio"]
        assert 0.5 < ratio < 2.0, activation
    # ...where He's ReLU gain before PReLU(0.25) grows 20x, as its gain says.
    assert results["prelu"]["he"]["measured"]["forward_ratio"] > 8


def test_relu_theory_is_he_product_formula():
    n, depth = 64, 30
    for scheme, var_w in (("he_normal", 2 / n), ("xavier_normal", 1 / n), ("random", 1e-4)):
        curve = theory("relu", scheme, depth=depth, width=n)["activation_std"]
        for layer in range(depth):
            expected = curve[0] * (n * var_w / 2) ** (layer / 2)
            assert curve[layer] == pytest.approx(expected, rel=1e-9)


def test_leaky_theory_and_selu_fixed_point():
    n = 100
    curve = theory("leaky_relu", "he_normal", depth=11, width=n)["activation_std"]
    assert curve[-1] / curve[0] == pytest.approx((1 + 0.01**2) ** 5, rel=1e-9)
    selu = theory("selu", "lecun_normal", depth=50, width=n)["activation_std"]
    assert selu[-1] == pytest.approx(1.0, abs=1e-3)  # self-normalizing: q = 1 is a fixed point


def test_torch_default_theory_counts_the_biases():
    with_bias = theory("relu", "torch_default", depth=40, width=64)["activation_std"]
    # Weights alone would shrink the variance by 1/6 per layer; biases stop it at a floor.
    floor = math.sqrt((1 / (3 * 64)) / (1 - 1 / 6))
    assert with_bias[-1] == pytest.approx(floor, rel=1e-6)


def test_run_propagation_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"activation='rleu'.*Did you mean 'relu'"):
        run_propagation(activations=("rleu",))
    with pytest.raises(ValueError, match="depth=1"):
        run_propagation(depth=1)
    with pytest.raises(ValueError, match="scheme='orthogonal'"):
        run_propagation(schemes=("orthogonal",))
