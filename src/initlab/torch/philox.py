r"""initlab's counter-based stream in torch tensor operations: the same bits on any device.

The numba kernels (:mod:`initlab.fastrng`) run on the CPU. This module computes the same
stream with torch operations, so that a tensor on a GPU (or any device torch supports) is
filled where it lives, and the same ``(seed, name)`` gives bitwise the same weights on a CPU
and a GPU (torch's own generators do not: its CPU and CUDA generators are different streams).

Bit identity with the numba kernels holds by construction, operation for operation:

* Philox4x32-10 in int64 tensors: the 32x32 -> 64-bit products are split into 16-bit halves
  so that nothing overflows (``mulhilo``), the rest is xor, and, shift;
* the single-precision transforms (uniform, Box-Muller normal, inverse-CDF truncated normal)
  use only operations IEEE 754 rounds exactly the same everywhere: float32 ``+ - * /``,
  ``sqrt``, integer <-> float conversions, comparisons and selections, and bit casts. The
  polynomials (``log``, ``sin``, ``cos``, the normal quantile) are the kernels' own, evaluated
  in the same order with a multiplication and an addition each (the single-precision kernels
  use no fused multiply-add for that reason: torch has none on the CPU);
* every floating-point op is a separate eager kernel: nothing may contract ``a * b + c``
  into an fma (which a fusing compiler such as torch.compile's Triton code on a GPU does by
  default), so torch.compile is used for the integer Philox rounds only (on devices other
  than the CPU; ``INITLAB_TORCH_COMPILE=0`` turns it off), where no rounding exists.

The values are float32; bfloat16 and float16 tensors get them rounded to nearest even by
``Tensor.to`` (the numba kernels round the same way, tested bitwise against torch). Double
precision (``precision="double"``) is not implemented here: :func:`initlab.torch.fill.draw_`
then fills through a CPU buffer from the numba kernels.

Work goes in chunks of whole tiles (:data:`CHUNK_TILES`), so the temporary int64 tensors stay
bounded (about 100 bytes per element of a chunk).

>>> import torch
>>> t = philox_fill(torch.empty(5), "normal", key=7)
>>> t.dtype, t.shape
(torch.float32, torch.Size([5]))
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from initlab import rng_constants
from initlab.draw_params import kernel_params

if TYPE_CHECKING:
    from initlab.rng import Moments

__all__ = ["CHUNK_TILES", "LANES", "philox_fill", "philox_words"]

LANES = 64
#: Tiles per chunk on a CPU and on other devices (a tile: ``LANES`` blocks).
CHUNK_TILES = {"cpu": 1 << 12, "other": 1 << 16}

_M32 = 0xFFFFFFFF
_PM0, _PM1 = 0xD2511F53, 0xCD9E8D57
_PW0, _PW1 = 0x9E3779B9, 0xBB67AE85
_ROUNDS = 10


def _f(x: float) -> float:
    """``x`` rounded to float32, as a Python float (exact in both)."""
    return float(np.float32(x))


def _mulhilo(a: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32 bits of ``a * m`` (``a`` int64 below 2^32, ``m`` a 32-bit constant),
    with 16-bit halves of ``a`` so that no int64 product overflows."""
    p_lo = (a & 0xFFFF) * m  # < 2^48
    p_hi = (a >> 16) * m  # < 2^48
    s = p_hi + (p_lo >> 16)  # < 2^49
    return s >> 16, ((s & 0xFFFF) << 16) | (p_lo & 0xFFFF)


def _round_keys(key: int, device: torch.device) -> torch.Tensor:
    """The key words of each round, ``(rounds, 2)`` int64 on ``device`` (tensors, so that a
    compiled Philox is not specialized on the key)."""
    k0, k1, keys = key & _M32, key >> 32, []
    for _ in range(_ROUNDS):
        keys.append((k0, k1))
        k0, k1 = (k0 + _PW0) & _M32, (k1 + _PW1) & _M32
    return torch.tensor(keys, dtype=torch.int64, device=device)


