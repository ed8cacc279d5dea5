"""Schemes: the variance-scaling core against its formula, Keras/JAX, and scipy's distributions;
the registry's spellings and its errors."""

import math

import numpy as np
import pytest
from scipy import stats

import initlab.numpy as il_np
from initlab.fans import Fans, compute_fans
from initlab.rng import Stream
from initlab.schemes import (
    VarianceScaling,
    get_scheme,
    scheme_names,
    truncated_std_factor,
)

KS_P = 1e-4  # a correct sampler fails this by chance once in 10,000 seeds


def test_truncated_std_factor_equals_keras_and_scipy():
    # Keras and JAX hard-code .87962566103423978 for the std of N(0,1) truncated to [-2, 2].
    assert truncated_std_factor() == pytest.approx(0.87962566103423978, rel=1e-15)
    assert truncated_std_factor() == pytest.approx(stats.truncnorm(-2, 2).std(), rel=1e-12)


@pytest.mark.parametrize(
    ("name", "scale", "mode", "distribution"),
    [
        ("he_normal", 2.0, "fan_in", "normal"),
        ("kaiming_normal_", 2.0, "fan_in", "normal"),
        ("he", 2.0, "fan_in", "normal"),
        ("HeNormal", 2.0, "fan_in", "truncated_normal"),
        ("keras.he_normal", 2.0, "fan_in", "truncated_normal"),
        ("jax.he_normal", 2.0, "fan_in", "truncated_normal"),
        ("he_uniform", 2.0, "fan_in", "uniform"),
        ("HeUniform", 2.0, "fan_in", "uniform"),
        ("xavier_normal", 1.0, "fan_avg", "normal"),
        ("xavier", 1.0, "fan_avg", "normal"),
        ("glorot_uniform", 1.0, "fan_avg", "uniform"),
        ("GlorotNormal", 1.0, "fan_avg", "truncated_normal"),
        ("jax.glorot_normal", 1.0, "fan_avg", "truncated_normal"),
        ("lecun_normal", 1.0, "fan_in", "normal"),
        ("LecunNormal", 1.0, "fan_in", "truncated_normal"),
        ("lecun_uniform", 1.0, "fan_in", "uniform"),
        ("variance_scaling", 1.0, "fan_in", "truncated_normal"),
        (
            'variance_scaling(scale=2, mode="fan_out", distribution="uniform")',
            2,
            "fan_out",
            "uniform",
        ),
        ("he_uniform(mode=fan_out)", 2.0, "fan_out", "uniform"),
        ("he_normal(distribution=truncated_normal)", 2.0, "fan_in", "truncated_normal"),
        ("he_normal(a=0.2, nonlinearity='leaky_relu')", 2 / 1.04, "fan_in", "normal"),
    ],
)
def test_registry_states_exact_scale_mode_distribution(name, scale, mode, distribution):
    s = get_scheme(name)
    assert isinstance(s, VarianceScaling)
    assert (s.scale, s.mode, s.distribution) == (
        pytest.approx(scale, rel=1e-14),
        mode,
        distribution,
    )


def test_keyword_overrides_and_case_and_trailing_underscore():
    assert get_scheme("he_normal", mode="fan_out").mode == "fan_out"
    assert get_scheme("XAVIER_UNIFORM_").distribution == "uniform"


@pytest.mark.parametrize("shape", [(64, 32), (16, 8, 3, 3), (5, 7, 2), (128, 1)])
def test_std_equals_formula(shape):
    fans = compute_fans(shape)
    fi, fo = fans
    assert get_scheme("he_normal").statistics(fans)["std"] == pytest.approx(
        math.sqrt(2 / fi), rel=1e-14
    )
    assert get_scheme("xavier_normal").statistics(fans)["std"] == pytest.approx(
        math.sqrt(2 / (fi + fo)), rel=1e-14
    )
    assert get_scheme("xavier_uniform").statistics(fans)["bound"] == pytest.approx(
        math.sqrt(6 / (fi + fo)), rel=1e-14
    )
    assert get_scheme("he_uniform(mode=fan_out)").statistics(fans)["bound"] == pytest.approx(
        math.sqrt(6 / fo), rel=1e-14
    )
    assert get_scheme("lecun_normal").statistics(fans)["std"] == pytest.approx(
        math.sqrt(1 / fi), rel=1e-14
    )


def test_keras_truncated_parent_std():
    # Keras/JAX he_normal: truncated normal with stddev = sqrt(2 / fan_in) / .87962566103423978.
    fans = Fans(288, 576)
    s = get_scheme("HeNormal")
    parent = s.std(fans) / truncated_std_factor()
    assert parent == pytest.approx(math.sqrt(2 / 288) / 0.87962566103423978, rel=1e-14)


def draw(name, shape=(400, 500), seed=3):
    return il_np.initialize(name, shape, seed=seed, dtype="float64")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_variance_scaling_distributions(seed):
    fans = compute_fans((400, 500))
    he = draw("he_normal", seed=seed).ravel()
    assert stats.kstest(he, stats.norm(0, math.sqrt(2 / 500)).cdf).pvalue > KS_P
    xu = draw("xavier_uniform", seed=seed).ravel()
    b = math.sqrt(6 / 900)
    assert stats.kstest(xu, stats.uniform(-b, 2 * b).cdf).pvalue > KS_P
    keras = draw("HeNormal", seed=seed).ravel()
    parent = get_scheme("HeNormal").std(fans) / truncated_std_factor()
    ref = stats.truncnorm(-2, 2, scale=parent)
    assert stats.kstest(keras, ref.cdf).pvalue > KS_P
    assert keras.std() == pytest.approx(math.sqrt(2 / 500), rel=0.01)


