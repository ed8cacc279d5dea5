r"""Initialization schemes: one variance-scaling core, named presets, and the name registry.

Almost every scheme is one formula,

.. math::  \mathrm{std} = \mathrm{gain} \cdot \sqrt{\mathrm{scale} / n},

with ``n`` the fan_in, fan_out or their average (``mode``), drawn from a ``normal``, a
``uniform`` on ``[-sqrt(3) std, sqrt(3) std]``, or a ``truncated_normal`` cut at two standard
deviations of its parent whose std is corrected so that the *drawn* values have ``std``
(Keras and JAX's convention). He, Xavier/Glorot and LeCun are presets of it:

==================  =====  =======  ===============================================
preset              scale  mode     formula (normal form)
==================  =====  =======  ===============================================
he / kaiming        2      fan_in   N(0, 2 / fan_in); ``gain(nonlinearity, a)^2``
xavier / glorot     1      fan_avg  N(0, 2 / (fan_in + fan_out))
lecun               1      fan_in   N(0, 1 / fan_in)
==================  =====  =======  ===============================================

Spelling rule. Unqualified snake_case names follow torch: ``he_normal`` and
``kaiming_normal_`` are a *plain* normal. Keras class names (``HeNormal``, ``GlorotUniform``)
and names prefixed ``keras.`` or ``jax.`` (``jax.he_normal``) follow Keras and JAX, where
``*_normal`` is a *truncated* normal. Any preset takes ``distribution=`` to choose.

The few schemes that are not variance scaling: zeros, ones, constant, plain normal/uniform/
truncated normal with absolute parameters, small ``random`` N(0, 0.01^2), orthogonal,
delta-orthogonal (convolutions), eye/identity, dirac and sparse.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from initlab._validation import check_choice, check_int, check_real, choice_error
from initlab.fans import FAN_MODES, Fans, compute_fans, select_fan
from initlab.gains import calculate_gain
from initlab.rng import Draw, Stream

__all__ = [
    "DISTRIBUTIONS",
    "SCHEMES",
    "Constant",
    "DeltaOrthogonal",
    "Dirac",
    "Eye",
    "Normal",
    "Orthogonal",
    "Scheme",
    "Sparse",
    "TruncNormal",
    "Uniform",
    "VarianceScaling",
    "get_scheme",
    "scheme_names",
    "truncated_std_factor",
]

DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


@cache
def truncated_std_factor(cut: float = 2.0) -> float:
    """Std of a standard normal truncated to ``[-cut, cut]`` (0.8796... for 2).

    Keras and JAX divide the wanted std by it, so that the truncated draw has that std.

    >>> round(truncated_std_factor(), 12)
    0.879625661034
    """
    phi = math.exp(-0.5 * cut * cut) / math.sqrt(2.0 * math.pi)
    mass = math.erf(cut / math.sqrt(2.0))
    return math.sqrt(1.0 - 2.0 * cut * phi / mass)


class Scheme(ABC):
    """An initialization scheme: what values a tensor of a given shape and fans gets."""

    #: Whether the values depend on the tensor's fans.
    uses_fans: bool = False
    #: Whether the values are random (draw from a :class:`~initlab.rng.Stream`).
    random: bool = True

    @property
    @abstractmethod
    def name(self) -> str:
        """Canonical spelling, parseable by :func:`get_scheme`."""

    @abstractmethod
    def formula(self) -> str:
        """The scheme's formula in words, for tables and reports."""

    @abstractmethod
    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        """Values for a tensor of ``shape`` (float64), drawn from ``stream``."""

    def statistics(self, fans: Fans | None) -> dict[str, float]:
        """The numbers a report shows: std, bound, mean, value; empty when not applicable."""
        return {}

    def draw_spec(self, shape: Sequence[int], fans: Fans | None = None) -> Draw | None:
        """The elementwise distribution of the values, or None if they are not i.i.d.

        Every value is ``loc + scale * X`` with ``X`` from the returned
        :class:`~initlab.rng.Draw` (uniform, normal, truncated normal or constant), which
        lets a tensor be filled in place, straight from the random kernel. None for schemes
        whose values depend on each other (orthogonal, sparse) or are fixed patterns.
        """
        return None

    def _sample_elementwise(
        self, shape: Sequence[int], stream: Stream, fans: Fans | None
    ) -> np.ndarray:
        spec = self.draw_spec(shape, fans)
        return stream.draw(spec, math.prod(shape)).reshape(tuple(shape))

    def min_ndim(self) -> int:
        """Fewest dimensions a tensor needs for this scheme."""
        return 2 if self.uses_fans else 0

    def check_shape(self, shape: Sequence[int]) -> None:
        """Raise ValueError if this scheme cannot fill a tensor of ``shape``."""
        if len(shape) < self.min_ndim():
            raise ValueError(
                f"scheme {self.name!r} needs a tensor with at least {self.min_ndim()} "
                f"dimensions; got shape {tuple(shape)}."
            )

    def _fans(self, shape: Sequence[int], fans: Fans | None) -> Fans:
        return compute_fans(shape) if fans is None else fans

    def __str__(self) -> str:
        return self.name


