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

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from initlab import rng_constants as _C

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


@intrinsic
def _wide_vectors(typingctx):
    """Let LLVM vectorize the calling function with 512-bit registers where the CPU has them.

    LLVM's tuning for recent Xeons prefers 256-bit vectors (the clock penalty of 512-bit
    instructions on older parts); the kernels' 64-bit Philox lanes and float32 transforms
    measured 1.15x (uniform) to 2.6x (truncated normal) faster with 512 on this project's
    Emerald Rapids machine. The values do not change: no loop reassociates (no fast-math),
    so the vector width only decides how many lanes run at once. Elsewhere (AVX2, Arm) the
    attribute asks for more than the CPU has, and LLVM keeps its widest."""

    def codegen(context, builder, signature, args):
        # llvmlite's attribute set knows no key-value attributes: added past its check (and
        # left out, the kernels only slower, should a later llvmlite's set not be a set).
        try:
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        except TypeError:  # pragma: no cover - llvmlite 0.50's AttributeSet is a set
            pass
        return context.get_dummy_value()

    return types.none(), codegen


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
# The constants live in initlab.rng_constants (shared with the torch backend); numba's cache
# is invalidated by edits of this file only, hence the digest written here and checked.
_CONSTANTS_DIGEST = "a86b9b445b2fb850"
if _C.digest() != _CONSTANTS_DIGEST:  # pragma: no cover - a development-time guard
    raise RuntimeError(
        f"initlab.rng_constants changed (digest {_C.digest()}): write it as _CONSTANTS_DIGEST "
        "in initlab/fastrng/_kernels.py, so that numba's cached kernels are recompiled."
    )
_ATANH32 = _C.ATANH32
_ATANH64 = _C.ATANH64
_COS32 = _C.COS32
_COS64 = _C.COS64
_LN2_32 = _C.LN2_32
_LN2_HI = _C.LN2_HI
_LN2_LO = _C.LN2_LO
_Q32C = _C.Q32C
_Q32C_INV = _C.Q32C_INV
_Q32C_MID = _C.Q32C_MID
_Q32T = _C.Q32T
_Q32T_INV = _C.Q32T_INV
_Q32T_MID = _C.Q32T_MID
_Q64C = _C.Q64C
_Q64C_INV = _C.Q64C_INV
_Q64C_MID = _C.Q64C_MID
_Q64F = _C.Q64F
_Q64F_INV = _C.Q64F_INV
_Q64F_MID = _C.Q64F_MID
_Q64T = _C.Q64T
_Q64T_INV = _C.Q64T_INV
_Q64T_MID = _C.Q64T_MID
_Q64_FAR_BELOW = _C.Q64_FAR_BELOW
_SIN32 = _C.SIN32
_SIN64 = _C.SIN64
_SQRT2_32 = _C.SQRT2_32
_SQRT2_64 = _C.SQRT2_64
_TMIN32 = _C.TMIN32
_TMIN64 = _C.TMIN64
_W_SPLIT32 = _C.W_SPLIT32
_W_SPLIT64 = _C.W_SPLIT64


def _horner(x, c):  # pragma: no cover - replaced by the overload in jitted code
    raise NotImplementedError


@overload(_horner, inline="always")
def _horner_impl(x, c):
    """Horner's rule written out for the tuple's length (no loop to vectorize): with fma in
    float64, with a multiplication and an addition (two roundings) in float32, the
    operations the torch backend (:mod:`initlab.torch.philox`) repeats bit for bit."""
    if not isinstance(c, types.UniTuple):
        return None
    lines = ["def horner(x, c):", "    acc = c[0]"]
    if c.dtype == types.float32:
        lines += [f"    acc = acc * x + c[{i}]" for i in range(1, c.count)]
    else:
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
    return _F(np.int32(e)) * _LN2_32 + _log1p_reduced32(m - _F(1.0))  # see _neg_log_unit32


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
    high = np.int32(np.uint32(a)) < np.int32(0)  # a >= 2^31
    f = f_high if high else f_low
    e = e_high if high else e_low
    # The exponent goes to float32 from int32 (exact: |e| <= 32), and the test of a's top bit
    # is a 32-bit compare: a 64-bit conversion or compare has no 16-lane vector instruction,
    # and the two cost 10% of a normal fill (the same values either way).
    return -(_F(np.int32(e)) * _LN2_32 + _log1p_reduced32(f))


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


