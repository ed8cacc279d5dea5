"""Finite values for torch tensors, checked before writing (see :mod:`initlab.finite`).

The elementwise kernel computes ``loc + scale * X`` in float32 (``precision="single"``) and
rounds to the tensor's dtype, so such values must fit float32 *and* the dtype; other
schemes are sampled in float64 and cast, so they must fit the dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from initlab.fans import Fans
from initlab.finite import check_finite
from initlab.schemes import Constant, Scheme

__all__ = ["check_fill", "check_values"]

_SINGLE = float(torch.finfo(torch.float32).max)


def check_fill(
    scheme: Scheme,
    shape: Sequence[int],
    fans: Fans | None,
    dtype: torch.dtype,
    precision: str = "single",
) -> float | None:
    """Raise ValueError if ``scheme`` would write a non-finite value into ``dtype``.

    >>> from initlab.schemes import get_scheme
    >>> check_fill(get_scheme("normal(std=1e5)"), (4,), None, torch.float16)
    Traceback (most recent call last):
    ...
    ValueError: scheme 'normal(mean=0.0, std=100000.0)' reaches |value| = 1e+06, beyond ...
    >>> check_fill(get_scheme("he_normal"), (4, 4), None, torch.bfloat16) < 10
    True
    """
    if not dtype.is_floating_point:
        return None
    largest = float(torch.finfo(dtype).max)
    label = str(dtype).replace("torch.", "")
    # drawn by the float32 kernel (a constant is written by torch's fill_, in the dtype)
    elementwise = type(scheme).draw_spec is not Scheme.draw_spec and not isinstance(
        scheme, Constant
    )
    if elementwise and precision == "single" and _SINGLE < largest:
        largest, label = _SINGLE, f"{label} (drawn in float32)"
    return check_finite(scheme, shape, fans, largest=largest, precision=label)


def check_values(values: np.ndarray | torch.Tensor, what: str) -> None:
    """Raise ValueError if ``values`` hold a NaN or an infinity (a callable's output).

    >>> check_values(torch.tensor([1.0, float("nan")]), "override callable")
    Traceback (most recent call last):
    ...
    ValueError: override callable gave 1 non-finite value(s) of 2 (nan, inf or -inf) ...
    """
    tensor = torch.as_tensor(values)
    if not (tensor.is_floating_point() or tensor.is_complex()):
        return
    bad = int((~torch.isfinite(tensor)).sum())
    if bad:
        raise ValueError(
            f"{what} gave {bad} non-finite value(s) of {tensor.numel()} (nan, inf or -inf) in "
            f"{str(tensor.dtype).replace('torch.', '')}; allowed: finite values only "
            "(nothing was written)."
        )