def _call_name(base: str, **params: Any) -> str:
    inner = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{base}({inner})"


@dataclass(frozen=True)
class VarianceScaling(Scheme):
    """``std = gain * sqrt(scale / n)``, ``n`` = fan_in, fan_out or fan_avg (``mode``).

    >>> s = VarianceScaling(scale=2.0, mode="fan_in", distribution="normal")
    >>> s.statistics(Fans(50, 10))["std"]
    0.2
    >>> round(VarianceScaling(1.0, "fan_avg", "uniform").statistics(Fans(3, 3))["bound"], 6)
    1.0
    """

    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "truncated_normal"
    gain: float = 1.0
    uses_fans = True

    def __post_init__(self) -> None:
        check_real("scale", self.scale, minimum=0.0, strict_minimum=True)
        check_choice("mode", self.mode, FAN_MODES)
        check_choice("distribution", self.distribution, DISTRIBUTIONS)
        check_real("gain", self.gain, minimum=0.0)

    @property
    def name(self) -> str:
        params = {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}
        if self.gain != 1.0:
            params["gain"] = self.gain
        return _call_name("variance_scaling", **params)

    def formula(self) -> str:
        g = "" if self.gain == 1.0 else f"{self.gain:.4g} * "
        if self.mode == "fan_avg":
            std = f"{g}sqrt({2 * self.scale:.4g} / (fan_in + fan_out))"
        else:
            std = f"{g}sqrt({self.scale:.4g} / {self.mode})"
        if self.distribution == "normal":
            return f"N(0, std^2), std = {std}"
        if self.distribution == "uniform":
            return f"U(-b, b), b = sqrt(3) * {std}"
        return f"truncated N at +-2 sigma, drawn std = {std}"

    def std(self, fans: Fans) -> float:
        """The std the drawn values have for these fans."""
        n = select_fan(fans, self.mode)
        if n <= 0:
            raise ValueError(
                f"{self.mode}={n:g}: variance scaling divides by the fan; "
                "a tensor with a zero-size dimension has none."
            )
        return self.gain * math.sqrt(self.scale / n)

    def statistics(self, fans: Fans | None) -> dict[str, float]:
        if fans is None:
            return {}
        std = self.std(fans)
        stats = {"std": std}
        if self.distribution == "uniform":
            stats["bound"] = math.sqrt(3.0) * std
        return stats

    def with_gain(self, gain: float) -> VarianceScaling:
        """The same scheme with another gain (used to match a layer's nonlinearity)."""
        return dataclasses.replace(self, gain=gain)

    def draw_spec(self, shape: Sequence[int], fans: Fans | None = None) -> Draw:
        """``N(0, std^2)``; ``U(-b, b)``, ``b = sqrt(3) std``; or ``std / 0.8796 * N | [-2, 2]``.

        >>> VarianceScaling(2.0, "fan_in", "uniform").draw_spec((10, 6))
        Draw(distribution='uniform', loc=-1.0, scale=2.0, low=-inf, high=inf, clip=None)
        """
        self.check_shape(shape)
        std = self.std(self._fans(shape, fans))
        if self.distribution == "normal":
            return Draw("normal", 0.0, std)
        if self.distribution == "uniform":
            bound = math.sqrt(3.0) * std
            return Draw("uniform", -bound, 2.0 * bound)
        return Draw("truncated_normal", 0.0, std / truncated_std_factor(), -2.0, 2.0)

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        return self._sample_elementwise(shape, stream, fans)


@dataclass(frozen=True)
class Constant(Scheme):
    """Every value equals ``value`` (zeros, ones, constant).

    >>> Constant(0.5).sample((2, 2), Stream(0)).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """

    value: float = 0.0
    label: str = "constant"
    random = False

    def __post_init__(self) -> None:
        check_real("value", self.value)

    @property
    def name(self) -> str:
        if self.label in ("zeros", "ones"):
            return self.label
        return _call_name("constant", value=self.value)

    def formula(self) -> str:
        return f"w = {self.value:g}"

    def statistics(self, fans: Fans | None) -> dict[str, float]:
        return {"value": self.value}

    def draw_spec(self, shape: Sequence[int], fans: Fans | None = None) -> Draw:
        return Draw("constant", loc=self.value)

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        return np.full(tuple(shape), self.value, dtype=np.float64)