@njit(inline="always", error_model="numpy")
def _quantile_w32(t, h):
    """``w = -log(4 t (1 - t))``, the variable of both quantile pieces (float32)."""
    t = max(t, _TMIN32)
    return -_log32((_F(4.0) * t) * (_F(0.5) + h))


@njit(inline="always", error_model="numpy")
def _central_quantile32(h, w):
    """The central piece of ``-Phi^{-1}(t)``, for ``w < W_SPLIT32``."""
    return (h + h) * _horner((w - _Q32C_MID) * _Q32C_INV, _Q32C)


@njit(inline="always", error_model="numpy")
def _upper_quantile32(t, h):
    """``-Phi^{-1}(t)`` for ``t`` in (0, 1/2], given also ``h = 1/2 - t`` (float32)."""
    w = _quantile_w32(t, h)
    central = _central_quantile32(h, w)
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
def _trunc_args32(w, p):
    """The lower-tail probability ``t``, ``h = 1/2 - t`` and the sign of word ``w``'s value."""
    u = _F(np.int32(w >> _S8)) * _F(2.0**-24)
    x = u * p[3] + p[2]
    centred = p[4] != _F(0.0)
    ax = abs(x)
    h = ax if centred else _F(0.5) - x
    t = _F(0.5) - ax if centred else x
    sign = (_F(1.0) if x >= _F(0.0) else _F(-1.0)) if centred else p[5]
    return t, h, sign


@njit(inline="always", error_model="numpy")
def _trunc_output32(z, p):
    z = min(max(z, p[6]), p[7])
    return min(max(z * p[1] + p[0], p[8]), p[9])


@njit(inline="always", error_model="numpy")
def _trunc32(w, p):
    t, h, sign = _trunc_args32(w, p)
    return _trunc_output32(sign * _upper_quantile32(t, h), p)


@njit(inline="always", error_model="numpy")
def _trunc32_central(w, p):
    """``_trunc32(w, p)`` where its quantile takes the central piece, else NaN (the tail,
    ``|z| > 2.9``, is left to :func:`_patch_tails32`): the vectorized loop skips the
    tail's square root, division and polynomial that it would otherwise compute for every
    value and throw away. The same operations as ``_trunc32``, hence the same bits."""
    t, h, sign = _trunc_args32(w, p)
    w = _quantile_w32(t, h)
    value = _trunc_output32(sign * _central_quantile32(h, w), p)
    return value if w < _W_SPLIT32 else _F(np.nan)


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
    return (_F(np.int32(v)) * _F(2.0**-24)) * p[1] + p[0]


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
    # In uint32 throughout (numba would widen each step to 64 bits, which AVX-512 runs at 8
    # lanes, not 16: float16 fills 1.15x faster); no value that is kept ever exceeds 32 bits.
    W = np.uint32
    bits = W(_f32_bits(v))
    sign = W(W(bits >> W(16)) & W(0x8000))
    a = W(bits & W(0x7FFFFFFF))
    # Normal range: rebias the exponent (127 -> 15) and round 23 -> 10 mantissa bits.
    r = W(a - W(0x38000000))
    normal = W(W(W(r + W(0xFFF)) + W(W(r >> W(13)) & W(1))) >> W(13))
    normal = W(0x7C00) if normal > W(0x7C00) else normal  # overflow -> infinity
    # Subnormal range (|v| < 2^-14): adding 1/2 rounds at 2^-24, the float16 quantum.
    sub = W(W(_f32_bits(_bits_f32(_U(a)) + _F(0.5))) - W(0x3F000000))
    return np.int16(np.uint16(W((normal if a >= W(0x38800000) else sub) | sign)))


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


def _value(row, i):  # pragma: no cover - replaced by the overload in jitted code
    raise NotImplementedError


