"""The choices behind initlab's generator, measured side by side: counter-based hashes and
normal methods, all written the same way (numba, vectorized, tile layout).

Part 1, the hash: a float32 uniform fill (24-bit values) from

* Philox4x32-10 (initlab's: Salmon et al. 2011, the Random123 default; 10 rounds, 3 more than
  its Crush-resistance minimum of 7), and Philox4x32-7 for the cost of that margin;
* Threefry2x64-20 (Random123's other default, JAX's family) and Threefry2x64-13 (minimum);
* squares32 (Widynski 2020; keys must come from its key generator, not any 64-bit hash);
* SplitMix64 of the counter (Steele et al. 2014: a Weyl sequence through a mixer; streams with
  different keys are shifted copies of one sequence, not independent keyed streams);
* a constant store: the loop without any hash (the ceiling).

Part 2, the normal: float32 normals from the same Philox words by Box-Muller (initlab's:
2 words per pair of values), by the inverse CDF (initlab's quantile polynomial, 1 word per
value), and initlab's double-precision Box-Muller (float64 math) rounded to float32. torch's
``normal_`` and NumPy's ``standard_normal(dtype=float32)`` for reference.

Speeds are single-thread CPU time of this thread (``time.thread_time``: robust to other
processes on a shared machine), best of ``--repeats``; G values/s.

    PYTHONPATH=src python benchmarks/rng_alternatives.py [--n 16000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from numba import njit
from rich.console import Console
from rich.table import Table

from initlab import fastrng
from initlab.fastrng import _kernels as K

_U, _F = np.uint64, np.float32
_M32 = _U(0xFFFFFFFF)
LANES = K.LANES


@njit(inline="always", error_model="numpy")
def _philox7(b, k0, k1):
    c0, c1, c2, c3 = b & _M32, b >> _U(32), _U(0), _U(0)
    for _ in range(7):  # unrolled by LLVM: a constant trip count
        c0, c1, c2, c3 = K._round(c0, c1, c2, c3, k0, k1)
        k0, k1 = K._bump(k0, k1)
    return c0, c1, c2, c3


_TF_ROT = (16, 42, 12, 31, 16, 32, 24, 21)  # Threefry2x64 rotation constants (Random123)


def _threefry_source(rounds: int) -> str:
    """Straight-line Threefry2x64-``rounds`` (a loop with a key schedule would not vectorize)."""
    lines = [
        "def threefry(b, k0, k1):",
        "    k2 = k0 ^ k1 ^ _U(0x1BD11BDAA9FC1A22)",
        "    x0, x1 = b + k0, k1",
    ]
    keys = ("k0", "k1", "k2")
    for r in range(rounds):
        rot = _TF_ROT[r % 8]
        lines += ["    x0 = x0 + x1", f"    x1 = ((x1 << _U({rot})) | (x1 >> _U({64 - rot}))) ^ x0"]
        if r % 4 == 3:
            s = r // 4 + 1
            lines += [
                f"    x0 = x0 + {keys[s % 3]}",
                f"    x1 = x1 + {keys[(s + 1) % 3]} + _U({s})",
            ]
    lines.append("    return x0, x1")
    return "\n".join(lines)


def _threefry(rounds: int):
    namespace = {"_U": _U}
    exec(_threefry_source(rounds), namespace)
    return njit(inline="always", error_model="numpy")(namespace["threefry"])


_threefry20, _threefry13 = _threefry(20), _threefry(13)


@njit(inline="always", error_model="numpy")
def _squares32(ctr, key):
    x = ctr * key
    y = x
    z = y + key
    x = x * x + y
    x = (x >> _U(32)) | (x << _U(32))
    x = x * x + z
    x = (x >> _U(32)) | (x << _U(32))
    x = x * x + y
    x = (x >> _U(32)) | (x << _U(32))
    return (x * x + z) >> _U(32)


@njit(inline="always", error_model="numpy")
def _splitmix(z):
    z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
    return z ^ (z >> _U(31))


@njit(inline="always", error_model="numpy")
def _unit(v):
    return _F(np.int32(v)) * _F(2.0**-24)


@njit(nogil=True, error_model="numpy")
def philox7_uniform(out, k0, k1):
    for t in range(out.size // (4 * LANES)):
        o = t * 4 * LANES
        r0, r1 = out[o : o + LANES], out[o + LANES : o + 2 * LANES]
        r2, r3 = out[o + 2 * LANES : o + 3 * LANES], out[o + 3 * LANES : o + 4 * LANES]
        for lane in range(LANES):
            w0, w1, w2, w3 = _philox7(_U(t * LANES + lane), k0, k1)
            r0[lane], r1[lane] = _unit(w0 >> _U(8)), _unit(w1 >> _U(8))
            r2[lane], r3[lane] = _unit(w2 >> _U(8)), _unit(w3 >> _U(8))


def _threefry_kernel(hash_fn):
    @njit(nogil=True, error_model="numpy")
    def fill(out, k0, k1):
        for t in range(out.size // (4 * LANES)):
            o = t * 4 * LANES
            r0, r1 = out[o : o + LANES], out[o + LANES : o + 2 * LANES]
            r2, r3 = out[o + 2 * LANES : o + 3 * LANES], out[o + 3 * LANES : o + 4 * LANES]
            for lane in range(LANES):
                x0, x1 = hash_fn(_U(t * LANES + lane), k0, k1)
                r0[lane], r1[lane] = _unit(x0 >> _U(40)), _unit((x0 >> _U(8)) & _U(0xFFFFFF))
                r2[lane], r3[lane] = _unit(x1 >> _U(40)), _unit((x1 >> _U(8)) & _U(0xFFFFFF))

    return fill


threefry20_uniform = _threefry_kernel(_threefry20)
threefry13_uniform = _threefry_kernel(_threefry13)


@njit(nogil=True, error_model="numpy")
def squares_uniform(out, k0, k1):
    key = (k1 << _U(32)) | k0 | _U(1)
    for i in range(out.size):
        out[i] = _unit(_squares32(_U(i), key) >> _U(8))


@njit(nogil=True, error_model="numpy")
def splitmix_uniform(out, k0, k1):
    key = (k1 << _U(32)) | k0
    for i in range(out.size // 2):
        z = _splitmix(key + (_U(i) + _U(1)) * _U(0x9E3779B97F4A7C15))
        out[2 * i] = _unit(z >> _U(40))
        out[2 * i + 1] = _unit((z >> _U(8)) & _U(0xFFFFFF))


@njit(nogil=True, error_model="numpy")
def constant_store(out, k0, k1):
    for i in range(out.size):
        out[i] = _F(0.5)


@njit(nogil=True, error_model="numpy")
def inverse_cdf_normal(out, k0, k1):
    for t in range(out.size // (4 * LANES)):
        o = t * 4 * LANES
        r0, r1 = out[o : o + LANES], out[o + LANES : o + 2 * LANES]
        r2, r3 = out[o + 2 * LANES : o + 3 * LANES], out[o + 3 * LANES : o + 4 * LANES]
        for lane in range(LANES):
            w = K._block(_U(t * LANES + lane), k0, k1)
            r0[lane], r1[lane] = _icdf(w[0]), _icdf(w[1])
            r2[lane], r3[lane] = _icdf(w[2]), _icdf(w[3])


@njit(inline="always", error_model="numpy")
def _icdf(w):
    x = (_F(np.int32(w >> _U(8))) + _F(0.5)) * _F(2.0**-24) - _F(0.5)
    ax = abs(x)
    g = K._upper_quantile32(_F(0.5) - ax, ax)
    return g if x >= _F(0.0) else -g


def _initlab(distribution: str, precision: str = "single") -> Callable:
    def run(out, k0, k1):
        fastrng.fill(out, distribution, 12345, precision=precision, threads=1)

    return run


def _cpu_rate(fn: Callable[[], object], n: int, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        best = min(best, time.thread_time() - start)
    return n / best / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    n = args.n // 1280 * 1280
    out = np.empty(n, np.float32)
    k0, k1 = _U(0x9E3779B9), _U(0x12345678)
    torch.set_num_threads(1)
    console = Console(width=max(110, Console().width))

    hashes = [
        ("Philox4x32-10 (initlab)", _initlab("uniform"), "10 rounds; Crush-resistant from 7"),
        ("Philox4x32-7", philox7_uniform, "the Crush-resistance minimum: no margin"),
        ("Threefry2x64-20", threefry20_uniform, "Random123 default; JAX uses 2x32-20"),
        ("Threefry2x64-13", threefry13_uniform, "its minimum: no margin"),
        ("squares32", squares_uniform, "keys need its own generator"),
        ("SplitMix64(counter)", splitmix_uniform, "streams are shifts of one sequence"),
        ("constant store", constant_store, "no hash: the loop's ceiling"),
    ]
    table = Table(title=f"Uniform float32 fill, {n:.1e} values, 1 thread (CPU time)",
                  title_justify="left")  # fmt: skip
    for col in ("generator", "G values/s", "vs Philox4x32-10", "note"):
        table.add_column(col, justify="left" if col in ("generator", "note") else "right")
    rates = {}
    for name, kernel, _ in hashes:
        rates[name] = _cpu_rate(lambda kernel=kernel: kernel(out, k0, k1), n, args.repeats)
    ref = rates["Philox4x32-10 (initlab)"]
    for name, _, note in hashes:
        table.add_row(name, f"{rates[name]:.2f}", f"{rates[name] / ref:.2f}x", note)
    console.print(table)

    tensor = torch.empty(n)
    generator = np.random.default_rng(0)
    normals = [
        ("Box-Muller, float32 math (initlab)", _initlab("normal"), "2 words per 2 values"),
        ("inverse CDF, float32 math", inverse_cdf_normal, "1 word per value"),
        ("Box-Muller, float64 math", _initlab("normal", "double"), "initlab double precision"),
        ("torch normal_", lambda o, a, b: tensor.normal_(), "torch 2.13 CPU"),
        ("NumPy standard_normal", lambda o, a, b: generator.standard_normal(out=o,
                                                                           dtype=np.float32),
         "ziggurat, rejection: not counter-based"),
    ]  # fmt: skip
    table = Table(title=f"Normal float32 fill, {n:.1e} values, 1 thread (CPU time)",
                  title_justify="left")  # fmt: skip
    for col in ("method", "G values/s", "vs initlab", "note"):
        table.add_column(col, justify="left" if col in ("method", "note") else "right")
    rates = {}
    for name, kernel, _ in normals:
        rates[name] = _cpu_rate(lambda kernel=kernel: kernel(out, k0, k1), n, args.repeats)
    ref = rates["Box-Muller, float32 math (initlab)"]
    for name, _, note in normals:
        table.add_row(name, f"{rates[name]:.2f}", f"{rates[name] / ref:.2f}x", note)
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
