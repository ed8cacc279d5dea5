r"""The constants of initlab's generator: polynomial coefficients and quantile fits.

NumPy only (no numba), shared by the numba kernels (:mod:`initlab.fastrng._kernels`) and the
torch backend (:mod:`initlab.torch.philox`), which evaluate the same polynomials in the same
order and so give the same bits. The kernels check :func:`digest` against the value written
in their own source when they load: numba's disk cache is invalidated by edits of the
kernels' file only, so an edit here must change that file too (the check says so).

>>> len(digest())
16
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

_F = np.float32
_D = np.float64
PI_2 = np.pi / 2.0
SIN = tuple((-1.0) ** j * PI_2 ** (2 * j + 1) / math.factorial(2 * j + 1) for j in range(8))
COS = tuple((-1.0) ** j * PI_2 ** (2 * j) / math.factorial(2 * j) for j in range(9))
# sin(pi x / 2) = x * S(x^2), cos(pi x / 2) = C(x^2) on |x| <= 1/2; Horner order (high first).
SIN32 = tuple(_F(c) for c in SIN[:5][::-1])
COS32 = tuple(_F(c) for c in COS[:6][::-1])
SIN64 = tuple(_D(c) for c in SIN[::-1])
COS64 = tuple(_D(c) for c in COS[::-1])
# log(m) = 2 s (1 + s^2/3 + s^4/5 + ...), s = (m - 1) / (m + 1), |s| <= 3 - 2 sqrt(2).
ATANH32 = tuple(_F(1.0 / (2 * j + 1)) for j in range(5))[::-1]
ATANH64 = tuple(_D(1.0 / (2 * j + 1)) for j in range(11))[::-1]
SQRT2_32, SQRT2_64 = _F(np.sqrt(2.0)), _D(np.sqrt(2.0))
LN2_32 = _F(np.log(2.0))
LN2_HI = _D(0.693147180369123816490)  # 32 significant bits: e * LN2_HI is exact
LN2_LO = _D(np.log(2.0) - 0.693147180369123816490)

# ------------------------------------------------------------------------------------------
# Normal quantile (truncated normal by inverse CDF). Constants from quantile_fit.py:
# (mid, half, coefficients high power first) of each piece; regenerate with
#   python -m initlab.fastrng.quantile_fit
# ------------------------------------------------------------------------------------------

# BEGIN GENERATED QUANTILE CONSTANTS
# central on [0.0, 5.0], degree 9, amplification 2.45
Q32_CENTRAL = (
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
Q32_TAIL = (
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
Q64_CENTRAL = (
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
Q64_TAIL = (
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
Q64_TAIL_FAR = (
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

W_SPLIT32, W_SPLIT64 = _F(5.0), _D(5.0)
TMIN32, TMIN64 = _F(2.0**-100), _D(1e-300)
Q32C_MID, Q32C_INV, Q32C = (
    _F(Q32_CENTRAL[0]),
    _F(1 / Q32_CENTRAL[1]),
    tuple(_F(c) for c in Q32_CENTRAL[2]),
)
Q32T_MID, Q32T_INV, Q32T = (
    _F(Q32_TAIL[0]),
    _F(1 / Q32_TAIL[1]),
    tuple(_F(c) for c in Q32_TAIL[2]),
)
Q64C_MID, Q64C_INV, Q64C = (
    _D(Q64_CENTRAL[0]),
    _D(1 / Q64_CENTRAL[1]),
    tuple(_D(c) for c in Q64_CENTRAL[2]),
)
Q64T_MID, Q64T_INV, Q64T = (
    _D(Q64_TAIL[0]),
    _D(1 / Q64_TAIL[1]),
    tuple(_D(c) for c in Q64_TAIL[2]),
)
Q64F_MID, Q64F_INV, Q64F = (
    _D(Q64_TAIL_FAR[0]),
    _D(1 / Q64_TAIL_FAR[1]),
    tuple(_D(c) for c in Q64_TAIL_FAR[2]),
)
Q64_FAR_BELOW = _D(0.25)  # 1/s below which the far-tail piece applies


def _names() -> list[str]:
    return sorted(k for k, v in globals().items() if k.isupper() and not callable(v))


def digest() -> str:
    """A short hash of every constant (names and exact values)."""
    text = repr([(k, globals()[k]) for k in _names()])
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def single() -> dict[str, object]:
    """The single-precision constants as Python floats (float32 values), for the torch backend.

    >>> single()["LN2_32"] == float(np.float32(math.log(2.0)))
    True
    """
    return {
        "SIN32": tuple(float(c) for c in SIN32),
        "COS32": tuple(float(c) for c in COS32),
        "ATANH32": tuple(float(c) for c in ATANH32),
        "SQRT2_32": float(SQRT2_32),
        "LN2_32": float(LN2_32),
        "W_SPLIT32": float(W_SPLIT32),
        "TMIN32": float(TMIN32),
        "Q32C": (float(Q32C_MID), float(Q32C_INV), tuple(float(c) for c in Q32C)),
        "Q32T": (float(Q32T_MID), float(Q32T_INV), tuple(float(c) for c in Q32T)),
    }