@overload(_value, inline="always")
def _value_impl(row, i):
    """The value ``row[i]`` holds, exactly: float64 for float64, else float32 (bfloat16 and
    float16 bits decoded)."""
    kind = row.dtype
    if kind == types.float32 or kind == types.float64:

        def plain(row, i):
            return row[i]

        return plain
    if kind == types.uint16:

        def bfloat16(row, i):
            return _bits_f32(_U(row[i]) << _S16)

        return bfloat16
    if kind == types.int16:

        def float16(row, i):
            # Branch-free: the magnitude's bits moved into a float32 with the float16
            # exponent bias, times 2^112 (exact, subnormals included); infinity and NaN get
            # the float32 exponent field first.
            # In uint32, as _f16_bits (16 lanes a vector, not 8).
            W = np.uint32
            h = W(np.uint16(row[i]))
            a = W(h & W(0x7FFF))
            bits = W(W(a << W(13)) + W(W(a >= W(0x7C00)) * W(0x70000000)))
            return _bits_f32(_U(W(bits | W(W(h & W(0x8000)) << W(16))))) * _F(2.0**112)

        return float16
    return None


@njit(inline="always", error_model="numpy")
def _accumulate(out, a, b, acc):
    """Add the values ``out[a:b]`` holds, and their squares, to the per-lane sums ``acc``:
    ``(acc)`` in float64 and ``(part, part_squares)``, per-lane partial sums in the
    kernel's precision (float32 for single: 16 lanes a vector), flushed into the float64 sums
    at the end of every call (a group of ``_STATS_GROUP`` tiles: at most 80 values a lane, so
    a partial sum's rounding error stays below ``80 * 2^-24 = 5e-6`` of its values'
    magnitudes). Vectorized, no reassociation: four rows of 64 at a time, each lane adding
    its four values in row order (the same sums as row by row wherever the values have the
    partials' precision, with a quarter of the partials' loads and stores). The rows are
    slices, indexed from 0: an index that might be negative (``out[j + lane]``) makes LLVM
    gather the values one by one.
    """
    sums, squares, part, part_squares = acc
    fours = a + (b - a) // (4 * LANES) * (4 * LANES)
    for j in range(a, fours, 4 * LANES):
        r0, r1 = out[j : j + LANES], out[j + LANES : j + 2 * LANES]
        r2, r3 = out[j + 2 * LANES : j + 3 * LANES], out[j + 3 * LANES : j + 4 * LANES]
        for lane in range(LANES):
            x0, x1, x2, x3 = _value(r0, lane), _value(r1, lane), _value(r2, lane), _value(r3, lane)
            part[lane] = (((part[lane] + x0) + x1) + x2) + x3
            part_squares[lane] = (((part_squares[lane] + x0 * x0) + x1 * x1) + x2 * x2) + x3 * x3
    whole = a + (b - a) // LANES * LANES
    for j in range(fours, whole, LANES):
        row = out[j : j + LANES]
        for lane in range(LANES):
            x = _value(row, lane)
            part[lane] += x
            part_squares[lane] += x * x
    rest = out[whole:b]
    for k in range(b - whole):
        x = _value(rest, k)
        part[(whole + k) % LANES] += x
        part_squares[(whole + k) % LANES] += x * x
    for lane in range(LANES):
        sums[lane] += part[lane]
        squares[lane] += part_squares[lane]
        part[lane] = 0
        part_squares[lane] = 0


@njit(cache=True, error_model="numpy")
def stored_value(row):
    """The float64 value ``row[0]`` holds (bfloat16 as uint16 bits, float16 as int16 bits)."""
    return _D(_value(row, 0))


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


@njit(inline="always", error_model="numpy")
def _patch_tails32(r0, r1, r2, r3, base, k0, k1, p):
    """Write the truncated-normal values left NaN (in a quantile's tail) by the vectorized
    loop: a few per thousand values at most, each from its block's words drawn again."""
    for lane in range(LANES):
        if (r0[lane] != r0[lane]) | (r1[lane] != r1[lane]) | (r2[lane] != r2[lane]) | (
            r3[lane] != r3[lane]
        ):
            w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
            r0[lane] = _trunc32(w0, p) if r0[lane] != r0[lane] else r0[lane]
            r1[lane] = _trunc32(w1, p) if r1[lane] != r1[lane] else r1[lane]
            r2[lane] = _trunc32(w2, p) if r2[lane] != r2[lane] else r2[lane]
            r3[lane] = _trunc32(w3, p) if r3[lane] != r3[lane] else r3[lane]


