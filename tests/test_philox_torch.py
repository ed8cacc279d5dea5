"""The torch backend (initlab.torch.philox) against the numba kernels: the same bits.

On the CPU here (CI has no GPU): ``backend="torch"`` and ``backend="numba"`` must agree bitwise
for every distribution in float32, bfloat16, float16 and float64 (single precision), at
offsets that start mid-tile and far into the stream, across chunk boundaries; the fills'
moments must be the sums of what was stored. The CUDA tests run where a GPU exists and skip
cleanly elsewhere.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from initlab.rng import Draw, Moments, Stream, philox4x32
from initlab.torch import philox
from initlab.torch.fill import draw_, fill_, resolve_backend

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
DRAWS = [
    Draw("uniform", loc=-0.3, scale=0.6),
    Draw("normal", loc=0.01, scale=0.02),
    Draw("truncated_normal", scale=0.02, low=-2.0, high=2.0, clip=(-0.04, 0.04)),
    Draw("truncated_normal", low=0.5, high=4.0),
    # centred, the quantile's tail piece beyond 2.9 std: a few values per tile, written by
    # the numba kernel after its vectorized loop
    Draw("truncated_normal", low=-6.0, high=6.0),
    Draw("truncated_normal", low=-math.inf, high=-2.5),
    Draw("truncated_normal", low=3.0, high=6.0),
]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view({8: torch.int64, 4: torch.int32, 2: torch.int16}[t.element_size()])


def test_philox_words_known_answers_and_numpy_reference():
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 1 << 62, size=500, dtype=np.int64)
    key = 0x1234_5678_9ABC_DEF0
    counters = np.zeros((blocks.size, 4), dtype=np.uint32)
    counters[:, 0], counters[:, 1] = blocks & 0xFFFFFFFF, blocks >> 32
    expected = philox4x32(counters, key)
    words = philox.philox_words(torch.from_numpy(blocks), key)
    got = np.stack([w.numpy() for w in words], axis=1).astype(np.uint32)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("draw", DRAWS, ids=lambda d: f"{d.distribution}{d.low},{d.high}")
def test_torch_backend_is_bitwise_the_numba_kernel(draw, dtype):
    stream = Stream(7, "layer.weight")
    for n, offset in ((40_003, 0), (20_011, 12_345), (5_000, 2**40 + 77)):
        a = draw_(torch.empty(n, dtype=dtype), draw, stream, offset=offset, backend="numba")
        b = draw_(torch.empty(n, dtype=dtype), draw, stream, offset=offset, backend="torch")
        assert torch.equal(_bits(a), _bits(b)), (n, offset)


def test_chunk_boundaries_do_not_show(monkeypatch):
    monkeypatch.setitem(philox.CHUNK_TILES, "cpu", 3)  # chunks of 3 tiles: many boundaries
    for draw in DRAWS[:3]:
        whole = draw_(torch.empty(10_000), draw, Stream(1), offset=999, backend="numba")
        parts = draw_(torch.empty(10_000), draw, Stream(1), offset=999, backend="torch")
        assert torch.equal(whole, parts)


def test_fill_schemes_and_layouts_agree_between_backends():
    for scheme in ("he_normal", "xavier_uniform", "trunc_normal(std=0.02)", "lecun_normal"):
        for dtype in (torch.float32, torch.bfloat16):
            a = fill_(torch.empty(96, 64, dtype=dtype), scheme, seed=3, name="w", backend="numba")
            b = fill_(torch.empty(96, 64, dtype=dtype), scheme, seed=3, name="w", backend="torch")
            assert torch.equal(a, b), (scheme, dtype)
    # a non-contiguous tensor gets its row-major element order, either way
    a = fill_(torch.empty(64, 96).t(), "he_normal", seed=3, name="w", backend="numba")
    b = fill_(torch.empty(64, 96).t(), "he_normal", seed=3, name="w", backend="torch")
    assert torch.equal(a, b) and not a.is_contiguous()
    assert torch.equal(a, fill_(torch.empty(96, 64), "he_normal", seed=3, name="w"))


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_moments_are_the_sums_of_what_was_stored(backend, dtype):
    for draw in (*DRAWS[:3], Draw("constant", loc=0.1)):
        t = torch.empty(70_001, dtype=dtype)
        m = Moments()
        draw_(t, draw, Stream(2, "w"), offset=5, backend=backend, moments=m)
        values = t.double()
        assert m.count == t.numel()
        # the kernels add float32 partial sums (at most five values a lane) in float64
        scale = math.sqrt(float(values.square().sum()))
        assert m.total == pytest.approx(float(values.sum()), abs=1e-6 * scale + 1e-12)
        assert m.squares == pytest.approx(float(values.square().sum()), rel=1e-6)
        var, mean = torch.var_mean(values, correction=0)
        assert m.std == pytest.approx(float(var.sqrt()), rel=1e-6, abs=1e-12)
        assert m.mean == pytest.approx(float(mean), abs=1e-6 * float(var.sqrt()) + 1e-12)


def test_moments_do_not_depend_on_the_thread_count():
    results = []
    for threads in (1, 2, 3):
        m = Moments()
        Stream(4).fill(np.empty(3_000_000, np.float32), Draw("normal"), threads=threads, moments=m)
        results.append((m.count, m.total, m.squares))
    assert results[0] == results[1] == results[2]


def test_fill_moments_for_sampled_schemes():
    m = Moments()
    w = fill_(torch.empty(32, 16), "orthogonal", seed=0, name="q", moments=m)
    assert m.count == w.numel() and m.total == pytest.approx(float(w.double().sum()))


def test_backend_choice_and_errors():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_backend("auto", cpu, Draw("normal"), "single") == "numba"
    assert resolve_backend("auto", gpu, Draw("normal"), "single") == "torch"
    assert resolve_backend("auto", gpu, Draw("normal"), "double") == "numba"
    far = Draw("truncated_normal", low=15.0, high=16.0)  # needs the double-precision kernel
    assert resolve_backend("auto", gpu, far, "single") == "numba"
    with pytest.raises(ValueError, match="backend='torch' is not valid"):
        resolve_backend("torch", cpu, far, "single")
    with pytest.raises(ValueError, match="backend"):
        fill_(torch.empty(3, 3), "he_normal", seed=0, backend="cuda")
    with pytest.raises(ValueError, match="precision"):
        fill_(torch.empty(4, 4), "he_normal", seed=0, backend="torch", precision="double")


@CUDA
@pytest.mark.parametrize("dtype", DTYPES[:3], ids=str)
def test_cuda_fill_is_bitwise_the_cpu_fill(dtype):
    for draw in DRAWS:
        cpu = draw_(torch.empty(1 << 20, dtype=dtype), draw, Stream(9, "w"), offset=333)
        gpu = draw_(torch.empty(1 << 20, dtype=dtype, device="cuda"), draw, Stream(9, "w"),
                    offset=333)  # fmt: skip
        assert torch.equal(_bits(cpu), _bits(gpu.cpu())), draw


@CUDA
def test_cuda_fill_schemes_match_cpu():
    for scheme in ("he_normal", "he_uniform", "trunc_normal(std=0.02)"):
        cpu = fill_(torch.empty(512, 384), scheme, seed=1, name="w")
        gpu = fill_(torch.empty(512, 384, device="cuda"), scheme, seed=1, name="w")
        assert torch.equal(cpu, gpu.cpu()), scheme


def test_stored_half_values_are_decoded_exactly():
    from initlab.fastrng import _kernels

    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    with np.errstate(invalid="ignore"):  # the NaN patterns
        cases = (
            (bits.view(np.int16), bits.view(np.float16).astype(np.float64)),
            (bits, (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)),
        )
    for view, numpy_value in cases:
        got = np.array([_kernels.stored_value(view[i : i + 1]) for i in range(0, 1 << 16, 7)])
        expected = numpy_value[::7]
        assert np.array_equal(got, expected, equal_nan=True)
