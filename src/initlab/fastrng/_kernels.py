r"""Numba kernels of initlab's counter-based generator (all jitted code lives in this file).

Every value is a pure function of ``(key, index)``: Philox4x32-10 (Salmon et al. 2011) of a
64-bit block counter under the 64-bit key gives four 32-bit words, and fixed arithmetic turns
them into values. Nothing depends on the thread count, the loop's vector width or where a
slice starts, so a fill is bitwise reproducible: the arithmetic is IEEE (no fast-math), fused
multiply-adds are explicit (``llvm.fma``), and ``log``/``sin``/``cos``/the normal quantile are
polynomials written here instead of the platform's libm.

Layout. Values come in tiles of ``LANES = 64`` consecutive blocks; a block gives ``V`` values
(``V = 4`` single precision, ``V = 2`` double) and value ``j`` of block ``t * LANES + l`` is
element ``t * V * LANES + j * LANES + l``. Each of the ``V`` rows of a tile is contiguous, so
the loop over ``l`` vectorizes with plain stores.

Values per precision (``w0..w3`` the block's words):

======  =====================================  ==========================================
        single (float32; bf16/f16 round it)     double (float64)
======  =====================================  ==========================================
U       ``(w_j >> 8) 2^-24`` in [0, 1)          ``(w_2j:w_2j+1 >> 11) 2^-53`` in [0, 1)
N       Box-Muller: ``(w0, w1)`` -> rows 0, 1;  Box-Muller: ``(w0:w1, w2:w3)`` -> rows 0, 1
        ``(w2, w3)`` -> rows 2, 3
TN      inverse CDF of U (row j from ``w_j``)   inverse CDF of U
======  =====================================  ==========================================

Box-Muller on ``(a, b)``: ``r = sqrt(-2 log u1)``, ``u1 = a 2^-32 + 2^-33`` (so
``|z| <= 6.77`` in single, ``8.7`` in double), the angle ``2 pi b / 2^32`` reduced exactly
in integers to a quadrant and ``x`` in [-1/2, 1/2); rows get ``r cos`` and ``r sin``.

Jitted code is cached on disk by numba (``cache=True``); keeping it all in this one file
means the cache can never go stale against a helper edited elsewhere.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

LANES = 64
SINGLE_PER_BLOCK = 4
DOUBLE_PER_BLOCK = 2
SINGLE_TILE = SINGLE_PER_BLOCK * LANES
DOUBLE_TILE = DOUBLE_PER_BLOCK * LANES

# ------------------------------------------------------------------------------------------
# Intrinsics: bit casts and fused multiply-add (exactly rounded, so identical everywhere).
# ------------------------------------------------------------------------------------------


@intrinsic
def _f32_bits(typingctx, x):
    """float32 -> its IEEE bits, as uint64."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.zext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))

    return types.uint64(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, x):
    """Low 32 bits of a uint64 -> the float32 they encode."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())

    return types.float32(types.uint64), codegen


@intrinsic
def _f64_bits(typingctx, x):
    """float64 -> its IEEE bits, as uint64."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.uint64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, x):
    """uint64 -> the float64 it encodes."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.uint64), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (``llvm.fma``)."""
    if not (a == b == c and a in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


@intrinsic
def _sqrt(typingctx, x):
    """Correctly rounded square root (``llvm.sqrt``: vectorizes, unlike libm's sqrtf)."""
    if x not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.sqrt", [args[0].type])
        return builder.call(fn, args)

    return x(x), codegen


# ------------------------------------------------------------------------------------------
# Philox4x32-10.
# ------------------------------------------------------------------------------------------

_U = np.uint64
_M32 = _U(0xFFFFFFFF)
_S8, _S11, _S16, _S23, _S32, _S52 = _U(8), _U(11), _U(16), _U(23), _U(32), _U(52)
_PM0, _PM1 = _U(0xD2511F53), _U(0xCD9E8D57)
_PW0, _PW1 = _U(0x9E3779B9), _U(0xBB67AE85)
_ZERO = _U(0)


@njit(inline="always", error_model="numpy")
def _round(c0, c1, c2, c3, k0, k1):
    p0 = _PM0 * c0
    p1 = _PM1 * c2
    return (
        ((p1 >> _S32) ^ c1 ^ k0) & _M32,
        p1 & _M32,
        ((p0 >> _S32) ^ c3 ^ k1) & _M32,
        p0 & _M32,
    )


@njit(inline="always", error_model="numpy")
def _bump(k0, k1):
    return (k0 + _PW0) & _M32, (k1 + _PW1) & _M32


@njit(inline="always", error_model="numpy")
def philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of the counter words ``c0..c3`` under the key words ``k0, k1``."""
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    return _round(c0, c1, c2, c3, k0, k1)


@njit(inline="always", error_model="numpy")
def _block(b, k0, k1):
    return philox(b & _M32, b >> _S32, _ZERO, _ZERO, k0, k1)


@njit(cache=True, error_model="numpy")
def philox_blocks(counters, k0, k1):
    """Philox4x32-10 of each row of ``counters`` (``(n, 4)`` uint64 words below 2^32)."""
    out = np.empty_like(counters)
    for i in range(counters.shape[0]):
        w = philox(counters[i, 0], counters[i, 1], counters[i, 2], counters[i, 3], k0, k1)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = w
    return out


# ------------------------------------------------------------------------------------------
# Elementary functions as polynomials (Taylor series cut where the rest is below 1/2 ulp).
# ------------------------------------------------------------------------------------------

_F = np.float32
_D = np.float64
_PI_2 = np.pi / 2.0
_SIN = tuple((-1.0) ** j * _PI_2 ** (2 * j + 1) / math.factorial(2 * j + 1) for j in range(8))
_COS = tuple((-1.0) ** j * _PI_2 ** (2 * j) / math.factorial(2 * j) for j in range(9))
# sin(pi x / 2) = x * S(x^2), cos(pi x / 2) = C(x^2) on |x| <= 1/2; Horner order (high first).
_SIN32 = tuple(_F(c) for c in _SIN[:5][::-1])
_COS32 = tuple(_F(c) for c in _COS[:6][::-1])
_SIN64 = tuple(_D(c) for c in _SIN[::-1])
_COS64 = tuple(_D(c) for c in _COS[::-1])
# log(m) = 2 s (1 + s^2/3 + s^4/5 + ...), s = (m - 1) / (m + 1), |s| <= 3 - 2 sqrt(2).
_ATANH32 = tuple(_F(1.0 / (2 * j + 1)) for j in range(5))[::-1]
_ATANH64 = tuple(_D(1.0 / (2 * j + 1)) for j in range(11))[::-1]
_SQRT2_32, _SQRT2_64 = _F(np.sqrt(2.0)), _D(np.sqrt(2.0))
_LN2_32 = _F(np.log(2.0))
_LN2_HI = _D(0.693147180369123816490)  # 32 significant bits: e * _LN2_HI is exact
_LN2_LO = _D(np.log(2.0) - 0.693147180369123816490)


def _horner(x, c):  # pragma: no cover - replaced by the overload in jitted code
    raise NotImplementedError


@overload(_horner, inline="always")
def _horner_impl(x, c):
    """Horner's rule with fma, written out for the tuple's length (no loop to vectorize)."""
    if not isinstance(c, types.UniTuple):
        return None
    lines = ["def horner(x, c):", "    acc = c[0]"]
    lines += [f"    acc = _fma(acc, x, c[{i}])" for i in range(1, c.count)]
    lines.append("    return acc")
    namespace = {"_fma": _fma}
    exec("\n".join(lines), namespace)
    return namespace["horner"]


@njit(inline="always", error_model="numpy")
def _log32(x):
    """Natural log of a positive normal float32 (error below 2 ulp)."""
    bits = _f32_bits(x)
    e = np.int64(bits >> _S23) - 127
    m = _bits_f32((bits & _U(0x7FFFFF)) | _U(0x3F800000))
    big = m > _SQRT2_32
    m = m * _F(0.5) if big else m
    e = e + 1 if big else e
    f = m - _F(1.0)
    s = f / (f + _F(2.0))
    logm = (s + s) * _horner(s * s, _ATANH32)
    return _fma(_F(e), _LN2_32, logm)


@njit(inline="always", error_model="numpy")
def _log64(x):
    """Natural log of a positive normal float64 (error below 2 ulp)."""
    bits = _f64_bits(x)
    e = np.int64(bits >> _S52) - 1023
    m = _bits_f64((bits & _U(0xFFFFFFFFFFFFF)) | _U(0x3FF0000000000000))
    big = m > _SQRT2_64
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    f = m - 1.0
    s = f / (f + 2.0)
    logm = (s + s) * _horner(s * s, _ATANH64)
    de = _D(e)
    return de * _LN2_HI + _fma(de, _LN2_LO, logm)


@njit(inline="always", error_model="numpy")
def _turn32(b):
    """(cos, sin) of the angle 2 pi b / 2^32 for a 32-bit word b (24 bits used)."""
    v = b >> _S8
    kk = (v + _U(1 << 21)) >> _U(22)
    x = _F(np.int64(v) - np.int64(kk << _U(22))) * _F(2.0**-22)
    x2 = x * x
    s = x * _horner(x2, _SIN32)
    c = _horner(x2, _COS32)
    k = kk & _U(3)
    swap = (k & _U(1)) != _ZERO
    cs = s if swap else c
    sn = c if swap else s
    cs = -cs if ((k + _U(1)) & _U(2)) != _ZERO else cs
    sn = -sn if (k & _U(2)) != _ZERO else sn
    return cs, sn


@njit(inline="always", error_model="numpy")
def _turn64(b):
    """(cos, sin) of the angle 2 pi b / 2^64 for a 64-bit word b (53 bits used)."""
    v = b >> _S11
    kk = (v + _U(1 << 50)) >> _U(51)
    x = _D(np.int64(v) - np.int64(kk << _U(51))) * 2.0**-51
    x2 = x * x
    s = x * _horner(x2, _SIN64)
    c = _horner(x2, _COS64)
    k = kk & _U(3)
    swap = (k & _U(1)) != _ZERO
    cs = s if swap else c
    sn = c if swap else s
    cs = -cs if ((k + _U(1)) & _U(2)) != _ZERO else cs
    sn = -sn if (k & _U(2)) != _ZERO else sn
    return cs, sn


@njit(inline="always", error_model="numpy")
def _box_muller32(a, b):
    u1 = _F(a) * _F(2.0**-32) + _F(2.0**-33)
    r = _sqrt(_F(-2.0) * _log32(u1))
    c, s = _turn32(b)
    return r * c, r * s


@njit(inline="always", error_model="numpy")
def _box_muller64(a, b):
    u1 = _D(a >> _S11) * 2.0**-53 + 2.0**-54
    r = _sqrt(-2.0 * _log64(u1))
    c, s = _turn64(b)
    return r * c, r * s


# ------------------------------------------------------------------------------------------
# Normal quantile (truncated normal by inverse CDF). Constants from quantile_fit.py:
# (mid, half, coefficients high power first) of each piece; regenerate with
#   python -m initlab.fastrng.quantile_fit
# ------------------------------------------------------------------------------------------

# BEGIN GENERATED QUANTILE CONSTANTS
# central on [0.0, 5.0], degree 9, amplification 2.45
_Q32_CENTRAL = (
    2.5,
    2.5,
    (
        -4.818592414557549e-05,
        5.035711863026638e-05,
        0.0004040757459355272,
        -0.0011959997424016498,
        -0.0006867249380954562,
        0.012062213412269157,
        -0.02768160395597559,
        -0.036923285371688805,
        0.8720050691663723,
        2.123313480222769,
    ),
)
# tail on [0.12133168575543128, 0.4472135954999579], degree 9, amplification 1.07
_Q32_TAIL = (
    0.2842726406276946,
    0.16294095487226332,
    (
        4.317867197686493e-06,
        9.635353201832402e-06,
        1.718093734829674e-05,
        -8.139115648360099e-05,
        1.8537069802388203e-05,
        -0.0007892290177740653,
        0.002701133945829348,
        0.004930075751683793,
        -0.04398545000944127,
        1.3481252904345946,
    ),
)
# central on [0.0, 5.0], degree 18, amplification 2.45
_Q64_CENTRAL = (
    2.5,
    2.5,
    (
        -6.515345337115355e-10,
        9.80134559409527e-09,
        -1.304032934717849e-08,
        -8.917720528949391e-08,
        2.8541896663756554e-07,
        1.803039598031567e-07,
        -2.6234250310988864e-06,
        4.0403528229989e-06,
        1.2237234330807776e-05,
        -5.859669016408623e-05,
        2.8952340086139127e-05,
        0.00041322068344080704,
        -0.001179645951231002,
        -0.000689992611554166,
        0.012056737651952887,
        -0.027681195510000065,
        -0.036922621126174705,
        0.8720050609975684,
        2.123313467014672,
    ),
)
# tail on [0.25, 0.4472135954999579], degree 16, amplification 1.04
_Q64_TAIL = (
    0.34860679774997894,
    0.09860679774997896,
    (
        -5.3833968038062386e-11,
        -8.219626584780124e-10,
        2.3440493653180947e-09,
        4.33538348436938e-09,
        -2.3574167588957285e-08,
        7.202451089235746e-09,
        1.3704936437681653e-07,
        -2.1348957642349002e-07,
        -6.706018835572597e-07,
        1.917623592567953e-06,
        3.41661113858437e-06,
        -4.748778907666345e-06,
        -0.00011979630708546218,
        0.0003105895625693065,
        0.002702238250041385,
        -0.023616765222298,
        1.3316739910264914,
    ),
)
# tail_far on [0.03808620947509507, 0.25], degree 22, amplification 1.05
_Q64_TAIL_FAR = (
    0.14404310473754753,
    0.10595689526245247,
    (
        -7.36620000563412e-08,
        1.1203056405979376e-07,
        2.526705827509296e-07,
        -3.8277377582452094e-07,
        -4.792762478338841e-07,
        7.320042243909728e-07,
        3.951932492272417e-07,
        -5.945791080570422e-07,
        -4.738137375754982e-07,
        7.605992795432291e-07,
        -4.4171054817600787e-07,
        8.338985119755526e-07,
        -1.925494812049501e-06,
        3.7294513522451163e-06,
        -7.518092782984971e-06,
        1.6335880433356675e-05,
        -3.798032112881686e-05,
        9.97524084244733e-05,
        -0.00037778611561930413,
        0.0018759825091913325,
        -0.0027285741107369883,
        -0.028704744313433655,
        1.3874305919509713,
    ),
)
# END GENERATED QUANTILE CONSTANTS

_W_SPLIT32, _W_SPLIT64 = _F(5.0), _D(5.0)
_TMIN32, _TMIN64 = _F(2.0**-100), _D(1e-300)
_Q32C_MID, _Q32C_INV, _Q32C = (
    _F(_Q32_CENTRAL[0]),
    _F(1 / _Q32_CENTRAL[1]),
    tuple(_F(c) for c in _Q32_CENTRAL[2]),
)
_Q32T_MID, _Q32T_INV, _Q32T = (
    _F(_Q32_TAIL[0]),
    _F(1 / _Q32_TAIL[1]),
    tuple(_F(c) for c in _Q32_TAIL[2]),
)
_Q64C_MID, _Q64C_INV, _Q64C = (
    _D(_Q64_CENTRAL[0]),
    _D(1 / _Q64_CENTRAL[1]),
    tuple(_D(c) for c in _Q64_CENTRAL[2]),
)
_Q64T_MID, _Q64T_INV, _Q64T = (
    _D(_Q64_TAIL[0]),
    _D(1 / _Q64_TAIL[1]),
    tuple(_D(c) for c in _Q64_TAIL[2]),
)
_Q64F_MID, _Q64F_INV, _Q64F = (
    _D(_Q64_TAIL_FAR[0]),
    _D(1 / _Q64_TAIL_FAR[1]),
    tuple(_D(c) for c in _Q64_TAIL_FAR[2]),
)
_Q64_FAR_BELOW = _D(0.25)  # 1/s below which the far-tail piece applies


@njit(inline="always", error_model="numpy")
def _upper_quantile32(t, h):
    """``-Phi^{-1}(t)`` for ``t`` in (0, 1/2], given also ``h = 1/2 - t`` (float32)."""
    t = max(t, _TMIN32)
    w = -_log32((_F(4.0) * t) * (_F(0.5) + h))
    central = (h + h) * _horner((w - _Q32C_MID) * _Q32C_INV, _Q32C)
    s = _sqrt(w)
    tail = s * _horner((_F(1.0) / s - _Q32T_MID) * _Q32T_INV, _Q32T)
    return central if w < _W_SPLIT32 else tail


@njit(inline="always", error_model="numpy")
def _upper_quantile64(t, h):
    """``-Phi^{-1}(t)`` for ``t`` in (0, 1/2], given also ``h = 1/2 - t`` (float64)."""
    t = max(t, _TMIN64)
    w = -_log64((4.0 * t) * (0.5 + h))
    central = (h + h) * _horner((w - _Q64C_MID) * _Q64C_INV, _Q64C)
    s = _sqrt(w)
    v = 1.0 / s
    near = _horner((v - _Q64T_MID) * _Q64T_INV, _Q64T)
    far = _horner((v - _Q64F_MID) * _Q64F_INV, _Q64F)
    tail = s * (far if v < _Q64_FAR_BELOW else near)
    return central if w < _W_SPLIT64 else tail


# ------------------------------------------------------------------------------------------
# Values of one block, affine-mapped: out = loc + scale * X. Parameters ``p`` (one tuple type
# for every distribution): loc, scale, c0, c1, centred, sign, zlo, zhi, lo, hi.
# Truncated normal: x = c0 + u c1 is q = Phi(z) - 1/2 when ``centred`` (z = sign(q) g(1/2 - |q|))
# else a lower-tail probability t (z = sign g(t)); z is kept in [zlo, zhi] and the output in
# [lo, hi] (guards against the last ulp of rounding, never a pile-up).
# ------------------------------------------------------------------------------------------


@njit(inline="always", error_model="numpy")
def _trunc32(w, p):
    u = _F(w >> _S8) * _F(2.0**-24)
    x = _fma(u, p[3], p[2])
    centred = p[4] != _F(0.0)
    ax = abs(x)
    h = ax if centred else _F(0.5) - x
    t = _F(0.5) - ax if centred else x
    sign = (_F(1.0) if x >= _F(0.0) else _F(-1.0)) if centred else p[5]
    z = sign * _upper_quantile32(t, h)
    z = min(max(z, p[6]), p[7])
    return min(max(_fma(z, p[1], p[0]), p[8]), p[9])


@njit(inline="always", error_model="numpy")
def _trunc64(hi, lo, p):
    u = _D(((hi << _S32) | lo) >> _S11) * 2.0**-53
    x = _fma(u, p[3], p[2])
    centred = p[4] != 0.0
    ax = abs(x)
    h = ax if centred else 0.5 - x
    t = 0.5 - ax if centred else x
    sign = (1.0 if x >= 0.0 else -1.0) if centred else p[5]
    z = sign * _upper_quantile64(t, h)
    z = min(max(z, p[6]), p[7])
    return min(max(_fma(z, p[1], p[0]), p[8]), p[9])


@njit(inline="always", error_model="numpy")
def _uniform32(w, p):
    return _fma(_F(w >> _S8) * _F(2.0**-24), p[1], p[0])


@njit(inline="always", error_model="numpy")
def _uniform64(hi, lo, p):
    return _fma(_D(((hi << _S32) | lo) >> _S11) * 2.0**-53, p[1], p[0])


# ------------------------------------------------------------------------------------------
# Stores: float32/float64 as is; bfloat16 and float16 as their bits, rounded to nearest even
# (uint16 arrays hold bfloat16, int16 arrays float16; the caller views the tensor so).
# ------------------------------------------------------------------------------------------


@njit(inline="always", error_model="numpy")
def _bf16_bits(v):
    bits = _f32_bits(v)
    return np.uint16((bits + _U(0x7FFF) + ((bits >> _S16) & _U(1))) >> _S16)


@njit(inline="always", error_model="numpy")
def _f16_bits(v):
    bits = _f32_bits(v)
    sign = (bits >> _S16) & _U(0x8000)
    a = bits & _U(0x7FFFFFFF)
    # Normal range: rebias the exponent (127 -> 15) and round 23 -> 10 mantissa bits.
    r = a - _U(0x38000000)
    normal = (r + _U(0xFFF) + ((r >> _U(13)) & _U(1))) >> _U(13)
    normal = min(normal, _U(0x7C00))  # overflow -> infinity
    # Subnormal range (|v| < 2^-14): adding 1/2 rounds at 2^-24, the float16 quantum.
    sub = _f32_bits(_bits_f32(a) + _F(0.5)) - _U(0x3F000000)
    keep = _ZERO - _U(a >= _U(0x38800000))  # all ones where the result is normal
    return np.int16(np.uint16((normal & keep) | (sub & ~keep) | sign))


def _put(row, i, v):  # pragma: no cover - replaced by the overload in jitted code
    raise NotImplementedError


@overload(_put, inline="always")
def _put_impl(row, i, v):
    kind = row.dtype
    if kind == types.float32 or kind == types.float64:

        def store(row, i, v):
            row[i] = v

    elif kind == types.uint16:

        def store(row, i, v):
            row[i] = _bf16_bits(_F(v))

    elif kind == types.int16:

        def store(row, i, v):
            row[i] = _f16_bits(_F(v))

    else:
        return None
    return store


@njit(cache=True, error_model="numpy")
def encode_half(values, out):
    """Round float32 ``values`` into ``out``: uint16 -> bfloat16 bits, int16 -> float16 bits."""
    for i in range(values.size):
        _put(out, i, values[i])


# ------------------------------------------------------------------------------------------
# Tiles. A tile is LANES blocks; ``dst[o : o + tile]`` receives tile ``t``'s values.
# ------------------------------------------------------------------------------------------


@njit(error_model="numpy")
def _uniform_tile32(dst, o, t, k0, k1, p):
    r0 = dst[o : o + LANES]
    r1 = dst[o + LANES : o + 2 * LANES]
    r2 = dst[o + 2 * LANES : o + 3 * LANES]
    r3 = dst[o + 3 * LANES : o + 4 * LANES]
    base = _U(t) * _U(LANES)
    for lane in range(LANES):
        w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
        _put(r0, lane, _uniform32(w0, p))
        _put(r1, lane, _uniform32(w1, p))
        _put(r2, lane, _uniform32(w2, p))
        _put(r3, lane, _uniform32(w3, p))


@njit(error_model="numpy")
def _normal_tile32(dst, o, t, k0, k1, p):
    r0 = dst[o : o + LANES]
    r1 = dst[o + LANES : o + 2 * LANES]
    r2 = dst[o + 2 * LANES : o + 3 * LANES]
    r3 = dst[o + 3 * LANES : o + 4 * LANES]
    base = _U(t) * _U(LANES)
    for lane in range(LANES):
        w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
        z0, z1 = _box_muller32(w0, w1)
        z2, z3 = _box_muller32(w2, w3)
        _put(r0, lane, _fma(z0, p[1], p[0]))
        _put(r1, lane, _fma(z1, p[1], p[0]))
        _put(r2, lane, _fma(z2, p[1], p[0]))
        _put(r3, lane, _fma(z3, p[1], p[0]))


@njit(error_model="numpy")
def _truncated_tile32(dst, o, t, k0, k1, p):
    r0 = dst[o : o + LANES]
    r1 = dst[o + LANES : o + 2 * LANES]
    r2 = dst[o + 2 * LANES : o + 3 * LANES]
    r3 = dst[o + 3 * LANES : o + 4 * LANES]
    base = _U(t) * _U(LANES)
    for lane in range(LANES):
        w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
        _put(r0, lane, _trunc32(w0, p))
        _put(r1, lane, _trunc32(w1, p))
        _put(r2, lane, _trunc32(w2, p))
        _put(r3, lane, _trunc32(w3, p))


@njit(error_model="numpy")
def _uniform_tile64(dst, o, t, k0, k1, p):
    r0 = dst[o : o + LANES]
    r1 = dst[o + LANES : o + 2 * LANES]
    base = _U(t) * _U(LANES)
    for lane in range(LANES):
        w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
        _put(r0, lane, _uniform64(w0, w1, p))
        _put(r1, lane, _uniform64(w2, w3, p))


@njit(error_model="numpy")
def _normal_tile64(dst, o, t, k0, k1, p):
    r0 = dst[o : o + LANES]
    r1 = dst[o + LANES : o + 2 * LANES]
    base = _U(t) * _U(LANES)
    for lane in range(LANES):
        w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
        z0, z1 = _box_muller64((w0 << _S32) | w1, (w2 << _S32) | w3)
        _put(r0, lane, _fma(z0, p[1], p[0]))
        _put(r1, lane, _fma(z1, p[1], p[0]))


@njit(error_model="numpy")
def _truncated_tile64(dst, o, t, k0, k1, p):
    r0 = dst[o : o + LANES]
    r1 = dst[o + LANES : o + 2 * LANES]
    base = _U(t) * _U(LANES)
    for lane in range(LANES):
        w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
        _put(r0, lane, _trunc64(w0, w1, p))
        _put(r1, lane, _trunc64(w2, w3, p))


# ------------------------------------------------------------------------------------------
# Entry points, serial and parallel: ``out`` (1-D, contiguous, a whole number of tiles)
# receives tiles first_tile, first_tile + 1, ...; ``k0, k1`` the key words, ``p`` the
# parameters. ``out`` is float32 / uint16 (bfloat16 bits) / int16 (float16 bits) for the
# single-precision kernels, any of those or float64 for the double-precision ones.
# ------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, error_model="numpy")
def uniform_single(out, first_tile, k0, k1, p):
    for i in range(out.size // SINGLE_TILE):
        _uniform_tile32(out, i * SINGLE_TILE, first_tile + i, k0, k1, p)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def uniform_single_parallel(out, first_tile, k0, k1, p):
    for i in prange(out.size // SINGLE_TILE):
        _uniform_tile32(out, i * SINGLE_TILE, first_tile + i, k0, k1, p)


@njit(cache=True, nogil=True, error_model="numpy")
def normal_single(out, first_tile, k0, k1, p):
    for i in range(out.size // SINGLE_TILE):
        _normal_tile32(out, i * SINGLE_TILE, first_tile + i, k0, k1, p)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def normal_single_parallel(out, first_tile, k0, k1, p):
    for i in prange(out.size // SINGLE_TILE):
        _normal_tile32(out, i * SINGLE_TILE, first_tile + i, k0, k1, p)


@njit(cache=True, nogil=True, error_model="numpy")
def truncated_single(out, first_tile, k0, k1, p):
    for i in range(out.size // SINGLE_TILE):
        _truncated_tile32(out, i * SINGLE_TILE, first_tile + i, k0, k1, p)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def truncated_single_parallel(out, first_tile, k0, k1, p):
    for i in prange(out.size // SINGLE_TILE):
        _truncated_tile32(out, i * SINGLE_TILE, first_tile + i, k0, k1, p)


@njit(cache=True, nogil=True, error_model="numpy")
def uniform_double(out, first_tile, k0, k1, p):
    for i in range(out.size // DOUBLE_TILE):
        _uniform_tile64(out, i * DOUBLE_TILE, first_tile + i, k0, k1, p)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def uniform_double_parallel(out, first_tile, k0, k1, p):
    for i in prange(out.size // DOUBLE_TILE):
        _uniform_tile64(out, i * DOUBLE_TILE, first_tile + i, k0, k1, p)


@njit(cache=True, nogil=True, error_model="numpy")
def normal_double(out, first_tile, k0, k1, p):
    for i in range(out.size // DOUBLE_TILE):
        _normal_tile64(out, i * DOUBLE_TILE, first_tile + i, k0, k1, p)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def normal_double_parallel(out, first_tile, k0, k1, p):
    for i in prange(out.size // DOUBLE_TILE):
        _normal_tile64(out, i * DOUBLE_TILE, first_tile + i, k0, k1, p)


@njit(cache=True, nogil=True, error_model="numpy")
def truncated_double(out, first_tile, k0, k1, p):
    for i in range(out.size // DOUBLE_TILE):
        _truncated_tile64(out, i * DOUBLE_TILE, first_tile + i, k0, k1, p)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def truncated_double_parallel(out, first_tile, k0, k1, p):
    for i in prange(out.size // DOUBLE_TILE):
        _truncated_tile64(out, i * DOUBLE_TILE, first_tile + i, k0, k1, p)
