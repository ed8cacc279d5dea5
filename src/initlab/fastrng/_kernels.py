r"""Numba kernels of initlab's counter-based generator (all jitted code lives in this file).

Every value is a pure function of ``(key, index)``: Philox4x32-10 (Salmon et al. 2011) of a
64-bit block counter under the 64-bit key gives four 32-bit words, and fixed arithmetic turns
them into values. Nothing depends on the thread count, the loop's vector width or where a
slice starts, so a fill is bitwise reproducible: the arithmetic is IEEE (no fast-math), fused
multiply-adds are explicit (``llvm.fma``), and ``log``/``sin``/``cos``/the normal quantile are
polynomials written here instead of the platform's libm.

Layout. Values come in tiles of ``LANES = 64`` consecutive blocks; a block gives ``V`` values
(single precision: ``V = 5`` for the uniform, 4 otherwise; double: ``V = 2``) and value ``j``
of block ``t * LANES + l`` is element ``t * V * LANES + j * LANES + l``. Each of the ``V``
rows of a tile is contiguous, so the loop over ``l`` vectorizes with plain stores.

Values per precision (``w0..w3`` the block's words):

======  =====================================  ==========================================
        single (float32; bf16/f16 round it)     double (float64)
======  =====================================  ==========================================
U       ``(w_j >> 8) 2^-24`` in [0, 1), rows    ``(w_2j:w_2j+1 >> 11) 2^-53`` in [0, 1)
        0-3; row 4 the low bytes of w0, w1, w2
N       Box-Muller: ``(w0, w1)`` -> rows 0, 1;  Box-Muller: ``(w0:w1, w2:w3)`` -> rows 0, 1
        ``(w2, w3)`` -> rows 2, 3
TN      inverse CDF of U (row j from ``w_j``)   inverse CDF of U
======  =====================================  ==========================================

Box-Muller on words ``(a, b)``: ``r = sqrt(-2 log u1)`` with ``u1 = (a + 1/2) 2^-32``
(single; ``-log u1`` computed from ``1 - u1`` above 1/2, so small radii keep their bits) or
``(a >> 11 + 1/2) 2^-53`` (double), hence ``|z| <= 6.77`` (single) or ``8.7`` (double); the
angle ``2 pi (v + 1/2) / 2^24`` (single, ``v = b >> 8``; ``2^53`` and ``b >> 11`` double) is
split exactly in integers into a quadrant and ``x`` in (-1/2, 1/2), and ``sin(pi x / 2)``,
``cos(pi x / 2)`` are Taylor polynomials. Rows get ``r cos`` and ``r sin``.

Jitted code is cached on disk by numba (``cache=True``); keeping it all in this one file
means the cache can never go stale against a helper edited elsewhere.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

LANES = 64
SINGLE_PER_BLOCK = 4
DOUBLE_PER_BLOCK = 2
SINGLE_TILE = SINGLE_PER_BLOCK * LANES
#: The single-precision uniform takes a fifth value from the words' low bytes.
UNIFORM_SINGLE_PER_BLOCK = 5
UNIFORM_SINGLE_TILE = UNIFORM_SINGLE_PER_BLOCK * LANES
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
        t = args[0].type
        fn = builder.module.declare_intrinsic("llvm.fma", [t], ir.FunctionType(t, [t, t, t]))
        return builder.call(fn, args)

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
def _log1p_reduced32(f):
    """log(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1], by atanh: accurate for tiny f too."""
    s = f / (f + _F(2.0))
    return (s + s) * _horner(s * s, _ATANH32)


@njit(inline="always", error_model="numpy")
def _log32(x):
    """Natural log of a positive normal float32 (error below 2 ulp)."""
    bits = _f32_bits(x)
    e = np.int64(bits >> _S23) - 127
    m = _bits_f32((bits & _U(0x7FFFFF)) | _U(0x3F800000))
    big = m > _SQRT2_32
    m = m * _F(0.5) if big else m
    e = e + 1 if big else e
    return _fma(_F(e), _LN2_32, _log1p_reduced32(m - _F(1.0)))


@njit(inline="always", error_model="numpy")
def _neg_log_unit32(a):
    """``-log(u)``, ``u = (a + 1/2) 2^-32`` for a 32-bit word ``a``: accurate at both ends.

    Below 1/2, ``u``'s own exponent and mantissa; above, ``u = 1 - v`` with ``v`` built
    from ``2^32 - 1 - a``, so that ``-log(u)`` near 0 keeps every bit (no float32 rounding
    of ``u`` to 1).
    """
    u = (_F(np.uint32(a)) + _F(0.5)) * _F(2.0**-32)
    bits = _f32_bits(u)
    e_low = np.int64(bits >> _S23) - 127
    m = _bits_f32((bits & _U(0x7FFFFF)) | _U(0x3F800000))
    big = m > _SQRT2_32
    f_low = (m * _F(0.5) if big else m) - _F(1.0)
    e_low = e_low + 1 if big else e_low
    v = (_F(np.uint32(_M32 - a)) + _F(0.5)) * _F(2.0**-32)
    near = v <= _F(1.0 - 0.5**0.5)
    f_high = -v if near else _F(1.0) - (v + v)
    e_high = 0 if near else -1
    high = a >= _U(1 << 31)
    f = f_high if high else f_low
    e = e_high if high else e_low
    return -_fma(_F(e), _LN2_32, _log1p_reduced32(f))


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
    """(cos, sin) of the angle ``2 pi (v + 1/2) / 2^24``, ``v = b >> 8``: never a multiple
    of pi/2, so no value is exactly 0."""
    v = b >> _S8
    kk = (v + _U(1 << 21)) >> _U(22)
    x = (_F(np.int32(np.int64(v) - np.int64(kk << _U(22)))) + _F(0.5)) * _F(2.0**-22)
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
    """(cos, sin) of the angle ``2 pi (v + 1/2) / 2^53``, ``v = b >> 11``."""
    v = b >> _S11
    kk = (v + _U(1 << 50)) >> _U(51)
    x = (_D(np.int64(v) - np.int64(kk << _U(51))) + 0.5) * 2.0**-51
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
    r = _sqrt(_F(2.0) * _neg_log_unit32(a))
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
    u = _F(np.int32(w >> _S8)) * _F(2.0**-24)
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


UNIFORM, NORMAL, TRUNCATED = 0, 1, 2


@njit(inline="always", error_model="numpy")
def _uniform32(v, p):
    """``loc + scale * v 2^-24`` for a 24-bit integer ``v``."""
    return _fma(_F(np.int32(v)) * _F(2.0**-24), p[1], p[0])


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
    normal = _U(0x7C00) if normal > _U(0x7C00) else normal  # overflow -> infinity
    # Subnormal range (|v| < 2^-14): adding 1/2 rounds at 2^-24, the float16 quantum.
    sub = _f32_bits(_bits_f32(a) + _F(0.5)) - _U(0x3F000000)
    return np.int16(np.uint16((normal if a >= _U(0x38800000) else sub) | sign))


def _put(row, i, v):  # pragma: no cover - replaced by the overload in jitted code
    raise NotImplementedError


@overload(_put)
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
# Tiles: ``dst[o : o + tile]`` (float32 for single precision, float64 for double) receives
# tile ``t`` (blocks t * LANES ... t * LANES + 63). One vectorized loop per distribution; the
# branch is taken once per tile. Other output dtypes go through a one-tile scratch buffer
# (``_emit``), so the expensive loops are compiled once per precision, not once per dtype.
# ------------------------------------------------------------------------------------------


@njit(error_model="numpy")
def _tile_single(dst, o, t, k0, k1, p, dist):
    r0 = dst[o : o + LANES]
    r1 = dst[o + LANES : o + 2 * LANES]
    r2 = dst[o + 2 * LANES : o + 3 * LANES]
    r3 = dst[o + 3 * LANES : o + 4 * LANES]
    base = _U(t) * _U(LANES)
    if dist == UNIFORM:
        r4 = dst[o + 4 * LANES : o + 5 * LANES]
        for lane in range(LANES):
            w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
            r0[lane] = _uniform32(w0 >> _S8, p)
            r1[lane] = _uniform32(w1 >> _S8, p)
            r2[lane] = _uniform32(w2 >> _S8, p)
            r3[lane] = _uniform32(w3 >> _S8, p)
            low = (w0 & _U(0xFF)) | ((w1 & _U(0xFF)) << _S8) | ((w2 & _U(0xFF)) << _S16)
            r4[lane] = _uniform32(low, p)
    elif dist == NORMAL:
        for lane in range(LANES):
            w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
            z0, z1 = _box_muller32(w0, w1)
            z2, z3 = _box_muller32(w2, w3)
            r0[lane] = _fma(z0, p[1], p[0])
            r1[lane] = _fma(z1, p[1], p[0])
            r2[lane] = _fma(z2, p[1], p[0])
            r3[lane] = _fma(z3, p[1], p[0])
    else:
        for lane in range(LANES):
            w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
            r0[lane] = _trunc32(w0, p)
            r1[lane] = _trunc32(w1, p)
            r2[lane] = _trunc32(w2, p)
            r3[lane] = _trunc32(w3, p)


@njit(error_model="numpy")
def _tile_double(dst, o, t, k0, k1, p, dist):
    r0 = dst[o : o + LANES]
    r1 = dst[o + LANES : o + 2 * LANES]
    base = _U(t) * _U(LANES)
    if dist == UNIFORM:
        for lane in range(LANES):
            w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
            r0[lane] = _uniform64(w0, w1, p)
            r1[lane] = _uniform64(w2, w3, p)
    elif dist == NORMAL:
        for lane in range(LANES):
            w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
            z0, z1 = _box_muller64((w0 << _S32) | w1, (w2 << _S32) | w3)
            r0[lane] = _fma(z0, p[1], p[0])
            r1[lane] = _fma(z1, p[1], p[0])
    else:
        for lane in range(LANES):
            w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
            r0[lane] = _trunc64(w0, w1, p)
            r1[lane] = _trunc64(w2, w3, p)


# ------------------------------------------------------------------------------------------
# Entry points. ``out`` (1-D, contiguous) receives elements [first, first + out.size) of the
# stream; ``keys`` holds the key words (k0, k1), ``params`` the 10 parameters (float32 for
# single precision, float64 for double); ``dist`` is UNIFORM, NORMAL or TRUNCATED. ``out`` is
# float32 / uint16 (bfloat16 bits) / int16 (float16 bits) / float64. Tiles only partly inside
# ``out`` go through a one-tile scratch buffer; the others are written in place.
# ------------------------------------------------------------------------------------------


@njit(inline="always", error_model="numpy")
def _unpack(params):
    return (
        params[0], params[1], params[2], params[3], params[4],
        params[5], params[6], params[7], params[8], params[9],
    )  # fmt: skip


@njit(inline="always", error_model="numpy")
def _span(first, n, tile):
    """Partial tiles at the ends (head, tail; -1 if none) and the whole tiles [t0, t1)."""
    ta, tb = first // tile, (first + n - 1) // tile
    t0 = -(-first // tile)
    t1 = max((first + n) // tile, t0)
    head = ta if ta < t0 else -1
    tail = tb if tb >= t1 and tb != head else -1
    return head, tail, t0, t1


@njit(inline="always", error_model="numpy")
def _copy_in(out, scratch, start):
    for i in range(max(start, 0), min(start + scratch.size, out.size)):
        _put(out, i, scratch[i - start])


def _compute(scratch, t, k0, k1, p, dist):  # pragma: no cover - overloaded below
    raise NotImplementedError


@overload(_compute, inline="always")
def _compute_impl(scratch, t, k0, k1, p, dist):
    """Tile ``t`` into ``scratch``: the single kernel for float32, the double for float64."""
    if scratch.dtype == types.float32:

        def single(scratch, t, k0, k1, p, dist):
            _tile_single(scratch, 0, t, k0, k1, p, dist)

        return single

    def double(scratch, t, k0, k1, p, dist):
        _tile_double(scratch, 0, t, k0, k1, p, dist)

    return double


def _emit(out, o, t, k0, k1, p, dist, scratch):  # pragma: no cover - overloaded below
    raise NotImplementedError


@overload(_emit, inline="always")
def _emit_impl(out, o, t, k0, k1, p, dist, scratch):
    """Whole tile ``t`` into ``out[o:]``: in place if ``out`` has the compute dtype."""
    if out.dtype == scratch.dtype == types.float32:

        def direct_single(out, o, t, k0, k1, p, dist, scratch):
            _tile_single(out, o, t, k0, k1, p, dist)

        return direct_single
    if out.dtype == scratch.dtype == types.float64:

        def direct_double(out, o, t, k0, k1, p, dist, scratch):
            _tile_double(out, o, t, k0, k1, p, dist)

        return direct_double

    def through_scratch(out, o, t, k0, k1, p, dist, scratch):
        _compute(scratch, t, k0, k1, p, dist)
        dst = out[o : o + scratch.size]
        for i in range(scratch.size):
            _put(dst, i, scratch[i])

    return through_scratch


@njit(inline="always", error_model="numpy")
def _edges(out, first, k0, k1, p, dist, scratch):
    """Write the tiles only partly inside ``out``; return the whole tiles' range [t0, t1)."""
    tile = scratch.size
    head, tail, t0, t1 = _span(first, out.size, tile)
    for t in (head, tail):
        if t >= 0:
            _compute(scratch, t, k0, k1, p, dist)
            _copy_in(out, scratch, t * tile - first)
    return t0, t1


@njit(cache=True, nogil=True, error_model="numpy")
def fill_single(out, first, keys, params, dist):
    if out.size == 0:
        return
    p, k0, k1 = _unpack(params), keys[0], keys[1]
    tile = UNIFORM_SINGLE_TILE if dist == UNIFORM else SINGLE_TILE
    scratch = np.empty(tile, dtype=np.float32)
    t0, t1 = _edges(out, first, k0, k1, p, dist, scratch)
    for t in range(t0, t1):
        _emit(out, t * tile - first, t, k0, k1, p, dist, scratch)


@njit(cache=True, nogil=True, error_model="numpy")
def fill_double(out, first, keys, params, dist):
    if out.size == 0:
        return
    p, k0, k1 = _unpack(params), keys[0], keys[1]
    scratch = np.empty(DOUBLE_TILE, dtype=np.float64)
    t0, t1 = _edges(out, first, k0, k1, p, dist, scratch)
    for t in range(t0, t1):
        _emit(out, t * DOUBLE_TILE - first, t, k0, k1, p, dist, scratch)
