r"""A fully connected network in plain NumPy, written the way a course writes it.

``[n_x, n_1, ..., n_{L-1}, 1]`` units: ReLU on every hidden layer, a sigmoid on the output,
the binary cross-entropy cost, full-batch gradient descent. Everything is spelled out:
forward pass, cost, backward pass, update. Only the *initial* weights come from initlab
(:func:`initlab.numpy.initialize`), picked by the ``initialization=`` argument, the switch of
the classic exercise:

==================  =============================  =========================================
initialization      initlab scheme                 weights of layer l (biases are zeros)
==================  =============================  =========================================
``"zeros"``         ``zeros``                      0
``"random"``        ``normal(std=10)``             N(0, 10^2): the classic *large* random
``"he"``            ``he_normal``                  N(0, 2 / n_{l-1})
``"xavier"``        ``xavier_normal``              N(0, 2 / (n_{l-1} + n_l))
``"small_random"``  ``random(std=0.01)``           N(0, 0.01^2)
==================  =============================  =========================================

Any other initlab scheme name (``"lecun_normal"``, ``"he_uniform"``, ...) is accepted too.

Shapes follow the course: ``X`` is ``(n_x, m)`` (one column per example), ``W{l}`` is
``(n_l, n_{l-1})``, which is also PyTorch's ``(out, in)`` layout, so the fans are read the
same way. The stream of ``W{l}`` is named ``"layer{l}.weight"``: the PyTorch twin of this
network (:func:`initlab.studies.circles.torch_circles_net`) names its parameters the same,
so under the same seed both start from bit-identical weights.

>>> X = np.array([[0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
>>> Y = np.array([[0.0, 1.0, 1.0, 1.0]])  # logical OR
>>> params, costs = model(X, Y, [2, 4, 1], learning_rate=0.5, num_iterations=2000, seed=1)
>>> predict(X, params).tolist(), bool(costs[-1] < 0.1)
([[0, 1, 1, 1]], True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from initlab._validation import check_int, check_real
from initlab.numpy import initialize

__all__ = [
    "INITIALIZATIONS",
    "backward_propagation",
    "compute_cost",
    "forward_propagation",
    "initialize_parameters",
    "model",
    "predict",
    "scheme_for",
    "update_parameters",
]

#: The ``initialization=`` switch: short name -> initlab scheme of the weights.
INITIALIZATIONS: dict[str, str] = {
    "zeros": "zeros",
    "random": "normal(std=10)",
    "he": "he_normal",
    "xavier": "xavier_normal",
    "small_random": "random(std=0.01)",
}

Parameters = dict[str, np.ndarray]


def scheme_for(initialization: str) -> str:
    """The initlab scheme an ``initialization=`` value stands for.

    A short name of :data:`INITIALIZATIONS` maps to its scheme; any other string is taken
    as an initlab scheme name and checked by the registry.

    >>> scheme_for("random"), scheme_for("lecun_normal")
    ('normal(std=10)', 'lecun_normal')
    """
    if not isinstance(initialization, str):
        raise TypeError(
            f"initialization={initialization!r} is not valid; allowed: one of "
            f"{sorted(INITIALIZATIONS)} or an initlab scheme name."
        )
    if initialization in INITIALIZATIONS:
        return INITIALIZATIONS[initialization]
    from initlab.schemes import get_scheme

    try:
        get_scheme(initialization)
    except ValueError as error:
        raise ValueError(
            f"initialization={initialization!r} is not valid; allowed: one of "
            f"{sorted(INITIALIZATIONS)} or an initlab scheme name ({error})"
        ) from None
    return initialization


def initialize_parameters(
    layer_dims: Sequence[int], initialization: str = "he", *, seed: int = 0
) -> Parameters:
    """``{"W1": ..., "b1": ..., ...}``: weights from initlab, biases zero (float64).

    ``W{l}`` has shape ``(layer_dims[l], layer_dims[l-1])`` and comes from
    ``initialize(scheme, shape, seed=seed, name=f"layer{l}.weight")``.

    >>> p = initialize_parameters([2, 10, 5, 1], "he", seed=0)
    >>> p["W1"].shape, p["b2"].shape, float(p["b3"][0, 0])
    ((10, 2), (5, 1), 0.0)
    >>> bool(np.all(initialize_parameters([2, 3, 1], "zeros")["W1"] == 0))
    True
    """
    dims = [check_int(f"layer_dims[{i}]", d, minimum=1) for i, d in enumerate(layer_dims)]
    if len(dims) < 2:
        raise ValueError(f"layer_dims={list(layer_dims)!r} is not valid; allowed: >= 2 sizes.")
    scheme = scheme_for(initialization)
    parameters: Parameters = {}
    for layer in range(1, len(dims)):
        shape = (dims[layer], dims[layer - 1])
        parameters[f"W{layer}"] = initialize(
            scheme, shape, seed=seed, name=f"layer{layer}.weight", dtype=np.float64
        )
        parameters[f"b{layer}"] = np.zeros((dims[layer], 1))
    return parameters


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow for |z| in the hundreds.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def forward_propagation(
    X: np.ndarray, parameters: Parameters
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Output probabilities ``A_L`` (shape ``(1, m)``) and per-layer caches ``(A_prev, Z)``.

    ``Z_l = W_l A_{l-1} + b_l``; ``A_l = relu(Z_l)`` for hidden layers, ``sigmoid(Z_L)``
    for the last.

    >>> A, caches = forward_propagation(np.ones((2, 3)), initialize_parameters([2, 4, 1]))
    >>> A.shape, len(caches)
    ((1, 3), 2)
    """
    L = len(parameters) // 2
    A = X
    caches = []
    for layer in range(1, L + 1):
        Z = parameters[f"W{layer}"] @ A + parameters[f"b{layer}"]
        caches.append((A, Z))
        A = _sigmoid(Z) if layer == L else np.maximum(Z, 0.0)
    return A, caches