def test_ks_fails_for_the_wrong_distribution():
    """The KS checks above can fail: the same draw against a 5% wider normal is rejected."""
    he = draw("he_normal").ravel()
    assert stats.kstest(he, stats.norm(0, 1.05 * math.sqrt(2 / 500)).cdf).pvalue < KS_P


@pytest.mark.parametrize("seed", [0, 1])
def test_ks_absolute_schemes(seed):
    t = draw("trunc_normal(mean=0.1, std=0.5, a=-0.3, b=1.0)", (200_000,), seed).ravel()
    ref = stats.truncnorm((-0.3 - 0.1) / 0.5, (1.0 - 0.1) / 0.5, loc=0.1, scale=0.5)
    assert stats.kstest(t, ref.cdf).pvalue > KS_P
    assert t.min() >= -0.3 and t.max() <= 1.0
    # No pile-up at the bounds: no value sits exactly on them.
    assert not np.any(t == -0.3) and not np.any(t == 1.0)
    r = draw("random", (100_000,), seed)
    assert stats.kstest(r, stats.norm(0, 0.01).cdf).pvalue > KS_P
    u = draw("uniform(a=-2, b=3)", (100_000,), seed)
    assert stats.kstest(u, stats.uniform(-2, 5).cdf).pvalue > KS_P


def test_far_tail_truncation_is_exact():
    t = draw("trunc_normal(a=3, b=4)", (50_000,)).ravel()
    assert stats.kstest(t, stats.truncnorm(3, 4).cdf).pvalue > KS_P


def test_orthogonal_square_tall_wide():
    for shape in [(64, 64), (100, 30), (30, 100), (16, 4, 3, 3)]:
        w = draw("orthogonal(gain=2.0)", shape).reshape(shape[0], -1)
        rows, cols = w.shape
        gram = w @ w.T if rows <= cols else w.T @ w
        np.testing.assert_allclose(gram, 4.0 * np.eye(min(rows, cols)), atol=1e-10)


def test_constant_eye_dirac_sparse():
    assert np.all(draw("zeros", (3, 4)) == 0)
    assert np.all(draw("constant(0.25)", (3, 4)) == 0.25)
    np.testing.assert_array_equal(draw("eye", (3, 4)), np.eye(3, 4))
    d = draw("dirac(groups=2)", (4, 2, 3, 3))
    assert d.sum() == 4 and d[0, 0, 1, 1] == d[1, 1, 1, 1] == d[2, 0, 1, 1] == d[3, 1, 1, 1] == 1
    s = draw("sparse(sparsity=0.25, std=0.5)", (40, 30))
    assert np.all((s == 0).sum(axis=0) == 10)
    assert stats.kstest(s[s != 0], stats.norm(0, 0.5).cdf).pvalue > KS_P


def test_values_depend_on_seed_and_name_only():
    a = il_np.initialize("he_normal", (8, 8), seed=1, name="a")
    np.testing.assert_array_equal(a, il_np.initialize("he_normal", (8, 8), seed=1, name="a"))
    assert not np.array_equal(a, il_np.initialize("he_normal", (8, 8), seed=2, name="a"))
    assert not np.array_equal(a, il_np.initialize("he_normal", (8, 8), seed=1, name="b"))


def test_numpy_dtypes_and_layouts():
    for dtype in ("float16", "float32", "float64"):
        assert il_np.initialize("he_uniform", (4, 5), dtype=dtype).dtype == np.dtype(dtype)
    keras = il_np.initialize("he_uniform", (3, 3, 16, 32), layout="keras")
    assert np.abs(keras).max() <= math.sqrt(6 / (16 * 9))
    with pytest.raises(TypeError, match=r"dtype='int32'.*allowed"):
        il_np.initialize("zeros", (2, 2), dtype="int32")


def test_unknown_scheme_lists_names_and_suggests_closest():
    with pytest.raises(ValueError) as info:
        get_scheme("xavier_unifrom")
    message = str(info.value)
    assert "scheme='xavier_unifrom'" in message
    assert "Did you mean 'xavier_uniform'" in message
    assert "'he_normal'" in message  # the valid names are listed


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("he_normal(mode=fan_avgg)", r"mode='fan_avgg'.*Did you mean 'fan_avg'"),
        ("variance_scaling(distribution=gaussian)", r"distribution='gaussian'"),
        ("normal(std=-1)", r"std=-1.*>= 0"),
        ("he_normal(a=True, nonlinearity='leaky_relu')", r"negative_slope True"),
        ("he_normal(foo=1)", r"unknown argument.*foo"),
        ("he_normal(mode=__import__('os'))", r"not a literal"),
        ("he_normal(", r"not valid"),
        ("uniform(a=2, b=1)", r"a <= b"),
        ("variance_scaling(scale=0)", r"scale=0"),
    ],
)
def test_bad_arguments_are_value_errors_naming_the_parameter(spec, pattern):
    with pytest.raises(ValueError, match=pattern):
        get_scheme(spec)


def test_scheme_of_wrong_type():
    with pytest.raises(TypeError, match="scheme=3"):
        get_scheme(3)


def test_too_few_dims_for_fan_schemes():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        get_scheme("he_normal").sample((5,), Stream(0))


def test_every_name_resolves():
    # JAX's constant(value) and variance_scaling(scale, mode, distribution) need arguments.
    needed = {"jax.constant": "(0.5)", "jax.variance_scaling": "(1.0, 'fan_in', 'normal')"}
    for name in scheme_names():
        if name in needed:
            with pytest.raises(ValueError, match="missing"):
                get_scheme(name)
        scheme = get_scheme(name + needed.get(name, ""))
        assert scheme.formula()
        assert get_scheme(scheme.name).name == scheme.name  # the canonical name round-trips
