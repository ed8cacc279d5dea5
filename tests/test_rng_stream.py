"""initlab.rng.Stream and Draw: the interface every initializer draws through."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initlab.fans import compute_fans
from initlab.rng import Draw, Stream, derive_key
from initlab.schemes import get_scheme


def test_stream_is_keyed_by_seed_and_name():
    a = Stream(0, "fc.weight").normal(100)
    assert np.array_equal(a, Stream(0, "fc.weight").normal(100))
    assert not np.array_equal(a, Stream(1, "fc.weight").normal(100))
    assert not np.array_equal(a, Stream(0, "fc.bias").normal(100))
    assert Stream(0, "w").key == derive_key(0, "w")
    assert (
        Stream.from_key(Stream(0, "w").key).normal(7).tolist() == Stream(0, "w").normal(7).tolist()
    )
    assert repr(Stream(3, "x")) == "Stream(seed=3, name='x')"
    assert repr(Stream.from_key(5)) == "Stream.from_key(5)"


@pytest.mark.parametrize("method", ["uniform", "normal", "truncated_normal"])
def test_offsets_and_slices_of_the_stream_api(method):
    s = Stream(4, "slices")
    args = (-1.0, 2.0) if method == "truncated_normal" else ()
    draw = getattr(s, method)
    whole = draw(1000, *args, dtype=np.float32)
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = int(rng.integers(0, 1000))
        b = int(rng.integers(a, 1001))
        assert np.array_equal(draw(b - a, *args, offset=a, dtype=np.float32), whole[a:b])


def test_precisions_and_dtypes():
    s = Stream(0, "p")
    single = s.normal(1000)
    assert single.dtype == np.float64
    assert np.array_equal(single, s.normal(1000, dtype=np.float32).astype(np.float64))
    double = s.normal(1000, precision="double")
    assert not np.array_equal(double, single)
    assert not np.array_equal(double, double.astype(np.float32))  # 53-bit values
    assert s.uniform(5, dtype=np.float16).dtype == np.float16
    with pytest.raises(TypeError, match="dtype='int32'"):
        s.normal(3, dtype=np.int32)
    with pytest.raises(ValueError, match="precision='quad'"):
        s.normal(3, precision="quad")


def test_fill_in_place_any_contiguous_shape():
    s = Stream(0, "fill")
    buf = np.full((4, 5), np.nan, dtype=np.float32)
    out = s.fill(buf, Draw("uniform", loc=-1.0, scale=2.0))
    assert out is buf
    assert np.array_equal(buf.ravel(), (s.uniform(20, dtype=np.float32) * 2 - 1).astype(np.float32))
    const = s.fill(np.empty(3, np.float16), Draw("constant", loc=0.1))
    assert const.tolist() == [np.float16(0.1)] * 3
    bits = s.fill(np.empty(2, np.uint16), Draw("constant", loc=1.0), encoding="bfloat16")
    assert bits.tolist() == [0x3F80, 0x3F80]
    with pytest.raises(ValueError, match="1-D C-contiguous"):
        s.fill(np.empty((4, 4), np.float32)[:, 1], Draw("normal"))
    with pytest.raises(TypeError, match="draw="):
        s.fill(np.empty(3), "normal")


def test_draw_validates_its_fields():
    with pytest.raises(ValueError, match="distribution='gaussian'"):
        Draw("gaussian")
    with pytest.raises(ValueError, match=r"scale=-1\.0"):
        Draw("normal", scale=-1.0)
    with pytest.raises(ValueError, match=r"low=1\.0, high=1\.0"):
        Draw("truncated_normal", low=1.0, high=1.0)
    with pytest.raises(ValueError, match="clip="):
        Draw("normal", clip=(1.0, 0.0))
    assert Draw("truncated_normal", low=-math.inf, high=0.0).high == 0.0


def test_stream_argument_errors_name_the_parameter():
    with pytest.raises(ValueError, match="seed=-1"):
        Stream(-1)
    with pytest.raises(TypeError, match="name=3"):
        Stream(0, 3)
    with pytest.raises(ValueError, match="n=-5"):
        Stream(0).normal(-5)
    with pytest.raises(ValueError, match="offset=-1"):
        Stream(0).normal(5, offset=-1)
    with pytest.raises(ValueError, match=r"a=2\.0, b=1\.0"):
        Stream(0).truncated_normal(5, 2.0, 1.0)
    with pytest.raises(ValueError, match="key="):
        Stream.from_key(2**64)


@pytest.mark.parametrize(
    ("name", "distribution"),
    [
        ("he_normal", "normal"),
        ("he_uniform", "uniform"),
        ("HeNormal", "truncated_normal"),
        ("xavier_uniform", "uniform"),
        ("normal(mean=0.5, std=2.0)", "normal"),
        ("uniform(a=-3.0, b=1.0)", "uniform"),
        ("trunc_normal(std=0.02)", "truncated_normal"),
        ("random", "normal"),
        ("zeros", "constant"),
        ("constant(value=0.3)", "constant"),
    ],
)
def test_elementwise_schemes_state_their_draw(name, distribution):
    scheme = get_scheme(name)
    shape = (64, 32)
    spec = scheme.draw_spec(shape)
    assert spec.distribution == distribution
    # sample() is exactly the Draw's values: one path for NumPy, torch and the kernels.
    values = scheme.sample(shape, Stream(9, "w"))
    assert np.array_equal(values.ravel(), Stream(9, "w").draw(spec, values.size))
    stats = scheme.statistics(compute_fans(shape) if scheme.uses_fans else None)
    if "std" in stats and distribution == "normal":
        assert spec.scale == pytest.approx(stats["std"], rel=1e-12)
    if "bound" in stats:
        assert (spec.loc, spec.loc + spec.scale) == pytest.approx((-stats["bound"], stats["bound"]))


@pytest.mark.parametrize("name", ["orthogonal", "sparse(sparsity=0.5)", "eye", "dirac"])
def test_other_schemes_have_no_draw(name):
    shape = (4, 4) if name != "dirac" else (4, 4, 3)
    assert get_scheme(name).draw_spec(shape) is None


def test_truncated_scheme_draw_matches_keras_convention():
    spec = get_scheme("HeNormal").draw_spec((100, 50))
    std = math.sqrt(2 / 50)
    assert (spec.low, spec.high) == (-2.0, 2.0)
    values = Stream(0, "k").draw(spec, 200_000)
    assert abs(values.std() / std - 1) < 0.01  # drawn std is the scheme's std
    assert np.abs(values).max() <= 2 * spec.scale