@dataclass(frozen=True)
class Normal(Scheme):
    """``N(mean, std^2)`` with absolute parameters; ``random`` is ``Normal(std=0.01)``.

    >>> Normal(std=0.01).statistics(None)
    {'mean': 0.0, 'std': 0.01}
    """

    mean: float = 0.0
    std: float = 1.0
    label: str = "normal"

    def __post_init__(self) -> None:
        check_real("mean", self.mean)
        check_real("std", self.std, minimum=0.0)

    @property
    def name(self) -> str:
        return _call_name(self.label, mean=self.mean, std=self.std)

    def formula(self) -> str:
        return f"N({self.mean:g}, {self.std:g}^2)"

    def statistics(self, fans: Fans | None) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std}

    def draw_spec(self, shape: Sequence[int], fans: Fans | None = None) -> Draw:
        return Draw("normal", self.mean, self.std)

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        return self._sample_elementwise(shape, stream, fans)


@dataclass(frozen=True)
class Uniform(Scheme):
    """``U(a, b)``.

    >>> Uniform(-1.0, 1.0).statistics(None)
    {'low': -1.0, 'high': 1.0}
    """

    a: float = 0.0
    b: float = 1.0

    def __post_init__(self) -> None:
        check_real("a", self.a)
        check_real("b", self.b)
        if self.a > self.b:
            raise ValueError(f"a={self.a!r}, b={self.b!r} is not valid; allowed: a <= b.")

    @property
    def name(self) -> str:
        return _call_name("uniform", a=self.a, b=self.b)

    def formula(self) -> str:
        return f"U({self.a:g}, {self.b:g})"

    def statistics(self, fans: Fans | None) -> dict[str, float]:
        return {"low": self.a, "high": self.b}

    def draw_spec(self, shape: Sequence[int], fans: Fans | None = None) -> Draw:
        return Draw("uniform", self.a, self.b - self.a)

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        return self._sample_elementwise(shape, stream, fans)


@dataclass(frozen=True)
class TruncNormal(Scheme):
    """``N(mean, std^2)`` conditioned on ``[a, b]`` (absolute bounds, torch's trunc_normal_).

    >>> v = TruncNormal(std=1.0, a=-0.5, b=0.5).sample((1000,), Stream(0))
    >>> bool(v.min() >= -0.5 and v.max() <= 0.5)
    True
    """

    mean: float = 0.0
    std: float = 1.0
    a: float = -2.0
    b: float = 2.0

    def __post_init__(self) -> None:
        check_real("mean", self.mean)
        check_real("std", self.std, minimum=0.0, strict_minimum=True)
        check_real("a", self.a)
        check_real("b", self.b)
        if not self.a < self.b:
            raise ValueError(f"a={self.a!r}, b={self.b!r} is not valid; allowed: a < b.")

    @property
    def name(self) -> str:
        return _call_name("trunc_normal", mean=self.mean, std=self.std, a=self.a, b=self.b)

    def formula(self) -> str:
        return f"N({self.mean:g}, {self.std:g}^2) truncated to [{self.a:g}, {self.b:g}]"

    def statistics(self, fans: Fans | None) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "low": self.a, "high": self.b}

    def draw_spec(self, shape: Sequence[int], fans: Fans | None = None) -> Draw:
        lo, hi = (self.a - self.mean) / self.std, (self.b - self.mean) / self.std
        return Draw("truncated_normal", self.mean, self.std, lo, hi, clip=(self.a, self.b))

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        return self._sample_elementwise(shape, stream, fans)


def orthogonal_matrix(rows: int, cols: int, normals: np.ndarray) -> np.ndarray:
    """Orthogonal ``(rows, cols)`` matrix from ``rows * cols`` standard normals.

    QR of the tall orientation with the signs of R's diagonal moved into Q (Mezzadri 2007),
    so that Q is Haar-distributed. Rows (wide) or columns (tall) are orthonormal.

    >>> q = orthogonal_matrix(3, 5, Stream(0).normal(15))
    >>> bool(np.allclose(q @ q.T, np.eye(3)))
    True
    """
    flat = normals.reshape(rows, cols)
    wide = rows < cols
    if wide:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    d = np.sign(np.diag(r))
    d[d == 0] = 1.0
    q = q * d
    return q.T if wide else q


