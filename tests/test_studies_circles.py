"""The circles study: the NumPy network is right, and the classic outcomes hold over seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from initlab.numpy import initialize
from initlab.studies import numpy_net
from initlab.studies._torch_init import apply_scheme, build_model
from initlab.studies.circles import make_data, run_circles, torch_circles_net

LN2 = math.log(2)


@pytest.fixture(scope="module")
def quick():
    """The quick study as `initlab demo circles` runs it: 3 NumPy seeds, 1 PyTorch seed."""
    return run_circles(quick=True, seed=0)


def _rows(result, impl, init):
    return [
        r for r in result.data["runs"]
        if r["implementation"] == impl and r["initialization"] == init
    ]  # fmt: skip


def test_quick_runs_every_row_on_three_seeds(quick):
    summary = quick.data["summary"]
    assert set(summary["numpy"]) == {"zeros", "random", "he", "xavier", "small_random"}
    assert all(len(_rows(quick, "numpy", init)) == 3 for init in summary["numpy"])
    assert all(len(_rows(quick, "torch", init)) == 1 for init in summary["torch"])
    for run in quick.data["runs"]:
        assert len(run["costs"]) == 15_000 // 100 + 1


def test_zeros_stays_at_ln2_and_chance(quick):
    for impl in ("numpy", "torch"):
        for run in _rows(quick, impl, "zeros"):
            assert max(abs(c - LN2) for c in run["costs"]) < 1e-3
            assert 0.45 <= run["train_accuracy"] <= 0.55
            assert 0.45 <= run["test_accuracy"] <= 0.55


def test_initlab_init_warns_of_the_symmetry_it_causes(quick):
    (zeros,) = _rows(quick, "torch", "zeros")
    assert any("symmetry" in w and "identical" in w for w in zeros["init_warnings"])
    (he,) = _rows(quick, "torch", "he")
    assert he["init_warnings"] == []


def test_large_random_starts_huge_and_ends_well_below_he(quick):
    random_runs = _rows(quick, "numpy", "random")
    he_runs = _rows(quick, "numpy", "he")
    assert min(r["initial_cost"] for r in random_runs) > 20 * LN2
    assert max(r["initial_cost"] for r in he_runs) < 5 * LN2
    random_acc = np.mean([r["test_accuracy"] for r in random_runs])
    he_acc = np.mean([r["test_accuracy"] for r in he_runs])
    assert random_acc < he_acc - 0.05
    assert np.mean([r["final_cost"] for r in random_runs]) > 2 * np.mean(
        [r["final_cost"] for r in he_runs]
    )


def test_he_reaches_95_percent(quick):
    for impl in ("numpy", "torch"):
        accuracies = [r["test_accuracy"] for r in _rows(quick, impl, "he")]
        assert np.mean(accuracies) >= 0.95
        assert min(accuracies) >= 0.90
    assert all(r["final_cost"] < 0.3 for r in _rows(quick, "numpy", "he"))


def test_small_random_does_not_learn_in_15000_steps(quick):
    for run in _rows(quick, "numpy", "small_random"):
        assert abs(run["final_cost"] - LN2) < 0.01
        assert run["test_accuracy"] < 0.75


def test_pytorch_twin_follows_numpy_where_training_is_smooth(quick):
    pairs = quick.data["numpy_vs_torch"]["pairs"]
    assert {p["initialization"] for p in pairs} == set(quick.data["summary"]["numpy"])
    for pair in pairs:
        if pair["initialization"] != "random":  # chaotic: std-10 weights, huge first steps
            assert pair["max_relative_cost_difference"] < 1e-9
            assert pair["same_test_accuracy"]


def test_numpy_weights_come_from_initlab():
    params = numpy_net.initialize_parameters([2, 10, 5, 1], "random", seed=3)
    expected = initialize("normal(std=10)", (10, 2), seed=3, name="layer1.weight", dtype="float64")
    assert np.array_equal(params["W1"], expected)
    he = numpy_net.initialize_parameters([2, 400, 300, 1], "he", seed=0)["W2"]
    assert abs(he.std() / math.sqrt(2 / 400) - 1) < 0.02
    xavier = numpy_net.initialize_parameters([2, 400, 300, 1], "xavier", seed=0)["W2"]
    assert abs(xavier.std() / math.sqrt(2 / 700) - 1) < 0.02
    assert all(np.all(v == 0) for k, v in params.items() if k.startswith("b"))


def test_numpy_and_torch_start_from_the_same_weights():
    for init in ("he", "random", "xavier"):
        params = numpy_net.initialize_parameters([2, 10, 5, 1], init, seed=7)
        net = build_model(torch_circles_net, seed=7)
        apply_scheme(net, numpy_net.scheme_for(init), seed=7)
        state = net.state_dict()
        for layer in (1, 2, 3):
            assert np.array_equal(state[f"layer{layer}.weight"].numpy(), params[f"W{layer}"])
            assert np.array_equal(state[f"layer{layer}.bias"].numpy(), params[f"b{layer}"][:, 0])


def test_backward_matches_finite_differences():
    X, Y, _, _ = make_data(1)
    X, Y = X[:, :40], Y[:, :40]
    params = numpy_net.initialize_parameters([2, 10, 5, 1], "he", seed=1)
    A, caches = numpy_net.forward_propagation(X, params)
    grads = numpy_net.backward_propagation(Y, A, caches, params)

    def cost() -> float:
        return numpy_net.compute_cost(numpy_net.forward_propagation(X, params)[1][-1][1], Y)

    eps = 1e-6
    for key in params:
        flat = params[key].reshape(-1)
        numeric = np.empty_like(flat)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            up = cost()
            flat[i] = saved - eps
            down = cost()
            flat[i] = saved
            numeric[i] = (up - down) / (2 * eps)
        analytic = grads[f"d{key}"].reshape(-1)
        assert np.allclose(analytic, numeric, rtol=1e-5, atol=1e-8), key


def test_zeros_gives_every_hidden_unit_the_same_zero_gradient():
    X, Y, _, _ = make_data(0)
    params = numpy_net.initialize_parameters([2, 10, 5, 1], "zeros")
    A, caches = numpy_net.forward_propagation(X, params)
    grads = numpy_net.backward_propagation(Y, A, caches, params)
    for layer in (1, 2, 3):
        assert not np.any(grads[f"dW{layer}"])
    assert abs(float(grads["db3"][0, 0])) < 1e-12  # balanced classes: sigmoid(0) - y averages 0


def test_cost_is_finite_when_the_sigmoid_saturates():
    z = np.array([[800.0, -800.0]])
    assert numpy_net.compute_cost(z, np.array([[0.0, 1.0]])) == pytest.approx(800.0)
    probs, _ = numpy_net.forward_propagation(np.ones((1, 1)), {"W1": np.full((1, 1), 900.0),
                                                               "b1": np.zeros((1, 1))})  # fmt: skip
    assert np.isfinite(probs).all()


def test_pytorch_net_matches_numpy_forward():
    X, _, _, _ = make_data(2)
    params = numpy_net.initialize_parameters([2, 10, 5, 1], "he", seed=2)
    net = build_model(torch_circles_net, seed=2)
    apply_scheme(net, "he_normal", seed=2)
    with torch.no_grad():
        logits = net(torch.from_numpy(np.ascontiguousarray(X.T)))[:, 0].numpy()
    z = numpy_net.forward_propagation(X, params)[1][-1][1][0]
    assert np.allclose(logits, z, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"initialization": "hee"}, "initialization='hee'"),
        ({"initialization": 3}, "initialization=3"),
        ({"learning_rate": -1.0}, "learning_rate=-1.0"),
        ({"num_iterations": 1.5}, "num_iterations=1.5"),
    ],
)
def test_model_rejects_bad_arguments(kwargs, message):
    X, Y, _, _ = make_data(0)
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        numpy_net.model(X, Y, [2, 3, 1], **{"num_iterations": 1, **kwargs})


def test_run_circles_rejects_bad_arguments():
    with pytest.raises(ValueError, match="seed=-1"):
        run_circles(seed=-1)
    with pytest.raises(ValueError, match="initialization='heh'"):
        run_circles(initializations=("heh",))
