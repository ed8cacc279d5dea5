r"""Derivation of the polynomial coefficients of the normal quantile used by the kernels.

The truncated-normal kernels need :math:`g(t) = -\Phi^{-1}(t)`, the standard normal's upper
quantile, for a tail probability ``t`` in (0, 1/2]. With ``y = 1 - 2t`` and
``w = -log(4 t (1 - t)) = -log(1 - y^2)`` (the variable of Giles 2010, "Approximating the
erfinv function"), ``g`` is smooth in two pieces:

* central, ``w < 5``: ``g = y * A(w)``, ``A(w) = sqrt(2) erfinv(y) / y``;
* tail, ``w >= 5``: ``g = s * B(1 / s)`` with ``s = sqrt(w)``; ``B`` tends to a constant as
  ``s`` grows, so a polynomial in ``1 / s`` fits the far tail much better than one in ``s``.

Each piece is interpolated at Chebyshev points of its interval (near-minimax) against SciPy's
``erfinv`` and ``ndtri`` in float64, then rewritten as monomial coefficients of the variable
mapped to [-1, 1]; Horner's rule on them loses at most the small factor :func:`amplification`
in accuracy. This module is only run to (re)derive the constants written into
:mod:`initlab.rng_constants` (a test checks they agree) and to measure their error::

    python -m initlab.fastrng.quantile_fit

>>> pieces = fit_pieces("single")
>>> [(p.name, p.degree) for p in pieces]
[('central', 9), ('tail', 9)]
>>> max_relative_error(pieces) < 2e-8
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import chebyshev
from scipy import special

__all__ = [
    "TAIL_MIN",
    "W_SPLIT",
    "Piece",
    "amplification",
    "fit_pieces",
    "max_relative_error",
    "quantile_reference",
]

#: ``w`` where the central piece hands over to the tail piece.
W_SPLIT = 5.0
#: Smallest tail probability each precision's kernel evaluates (larger ones are clamped up).
TAIL_MIN = {"single": 2.0**-100, "double": 1e-300}


def _w_max(precision: str) -> float:
    t = TAIL_MIN[precision]
    return -math.log(4.0 * t * (1.0 - t))


@dataclass(frozen=True)
class Piece:
    """One polynomial piece: ``value = factor * sum(coeffs[k] * x**(n-k))``, ``x`` mapped.

    ``variable`` is ``"w"`` (central) or ``"1/s"`` (tail); ``x = (variable - mid) / half``.
    ``coeffs`` run from the highest power down (Horner order).
    """

    name: str
    lo: float
    hi: float
    coeffs: tuple[float, ...]

    @property
    def degree(self) -> int:
        return len(self.coeffs) - 1

    @property
    def mid(self) -> float:
        return 0.5 * (self.lo + self.hi)

    @property
    def half(self) -> float:
        return 0.5 * (self.hi - self.lo)


def _central(w: np.ndarray) -> np.ndarray:
    y = np.sqrt(-np.expm1(-w))
    with np.errstate(invalid="ignore", divide="ignore"):
        a = math.sqrt(2.0) * special.erfinv(y) / y
    return np.where(w < 1e-12, math.sqrt(math.pi / 2.0), a)


def _tail_over_s(v: np.ndarray) -> np.ndarray:
    s = 1.0 / v
    w = s * s
    y = np.sqrt(-np.expm1(-w))
    t = np.exp(-w) / (2.0 * (1.0 + y))
    return -special.ndtri(t) / s


_FUNCTIONS = {"central": _central, "tail": _tail_over_s, "tail_far": _tail_over_s}
_DEGREES = {
    "single": {"central": (9,), "tail": (9,)},
    "double": {"central": (18,), "tail": (16, 22)},
}


def _fit(name: str, lo: float, hi: float, degree: int) -> Piece:
    nodes = np.cos(np.pi * (np.arange(degree + 1) + 0.5) / (degree + 1))
    values = _FUNCTIONS[name](lo + (hi - lo) * (nodes + 1.0) / 2.0)
    cheb = chebyshev.chebfit(nodes, values, degree)
    monomial = chebyshev.cheb2poly(cheb)[::-1]
    return Piece(name, float(lo), float(hi), tuple(float(c) for c in monomial))


def fit_pieces(precision: str) -> list[Piece]:
    """The pieces for ``"single"`` (float32 kernels) or ``"double"`` (float64 kernels).

    Single: central on ``w`` in [0, 5] and one tail piece down to ``t = 2^-100``. Double:
    central, and the tail split at ``s = 4`` down to ``t = 1e-300``.
    """
    v_min = 1.0 / math.sqrt(_w_max(precision))
    v_max = 1.0 / math.sqrt(W_SPLIT)
    (central_degree,) = _DEGREES[precision]["central"]
    pieces = [_fit("central", 0.0, W_SPLIT, central_degree)]
    tail = _DEGREES[precision]["tail"]
    if len(tail) == 1:
        pieces.append(_fit("tail", v_min, v_max, tail[0]))
    else:
        pieces.append(_fit("tail", 0.25, v_max, tail[0]))
        pieces.append(_fit("tail_far", v_min, 0.25, tail[1]))
    return pieces


def amplification(piece: Piece) -> float:
    """``sum |coeffs| / min |value|`` on [-1, 1]: how much Horner's rounding can be magnified."""
    x = np.linspace(-1.0, 1.0, 2001)
    return float(np.sum(np.abs(piece.coeffs)) / np.min(np.abs(np.polyval(piece.coeffs, x))))


def _evaluate(piece: Piece, variable: np.ndarray) -> np.ndarray:
    return np.polyval(piece.coeffs, (variable - piece.mid) / piece.half)


def quantile_reference(t: np.ndarray) -> np.ndarray:
    """``-Phi^{-1}(t)`` by SciPy, the reference the pieces are fitted to."""
    return -special.ndtri(np.asarray(t, dtype=np.float64))


def max_relative_error(pieces: list[Piece], points: int = 20001) -> float:
    """Largest relative error of the pieces (evaluated in float64) against their reference."""
    worst = 0.0
    for piece in pieces:
        v = np.linspace(piece.lo, piece.hi, points)
        ref = _FUNCTIONS[piece.name](v)
        worst = max(worst, float(np.max(np.abs(_evaluate(piece, v) / ref - 1.0))))
    return worst


def constant_name(precision: str, piece: Piece) -> str:
    """Name of the piece's ``(mid, half, coeffs)`` constant in :mod:`initlab.rng_constants`."""
    return f"Q{'32' if precision == 'single' else '64'}_{piece.name.upper()}"


def _main() -> None:
    for precision in ("single", "double"):
        pieces = fit_pieces(precision)
        print(f"# {precision}: max relative error {max_relative_error(pieces):.2e}")
        for p in pieces:
            print(
                f"# {p.name} on [{p.lo!r}, {p.hi!r}], degree {p.degree}, "
                f"amplification {amplification(p):.2f}"
            )
            print(f"{constant_name(precision, p)} = ({p.mid!r}, {p.half!r}, {p.coeffs!r})")


if __name__ == "__main__":
    _main()
