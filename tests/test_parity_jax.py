"""Every jax.nn.initializers function, with its arguments, against JAX itself (CPU).

initlab.jax.get(name, ...) and jax.nn.initializers.name(...) are drawn on the same shapes with
several fixed keys; their values must agree in distribution (two-sample KS, p > KS_P), in std
and in bounds; orthogonal kernels must be orthonormal in JAX's flattening (column_axis);
delta-orthogonal kernels must have an orthogonal (in, out) centre tap.
"""

import math

import numpy as np
import pytest
from scipy import stats

jax = pytest.importorskip("jax", reason="JAX (dev extra) is needed for the JAX parity tests")

import jax.numpy as jnp  # noqa: E402

import initlab.jax as ij  # noqa: E402
import initlab.numpy as il_np  # noqa: E402
from initlab.schemes import get_scheme  # noqa: E402
from initlab.spellings import JAX  # noqa: E402

KS_P = 1e-4
KEYS = (0, 1, 2)
DENSE, CONV = (128, 256), (3, 3, 32, 64)
BIG_CONV = (3, 3, 64, 128)  # the shape of the figures
JI = jax.nn.initializers


def draw(factory_args, name, shape, key, dtype=None):
    args, kwargs = factory_args
    if name in ("zeros", "ones"):
        theirs_init, ours_init = getattr(JI, name), ij.get(name)
    else:
        theirs_init = getattr(JI, name)(*args, **kwargs)
        ours_init = ij.get(name, *args, **kwargs)
    k = jax.random.key(key)
    a = np.asarray(ours_init(k, shape, dtype) if dtype else ours_init(k, shape), np.float64)
    b = np.asarray(theirs_init(k, shape, dtype) if dtype else theirs_init(k, shape), np.float64)
    return a, b


def test_every_jax_name_is_known():
    public = {n for n in dir(JI) if not n.startswith("_") and n != "Initializer"}
    assert public == set(JAX)


RANDOM_CASES = [
    ("uniform", ((), {"scale": 0.5}), DENSE),
    ("uniform", ((-0.2,), {}), DENSE),
    ("normal", ((0.2,), {}), DENSE),
    ("truncated_normal", ((0.2,), {"lower": -1.0, "upper": 3.0}), DENSE),
    ("truncated_normal", ((), {}), CONV),
    ("variance_scaling", ((2.0, "fan_in", "normal"), {}), DENSE),
    ("variance_scaling", ((2.0, "fan_geo_avg", "uniform"), {}), CONV),
    ("variance_scaling", ((0.5, "fan_out", "truncated_normal"), {}), CONV),
    ("variance_scaling", ((1.0, "fan_avg", "normal"), {"in_axis": (0, 1), "out_axis": -1}),
     (8, 8, 32, 16)),
    ("variance_scaling", ((1.0, "fan_in", "uniform"), {"in_axis": -2, "out_axis": -1,
                                                        "batch_axis": 0}), (8, 64, 32)),
    ("glorot_uniform", ((), {}), CONV),
    ("glorot_normal", ((), {}), DENSE),
    ("xavier_uniform", ((), {}), DENSE),
    ("xavier_normal", ((), {"in_axis": 0, "out_axis": 1}), (32, 64, 3)),
    ("lecun_uniform", ((), {}), CONV),
    ("lecun_normal", ((), {}), DENSE),
    ("he_uniform", ((), {}), DENSE),
    ("he_normal", ((), {}), CONV),
    ("kaiming_uniform", ((), {}), CONV),
    ("kaiming_normal", ((), {"batch_axis": (0,)}), (4, 64, 128)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "factory_args", "shape"), RANDOM_CASES)
def test_random_initializers_match_jax(name, factory_args, shape):
    for key in KEYS:
        a, b = draw(factory_args, name, shape, key)
        assert a.shape == b.shape == shape
        assert stats.ks_2samp(a.ravel(), b.ravel()).pvalue > KS_P, (name, factory_args, key)
        assert a.std() == pytest.approx(b.std(), rel=0.03)
        if "uniform" in name or "truncated" in name or "truncated" in str(factory_args) or (
            name.endswith("_normal") and name != "normal"
        ):
            # Bounded draws: initlab's range within JAX's (JAX's sample nearly reaches it).
            lo, hi = b.min(), b.max()
            slack = 0.02 * (hi - lo)
            assert lo - slack <= a.min() and a.max() <= hi + slack


@pytest.mark.parametrize("shape", [CONV, (3, 32, 64), (96, 48), (48, 96)])
@pytest.mark.parametrize("column_axis", [-1, 0])
def test_orthogonal_matches_jax_flattening(shape, column_axis):
    for key in KEYS[:2]:
        a, b = draw(((), {"scale": 2.0, "column_axis": column_axis}), "orthogonal", shape, key)
        m = np.moveaxis(a, column_axis, -1).reshape(-1, shape[column_axis])
        gram = (m.T @ m) if m.shape[0] >= m.shape[1] else (m @ m.T)
        np.testing.assert_allclose(gram, 4.0 * np.eye(min(m.shape)), atol=1e-4)
        assert a.std() == pytest.approx(b.std(), rel=0.01)
        assert stats.ks_2samp(a.ravel(), b.ravel()).pvalue > KS_P


