r"""Finite values, known before anything is written.

Every scheme's values lie within a bound computed from its arguments alone (its *reach*):

==========================  ==============================================================
scheme                      largest ``|value|``
==========================  ==============================================================
normal ``N(m, s^2)``        ``|m| + 10 s`` (no generator draws ``|z| >= 10``: Box-Muller in
                            float64 stops at 8.6, initlab's float32 kernel below 6)
uniform ``U(a, b)``         ``max(|a|, |b|, b - a)`` (the kernel computes ``a + (b - a) u``)
truncated normal            ``max(|a|, |b|)`` (absolute bounds), or ``|m| + s max(|lo|, |hi|)``
variance scaling            ``std * (10, sqrt 3, 2 / 0.8796)`` for normal, uniform, truncated
orthogonal, delta-orth.     ``|gain|`` (entries of an orthonormal matrix are at most 1)
eye, dirac                  1
sparse                      ``10 std``
constant                    ``|value|``
==========================  ==============================================================

:func:`check_finite` compares the reach with the largest finite number of the precision the
values are computed and stored in, and raises a ValueError that names the scheme argument
to change before a single value is written. Framework-free; the torch side is
:mod:`initlab.torch.finite`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from initlab.fans import Fans, compute_fans
from initlab.schemes import (
    DeltaOrthogonal,
    Dirac,
    Eye,
    Orthogonal,
    Scheme,
    Sparse,
    Uniform,
    VarianceScaling,
    truncated_std_factor,
)

__all__ = ["NORMAL_REACH", "check_finite", "value_reach"]

#: Standard-normal magnitude that no sampler reaches: the bound used for normal draws.
NORMAL_REACH = 10.0

_VS_FACTOR = {"normal": NORMAL_REACH, "uniform": math.sqrt(3.0)}


def value_reach(scheme: Scheme, shape: Sequence[int], fans: Fans | None = None) -> float | None:
    """The largest ``|value|`` ``scheme`` can give a tensor of ``shape``; None if unknown.

    Computed from the arguments, before any value is drawn; ``inf`` when an intermediate
    (a std, a range) already overflows float64.

    >>> from initlab.schemes import get_scheme
    >>> value_reach(get_scheme("normal(std=0.02)"), (4, 4))
    0.2
    >>> round(value_reach(get_scheme("he_uniform"), (10, 6)), 12)
    1.0
    >>> value_reach(get_scheme("variance_scaling(scale=1e300, gain=1e300)"), (3, 3))
    inf
    """
    shape = tuple(shape)
    if isinstance(scheme, VarianceScaling):
        std = scheme.std(compute_fans(shape) if fans is None else fans)
        factor = _VS_FACTOR.get(scheme.distribution, 2.0 / truncated_std_factor())
        return std * factor
    if isinstance(scheme, Uniform):
        return max(abs(scheme.a), abs(scheme.b), scheme.b - scheme.a)
    if isinstance(scheme, (Orthogonal, DeltaOrthogonal)):
        return abs(scheme.gain)
    if isinstance(scheme, Eye):
        return abs(scheme.gain)
    if isinstance(scheme, Dirac):
        return 1.0
    if isinstance(scheme, Sparse):
        return NORMAL_REACH * scheme.std
    spec = scheme.draw_spec(shape, fans)
    if spec is None:
        return None
    if spec.distribution == "constant":
        return abs(spec.loc)
    if spec.distribution == "uniform":
        return max(abs(spec.loc), abs(spec.loc + spec.scale), spec.scale)
    if spec.distribution == "normal":
        return abs(spec.loc) + NORMAL_REACH * spec.scale
    if spec.clip is not None:
        return max(abs(spec.clip[0]), abs(spec.clip[1]))
    return abs(spec.loc) + spec.scale * max(abs(spec.low), abs(spec.high))


def _culprit(scheme: Scheme) -> str:
    """The scheme argument with the largest magnitude: the one to lower."""
    if not dataclasses.is_dataclass(scheme):
        return "its arguments"
    numbers = {
        f.name: getattr(scheme, f.name)
        for f in dataclasses.fields(scheme)
        if isinstance(getattr(scheme, f.name), float) and f.name != "sparsity"
    }
    if not numbers:
        return "its arguments"
    name = max(numbers, key=lambda k: abs(numbers[k]))
    return f"{name}={numbers[name]!r}"


def check_finite(
    scheme: Scheme,
    shape: Sequence[int],
    fans: Fans | None = None,
    *,
    largest: float = 1.7976931348623157e308,
    precision: str = "float64",
) -> float | None:
    """Raise ValueError unless every value of ``scheme`` is finite in ``precision``.

    ``largest`` is the precision's largest finite number (float32: 3.4e38, float16:
    65504). Returns the reach (:func:`value_reach`), None when the scheme does not say
    (a user-defined scheme without ``draw_spec``: check its values after sampling).

    >>> from initlab.schemes import get_scheme
    >>> check_finite(get_scheme("normal(std=1e5)"), (8,), largest=65504.0, precision="float16")
    Traceback (most recent call last):
    ...
    ValueError: scheme 'normal(mean=0.0, std=100000.0)' reaches |value| = 1e+06, beyond \
float16's largest finite number 6.55e+04: the values would be written as inf; lower \
std=100000.0 (nothing was written).
    """
    reach = value_reach(scheme, shape, fans)
    if reach is None:
        return None
    if not reach <= largest:  # also catches nan
        raise ValueError(
            f"scheme {scheme.name!r} reaches |value| = {reach:.3g}, beyond {precision}'s "
            f"largest finite number {largest:.3g}: the values would be written as inf; lower "
            f"{_culprit(scheme)} (nothing was written)."
        )
    return reach