@njit(error_model="numpy")
def _tile_single(dst, o, t, k0, k1, p, dist):
    _wide_vectors()
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
            r0[lane] = z0 * p[1] + p[0]
            r1[lane] = z1 * p[1] + p[0]
            r2[lane] = z2 * p[1] + p[0]
            r3[lane] = z3 * p[1] + p[0]
    else:
        tails = False
        for lane in range(LANES):
            w0, w1, w2, w3 = _block(base + _U(lane), k0, k1)
            v0, v1 = _trunc32_central(w0, p), _trunc32_central(w1, p)
            v2, v3 = _trunc32_central(w2, p), _trunc32_central(w3, p)
            r0[lane], r1[lane], r2[lane], r3[lane] = v0, v1, v2, v3
            tails |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3)
        if tails:
            _patch_tails32(r0, r1, r2, r3, base, k0, k1, p)


@njit(error_model="numpy")
def _tile_double(dst, o, t, k0, k1, p, dist):
    _wide_vectors()
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
    """``out[i] = scratch[i - start]`` where both exist: through slices indexed from 0, which
    LLVM copies with vector loads and stores (indices it cannot prove non-negative made it
    gather and scatter each value)."""
    lo, hi = max(start, 0), min(start + scratch.size, out.size)
    dst, src = out[lo:hi], scratch[lo - start : hi - start]
    for k in range(hi - lo):
        _put(dst, k, src[k])


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
def _edges(out, first, k0, k1, p, dist, scratch, acc, stats):
    """Write the tiles only partly inside ``out``; return the whole tiles' range [t0, t1)."""
    tile = scratch.size
    head, tail, t0, t1 = _span(first, out.size, tile)
    for t in (head, tail):
        if t >= 0:
            start = t * tile - first
            _compute(scratch, t, k0, k1, p, dist)
            _copy_in(out, scratch, start)
            if stats:
                _accumulate(out, max(start, 0), min(start + tile, out.size), acc)
    return t0, t1


#: Tiles written before their sum is taken: 16 tiles (at most 20 KiB of float32) stay in L1.
_STATS_GROUP = 16


@njit(inline="always", error_model="numpy")
def _whole_tiles(out, first, t0, t1, k0, k1, p, dist, scratch, acc, stats):
    tile = scratch.size
    if not stats:
        for t in range(t0, t1):
            _emit(out, t * tile - first, t, k0, k1, p, dist, scratch)
        return 0.0, 0.0
    for g in range(t0, t1, _STATS_GROUP):
        end = min(g + _STATS_GROUP, t1)
        for t in range(g, end):
            _emit(out, t * tile - first, t, k0, k1, p, dist, scratch)
        _accumulate(out, g * tile - first, end * tile - first, acc)  # still in L1
    return acc[0].sum(), acc[1].sum()


@njit(cache=True, nogil=True, error_model="numpy")
def fill_single(out, first, keys, params, dist, stats):
    """Fill ``out``; return the sum and the sum of squares of the values it now holds
    (``stats`` true; else (0, 0): adding them up costs time a plain fill need not spend)."""
    _wide_vectors()
    acc = (np.zeros(LANES), np.zeros(LANES), np.zeros(LANES, _F), np.zeros(LANES, _F))
    if out.size == 0:
        return 0.0, 0.0
    p, k0, k1 = _unpack(params), keys[0], keys[1]
    tile = UNIFORM_SINGLE_TILE if dist == UNIFORM else SINGLE_TILE
    scratch = np.empty(tile, dtype=np.float32)
    t0, t1 = _edges(out, first, k0, k1, p, dist, scratch, acc, stats)
    return _whole_tiles(out, first, t0, t1, k0, k1, p, dist, scratch, acc, stats)


@njit(cache=True, nogil=True, error_model="numpy")
def fill_double(out, first, keys, params, dist, stats):
    """Fill ``out``; return the sum and the sum of squares of the values it now holds
    (``stats`` true; else (0, 0))."""
    _wide_vectors()
    acc = (np.zeros(LANES), np.zeros(LANES), np.zeros(LANES), np.zeros(LANES))
    if out.size == 0:
        return 0.0, 0.0
    p, k0, k1 = _unpack(params), keys[0], keys[1]
    scratch = np.empty(DOUBLE_TILE, dtype=np.float64)
    t0, t1 = _edges(out, first, k0, k1, p, dist, scratch, acc, stats)
    return _whole_tiles(out, first, t0, t1, k0, k1, p, dist, scratch, acc, stats)
