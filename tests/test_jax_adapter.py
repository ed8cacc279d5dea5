"""initlab.jax: a JAX MLP whose kernels come from initlab.jax initializers trains; registry
schemes work as JAX initializers; the initializers are flax-shaped (key, shape, dtype)."""

import itertools

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX (dev extra) is needed for initlab.jax")

import jax.numpy as jnp  # noqa: E402

import initlab.jax as ij  # noqa: E402


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split((x / 16.0).astype("float32"), y, test_size=0.3, random_state=0)


def _mlp(key, sizes, kernel_init):
    params = []
    keys = jax.random.split(key, len(sizes) - 1)
    for k, (n_in, n_out) in zip(keys, itertools.pairwise(sizes), strict=True):
        params.append((kernel_init(k, (n_in, n_out), jnp.float32), jnp.zeros(n_out)))
    return params


def _logits(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def _loss(params, x, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(_logits(params, x)), y[:, None], 1))


def test_jax_mlp_with_initlab_initializers_trains():
    x_train, x_test, y_train, y_test = (jnp.asarray(a) for a in _digits())
    params = _mlp(jax.random.key(0), [64, 128, 128, 10], ij.get("he_normal"))
    # He: the std of each hidden kernel is sqrt(2 / fan_in).
    assert float(params[1][0].std()) == pytest.approx((2 / 128) ** 0.5, rel=0.05)
    step = jax.jit(lambda p, x, y: jax.tree.map(
        lambda w, g: w - 0.5 * g, p, jax.grad(_loss)(p, x, y)))  # fmt: skip
    first = float(_loss(params, x_train, y_train))
    for _ in range(150):
        params = step(params, x_train, y_train)
    assert float(_loss(params, x_train, y_train)) < 0.2 * first
    accuracy = float(jnp.mean(jnp.argmax(_logits(params, x_test), 1) == y_test))
    assert accuracy > 0.9


def test_registry_scheme_and_scheme_objects_as_jax_initializers():
    from initlab.schemes import Orthogonal

    w = ij.get("kaiming_uniform_(mode=fan_out)")(jax.random.key(1), (3, 3, 8, 16))  # torch's
    assert float(jnp.abs(w).max()) <= (6 / (9 * 16)) ** 0.5  # fans read in JAX's layout
    q = np.asarray(ij.get(Orthogonal(2.0))(jax.random.key(1), (3, 3, 8, 16))).reshape(-1, 16)
    np.testing.assert_allclose(q.T @ q, 4 * np.eye(16), atol=1e-4)  # JAX's flattening
    a = ij.get("he_normal(in_axis=0, out_axis=1)")(jax.random.key(2), (16, 8, 3))
    b = ij.get("he_normal", in_axis=0, out_axis=1)(jax.random.key(2), (16, 8, 3))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # a JAX name with arguments
    with pytest.raises(TypeError, match="positional arguments"):
        ij.get("kaiming_uniform_(mode=fan_out)", 2.0)
    with pytest.raises(TypeError, match="allowed: \\['scale', 'column_axis', 'dtype'\\]"):
        ij.get("orthogonal", gain=2.0)