@dataclass(frozen=True)
class Orthogonal(Scheme):
    """A (semi-)orthogonal matrix times ``gain``, over the tensor flattened to (dim 0, rest).

    >>> w = Orthogonal().sample((4, 4), Stream(0))
    >>> bool(np.allclose(w @ w.T, np.eye(4)))
    True
    """

    gain: float = 1.0

    def __post_init__(self) -> None:
        check_real("gain", self.gain)

    @property
    def name(self) -> str:
        return "orthogonal" if self.gain == 1.0 else _call_name("orthogonal", gain=self.gain)

    def formula(self) -> str:
        return f"Q from QR of N(0, 1), W W^T = {self.gain:g}^2 I"

    def min_ndim(self) -> int:
        return 2

    def statistics(self, fans: Fans | None) -> dict[str, float]:
        return {"gain": self.gain}

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        self.check_shape(shape)
        rows = shape[0]
        cols = math.prod(shape[1:])
        if rows * cols == 0:
            return np.zeros(tuple(shape))
        q = orthogonal_matrix(rows, cols, stream.normal(rows * cols))
        return (self.gain * q).reshape(shape)


@dataclass(frozen=True)
class DeltaOrthogonal(Scheme):
    r"""Delta-orthogonal convolution kernel (Xiao et al. 2018, algorithm 2).

    For a torch weight ``(out, in/groups, *k)`` the centre tap ``c = ((k - 1) // 2, ...)``
    holds ``gain * Q`` with ``Q`` an orthogonal ``(out/groups, in/groups)`` block per group
    (orthonormal columns, :func:`orthogonal_matrix`), every other tap is zero:

    .. math::  W[:, :, c] = \mathrm{gain} \cdot Q,\quad Q^\top Q = I,\qquad
               W[:, :, j] = 0 \ (j \ne c).

    The convolution then maps every pixel's channel vector by ``gain * Q``: with
    ``gain = 1`` it preserves the norm of any input, whatever the padding (the
    input-output Jacobian is an isometry). ``out >= in`` per group is required, as in the
    paper, JAX and TensorFlow; the centre index ``(k - 1) // 2`` is JAX's and TensorFlow's
    (and the tap that torch's ``padding="same"`` aligns with the input; for odd ``k`` it
    equals :class:`Dirac`'s ``k // 2``).

    >>> w = DeltaOrthogonal().sample((4, 2, 3, 3), Stream(0))
    >>> centre = w[:, :, 1, 1]
    >>> bool(np.allclose(centre.T @ centre, np.eye(2)))
    True
    >>> float(np.abs(w).sum() - np.abs(centre).sum())  # zeros off the centre
    0.0
    """

    gain: float = 1.0
    groups: int = 1

    def __post_init__(self) -> None:
        check_real("gain", self.gain)
        check_int("groups", self.groups, minimum=1)

    @property
    def name(self) -> str:
        params: dict[str, Any] = {}
        if self.gain != 1.0:
            params["gain"] = self.gain
        if self.groups != 1:
            params["groups"] = self.groups
        return _call_name("delta_orthogonal", **params) if params else "delta_orthogonal"

    def formula(self) -> str:
        g = "" if self.gain == 1.0 else f"{self.gain:g} * "
        return f"W[:, :, centre] = {g}Q with Q^T Q = I (per group), 0 elsewhere"

    def statistics(self, fans: Fans | None) -> dict[str, float]:
        return {"gain": self.gain}

    def min_ndim(self) -> int:
        return 3

    def check_shape(self, shape: Sequence[int]) -> None:
        shape = tuple(shape)
        if len(shape) not in (3, 4, 5):
            raise ValueError(
                f"scheme 'delta_orthogonal' needs a 3, 4 or 5-D convolution weight "
                f"(out, in, *kernel); got shape {shape}."
            )
        if shape[0] % self.groups:
            raise ValueError(
                f"groups={self.groups} does not divide dim 0 of shape {shape}; "
                "allowed: a divisor of dim 0."
            )
        if shape[0] // self.groups < shape[1]:
            raise ValueError(
                f"scheme 'delta_orthogonal' needs out_channels/groups >= in_channels/groups "
                f"(an isometry can not reduce the dimension); got shape {shape} with "
                f"groups={self.groups}: {shape[0] // self.groups} < {shape[1]}."
            )

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        self.check_shape(shape)
        out = np.zeros(tuple(shape))
        rows, cols = shape[0] // self.groups, shape[1]
        if rows * cols == 0:
            return out
        centre = tuple((k - 1) // 2 for k in shape[2:])
        normals = stream.normal(self.groups * rows * cols)
        for g in range(self.groups):
            block = normals[g * rows * cols : (g + 1) * rows * cols]
            out[(slice(g * rows, (g + 1) * rows), slice(None), *centre)] = (
                self.gain * orthogonal_matrix(rows, cols, block)
            )
        return out


@dataclass(frozen=True)
class Eye(Scheme):
    """The identity matrix (2-D tensors), as many inputs preserved as possible.

    >>> Eye().sample((2, 3), Stream(0)).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """

    random = False

    @property
    def name(self) -> str:
        return "eye"

    def formula(self) -> str:
        return "W = I"

    def check_shape(self, shape: Sequence[int]) -> None:
        if len(shape) != 2:
            raise ValueError(f"scheme 'eye' needs a 2-D tensor; got shape {tuple(shape)}.")

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        self.check_shape(shape)
        return np.eye(*shape)


@dataclass(frozen=True)
class Dirac(Scheme):
    """Dirac delta at the kernel centre: a convolution that passes its input through.

    >>> w = Dirac().sample((2, 2, 3), Stream(0))
    >>> w[:, :, 1].tolist(), float(w.sum())
    ([[1.0, 0.0], [0.0, 1.0]], 2.0)
    """

    groups: int = 1
    random = False

    def __post_init__(self) -> None:
        check_int("groups", self.groups, minimum=1)

    @property
    def name(self) -> str:
        return "dirac" if self.groups == 1 else _call_name("dirac", groups=self.groups)

    def formula(self) -> str:
        return "W[o, i, centre] = 1 if o == i (per group), else 0"

    def check_shape(self, shape: Sequence[int]) -> None:
        if len(shape) not in (3, 4, 5):
            raise ValueError(
                f"scheme 'dirac' needs a 3, 4 or 5-D tensor; got shape {tuple(shape)}."
            )
        if shape[0] % self.groups:
            raise ValueError(
                f"groups={self.groups} does not divide dim 0 of shape {tuple(shape)}; "
                "allowed: a divisor of dim 0."
            )

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        self.check_shape(shape)
        out = np.zeros(tuple(shape))
        per_group = shape[0] // self.groups
        centre = tuple(s // 2 for s in shape[2:])
        for g in range(self.groups):
            for d in range(min(per_group, shape[1])):
                out[(g * per_group + d, d, *centre)] = 1.0
        return out


@dataclass(frozen=True)
class Sparse(Scheme):
    """N(0, std^2) with a fraction ``sparsity`` of each column set to zero (Martens 2010).

    >>> w = Sparse(sparsity=0.5).sample((4, 3), Stream(0))
    >>> [int((w[:, j] == 0).sum()) for j in range(3)]
    [2, 2, 2]
    """

    sparsity: float = 0.1
    std: float = 0.01

    def __post_init__(self) -> None:
        check_real("sparsity", self.sparsity, minimum=0.0, maximum=1.0)
        check_real("std", self.std, minimum=0.0)

    @property
    def name(self) -> str:
        return _call_name("sparse", sparsity=self.sparsity, std=self.std)

    def formula(self) -> str:
        return f"N(0, {self.std:g}^2), ceil({self.sparsity:g} * rows) zeros per column"

    def statistics(self, fans: Fans | None) -> dict[str, float]:
        return {"std": self.std, "sparsity": self.sparsity}

    def check_shape(self, shape: Sequence[int]) -> None:
        if len(shape) != 2:
            raise ValueError(f"scheme 'sparse' needs a 2-D tensor; got shape {tuple(shape)}.")

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        self.check_shape(shape)
        rows, cols = shape
        values = self.std * stream.normal(rows * cols).reshape(rows, cols)
        zeros = math.ceil(self.sparsity * rows)
        order = np.argsort(stream.uniform(rows * cols, offset=rows * cols).reshape(rows, cols), 0)
        np.put_along_axis(values, order[:zeros], 0.0, axis=0)
        return values


# --------------------------------------------------------------------------------------
# Presets: one line each.
# --------------------------------------------------------------------------------------


def _he(distribution: str, nonlinearity: str, a: float, mode: str) -> VarianceScaling:
    g = calculate_gain(nonlinearity, a)
    # Rounded to 15 digits so that relu states scale=2, not 2.0000000000000004.
    return VarianceScaling(float(f"{g * g:.15g}"), mode, distribution)


def he_normal(a=0.0, mode="fan_in", nonlinearity="relu", distribution="normal"):
    """He/Kaiming normal: ``N(0, gain^2 / fan)``, ``gain = calculate_gain(nonlinearity, a)``."""
    return _he(distribution, nonlinearity, a, mode)


def he_uniform(a=0.0, mode="fan_in", nonlinearity="relu", distribution="uniform"):
    """He/Kaiming uniform: ``U(-b, b)``, ``b = gain * sqrt(3 / fan)``."""
    return _he(distribution, nonlinearity, a, mode)


def xavier_normal(gain=1.0, distribution="normal"):
    """Xavier/Glorot normal: ``N(0, gain^2 * 2 / (fan_in + fan_out))``."""
    return VarianceScaling(1.0, "fan_avg", distribution, gain)


def xavier_uniform(gain=1.0, distribution="uniform"):
    """Xavier/Glorot uniform: ``U(-b, b)``, ``b = gain * sqrt(6 / (fan_in + fan_out))``."""
    return VarianceScaling(1.0, "fan_avg", distribution, gain)


def lecun_normal(mode="fan_in", distribution="normal"):
    """LeCun normal: ``N(0, 1 / fan_in)`` (SELU's initialization)."""
    return VarianceScaling(1.0, mode, distribution)


def lecun_uniform(mode="fan_in", distribution="uniform"):
    """LeCun uniform: ``U(-b, b)``, ``b = sqrt(3 / fan_in)``."""
    return VarianceScaling(1.0, mode, distribution)


def variance_scaling(scale=1.0, mode="fan_in", distribution="truncated_normal", gain=1.0):
    """The core: ``std = gain * sqrt(scale / n)`` (Keras/JAX default: truncated normal)."""
    return VarianceScaling(scale, mode, distribution, gain)


def random(std=0.01, mean=0.0):
    """The seeds' small random init: ``N(mean, std^2)``, std 0.01 by default."""
    return Normal(mean, std, label="random")


def normal(mean=0.0, std=1.0):
    """``N(mean, std^2)``."""
    return Normal(mean, std)


def uniform(a=0.0, b=1.0):
    """``U(a, b)``."""
    return Uniform(a, b)


def trunc_normal(mean=0.0, std=1.0, a=-2.0, b=2.0):
    """``N(mean, std^2)`` truncated to the absolute interval ``[a, b]`` (torch's)."""
    return TruncNormal(mean, std, a, b)


def zeros():
    """All zeros: every unit in a layer computes the same thing (the symmetry problem)."""
    return Constant(0.0, "zeros")


def ones():
    """All ones."""
    return Constant(1.0, "ones")


def constant(value=0.0):
    """Every value equals ``value``."""
    return Constant(value)


def orthogonal(gain=1.0):
    """Orthogonal matrix times gain (Saxe et al. 2013)."""
    return Orthogonal(gain)


def delta_orthogonal(gain=1.0, groups=1):
    """Delta-orthogonal convolution kernel (Xiao et al. 2018): orthogonal centre, zeros around."""
    return DeltaOrthogonal(gain, groups)


def eye():
    """Identity matrix."""
    return Eye()


def dirac(groups=1):
    """Dirac delta, identity-preserving convolution."""
    return Dirac(groups)


def sparse(sparsity=0.1, std=0.01):
    """Sparse normal (Martens 2010)."""
    return Sparse(sparsity, std)


def _keras_uniform(minval=-0.05, maxval=0.05):
    return Uniform(minval, maxval)


def _keras_normal(mean=0.0, stddev=0.05):
    return Normal(mean, stddev)


def _keras_truncated(mean=0.0, stddev=0.05):
    return TruncNormal(mean, stddev, mean - 2.0 * stddev, mean + 2.0 * stddev)


def _jax_uniform(scale=0.01):
    return Uniform(0.0, scale)


def _jax_normal(stddev=0.01):
    return Normal(0.0, stddev)


def _jax_truncated(stddev=0.01, lower=-2.0, upper=2.0):
    return TruncNormal(0.0, stddev, lower * stddev, upper * stddev)


def _jax_delta_orthogonal(scale=1.0):
    # JAX names the gain ``scale``; its column_axis is the layout's (torch layout here).
    return DeltaOrthogonal(scale)


SCHEMES: dict[str, Callable[..., Scheme]] = {
    f.__name__: f
    for f in (
        he_normal, he_uniform, xavier_normal, xavier_uniform, lecun_normal, lecun_uniform,
        variance_scaling, random, normal, uniform, trunc_normal, zeros, ones, constant,
        orthogonal, delta_orthogonal, eye, dirac, sparse,
    )
}  # fmt: skip

_TRUNC = {"distribution": "truncated_normal"}

#: Other spellings: name -> (canonical preset, fixed keyword arguments). Lower-case lookups
#: also strip a trailing "_" (torch's in-place spelling).
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    # Seeds' and common short names.
    "he": ("he_normal", {}),
    "kaiming": ("he_normal", {}),
    "xavier": ("xavier_normal", {}),
    "glorot": ("xavier_normal", {}),
    "lecun": ("lecun_normal", {}),
    "small_random": ("random", {}),
    "identity": ("eye", {}),
    # torch.nn.init spellings (lookups also strip a trailing "_").
    "kaiming_normal": ("he_normal", {}),
    "kaiming_uniform": ("he_uniform", {}),
    **{
        f"{name}_": (canonical, {})
        for name, canonical in (
            ("kaiming_normal", "he_normal"),
            ("kaiming_uniform", "he_uniform"),
            ("xavier_normal", "xavier_normal"),
            ("xavier_uniform", "xavier_uniform"),
            ("normal", "normal"),
            ("uniform", "uniform"),
            ("trunc_normal", "trunc_normal"),
            ("zeros", "zeros"),
            ("ones", "ones"),
            ("constant", "constant"),
            ("eye", "eye"),
            ("dirac", "dirac"),
            ("orthogonal", "orthogonal"),
            ("sparse", "sparse"),
        )
    },
    "glorot_normal": ("xavier_normal", {}),
    "glorot_uniform": ("xavier_uniform", {}),
    # Keras class names: *Normal is truncated.
    "HeNormal": ("he_normal", _TRUNC),
    "HeUniform": ("he_uniform", {}),
    "GlorotNormal": ("xavier_normal", _TRUNC),
    "GlorotUniform": ("xavier_uniform", {}),
    "LecunNormal": ("lecun_normal", _TRUNC),
    "LecunUniform": ("lecun_uniform", {}),
    "VarianceScaling": ("variance_scaling", {}),
    "Zeros": ("zeros", {}),
    "Ones": ("ones", {}),
    "Constant": ("constant", {}),
    "Orthogonal": ("orthogonal", {}),
    "Identity": ("eye", {}),
    "RandomNormal": ("keras.random_normal", {}),
    "RandomUniform": ("keras.random_uniform", {}),
    "TruncatedNormal": ("keras.truncated_normal", {}),
}

#: Namespaced presets of Keras and JAX (``keras.he_normal``, ``jax.glorot_normal``, ...).
_NAMESPACED: dict[str, Callable[..., Scheme]] = {
    "keras.random_normal": _keras_normal,
    "keras.random_uniform": _keras_uniform,
    "keras.truncated_normal": _keras_truncated,
    "jax.normal": _jax_normal,
    "jax.uniform": _jax_uniform,
    "jax.truncated_normal": _jax_truncated,
    "jax.delta_orthogonal": _jax_delta_orthogonal,
}
for _ns in ("keras", "jax"):
    for _base, _canonical in (
        ("he_normal", "he_normal"), ("kaiming_normal", "he_normal"),
        ("glorot_normal", "xavier_normal"), ("xavier_normal", "xavier_normal"),
        ("lecun_normal", "lecun_normal"),
    ):  # fmt: skip
        ALIASES[f"{_ns}.{_base}"] = (_canonical, _TRUNC)
    for _base, _canonical in (
        ("he_uniform", "he_uniform"), ("kaiming_uniform", "he_uniform"),
        ("glorot_uniform", "xavier_uniform"), ("xavier_uniform", "xavier_uniform"),
        ("lecun_uniform", "lecun_uniform"), ("variance_scaling", "variance_scaling"),
        ("zeros", "zeros"), ("ones", "ones"), ("constant", "constant"),
        ("orthogonal", "orthogonal"), ("identity", "eye"),
    ):  # fmt: skip
        ALIASES[f"{_ns}.{_base}"] = (_canonical, {})


def scheme_names() -> tuple[str, ...]:
    """Every name :func:`get_scheme` accepts, canonical presets first.

    >>> {"he_normal", "HeNormal", "jax.he_normal", "xavier"} <= set(scheme_names())
    True
    """
    return (*SCHEMES, *_NAMESPACED, *ALIASES)


def _lookup(name: str) -> tuple[Callable[..., Scheme], dict[str, Any]]:
    for candidate in (name, name.rstrip("_"), name.lower(), name.lower().rstrip("_")):
        if candidate in SCHEMES:
            return SCHEMES[candidate], {}
        if candidate in _NAMESPACED:
            return _NAMESPACED[candidate], {}
        if candidate in ALIASES:
            canonical, fixed = ALIASES[candidate]
            factory, more = _lookup(canonical)
            return factory, {**more, **fixed}
    raise choice_error("scheme", name, scheme_names())


_CALL = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?:\((.*)\))?\s*$", re.S)


