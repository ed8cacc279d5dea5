"""Keras and JAX spellings without the frameworks: each mismatch of issue 15, from the
definitions (the parity tests against the libraries are test_parity_keras/jax.py)."""

import math

import numpy as np
import pytest

from initlab.fans import FanAxes, Fans, keras_fans
from initlab.numpy import initialize
from initlab.schemes import get_scheme


def draw(name, shape, layout, seed=0):
    return initialize(name, shape, seed=seed, layout=layout, dtype="float64")


@pytest.mark.parametrize("name", ["keras.orthogonal", "Orthogonal", "jax.orthogonal"])
def test_orthogonal_flattens_keras_and_jax_kernels_against_the_last_axis(name):
    w = draw(name, (3, 3, 64, 128), "keras").reshape(-1, 128)
    np.testing.assert_allclose(w.T @ w, np.eye(128), atol=1e-10)
    assert w.std() == pytest.approx(1 / math.sqrt(576), rel=0.01)  # 0.0417, not 0.0064
    t = draw(name, (128, 64, 3, 3), "torch").reshape(128, -1)  # torch layout: torch's way
    np.testing.assert_allclose(t @ t.T, np.eye(128), atol=1e-10)


def test_jax_orthogonal_scale_and_column_axis():
    w = draw("jax.orthogonal(scale=2.0, column_axis=0)", (16, 4, 8), "jax")
    m = np.moveaxis(w, 0, -1).reshape(-1, 16)
    np.testing.assert_allclose(m.T @ m, 4 * np.eye(16), atol=1e-10)


@pytest.mark.parametrize("shape", [(3, 3, 64, 128), (3, 32, 64), (3, 3, 3, 8, 16)])
def test_jax_delta_orthogonal_on_jax_kernels(shape):
    w = draw("jax.delta_orthogonal", shape, "jax")
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    block = w[centre]
    np.testing.assert_allclose(block @ block.T, np.eye(shape[-2]), atol=1e-10)
    assert np.count_nonzero(w) == shape[-2] * shape[-1]  # 8192 on (3, 3, 64, 128), not 9


def test_keras_variance_scaling_distributions():
    fan_in = 256
    limit = 2 * math.sqrt(2 / fan_in) / 0.87962566103423978
    for spelled in ("normal", "Normal", "TRUNCATED_NORMAL"):
        w = draw(f"VarianceScaling(scale=2.0, distribution={spelled!r})", (256, 512), "keras")
        assert np.abs(w).max() <= limit  # +-0.20, not +-0.39
        assert w.std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    plain = draw("keras.VarianceScaling(2.0, distribution='untruncated_normal')", (256, 512),
                 "keras")  # fmt: skip
    assert np.abs(plain).max() > limit
    assert get_scheme("jax.variance_scaling(2.0, 'fan_in', 'normal')").distribution == "normal"


def test_fan_geo_avg_axes_tuples_and_batch_axis():
    s = get_scheme("jax.variance_scaling(1.0, 'fan_geo_avg', 'normal')")
    assert s.std(Fans(4, 9)) == pytest.approx(1 / math.sqrt(6))
    tuples = get_scheme("jax.he_normal(in_axis=(0, 1), out_axis=(2,))")
    assert tuples.axes.fans((3, 5, 7)) == Fans(15, 7)
    batch = get_scheme("jax.lecun_uniform(batch_axis=0)")
    assert batch.fans_for((4, 8, 16)) == Fans(8, 16)
    keras = get_scheme("HeUniform(input_axes=(0, 1), output_axes=(2, 3))")
    assert keras.fans_for((3, 3, 8, 16)) == Fans(9, 128)
    assert FanAxes("keras", (0,), (1,)).fans((2, 5)) == Fans(2, 5)


def test_keras_fans_of_small_shapes_and_zero_sizes():
    assert keras_fans((7,)) == Fans(7, 7) and keras_fans(()) == Fans(1, 1)
    w = draw("GlorotUniform", (600,), "keras")
    assert np.abs(w).max() <= math.sqrt(6 / 1200)  # fans (600, 600)
    assert draw("HeNormal", (0, 5), "keras").shape == (0, 5)
    assert draw("keras.orthogonal", (3, 0), "keras").shape == (3, 0)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        draw("he_normal", (5,), "keras")  # initlab's (torch's) he_normal keeps torch's rule


def test_identity_gain_and_names_round_trip():
    np.testing.assert_array_equal(draw("Identity(gain=2.5)", (2, 3), "keras"),
                                  2.5 * np.eye(2, 3))  # fmt: skip
    for name in ("HeNormal(input_axes=[0], output_axes=[1])", "jax.he_normal(batch_axis=0)",
                 "keras.VarianceScaling(distribution='untruncated_normal')",
                 "jax.orthogonal(column_axis=0)", "Identity(gain=2.0)"):  # fmt: skip
        s = get_scheme(name)
        assert get_scheme(s.name) == s