def compute_cost(Z_L: np.ndarray, Y: np.ndarray) -> float:
    r"""Binary cross-entropy ``-mean(y log a + (1 - y) log(1 - a))``, ``a = sigmoid(Z_L)``.

    Computed from the logits ``Z_L`` as ``mean(softplus(z) - y z)``, which is the same
    number but stays finite when the sigmoid saturates: with ``std=10`` weights the first
    cost is in the tens, where ``log(1 - a)`` of a rounded ``a = 1.0`` would be ``inf``.

    >>> round(compute_cost(np.zeros((1, 4)), np.array([[0, 1, 0, 1]])), 6)  # ln 2
    0.693147
    """
    z = np.asarray(Z_L, dtype=np.float64)
    softplus = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    return float(np.mean(softplus - Y * z))


def backward_propagation(
    Y: np.ndarray, A_L: np.ndarray, caches: list[tuple[np.ndarray, np.ndarray]],
    parameters: Parameters,
) -> Parameters:  # fmt: skip
    """Gradients ``{"dW1": ..., "db1": ..., ...}`` of :func:`compute_cost`.

    ``dZ_L = A_L - Y`` (sigmoid + cross-entropy); going down,
    ``dW_l = dZ_l A_{l-1}^T / m``, ``db_l = mean(dZ_l)``,
    ``dZ_{l-1} = (W_l^T dZ_l) * 1[Z_{l-1} > 0]``.
    """
    m = Y.shape[1]
    L = len(caches)
    grads: Parameters = {}
    dZ = A_L - Y
    for layer in range(L, 0, -1):
        A_prev, _ = caches[layer - 1]
        grads[f"dW{layer}"] = dZ @ A_prev.T / m
        grads[f"db{layer}"] = np.sum(dZ, axis=1, keepdims=True) / m
        if layer > 1:
            Z_prev = caches[layer - 2][1]
            dZ = (parameters[f"W{layer}"].T @ dZ) * (Z_prev > 0)
    return grads


def update_parameters(
    parameters: Parameters, grads: Parameters, learning_rate: float
) -> Parameters:
    """One gradient-descent step: ``W_l -= lr * dW_l``, ``b_l -= lr * db_l`` (in place)."""
    for key in parameters:
        parameters[key] -= learning_rate * grads[f"d{key}"]
    return parameters


def model(
    X: np.ndarray,
    Y: np.ndarray,
    layer_dims: Sequence[int],
    *,
    learning_rate: float = 0.01,
    num_iterations: int = 15_000,
    initialization: str = "he",
    seed: int = 0,
    record_every: int = 100,
    callback: Callable[[int, float], None] | None = None,
) -> tuple[Parameters, list[float]]:
    """Train by full-batch gradient descent; returns the parameters and the cost curve.

    The cost is recorded before iteration 0 and after every ``record_every`` iterations
    (so ``costs[k]`` is the cost after ``k * record_every`` steps) and after the last.
    ``callback(iteration, cost)`` is called at each record (progress bars use it).
    """
    learning_rate = check_real("learning_rate", learning_rate, minimum=0.0, strict_minimum=True)
    num_iterations = check_int("num_iterations", num_iterations, minimum=0)
    record_every = check_int("record_every", record_every, minimum=1)
    parameters = initialize_parameters(layer_dims, initialization, seed=seed)
    costs: list[float] = []
    for i in range(num_iterations + 1):
        A_L, caches = forward_propagation(X, parameters)
        if i % record_every == 0 or i == num_iterations:
            costs.append(compute_cost(caches[-1][1], Y))
            if callback is not None:
                callback(i, costs[-1])
        if i == num_iterations:
            break
        grads = backward_propagation(Y, A_L, caches, parameters)
        update_parameters(parameters, grads, learning_rate)
    return parameters, costs


def predict(X: np.ndarray, parameters: Parameters) -> np.ndarray:
    """Class predictions ``(1, m)``: 1 where the output probability is above 0.5.

    >>> predict(np.ones((2, 3)), initialize_parameters([2, 4, 1], "zeros")).tolist()
    [[0, 0, 0]]
    """
    A_L, _ = forward_propagation(X, parameters)
    return (A_L > 0.5).astype(int)
