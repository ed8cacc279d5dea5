r"""A :class:`~initlab.rng.Draw` as the generator's ten parameters, for either backend.

Numba-free (NumPy only), so that the numba kernels (:mod:`initlab.fastrng`) and the torch
backend (:mod:`initlab.torch.philox`) compute exactly the same parameters, and the torch
backend works where numba is not installed.

:func:`kernel_params` gives ``(precision, (loc, scale, c0, c1, centred, sign, zlo, zhi, lo,
hi))``: ``out = loc + scale * X``; for the truncated normal ``x = c0 + u c1`` is the
probability coordinate below, ``z`` is kept in ``[zlo, zhi]`` and the output in ``[lo, hi]``
(guards against the last ulp of rounding, never a pile-up).

How the truncated-normal kernels map a uniform ``u`` to a normal conditioned on [low, high].

The kernels invert the CDF: ``z = Phi^{-1}(Phi(low) + u (Phi(high) - Phi(low)))``, which is
the exact truncated distribution (no rejection, no clamping pile-up). Written naively that
loses everything in the tails (``Phi(5) = 1 - 2.9e-7`` is 1.0 in float32), so the kernels take
the probability in one of two coordinates, chosen here once per call:

* centred, ``q = Phi(z) - 1/2`` in [-1/2, 1/2): best near zero; used when the interval
  contains 0 or comes within 1 of it. The kernel gets ``z = sign(q) g(1/2 - |q|)``.
* tail, ``t = Phi(-|z|)`` (the interval mirrored into the lower half when it lies above 0):
  relative precision however deep in the tail. ``z = sign * g(t)``.

``g(t) = -Phi^{-1}(t)`` is the polynomial quantile of :mod:`initlab.fastrng.quantile_fit`.
The single-precision kernel evaluates ``t`` down to ``2^-100``; an interval whose upper tail
probability is below ``2^-70`` (farther than ~11.3 sigma into a tail) goes to the double
kernel (down to ``1e-300``); one below ``1e-280`` (~35.8 sigma) has no probability mass a
float64 can hold and is refused.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from initlab._validation import check_choice, check_real

__all__ = ["DISTRIBUTIONS", "Truncation", "kernel_params", "plan_truncation"]

DISTRIBUTIONS = ("uniform", "normal", "truncated_normal")

_SINGLE_MIN_MASS = 2.0**-70
_DOUBLE_MIN_MASS = 1e-280
_SINGLE_T_MIN = 2.0**-100
_DOUBLE_T_MIN = 1e-300
_SQRT_HALF = math.sqrt(0.5)


@dataclass(frozen=True)
class Truncation:
    """Kernel parameters: ``x = c0 + u * c1``; centred or tail coordinate; sign; precision."""

    c0: float
    c1: float
    centred: bool
    sign: float
    precision: str


def _phi(x: float) -> float:
    """Standard normal CDF, accurate in the lower tail."""
    return 0.5 * math.erfc(-x * _SQRT_HALF)


def plan_truncation(low: float, high: float, precision: str) -> Truncation:
    """Parameters for drawing a standard normal conditioned on ``[low, high]``.

    ``precision`` is the one asked for (``"single"`` or ``"double"``); the plan may raise it
    to ``"double"`` for an interval far in a tail.

    >>> plan_truncation(-2.0, 2.0, "single").centred
    True
    >>> p = plan_truncation(15.0, math.inf, "single")
    >>> p.centred, p.sign, p.precision
    (False, 1.0, 'double')
    """
    if not low < high:
        raise ValueError(f"low={low!r}, high={high!r} is not valid; allowed: low < high.")
    if low < 1.0 and high > -1.0:
        qa = 0.5 * math.erf(low * _SQRT_HALF)
        qb = 0.5 * math.erf(high * _SQRT_HALF)
        return Truncation(qa, qb - qa, True, 0.0, precision)
    # Entirely in one tail, at least 1 from zero: mirror into the lower half.
    sign = 1.0 if low >= 0.0 else -1.0
    lo, hi = (-high, -low) if low >= 0.0 else (low, high)
    ta, tb = _phi(lo), _phi(hi)
    if tb < _DOUBLE_MIN_MASS:
        raise ValueError(
            f"low={low!r}, high={high!r} is not valid: the interval lies more than ~35.8 "
            "standard deviations into a tail, where a float64 holds no probability mass; "
            "allowed: an interval with a bound within ~35 std of the mean."
        )
    if precision == "single" and tb < _SINGLE_MIN_MASS:
        precision = "double"
    t_min = _SINGLE_T_MIN if precision == "single" else _DOUBLE_T_MIN
    ta = max(ta, t_min)
    return Truncation(ta, tb - ta, False, sign, precision)


def _inward(lo: float, hi: float, dtype: type) -> tuple[float, float]:
    """``[lo, hi]`` rounded to ``dtype`` without leaving the interval."""
    a, b = dtype(lo), dtype(hi)
    if math.isfinite(lo) and float(a) < lo:
        a = np.nextafter(a, dtype(np.inf))
    if math.isfinite(hi) and float(b) > hi:
        b = np.nextafter(b, dtype(-np.inf))
    return a, b


@functools.lru_cache(maxsize=1024)
def kernel_params(
    distribution: str,
    precision: str,
    loc: float,
    scale: float,
    low: float = -math.inf,
    high: float = math.inf,
    clip: tuple[float, float] | None = None,
) -> tuple[str, tuple[float, ...]]:
    """The precision actually used and the ten parameters, each exact in that precision.

    The truncated normal may raise ``precision`` to ``"double"`` (an interval far in a tail,
    see :func:`plan_truncation`); the values are Python floats holding float32 numbers for
    ``"single"``.

    >>> precision, p = kernel_params("normal", "single", 0.0, 0.1)
    >>> precision, p[1] == float(np.float32(0.1))
    ('single', True)
    """
    check_choice("distribution", distribution, DISTRIBUTIONS)
    check_choice("precision", precision, ("single", "double"))
    loc = check_real("loc", loc)
    scale = check_real("scale", scale, minimum=0.0)
    c0 = c1 = centred = sign = 0.0
    if distribution == "truncated_normal":
        plan = plan_truncation(low, high, precision)
        precision = plan.precision
        c0, c1, centred, sign = plan.c0, plan.c1, float(plan.centred), plan.sign
    else:
        low, high = -math.inf, math.inf
    dtype = np.float32 if precision == "single" else np.float64
    clip_lo, clip_hi = _inward(*(clip if clip is not None else (-math.inf, math.inf)), dtype)
    z_lo, z_hi = _inward(low, high, dtype)
    values = (loc, scale, c0, c1, centred, sign, z_lo, z_hi, clip_lo, clip_hi)
    return precision, tuple(float(dtype(v)) for v in values)