def _rounds(blocks: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Philox4x32-10 of the counters ``(b mod 2^32, b div 2^32, 0, 0)`` (int64 tensors of
    32-bit words), integer operations only."""
    c0, c1 = blocks & _M32, blocks >> 32
    c2 = c3 = torch.zeros_like(c0)
    for r in range(_ROUNDS):
        hi0, lo0 = _mulhilo(c0, _PM0)
        hi1, lo1 = _mulhilo(c2, _PM1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ keys[r, 0], lo1, hi0 ^ c3 ^ keys[r, 1], lo0
    return c0, c1, c2, c3


_COMPILED: dict[str, Any] = {}


def _philox_for(device: torch.device) -> Callable[..., tuple[torch.Tensor, ...]]:
    """The Philox rounds for ``device``: eager on the CPU; elsewhere compiled by torch.compile
    into one fused kernel (integer operations: compiling cannot change a bit), unless
    ``INITLAB_TORCH_COMPILE=0``, or eager again if compiling fails."""
    if device.type == "cpu" or os.environ.get("INITLAB_TORCH_COMPILE", "1") == "0":
        return _rounds
    if "philox" not in _COMPILED:
        _COMPILED["philox"] = torch.compile(_rounds, dynamic=True)
    return _COMPILED["philox"]


def _words(blocks: torch.Tensor, key: int) -> tuple[torch.Tensor, ...]:
    keys = _round_keys(key, blocks.device)
    fn = _philox_for(blocks.device)
    if fn is _rounds:
        return _rounds(blocks, keys)
    try:
        return fn(blocks, keys)
    except Exception as error:  # no triton or compiler: the same values, eagerly
        warnings.warn(
            f"initlab: torch.compile of the Philox rounds failed ({type(error).__name__}: "
            f"{error}); filling with eager torch operations (the same values, slower).",
            RuntimeWarning,
            stacklevel=3,
        )
        _COMPILED["philox"] = _rounds
        return _rounds(blocks, keys)


def philox_words(blocks: torch.Tensor, key: int) -> tuple[torch.Tensor, ...]:
    """The four 32-bit words (int64 tensors) of Philox4x32-10 of each block counter ``b``
    (counter ``(b mod 2^32, b div 2^32, 0, 0)``) under the 64-bit ``key``.

    >>> w = philox_words(torch.zeros(1, dtype=torch.int64), 0)
    >>> [f"{int(x):08x}" for x in w]
    ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    return _words(blocks, key)


# ------------------------------------------------------------------------------------------
# float32 transforms: the numba kernels' operations (initlab.fastrng._kernels), one by one.
# ------------------------------------------------------------------------------------------


@functools.cache
def _kernel_constants() -> dict[str, object]:
    """The single-precision kernels' constants (:mod:`initlab.rng_constants`), float32 values
    held in Python floats: torch rounds a Python scalar to a float32 tensor's dtype, exactly."""
    return rng_constants.single()


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded float32 square root (what the kernels' ``llvm.sqrt`` gives).

    torch's own ``sqrt`` is not correctly rounded on every platform (on an AVX-512 CPU it
    misses in ~0.7% of float32 and ~0.9% of float64 inputs, by one ulp), so a float64 root
    rounded to float32, ``y``, is corrected exactly: the midpoints between ``y`` and its
    neighbours have 25 bits, so their squares are exact in float64 and compare with ``x``
    exactly (the root of a float32 is never a midpoint itself).
    """
    y = torch.sqrt(x.to(torch.float64)).to(torch.float32)
    wide, x64 = y.to(torch.float64), x.to(torch.float64)
    up = torch.nextafter(y, torch.full_like(y, math.inf))
    mid = (wide + up.to(torch.float64)) * 0.5
    y = torch.where(mid * mid < x64, up, y)
    wide = y.to(torch.float64)
    down = torch.nextafter(y, torch.zeros_like(y))
    mid = (wide + down.to(torch.float64)) * 0.5
    return torch.where(mid * mid > x64, down, y)


def _horner(x: torch.Tensor, coefficients: tuple[float, ...]) -> torch.Tensor:
    acc = torch.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        acc = acc * x + c
    return acc


def _bits(x: torch.Tensor) -> torch.Tensor:
    """float32 -> its IEEE bits as int64 (non-negative for a positive x)."""
    return x.view(torch.int32).to(torch.int64)


def _from_bits(bits: torch.Tensor) -> torch.Tensor:
    return bits.to(torch.int32).view(torch.float32)


def _log1p_reduced(f: torch.Tensor, k: dict) -> torch.Tensor:
    s = f / (f + 2.0)
    return (s + s) * _horner(s * s, k["ATANH32"])


def _mantissa(x: torch.Tensor, k: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(f, e) with ``x = 2^e (1 + f)``, ``1 + f`` in [sqrt(1/2), sqrt(2)] (x positive normal)."""
    bits = _bits(x)
    e = (bits >> 23) - 127
    m = _from_bits((bits & 0x7FFFFF) | 0x3F800000)
    big = m > k["SQRT2_32"]
    f = torch.where(big, m * 0.5, m) - 1.0
    return f, e + big.to(torch.int64)


def _log(x: torch.Tensor, k: dict) -> torch.Tensor:
    f, e = _mantissa(x, k)
    return e.to(torch.float32) * k["LN2_32"] + _log1p_reduced(f, k)


def _neg_log_unit(a: torch.Tensor, k: dict) -> torch.Tensor:
    """``-log((a + 1/2) 2^-32)`` for 32-bit words ``a`` (int64): kernels' ``_neg_log_unit32``."""
    u = (a.to(torch.float32) + 0.5) * _f(2.0**-32)
    f_low, e_low = _mantissa(u, k)
    v = ((_M32 - a).to(torch.float32) + 0.5) * _f(2.0**-32)
    near = v <= _f(1.0 - 0.5**0.5)
    f_high = torch.where(near, -v, 1.0 - (v + v))
    high = a >= 1 << 31
    f = torch.where(high, f_high, f_low)
    e = torch.where(high, torch.where(near, 0, -1), e_low)
    return -(e.to(torch.float32) * k["LN2_32"] + _log1p_reduced(f, k))


def _turn(b: torch.Tensor, k: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) of ``2 pi (v + 1/2) / 2^24``, ``v = b >> 8``: kernels' ``_turn32``."""
    v = b >> 8
    kk = (v + (1 << 21)) >> 22
    x = ((v - (kk << 22)).to(torch.float32) + 0.5) * _f(2.0**-22)
    x2 = x * x
    s = x * _horner(x2, k["SIN32"])
    c = _horner(x2, k["COS32"])
    q = kk & 3
    swap = (q & 1) != 0
    cs = torch.where(swap, s, c)
    sn = torch.where(swap, c, s)
    cs = torch.where(((q + 1) & 2) != 0, -cs, cs)
    sn = torch.where((q & 2) != 0, -sn, sn)
    return cs, sn


def _box_muller(a: torch.Tensor, b: torch.Tensor, k: dict) -> tuple[torch.Tensor, torch.Tensor]:
    r = _sqrt(2.0 * _neg_log_unit(a, k))
    c, s = _turn(b, k)
    return r * c, r * s


def _upper_quantile(t: torch.Tensor, h: torch.Tensor, k: dict) -> torch.Tensor:
    """``-Phi^{-1}(t)`` given ``h = 1/2 - t``: kernels' ``_upper_quantile32``."""
    t = torch.clamp_min(t, k["TMIN32"])
    w = -_log((4.0 * t) * (0.5 + h), k)
    mid, inv, coefficients = k["Q32C"]
    central = (h + h) * _horner((w - mid) * inv, coefficients)
    s = _sqrt(w)
    mid, inv, coefficients = k["Q32T"]
    tail = s * _horner((1.0 / s - mid) * inv, coefficients)
    return torch.where(w < k["W_SPLIT32"], central, tail)


def _uniform(v: torch.Tensor, p: tuple[float, ...]) -> torch.Tensor:
    return (v.to(torch.float32) * _f(2.0**-24)) * p[1] + p[0]


def _truncated(w: torch.Tensor, p: tuple[float, ...], k: dict) -> torch.Tensor:
    u = (w >> 8).to(torch.float32) * _f(2.0**-24)
    x = u * p[3] + p[2]
    if p[4] != 0.0:  # centred
        ax = x.abs()
        h, t = ax, 0.5 - ax
        sign = torch.where(x >= 0.0, 1.0, -1.0)
        z = sign * _upper_quantile(t, h, k)
    else:
        z = p[5] * _upper_quantile(x, 0.5 - x, k)
    z = torch.clamp(z, p[6], p[7])
    return torch.clamp(z * p[1] + p[0], p[8], p[9])


def _tiles(
    t0: int, t1: int, key: int, distribution: str, p: tuple[float, ...], device: torch.device
) -> torch.Tensor:
    """Tiles ``[t0, t1)`` of the single-precision stream, flat, float32."""
    k = _kernel_constants()
    blocks = torch.arange(t0 * LANES, t1 * LANES, dtype=torch.int64, device=device)
    w0, w1, w2, w3 = _words(blocks, key)
    if distribution == "uniform":
        low = (w0 & 0xFF) | ((w1 & 0xFF) << 8) | ((w2 & 0xFF) << 16)
        rows = [_uniform(w >> 8, p) for w in (w0, w1, w2, w3)] + [_uniform(low, p)]
    elif distribution == "normal":
        z0, z1 = _box_muller(w0, w1, k)
        z2, z3 = _box_muller(w2, w3, k)
        rows = [z * p[1] + p[0] for z in (z0, z1, z2, z3)]
    else:
        rows = [_truncated(w, p, k) for w in (w0, w1, w2, w3)]
    # value j of block t * LANES + l is element t * V * LANES + j * LANES + l
    return torch.stack([r.view(-1, LANES) for r in rows], dim=1).view(-1)


def philox_fill(
    out: torch.Tensor,
    distribution: str,
    key: int,
    *,
    offset: int = 0,
    loc: float = 0.0,
    scale: float = 1.0,
    low: float = -math.inf,
    high: float = math.inf,
    clip: tuple[float, float] | None = None,
    moments: Moments | None = None,
) -> torch.Tensor:
    """Write elements ``[offset, offset + numel)`` of stream ``key`` into ``out``; return it.

    The torch twin of :func:`initlab.fastrng.fill` in single precision: ``value = loc + scale
    * X`` with ``X`` uniform on [0, 1), standard normal or standard normal on ``[low, high]``,
    the same bits as the numba kernels, computed on ``out``'s device. ``out``: a contiguous
    float16/bfloat16/float32/float64 tensor. ``moments`` receives the count, sum and sum of
    squares of the values stored (float64).

    >>> import numpy as np
    >>> from initlab.fastrng import fill
    >>> t = philox_fill(torch.empty(1000), "truncated_normal", 3, low=-2.0, high=2.0)
    >>> bool(np.array_equal(t.numpy(), fill(np.empty(1000, np.float32), "truncated_normal",
    ...                                        3, low=-2.0, high=2.0)))
    True
    """
    if out.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(
            f"out.dtype={out.dtype} is not valid; allowed: float16, bfloat16, float32, float64."
        )
    if not out.is_contiguous():
        raise ValueError("out is not valid: not contiguous; allowed: a contiguous tensor.")
    precision, p = kernel_params(distribution, "single", loc, scale, low, high, clip)
    if precision != "single":
        raise NotImplementedError(
            f"low={low!r}, high={high!r} needs the double-precision kernel, which the torch "
            "backend does not implement; use backend='numba'."
        )
    n = out.numel()
    if n == 0:
        return out
    per_block = 5 if distribution == "uniform" else 4
    tile = per_block * LANES
    flat = out.detach().view(-1)
    step = CHUNK_TILES["cpu" if out.device.type == "cpu" else "other"]
    first_tile, last_tile = offset // tile, (offset + n - 1) // tile + 1
    total = torch.zeros(2, dtype=torch.float64, device=out.device)
    with torch.no_grad():
        for t0 in range(first_tile, last_tile, step):
            t1 = min(t0 + step, last_tile)
            values = _tiles(t0, t1, key, distribution, p, out.device)
            a = max(offset, t0 * tile)
            b = min(offset + n, t1 * tile)
            part = values[a - t0 * tile : b - t0 * tile].to(out.dtype)
            flat[a - offset : b - offset].copy_(part)
            if moments is not None:
                stored = part.to(torch.float64)
                total[0] += stored.sum()
                total[1] += stored.square().sum()
    if moments is not None:
        moments.add(n, float(total[0]), float(total[1]))
    return out