def _literal(node: ast.expr, text: str) -> Any:
    if isinstance(node, ast.Name):  # bare words: mode=fan_out
        return node.id
    try:
        return ast.literal_eval(node)
    except ValueError as error:
        raise ValueError(
            f"scheme={text!r}: argument {ast.unparse(node)!r} is not a literal; "
            "allowed: numbers, strings and bare words."
        ) from error


def _parse(text: str) -> tuple[str, list[Any], dict[str, Any]]:
    match = _CALL.match(text)
    if not match:
        raise ValueError(
            f"scheme={text!r} is not valid; allowed: a scheme name, optionally with "
            "arguments, e.g. 'he_uniform(mode=fan_out)'."
        )
    name, inner = match.group(1), match.group(2)
    if not inner or not inner.strip():
        return name, [], {}
    try:
        call = ast.parse(f"f({inner})", mode="eval").body
    except SyntaxError as error:
        raise ValueError(f"scheme={text!r}: its arguments do not parse ({error.msg}).") from None
    assert isinstance(call, ast.Call)
    unpacked = [f"*{ast.unparse(a.value)}" for a in call.args if isinstance(a, ast.Starred)]
    unpacked += [f"**{ast.unparse(k.value)}" for k in call.keywords if k.arg is None]
    if unpacked:
        raise ValueError(
            f"scheme={text!r}: {unpacked[0]!r} unpacks a variable, which a scheme string cannot "
            "see; allowed: literal arguments, e.g. 'he_normal(mode=fan_out)'."
        )
    seen: set[str] = set()
    for keyword in call.keywords:
        if keyword.arg in seen:
            raise ValueError(
                f"scheme={text!r}: argument {keyword.arg!r} is given twice; allowed: each "
                "argument once."
            )
        seen.add(str(keyword.arg))
    args = [_literal(a, text) for a in call.args]
    kwargs = {k.arg: _literal(k.value, text) for k in call.keywords if k.arg}
    return name, args, kwargs


