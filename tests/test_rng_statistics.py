"""Statistical quality of the generator: KS tests over several seeds, moments on 1e7 samples,
tails, independence between streams and between neighbouring values, bit balance.

Thresholds: a KS p-value above 1e-4 (fixed seeds, so the tests are deterministic; a broken
transform gives p ~ 0), and moments within 6 standard errors of their exact values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from initlab import fastrng
from initlab.rng import Draw, Stream, philox4x32

KS_P = 1e-4
SEEDS = (0, 1, 2, 12345)


def _ks(values: np.ndarray, dist) -> float:
    return float(stats.kstest(values.astype(np.float64), dist.cdf).pvalue)


@pytest.mark.parametrize("precision", ["single", "double"])
@pytest.mark.parametrize("seed", SEEDS)
def test_ks_uniform_normal_truncated(seed, precision):
    s = Stream(seed, "ks")
    n = 200_000
    assert _ks(s.uniform(n, precision=precision), stats.uniform()) > KS_P
    assert _ks(s.normal(n, precision=precision), stats.norm()) > KS_P
    for a, b in [(-2.0, 2.0), (0.5, 4.0), (-np.inf, -2.5), (3.0, 6.0)]:
        z = s.truncated_normal(n, a, b, precision=precision)
        assert z.min() >= a and z.max() <= b
        assert _ks(z, stats.truncnorm(a, b)) > KS_P, (a, b)


@pytest.mark.parametrize("seed", SEEDS)
def test_ks_in_float32_bfloat16_and_far_into_the_stream(seed):
    s = Stream(seed, "dtypes")
    n = 100_000
    z32 = s.normal(n, offset=10**12 + 7, dtype=np.float32)
    assert _ks(z32, stats.norm()) > KS_P
    bits = s.fill(np.empty(n, np.uint16), Draw("normal"), encoding="bfloat16")
    z16 = (bits.astype(np.uint32) << 16).view(np.float32)  # bfloat16 -> float32, exact
    assert _ks(z16, stats.norm()) > KS_P  # 8-bit rounding moves the CDF by < 1e-3


@pytest.mark.parametrize("precision", ["single", "double"])
def test_moments_on_1e7_samples(precision):
    n = 10_000_000
    dtype = np.float32 if precision == "single" else np.float64
    z = fastrng.fill(np.empty(n, dtype), "normal", 7, precision=precision).astype(np.float64)
    se = 1.0 / math.sqrt(n)
    assert abs(z.mean()) < 6 * se
    assert abs(z.var() - 1.0) < 6 * math.sqrt(2.0) * se
    assert abs(stats.skew(z)) < 6 * math.sqrt(6.0) * se
    assert abs(stats.kurtosis(z)) < 6 * math.sqrt(24.0) * se
    u = fastrng.fill(np.empty(n, dtype), "uniform", 7, precision=precision).astype(np.float64)
    assert abs(u.mean() - 0.5) < 6 * math.sqrt(1 / 12) * se
    assert abs(u.var() - 1 / 12) < 6 * math.sqrt(1 / 180) * se
    assert u.min() >= 0.0 and u.max() < 1.0
    t = fastrng.fill(np.empty(n, dtype), "truncated_normal", 7, low=-2.0, high=2.0,
                     precision=precision).astype(np.float64)  # fmt: skip
    mean, var = stats.truncnorm(-2, 2).stats()
    assert abs(t.mean() - mean) < 6 * math.sqrt(var) * se
    assert abs(t.var() - var) < 6 * 1.5 * var * se  # 4th moment of truncnorm < 2.5 var^2


def test_tails_of_the_normal_match_their_probabilities():
    """Counts beyond 3, 4 and 5 sigma in 4e7 float32 samples are Poisson-consistent."""
    n = 40_000_000
    z = np.abs(fastrng.fill(np.empty(n, np.float32), "normal", 11))
    for k in (3.0, 4.0, 5.0):
        expected = n * 2 * stats.norm.sf(k)
        count = int((z > k).sum())
        assert abs(count - expected) < 6 * math.sqrt(expected) + 1, (k, count, expected)
    assert float(z.max()) < 6.78  # the single-precision radius bound


def test_no_exact_zeros_and_distinct_values():
    z = fastrng.fill(np.empty(4_000_000, np.float32), "normal", 5)
    assert int((z == 0).sum()) == 0
    u = fastrng.fill(np.empty(1 << 20), "uniform", 5, precision="double")
    assert np.unique(u).size == u.size


def test_streams_and_neighbours_are_uncorrelated():
    n = 1_000_000
    names = ["a.weight", "a.bias", "b.weight", "layers.0.weight", "layers.1.weight"]
    draws = np.stack([Stream(0, name).normal(n, dtype=np.float32) for name in names])
    corr = np.corrcoef(draws)
    off = corr[~np.eye(len(names), dtype=bool)]
    assert np.abs(off).max() < 6 / math.sqrt(n)
    z = draws[0].astype(np.float64)
    for lag in (1, 2, 3, 4, 64, 128, 256):  # within a pair, a block, a tile
        r = np.corrcoef(z[:-lag], z[lag:])[0, 1]
        assert abs(r) < 6 / math.sqrt(n), lag
    # Same seed, same name in two precisions: different streams, uncorrelated too.
    z64 = Stream(0, names[0]).normal(n, precision="double")
    assert abs(np.corrcoef(z, z64)[0, 1]) < 6 / math.sqrt(n)


def test_philox_bits_are_balanced():
    """Each of the 32 output bits is 1 half the time over consecutive counters (monobit)."""
    n = 1 << 18
    counters = np.zeros((n, 4), dtype=np.uint32)
    counters[:, 0] = np.arange(n, dtype=np.uint32)
    words = fastrng.philox4x32(counters, 0xDEADBEEF).reshape(-1)
    bits = (words[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    freq = bits.mean(axis=0)
    assert np.abs(freq - 0.5).max() < 6 * 0.5 / math.sqrt(words.size)
    assert np.array_equal(philox4x32(counters[:1000], 0xDEADBEEF),
                          fastrng.philox4x32(counters[:1000], 0xDEADBEEF))  # fmt: skip


def test_chi_square_of_uniform_histogram_over_seeds():
    for seed in SEEDS:
        u = Stream(seed, "chi2").uniform(1_000_000, dtype=np.float32)
        counts, _ = np.histogram(u, bins=1000, range=(0.0, 1.0))
        assert stats.chisquare(counts).pvalue > KS_P
