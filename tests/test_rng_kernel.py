"""The compiled generator against independent references: Philox known answers, the
documented layout of values, the elementary-function polynomials, the half-precision
encoders, thread-count and slice invariance, and a fresh process."""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import special
from tests.conftest import SRC

from initlab import fastrng, rng_constants
from initlab.fastrng import _kernels, quantile_fit
from initlab.fastrng import threads as threads_module
from initlab.fastrng.truncation import plan_truncation
from initlab.rng import Stream, philox4x32

LANES = _kernels.LANES

# Random123's known-answer vectors for Philox4x32-10: (counter words, key, output words).
KAT = [
    ((0, 0, 0, 0), 0, (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, 0xFFFFFFFFFFFFFFFF, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0x299F31D0 << 32) | 0xA4093822,
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_philox_known_answers(counter, key, expected):
    c = np.array([counter], dtype=np.uint32)
    assert tuple(int(w) for w in philox4x32(c, key)[0]) == expected  # NumPy reference
    assert tuple(int(w) for w in fastrng.philox4x32(c, key)[0]) == expected  # compiled


def test_compiled_philox_equals_reference():
    rng = np.random.default_rng(0)
    counters = rng.integers(0, 2**32, size=(2000, 4), dtype=np.uint64).astype(np.uint32)
    for key in (0, 1, 2**64 - 1, int(rng.integers(0, 2**63))):
        assert np.array_equal(fastrng.philox4x32(counters, key), philox4x32(counters, key))


def _words(key: int, blocks: np.ndarray) -> np.ndarray:
    """Philox words of blocks (counter = (lo, hi, 0, 0)) by the NumPy reference, as float64."""
    counters = np.zeros((blocks.size, 4), dtype=np.uint32)
    counters[:, 0] = blocks & 0xFFFFFFFF
    counters[:, 1] = blocks >> 32
    return philox4x32(counters, key).astype(np.float64)


def _element_to_block(index: np.ndarray, per_block: int) -> tuple[np.ndarray, np.ndarray]:
    """Documented layout: element i -> (block, row j) in tiles of LANES blocks."""
    tile, within = np.divmod(index, per_block * LANES)
    row, lane = np.divmod(within, LANES)
    return tile * LANES + lane, row


def test_layout_uniform_exact():
    """Single: rows 0-3 (w_j >> 8) 2^-24, row 4 the low bytes of w0, w1, w2; double:
    (w_2j:w_2j+1 >> 11) 2^-53; as documented."""
    key, first, n = 0x1234_5678_9ABC_DEF0, 1000, 3000
    index = np.arange(first, first + n, dtype=np.uint64)
    block, row = _element_to_block(index, 5)
    words = _words(key, block).astype(np.uint64)
    top = (words[np.arange(n), np.minimum(row, 3)] >> np.uint64(8)).astype(np.float64)
    low = words & np.uint64(0xFF)
    low = (low[:, 0] | (low[:, 1] << np.uint64(8)) | (low[:, 2] << np.uint64(16))).astype(float)
    expected = np.where(row == 4, low, top) * 2.0**-24
    got = fastrng.fill(np.empty(n, np.float32), "uniform", key, offset=first)
    assert np.array_equal(got, expected.astype(np.float32))
    block, row = _element_to_block(index, 2)
    w = _words(key, block).astype(np.uint64)
    hi, lo = w[np.arange(n), 2 * row], w[np.arange(n), 2 * row + 1]
    bits53 = ((hi << np.uint64(32)) | lo) >> np.uint64(11)
    got = fastrng.fill(np.empty(n), "uniform", key, offset=first, precision="double")
    assert np.array_equal(got, bits53.astype(np.float64) * 2.0**-53)


def _box_muller_single(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 Box-Muller of 32-bit words as the single kernel defines it."""
    u1 = (a.astype(np.float64) + 0.5) * 2.0**-32
    v = b >> np.uint64(8)
    k = (v + np.uint64(1 << 21)) >> np.uint64(22)
    x = (v.astype(np.int64) - (k << np.uint64(22)).astype(np.int64) + 0.5) * 2.0**-22
    theta = 0.5 * np.pi * (k.astype(np.float64) + x)
    r = np.sqrt(-2.0 * np.log(u1))
    return r * np.cos(theta), r * np.sin(theta)


def _box_muller_double(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 Box-Muller of 64-bit words as the double kernel defines it."""
    u1 = (a >> np.uint64(11)).astype(np.float64) * 2.0**-53 + 2.0**-54
    v = b >> np.uint64(11)
    k = (v + np.uint64(1 << 50)) >> np.uint64(51)
    x = ((v.astype(np.int64) - (k << np.uint64(51)).astype(np.int64)) + 0.5) * 2.0**-51
    theta = 0.5 * np.pi * (k.astype(np.float64) + x)
    r = np.sqrt(-2.0 * np.log(u1))
    return r * np.cos(theta), r * np.sin(theta)


def test_layout_and_accuracy_normal():
    """Kernel normals equal float64 Box-Muller of the same words, to a few float32 ulp
    (single) and to 1e-13 (double): the layout, the log and the sine/cosine polynomials."""
    key, first, n = 987654321, 77, 5000
    index = np.arange(first, first + n, dtype=np.uint64)
    rows = np.arange(n)
    block, row = _element_to_block(index, 4)
    w = _words(key, block).astype(np.uint64)
    pair = row // 2
    c, s = _box_muller_single(w[rows, 2 * pair], w[rows, 2 * pair + 1])
    expected = np.where(row % 2 == 0, c, s)
    got = fastrng.fill(np.empty(n, np.float32), "normal", key, offset=first)
    assert np.max(np.abs(got - expected) / np.spacing(np.abs(expected).astype(np.float32))) < 8
    block, row = _element_to_block(index, 2)
    w = _words(key, block).astype(np.uint64)
    a = (w[:, 0] << np.uint64(32)) | w[:, 1]
    b = (w[:, 2] << np.uint64(32)) | w[:, 3]
    c, s = _box_muller_double(a, b)
    got = fastrng.fill(np.empty(n), "normal", key, offset=first, precision="double")
    assert np.allclose(got, np.where(row == 0, c, s), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize(
    ("low", "high"),
    [(-2.0, 2.0), (-0.3, 0.1), (0.5, 3.0), (1.5, 2.5), (-np.inf, -3.0), (4.0, np.inf), (9.0, 9.5)],
)
def test_truncated_equals_scipy_inverse_cdf(low, high):
    """The truncated normal is Phi^{-1}(Phi(a) + u (Phi(b) - Phi(a))) of the stream's uniform."""
    key, n = 42, 4000
    for precision, dtype, rtol in (("single", np.float32, 4e-6), ("double", np.float64, 1e-11)):
        if precision == "single":  # one word per value, 4 per block (the uniform has 5)
            block, row = _element_to_block(np.arange(n, dtype=np.uint64), 4)
            w = _words(key, block).astype(np.uint64)[np.arange(n), row]
            u = (w >> np.uint64(8)).astype(np.float64) * 2.0**-24
        else:
            u = fastrng.fill(np.empty(n), "uniform", key, precision=precision)
        plan = plan_truncation(low, high, precision)
        if plan.centred:
            q = plan.c0 + u * plan.c1
            expected = special.ndtri(0.5 + q)
        else:
            t = plan.c0 + u * plan.c1
            expected = plan.sign * -special.ndtri(t)
        got = fastrng.fill(np.empty(n, dtype), "truncated_normal", key, low=low, high=high,
                           precision=precision)  # fmt: skip
        assert got.min() >= low and got.max() <= high
        assert np.allclose(got, expected, rtol=rtol, atol=rtol), (precision, low, high)


def test_far_tail_goes_to_double_precision_and_beyond_refused():
    z = fastrng.fill(np.empty(1000, np.float32), "truncated_normal", 1, low=20.0, high=21.0)
    assert z.min() >= 20.0 and z.max() <= 21.0
    assert plan_truncation(20.0, 21.0, "single").precision == "double"
    with pytest.raises(ValueError, match="high=41"):
        fastrng.fill(np.empty(3, np.float32), "truncated_normal", 1, low=40.0, high=41.0)


def test_quantile_constants_are_accurate():
    """The coefficients written in _kernels reach the fit's accuracy on the fit's intervals.

    The accuracy is tested, not the coefficients: a refit with another LAPACK gives other
    digits (the least-squares solve is ill-conditioned in the monomial basis) of equal quality.
    """
    limits = {"single": 2e-8, "double": 5e-14}
    for precision in ("single", "double"):
        written = []
        for piece in quantile_fit.fit_pieces(precision):
            mid, half, coeffs = getattr(rng_constants, quantile_fit.constant_name(precision, piece))
            assert mid == pytest.approx(piece.mid, rel=1e-12)
            assert half == pytest.approx(piece.half, rel=1e-12)
            written.append(quantile_fit.Piece(piece.name, mid - half, mid + half, tuple(coeffs)))
            assert quantile_fit.amplification(written[-1]) < 3.0
        assert quantile_fit.max_relative_error(written) < limits[precision]


def test_half_encoders_round_like_numpy_and_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200_000).astype(np.float32)
    x *= np.float32(10.0) ** rng.integers(-9, 6, x.size).astype(np.float32)
    edge = np.array([0, 65504, 65519.99, 65520, 1e6, 2**-14, 2**-24, 2**-25, 2**-26, 1.0, 0.1],
                    dtype=np.float32)  # fmt: skip
    x = np.concatenate([x, edge, -edge, np.nextafter(edge, np.float32(np.inf))])
    f16 = np.empty(x.size, np.int16)
    _kernels.encode_half(x, f16)
    with np.errstate(over="ignore"):
        assert np.array_equal(f16, x.astype(np.float16).view(np.int16))
    bf16 = np.empty(x.size, np.uint16)
    _kernels.encode_half(x, bf16)
    expected = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(bf16, expected)


@pytest.mark.parametrize("distribution", ["uniform", "normal", "truncated_normal"])
@pytest.mark.parametrize("precision", ["single", "double"])
def test_bitwise_identical_with_1_and_2_threads(distribution, precision):
    n = fastrng.PARALLEL_MIN * 2 + 12_345  # large enough to be shared between threads
    kw = {"low": -2.0, "high": 2.0} if distribution == "truncated_normal" else {}
    out = {}
    for threads in (1, 2, 3):
        out[threads] = fastrng.fill(np.empty(n, np.float32), distribution, 99, offset=777,
                                    threads=threads, precision=precision, **kw)  # fmt: skip
    assert np.array_equal(out[1].view(np.uint32), out[2].view(np.uint32))
    assert np.array_equal(out[1].view(np.uint32), out[3].view(np.uint32))


def test_chunked_runner_covers_every_element_once_whatever_the_split():
    for first, n, chunk, threads in [(0, 10, 4, 2), (3, 1000, 64, 3), (5, 7, 64, 2), (0, 0, 8, 2)]:
        hits = np.zeros(n, dtype=np.int64)

        def work(part, start, hits=hits, first=first, chunk=chunk):
            hits[start - first : start - first + part.size] += 1
            assert part.size <= chunk

        threads_module.run_chunked(work, np.empty(n), first, threads, chunk=chunk)
        assert (hits == 1).all()
    with pytest.raises(ZeroDivisionError):
        threads_module.run_chunked(lambda part, start: 1 / 0, np.empty(100), 0, 2, chunk=10)


def test_pool_is_recreated_in_a_forked_child(monkeypatch):
    monkeypatch.setitem(threads_module._POOL, "pid", -1)  # as if created by another process
    executor = threads_module._executor(1)
    assert threads_module._POOL["pid"] == os.getpid()
    assert executor is threads_module._POOL["executor"]


def test_fill_works_in_a_forked_child():
    """A child forked after parallel fills (its parent's pool threads gone) still fills."""
    n = fastrng.PARALLEL_MIN * 2
    parent = fastrng.fill(np.empty(n, np.float32), "normal", 3, threads=2)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        digest = pool.apply_async(_child_digest, (n,)).get(timeout=120)
    assert digest == _digest(parent)


def _child_digest(n: int) -> str:
    return _digest(fastrng.fill(np.empty(n, np.float32), "normal", 3, threads=2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("distribution", ["uniform", "normal", "truncated_normal"])
@pytest.mark.parametrize("precision", ["single", "double"])
def test_slice_invariance_on_random_slices(dtype, distribution, precision):
    rng = np.random.default_rng(hash((distribution, precision, np.dtype(dtype).name)) % 2**32)
    kw = {"low": -1.0, "high": 3.0} if distribution == "truncated_normal" else {}
    total = 5000
    whole = fastrng.fill(np.empty(total, dtype), distribution, 5, precision=precision, **kw)
    for _ in range(40):
        a = int(rng.integers(0, total))
        b = int(rng.integers(a, total + 1))
        part = fastrng.fill(np.empty(b - a, dtype), distribution, 5, offset=a,
                            precision=precision, **kw)  # fmt: skip
        assert np.array_equal(part, whole[a:b]), (a, b)
    # A large slice far into the stream, through the parallel kernel.
    offset = 2**40 + 3
    big = fastrng.fill(np.empty(fastrng.PARALLEL_MIN + 1000, dtype), distribution, 5,
                       offset=offset, precision=precision, **kw)  # fmt: skip
    tail = fastrng.fill(np.empty(300, dtype), distribution, 5, offset=offset + 900,
                        precision=precision, **kw)  # fmt: skip
    assert np.array_equal(big[900:1200], tail)


def test_single_precision_values_do_not_depend_on_dtype():
    f32 = fastrng.fill(np.empty(4099, np.float32), "normal", 8, offset=3)
    f64 = fastrng.fill(np.empty(4099, np.float64), "normal", 8, offset=3)
    f16 = fastrng.fill(np.empty(4099, np.float16), "normal", 8, offset=3)
    bf16 = fastrng.fill(np.empty(4099, np.uint16), "normal", 8, offset=3, encoding="bfloat16")
    assert np.array_equal(f64, f32.astype(np.float64))
    assert np.array_equal(f16, f32.astype(np.float16))
    as_torch = torch.from_numpy(f32).to(torch.bfloat16).view(torch.int16).numpy()
    assert np.array_equal(bf16.view(np.int16), as_torch)


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(values.tobytes()).hexdigest()


def test_same_values_in_a_fresh_process():
    code = (
        "import hashlib, numpy as np\n"
        "from initlab.rng import Stream\n"
        "s = Stream(2024, 'blocks.0.attn.weight')\n"
        "for v in (s.normal(300001, dtype=np.float32), s.uniform(1001, precision='double'),\n"
        "          s.truncated_normal(5003, -2.0, 2.0, dtype=np.float32)):\n"
        "    print(hashlib.sha256(v.tobytes()).hexdigest())\n"
    )
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "NUMBA_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=600, check=True)  # fmt: skip
    s = Stream(2024, "blocks.0.attn.weight")
    here = [
        _digest(s.normal(300001, dtype=np.float32)),
        _digest(s.uniform(1001, precision="double")),
        _digest(s.truncated_normal(5003, -2.0, 2.0, dtype=np.float32)),
    ]
    assert result.stdout.split() == here


def test_bad_buffers_name_the_parameter():
    with pytest.raises(TypeError, match=r"out\.dtype='int32'"):
        fastrng.fill(np.empty(3, np.int32), "normal", 1)
    with pytest.raises(ValueError, match="1-D C-contiguous"):
        fastrng.fill(np.empty((3, 3), np.float32)[:, 0], "normal", 1)
    with pytest.raises(TypeError, match="encoding='bfloat16'"):
        fastrng.fill(np.empty(3, np.float32), "normal", 1, encoding="bfloat16")
    with pytest.raises(ValueError, match="distribution='gauss'"):
        fastrng.fill(np.empty(3, np.float32), "gauss", 1)
    with pytest.raises(ValueError, match="precision='half'"):
        fastrng.fill(np.empty(3, np.float32), "normal", 1, precision="half")
    with pytest.raises(ValueError, match="key=-1"):
        fastrng.fill(np.empty(3, np.float32), "normal", -1)
    with pytest.raises(ValueError, match=r"scale=-1\.0"):
        fastrng.fill(np.empty(3, np.float32), "normal", 1, scale=-1.0)
    with pytest.raises(ValueError, match=r"low=2\.0, high=1\.0"):
        fastrng.fill(np.empty(3, np.float32), "truncated_normal", 1, low=2.0, high=1.0)
    assert math.isfinite(float(fastrng.fill(np.empty(1), "normal", 2**64 - 1)[0]))


def test_kernels_ask_for_wide_vectors():
    """``_wide_vectors`` marks the function that calls it with LLVM's prefer-vector-width
    attribute (512-bit registers where the CPU has them; the same values either way)."""
    from numba import njit

    @njit
    def marked(x):
        _kernels._wide_vectors()
        return x + 1

    assert marked(1) == 2
    (ir,) = marked.inspect_llvm().values()
    assert '"prefer-vector-width"="512"' in ir


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.float64])
def test_the_sum_pass_loads_rows_and_adds_what_was_stored(dtype):
    """``_accumulate`` reads its rows as slices: indexed ``out[j + lane]``, an index LLVM
    cannot prove non-negative, the vectorized loop gathered every value one by one (4x
    slower). Its sums are those of the stored values (bfloat16 decoded), whatever the start
    and length."""
    from numba import njit

    @njit(error_model="numpy")
    def sums(out, a, b, partial):
        acc = (np.zeros(64), np.zeros(64), np.zeros(64, partial), np.zeros(64, partial))
        _kernels._accumulate(out, a, b, acc)
        return acc[0].sum(), acc[1].sum()

    values = np.random.default_rng(0).standard_normal(3000).astype(np.float32)
    if dtype == np.uint16:  # bfloat16 bits (truncated), and the values they hold
        out = (values.view(np.uint32) >> 16).astype(np.uint16)
        stored = (out.astype(np.uint32) << 16).view(np.float32)
    else:
        out = stored = values.astype(dtype)
    partial = np.float64 if dtype == np.float64 else np.float32
    for a, b in ((0, 3000), (5, 2999), (64, 64 + 4 * 64), (7, 70), (3, 3)):
        total, squares = sums(out, a, b, partial)
        x = stored[a:b].astype(np.float64)
        assert total == pytest.approx(x.sum(), abs=1e-5 * max(1.0, float(np.abs(x).sum())))
        assert squares == pytest.approx((x * x).sum(), rel=1e-5, abs=1e-12)
    (asm,) = sums.inspect_asm().values()
    assert not re.findall(r"\bv\w*(gather|scatter)", asm)


def test_the_edge_copy_moves_rows_without_gathers():
    """``_copy_in`` (a partial tile into the ends of ``out``) copies through slices: with
    indices LLVM cannot prove non-negative it gathered and scattered every value."""
    from numba import njit

    @njit(error_model="numpy")
    def copy_in(out, scratch, start):
        _kernels._copy_in(out, scratch, start)

    scratch = np.arange(256, dtype=np.float32)
    for start, size in ((-100, 1000), (0, 1000), (900, 1000), (-10, 50)):
        out = np.full(size, -1.0, np.float32)
        copy_in(out, scratch, start)
        expected = np.full(size, -1.0, np.float32)
        lo, hi = max(start, 0), min(start + 256, size)
        expected[lo:hi] = scratch[lo - start : hi - start]
        assert np.array_equal(out, expected)
    (asm,) = copy_in.inspect_asm().values()
    assert not re.findall(r"\bv\w*(gather|scatter)", asm)
