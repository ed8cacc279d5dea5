"""Every Keras 3 initializer, with its arguments, against Keras itself (torch backend).

initlab.keras.get(name, seed) and keras.initializers.get(name) with a seed are drawn on the same
shapes; their values must agree in distribution (two-sample KS, p > KS_P for each of several
fixed seeds), in std and in bounds; orthogonal kernels must be orthonormal in Keras's
flattening; fixed initializers must be equal.
"""

import math
import os

import numpy as np
import pytest
from scipy import stats

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras (dev extra) is needed for Keras parity tests")

import initlab.keras as ik  # noqa: E402
import initlab.numpy as il_np  # noqa: E402
from initlab.schemes import get_scheme  # noqa: E402
from initlab.spellings import KERAS  # noqa: E402

KS_P = 1e-4
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
SEEDS = (0, 1, 2)
DENSE, CONV = (128, 256), (3, 3, 32, 64)
BIG_DENSE, BIG_CONV = (256, 512), (3, 3, 64, 128)  # the shapes of the figures


def ours(name, shape, seed, **config):
    spec = {"class_name": name, "config": config}
    return keras.ops.convert_to_numpy(ik.get(spec, seed=seed)(shape)).astype(np.float64)


def theirs(name, shape, seed, **config):
    from keras.src.initializers import ALL_OBJECTS_DICT

    cls = ALL_OBJECTS_DICT[name]
    init = cls(**config, seed=seed) if "seed" in _params(cls) else cls(**config)
    return keras.ops.convert_to_numpy(init(shape)).astype(np.float64)


def _params(cls):
    import inspect

    return inspect.signature(cls.__init__).parameters


def test_every_keras_name_maps_to_its_class():
    """Each name keras.initializers.get accepts (classes, snake_case, aliases) is known, and
    maps to the same factory as its class."""
    from keras.src.initializers import ALL_OBJECTS_DICT

    names = {n for n, c in ALL_OBJECTS_DICT.items() if c is not keras.initializers.Initializer}
    assert names == set(KERAS)
    for name in names:
        assert KERAS[name] is KERAS[ALL_OBJECTS_DICT[name].__name__], name


RANDOM_CASES = [
    ("RandomNormal", {"mean": 0.1, "stddev": 0.2}, DENSE),
    ("RandomUniform", {"minval": -0.3, "maxval": 0.1}, DENSE),
    ("TruncatedNormal", {"mean": 0.1, "stddev": 0.2}, DENSE),
    ("GlorotUniform", {}, CONV),
    ("GlorotNormal", {}, CONV),
    ("HeNormal", {}, DENSE),
    ("HeUniform", {}, CONV),
    ("LecunNormal", {}, CONV),
    ("LecunUniform", {}, DENSE),
    ("VarianceScaling", {"scale": 2.0, "distribution": "normal"}, DENSE),
    ("VarianceScaling", {"scale": 0.5, "mode": "fan_out", "distribution": "Normal"}, CONV),
    ("VarianceScaling", {"scale": 3.0, "mode": "fan_avg", "distribution": "UNTRUNCATED_NORMAL"},
     DENSE),
    ("VarianceScaling", {"scale": 1.5, "mode": "fan_avg", "distribution": "uniform"}, CONV),
    ("VarianceScaling", {"mode": "fan_out", "distribution": "truncated_normal"}, DENSE),
    ("VarianceScaling", {"scale": 2.0, "input_axes": [0, 1], "output_axes": [3]}, CONV),
    ("HeNormal", {"input_axes": [0, 1, 2], "output_axes": [3]}, CONV),
    ("GlorotUniform", {}, (500,)),  # Keras: a 1-D shape (n,) has fans (n, n)
    ("HeUniform", {}, (3, 40000)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "config", "shape"), RANDOM_CASES)
def test_random_initializers_match_keras(name, config, shape):
    bound = None
    for seed in SEEDS:
        a, b = ours(name, shape, seed, **config), theirs(name, shape, seed, **config)
        assert a.shape == b.shape == shape
        assert stats.ks_2samp(a.ravel(), b.ravel()).pvalue > KS_P, (name, config, seed)
        assert a.std() == pytest.approx(b.std(), rel=0.03)
        if name in ("RandomUniform", "TruncatedNormal") or "Uniform" in name or (
            config.get("distribution", "truncated_normal").lower() != "untruncated_normal"
            and name != "RandomNormal"
        ):
            # Uniform and truncated draws: initlab's range stays inside Keras's bounds.
            bound = bound or _keras_bounds(name, shape, config)
            assert bound[0] - 1e-6 <= a.min() and a.max() <= bound[1] + 1e-6