@pytest.mark.parametrize("shape", [BIG_CONV, (3, 32, 64), (3, 3, 3, 16, 32), (4, 8, 8)])
def test_delta_orthogonal_matches_jax(shape):
    """The issue's figure: on (3, 3, 64, 128) a 64x128 orthogonal block at the centre tap,
    nothing else; (3, 32, 64) works (1-D convolution); even kernels centre at (k - 1) // 2."""
    a, b = draw(((), {"scale": 1.5}), "delta_orthogonal", shape, 0)
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    block = a[centre]
    np.testing.assert_allclose(block @ block.T, 2.25 * np.eye(shape[-2]), atol=1e-4)
    assert np.count_nonzero(a) == np.count_nonzero(block) == np.count_nonzero(b)
    assert np.count_nonzero(block) == shape[-2] * shape[-1]
    assert stats.ks_2samp(block.ravel(), b[centre].ravel()).pvalue > KS_P


def test_delta_orthogonal_needs_out_at_least_in():
    with pytest.raises(ValueError, match="out_channels >= in_channels"):
        ij.get("delta_orthogonal")(jax.random.key(0), (3, 3, 64, 32))


@pytest.mark.parametrize(
    ("name", "args"), [("zeros", ()), ("ones", ()), ("constant", (0.3,)), ("constant", (-2,))]
)
def test_constants_equal_jax(name, args):
    a, b = draw((args, {}), name, (3, 4, 5), 0)
    np.testing.assert_array_equal(a, b)


def test_dtypes_like_jax():
    for dtype in (jnp.bfloat16, jnp.float16, jnp.float32):
        w = ij.get("he_normal")(jax.random.key(0), (64, 32), dtype)
        assert w.dtype == JI.he_normal()(jax.random.key(0), (64, 32), dtype).dtype
    w = ij.get("normal", 0.5, jnp.bfloat16)(jax.random.key(0), (8, 8))
    assert w.dtype == jnp.bfloat16
    with pytest.raises(TypeError, match="dtype='int32'"):
        ij.get("he_normal")(jax.random.key(0), (4, 4), jnp.int32)


def test_zero_size_and_1d_shapes_fail_as_in_jax():
    with pytest.raises(ValueError):
        ij.get("he_normal")(jax.random.key(0), (5,))
    with pytest.raises(ValueError):
        ij.get("he_normal", in_axis=0, out_axis=1)(jax.random.key(0), (0, 5))
    assert ij.get("orthogonal")(jax.random.key(0), (0, 5)).shape == (0, 5)


def test_key_maps_to_initlab_seed_and_is_pure():
    """get(name)(jax.random.key(s), shape) == initlab.numpy.initialize(..., seed=s,
    layout="jax"); the same key gives the same values, also under jit and vmap."""
    init = ij.get("glorot_normal")
    w = np.asarray(init(jax.random.key(11), CONV))
    np.testing.assert_array_equal(
        w, il_np.initialize("jax.glorot_normal", CONV, seed=11, layout="jax")
    )
    jitted = jax.jit(init, static_argnums=(1,))
    np.testing.assert_array_equal(np.asarray(jitted(jax.random.key(11), CONV)), w)
    keys = jax.random.split(jax.random.key(3), 3)
    batch = np.asarray(jax.vmap(lambda k: init(k, (16, 8)))(keys))
    for i in range(3):
        np.testing.assert_array_equal(batch[i], np.asarray(init(keys[i], (16, 8))))
    assert not np.array_equal(batch[0], batch[1])
    np.testing.assert_array_equal(np.asarray(init(jax.random.PRNGKey(11), CONV)), w)


def test_registry_spellings_and_errors():
    s = get_scheme("jax.variance_scaling(2.0, 'fan_geo_avg', 'normal', in_axis=(0, 1))")
    assert s.mode == "fan_geo_avg" and s.distribution == "normal"
    assert get_scheme(s.name) == s  # the name round-trips
    assert get_scheme("jax.orthogonal(scale=2.0, column_axis=0)").column_axis == 0
    with pytest.raises(ValueError, match="distribution='Normal'"):
        get_scheme("jax.variance_scaling(1.0, 'fan_in', 'Normal')")  # JAX is case-sensitive
    with pytest.raises(ValueError, match=r"dtype='float16'.*initlab.jax.get"):
        get_scheme("jax.normal(0.1, 'float16')")
    assert math.isclose(get_scheme("jax.truncated_normal(0.1)").b, 0.2)