def _check_positional(text: str, args: list[Any], params: Any) -> None:
    """The one argument-order convention of scheme strings: arguments are named, except the
    single argument of a one-parameter scheme (``constant(0.5)``, ``orthogonal(2.0)``,
    ``dirac(2)``). So ``normal(0.02)`` is an error, never a silent mean of 0.02."""
    if not args or (len(params) == 1 and len(args) == 1):
        return
    named = ", ".join(f"{p}=..." for p in params)
    raise ValueError(
        f"scheme={text!r}: {len(args)} unnamed argument(s) {args}; scheme arguments are named "
        f"(only a one-parameter scheme such as 'constant(0.5)' takes its value unnamed); "
        f"allowed: {named}."
    )


def get_scheme(scheme: str | Scheme, **kwargs: Any) -> Scheme:
    """Resolve a name (torch, Keras or JAX spelling, with optional arguments) to a Scheme.

    Arguments in the string are named (``normal(std=0.02)``, ``he_uniform(mode=fan_out)``),
    except the single argument of a one-parameter scheme (``constant(0.5)``,
    ``orthogonal(2.0)``); unnamed, repeated or unpacked (``**x``) arguments are errors.
    Keyword arguments of this function override those in the string. An unknown name is a
    ValueError that lists the valid names and suggests the closest.

    >>> get_scheme("he_uniform(mode=fan_out)").name
    "variance_scaling(scale=2.0, mode='fan_out', distribution='uniform')"
    >>> get_scheme("HeNormal").distribution
    'truncated_normal'
    >>> get_scheme("kaiming_normal_").distribution
    'normal'
    >>> get_scheme("normal(0.02)")
    Traceback (most recent call last):
    ...
    ValueError: scheme='normal(0.02)': 1 unnamed argument(s) [0.02]; scheme arguments are ...
    >>> get_scheme("he_normla")
    Traceback (most recent call last):
    ...
    ValueError: scheme='he_normla' is not valid; allowed: ... Did you mean 'he_normal'?
    """
    if isinstance(scheme, Scheme):
        if kwargs:
            raise TypeError(f"keyword arguments {sorted(kwargs)} need a scheme name, not {scheme}")
        return scheme
    if not isinstance(scheme, str):
        raise TypeError(
            f"scheme={scheme!r} is not valid; allowed: a scheme name (str) or a Scheme."
        )
    name, args, parsed = _parse(scheme)
    factory, fixed = _lookup(name)
    merged = {**fixed, **parsed, **kwargs}
    params = inspect.signature(factory).parameters
    _check_positional(scheme, args, params)
    unknown = sorted(set(merged) - set(params))
    if unknown:
        raise ValueError(
            f"scheme={scheme!r}: unknown argument(s) {unknown}; allowed: {list(params)}."
        )
    try:
        return factory(*args, **merged)
    except TypeError as error:
        raise ValueError(f"scheme={scheme!r}: {error}; allowed: {list(params)}.") from None