def _keras_bounds(name, shape, config):
    """The interval Keras's initializer draws from, from its definition."""
    if name == "RandomUniform":
        return config["minval"], config["maxval"]
    if name == "TruncatedNormal":
        m, s = config["mean"], config["stddev"]
        return m - 2 * s, m + 2 * s
    from keras.src.initializers import ALL_OBJECTS_DICT
    from keras.src.initializers.random_initializers import compute_fans

    init = ALL_OBJECTS_DICT[name](**config)
    fan_in, fan_out = compute_fans(shape, init.input_axes, init.output_axes)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[init.mode]
    var = init.scale / max(1.0, n)
    if init.distribution == "uniform":
        b = math.sqrt(3 * var)
    else:
        b = 2 * math.sqrt(var) / 0.87962566103423978
    return -b, b


def test_keras_normal_is_truncated_and_untruncated_is_plain():
    """The issue's figure: VarianceScaling(2, distribution="normal") on (256, 512) stays within
    +-2 std / 0.88 (0.177), like Keras; "untruncated_normal" reaches beyond it."""
    trunc = ours("VarianceScaling", BIG_DENSE, 0, scale=2.0, distribution="normal")
    plain = ours("VarianceScaling", BIG_DENSE, 0, scale=2.0, distribution="untruncated_normal")
    limit = 2 * math.sqrt(2 / 256) / 0.87962566103423978
    assert np.abs(trunc).max() <= limit + 1e-6
    assert np.abs(plain).max() > 1.5 * limit


@pytest.mark.parametrize("shape", [BIG_CONV, (3, 32, 64), (128, 64), (64, 128), (5, 3, 3, 16, 8)])
def test_orthogonal_matches_keras_flattening(shape):
    cols = shape[-1]
    for seed in SEEDS[:2]:
        a = ours("Orthogonal", shape, seed, gain=2.0).reshape(-1, cols)
        b = theirs("Orthogonal", shape, seed, gain=2.0).reshape(-1, cols)
        gram = (a.T @ a) if a.shape[0] >= cols else (a @ a.T)
        np.testing.assert_allclose(gram, 4.0 * np.eye(min(a.shape)), atol=1e-4)
        assert a.std() == pytest.approx(b.std(), rel=0.01)
        assert stats.ks_2samp(a.ravel(), b.ravel()).pvalue > KS_P
    if shape == BIG_CONV:  # the figure: 2 / sqrt(576) = 0.0833 per element, not 0.0128
        assert a.std() == pytest.approx(2 / math.sqrt(576), rel=0.01)


@pytest.mark.parametrize(
    ("name", "config", "shape"),
    [
        ("Zeros", {}, (3, 4)),
        ("Ones", {}, (2, 3, 4)),
        ("Constant", {"value": 0.3}, (5, 2)),
        ("Identity", {"gain": 2.5}, (3, 5)),
        ("Identity", {}, (4, 2)),
        ("STFT", {}, (64, 1, 33)),
        ("STFT", {"side": "imag", "window": "hamming", "scaling": "spectrum", "periodic": True},
         (32, 1, 17)),
        ("STFT", {"window": None, "scaling": None}, (16, 1, 9)),
    ],
)  # fmt: skip
def test_fixed_initializers_equal_keras(name, config, shape):
    np.testing.assert_allclose(ours(name, shape, 0, **config), theirs(name, shape, 0, **config),
                               atol=1e-5)  # Keras computes in float32  # fmt: skip


@pytest.mark.parametrize("name", ["HeNormal", "GlorotUniform", "VarianceScaling", "Orthogonal",
                                  "RandomNormal", "Zeros"])  # fmt: skip
def test_zero_size_shapes_are_empty_as_in_keras(name):
    for shape in [(0, 5), (3, 0), (2, 0, 4)]:
        assert ours(name, shape, 0).shape == theirs(name, shape, 0).shape == shape


def test_identity_needs_2d_and_errors_name_the_parameter():
    with pytest.raises(ValueError, match="2-D"):
        ik.get("Identity")((2, 2, 2))
    with pytest.raises(ValueError, match="distribution='gaussian'"):
        get_scheme("VarianceScaling(distribution='gaussian')")
    with pytest.raises(ValueError, match="mode='fan_geo_avg'"):
        get_scheme("VarianceScaling(mode='fan_geo_avg')")  # a JAX mode, not Keras's
    with pytest.raises(ValueError, match=r"seed=3.*initlab.keras.get"):
        get_scheme("HeNormal(seed=3)")


def test_numpy_layout_keras_equals_adapter():
    """initlab.keras.get(name, seed=s)(shape) == initlab.numpy.initialize(..., layout="keras")."""
    a = keras.ops.convert_to_numpy(ik.get("he_normal", seed=5)(CONV))
    b = il_np.initialize("keras.he_normal", CONV, seed=5, layout="keras")
    np.testing.assert_array_equal(a, b)
