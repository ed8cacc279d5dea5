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
``kaiming_normal_`` are a *plain* normal; these presets take ``distribution=`` to choose.
Keras class names (``HeNormal``, ``GlorotUniform``) and names prefixed ``keras.`` or ``jax.``
(``jax.he_normal``) are Keras's and JAX's initializers with exactly their arguments and
semantics (``*_normal`` is a *truncated* normal): :mod:`initlab.spellings`.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from initlab._validation import check_choice, check_int, check_real, choice_error
from initlab.fans import (
    LAYOUTS,
    VARIANCE_MODES,
    FanAxes,
    Fans,
    Layout,
    compute_fans,
    keras_fans,
    select_fan,
)
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
    "native_name",
    "register_spellings",
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

    def for_layout(self, layout: Layout) -> Scheme:
        """This scheme for a tensor stored in ``layout`` (``"torch"``: ``(out, in, *k)``,
        ``"keras"``/``"jax"``: ``(*k, in, out)``).

        Schemes whose meaning depends on which axis is the output (orthogonal's flattening,
        delta-orthogonal's channel axes) resolve their default axes here; the rest return
        themselves. An explicit axis is kept.

        >>> get_scheme("orthogonal").for_layout("keras").column_axis
        -1
        """
        check_choice("layout", layout, LAYOUTS)
        return self

    def fans_for(self, shape: Sequence[int], layout: Layout = "torch") -> Fans | None:
        """The fans this scheme reads from a tensor of ``shape`` in ``layout`` (None if it
        uses none): :func:`~initlab.fans.compute_fans` unless the scheme fixes its own axes.

        >>> get_scheme("he_normal").fans_for((3, 3, 16, 32), "keras")
        Fans(fan_in=144, fan_out=288)
        """
        return compute_fans(shape, layout=layout) if self.uses_fans else None

    def __str__(self) -> str:
        return self.name


def _call_name(base: str, **params: Any) -> str:
    inner = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{base}({inner})"


@dataclass(frozen=True)
class VarianceScaling(Scheme):
    """``std = gain * sqrt(scale / n)``, ``n`` = fan_in, fan_out, fan_avg or fan_geo_avg.

    ``fan_floor``: ``n = max(fan_floor, fan)``; Keras's spellings set 1, so that a tensor with
    a zero-size dimension gets an empty array instead of a division by zero, and Keras's
    fans of 0-D and 1-D shapes are accepted. ``axes``: explicit
    :class:`~initlab.fans.FanAxes` (Keras's ``input_axes``/``output_axes``, JAX's
    ``in_axis``/``out_axis``/``batch_axis``), which then decide the fans from the shape.

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
    fan_floor: float = 0.0
    axes: FanAxes | None = None
    uses_fans = True

    def __post_init__(self) -> None:
        check_real("scale", self.scale, minimum=0.0, strict_minimum=True)
        check_choice("mode", self.mode, VARIANCE_MODES)
        check_choice("distribution", self.distribution, DISTRIBUTIONS)
        check_real("gain", self.gain, minimum=0.0)
        check_real("fan_floor", self.fan_floor, minimum=0.0)
        if self.axes is not None and not isinstance(self.axes, FanAxes):
            raise TypeError(f"axes={self.axes!r} is not valid; allowed: None or a FanAxes.")

    @property
    def name(self) -> str:
        if self.fan_floor or self.axes is not None:
            return native_name(self)
        params = {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}
        if self.gain != 1.0:
            params["gain"] = self.gain
        return _call_name("variance_scaling", **params)

    def min_ndim(self) -> int:
        return 0 if self.fan_floor or self.axes is not None else 2

    def _fans(self, shape: Sequence[int], fans: Fans | None) -> Fans:
        if self.axes is not None:
            return self.axes.fans(shape)
        if fans is None and self.fan_floor and len(shape) < 2:
            return keras_fans(shape)
        return super()._fans(shape, fans)

    def fans_for(self, shape: Sequence[int], layout: Layout = "torch") -> Fans:
        if self.axes is not None or (self.fan_floor and len(shape) < 2):
            return self._fans(shape, None)
        return super().fans_for(shape, layout)

    def formula(self) -> str:
        g = "" if self.gain == 1.0 else f"{self.gain:.4g} * "
        if self.mode == "fan_avg":
            std = f"{g}sqrt({2 * self.scale:.4g} / (fan_in + fan_out))"
        elif self.mode == "fan_geo_avg":
            std = f"{g}sqrt({self.scale:.4g} / sqrt(fan_in * fan_out))"
        else:
            std = f"{g}sqrt({self.scale:.4g} / {self.mode})"
        if self.fan_floor:
            std += f", fans floored at {self.fan_floor:g}"
        if self.distribution == "normal":
            return f"N(0, std^2), std = {std}"
        if self.distribution == "uniform":
            return f"U(-b, b), b = sqrt(3) * {std}"
        return f"truncated N at +-2 sigma, drawn std = {std}"

    def std(self, fans: Fans) -> float:
        """The std the drawn values have for these fans."""
        n = max(self.fan_floor, select_fan(fans, self.mode))
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


def orthogonal_along(shape: Sequence[int], column_axis: int, normals: np.ndarray) -> np.ndarray:
    """A tensor of ``shape`` whose vectors along ``column_axis`` are orthonormal (or whose
    vectors across it are, when they are fewer): Keras's and JAX's flattening.

    The tensor is read as a ``(prod(shape) / shape[column_axis], shape[column_axis])``
    matrix, the other axes in order, ``column_axis`` last.

    >>> w = orthogonal_along((3, 3, 4, 8), -1, Stream(0).normal(288)).reshape(-1, 8)
    >>> bool(np.allclose(w.T @ w, np.eye(8)))
    True
    """
    shape = tuple(shape)
    axis = column_axis % len(shape)
    cols = shape[axis]
    rows = math.prod(shape) // cols
    q = orthogonal_matrix(rows, cols, normals)
    rest = tuple(d for k, d in enumerate(shape) if k != axis)
    return np.moveaxis(q.reshape((*rest, cols)), -1, axis)


def _check_column_axis(column_axis: int | None) -> None:
    if column_axis is not None and (
        isinstance(column_axis, bool) or not isinstance(column_axis, int)
    ):
        raise TypeError(f"column_axis={column_axis!r} is not valid; allowed: None or an int.")


@dataclass(frozen=True)
class Orthogonal(Scheme):
    """A (semi-)orthogonal matrix times ``gain``.

    ``column_axis=None`` flattens the torch way, ``(dim 0, rest)``, dim 0 being the output
    axis of ``(out, in, *k)``; :meth:`for_layout` turns it into -1 for Keras/JAX kernels
    ``(*k, in, out)``. An int flattens as Keras and JAX do: ``(rest, shape[column_axis])``
    (:func:`orthogonal_along`). A tensor with a zero-size dimension gets zeros.

    >>> w = Orthogonal().sample((4, 4), Stream(0))
    >>> bool(np.allclose(w @ w.T, np.eye(4)))
    True
    """

    gain: float = 1.0
    column_axis: int | None = None

    def __post_init__(self) -> None:
        check_real("gain", self.gain)
        _check_column_axis(self.column_axis)

    @property
    def name(self) -> str:
        params: dict[str, Any] = {}
        if self.gain != 1.0:
            params["gain"] = self.gain
        if self.column_axis is not None:
            params["column_axis"] = self.column_axis
        return _call_name("orthogonal", **params) if params else "orthogonal"

    def for_layout(self, layout: Layout) -> Orthogonal:
        check_choice("layout", layout, LAYOUTS)
        if self.column_axis is not None or layout == "torch":
            return self
        return dataclasses.replace(self, column_axis=-1)

    def check_shape(self, shape: Sequence[int]) -> None:
        super().check_shape(shape)
        if self.column_axis is not None and not -len(shape) <= self.column_axis < len(shape):
            raise ValueError(
                f"column_axis={self.column_axis} is not valid for shape {tuple(shape)}; "
                f"allowed: an int in [{-len(shape)}, {len(shape) - 1}]."
            )

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
        if self.column_axis is not None:
            return self.gain * orthogonal_along(shape, self.column_axis, stream.normal(rows * cols))
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

    ``column_axis=None`` reads the torch layout above. An int reads JAX's and Keras's
    ``(*k, in, out)`` (:meth:`for_layout` sets -1 for them): the centre tap holds
    ``gain * Q``, ``Q`` an ``(in, out)`` matrix from :class:`Orthogonal` with that
    ``column_axis`` (``in <= out``; ``groups`` must be 1), as ``jax.nn.initializers``.

    >>> w = DeltaOrthogonal().sample((4, 2, 3, 3), Stream(0))
    >>> centre = w[:, :, 1, 1]
    >>> bool(np.allclose(centre.T @ centre, np.eye(2)))
    True
    >>> float(np.abs(w).sum() - np.abs(centre).sum())  # zeros off the centre
    0.0
    """

    gain: float = 1.0
    groups: int = 1
    column_axis: int | None = None

    def __post_init__(self) -> None:
        check_real("gain", self.gain)
        check_int("groups", self.groups, minimum=1)
        _check_column_axis(self.column_axis)
        if self.column_axis is not None and self.groups != 1:
            raise ValueError(
                f"groups={self.groups} with column_axis={self.column_axis} is not valid; "
                "the (*k, in, out) layout has no groups: allowed: groups=1."
            )

    @property
    def name(self) -> str:
        params: dict[str, Any] = {}
        if self.gain != 1.0:
            params["gain"] = self.gain
        if self.groups != 1:
            params["groups"] = self.groups
        if self.column_axis is not None:
            params["column_axis"] = self.column_axis
        return _call_name("delta_orthogonal", **params) if params else "delta_orthogonal"

    def for_layout(self, layout: Layout) -> DeltaOrthogonal:
        check_choice("layout", layout, LAYOUTS)
        if self.column_axis is not None or layout == "torch":
            return self
        if self.groups != 1:
            raise ValueError(
                f"scheme {self.name!r} on a {layout} kernel (*k, in, out): groups="
                f"{self.groups} is not valid there; allowed: groups=1."
            )
        return dataclasses.replace(self, column_axis=-1)

    def formula(self) -> str:
        g = "" if self.gain == 1.0 else f"{self.gain:g} * "
        return f"W[:, :, centre] = {g}Q with Q^T Q = I (per group), 0 elsewhere"

    def statistics(self, fans: Fans | None) -> dict[str, float]:
        return {"gain": self.gain}

    def min_ndim(self) -> int:
        return 3

    def check_shape(self, shape: Sequence[int]) -> None:
        shape = tuple(shape)
        layout = "(out, in, *kernel)" if self.column_axis is None else "(*kernel, in, out)"
        if len(shape) not in (3, 4, 5):
            raise ValueError(
                f"scheme 'delta_orthogonal' needs a 3, 4 or 5-D convolution weight "
                f"{layout}; got shape {shape}."
            )
        if self.column_axis is not None:
            if shape[-1] < shape[-2]:
                raise ValueError(
                    f"scheme 'delta_orthogonal' needs out_channels >= in_channels (an isometry "
                    f"can not reduce the dimension); got shape {shape} {layout}: "
                    f"{shape[-1]} < {shape[-2]}."
                )
            if not -2 <= self.column_axis < 2:
                raise ValueError(
                    f"column_axis={self.column_axis} is not valid: it names an axis of the "
                    "(in, out) centre matrix; allowed: -2, -1, 0 or 1."
                )
            return
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
        if self.column_axis is not None:
            matrix = tuple(shape[-2:])
            if math.prod(matrix):
                centre = tuple((k - 1) // 2 for k in shape[:-2])
                normals = stream.normal(math.prod(matrix))
                out[centre] = self.gain * orthogonal_along(matrix, self.column_axis, normals)
            return out
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

    gain: float = 1.0
    random = False

    def __post_init__(self) -> None:
        check_real("gain", self.gain)

    @property
    def name(self) -> str:
        return "eye" if self.gain == 1.0 else _call_name("eye", gain=self.gain)

    def formula(self) -> str:
        return "W = I" if self.gain == 1.0 else f"W = {self.gain:g} I"

    def statistics(self, fans: Fans | None) -> dict[str, float]:
        return {"gain": self.gain}

    def check_shape(self, shape: Sequence[int]) -> None:
        if len(shape) != 2:
            raise ValueError(f"scheme 'eye' needs a 2-D tensor; got shape {tuple(shape)}.")

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        self.check_shape(shape)
        return self.gain * np.eye(*shape)


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


def orthogonal(gain=1.0, column_axis=None):
    """Orthogonal matrix times gain (Saxe et al. 2013); ``column_axis``: Keras/JAX flattening."""
    return Orthogonal(gain, column_axis)


def delta_orthogonal(gain=1.0, groups=1, column_axis=None):
    """Delta-orthogonal convolution kernel (Xiao et al. 2018): orthogonal centre, zeros around."""
    return DeltaOrthogonal(gain, groups, column_axis)


def eye(gain=1.0):
    """Identity matrix times gain."""
    return Eye(gain)


def dirac(groups=1):
    """Dirac delta, identity-preserving convolution."""
    return Dirac(groups)


def sparse(sparsity=0.1, std=0.01):
    """Sparse normal (Martens 2010)."""
    return Sparse(sparsity, std)


SCHEMES: dict[str, Callable[..., Scheme]] = {
    f.__name__: f
    for f in (
        he_normal, he_uniform, xavier_normal, xavier_uniform, lecun_normal, lecun_uniform,
        variance_scaling, random, normal, uniform, trunc_normal, zeros, ones, constant,
        orthogonal, delta_orthogonal, eye, dirac, sparse,
    )
}  # fmt: skip

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
}


#: Other libraries' own spellings (``HeNormal``, ``keras.he_normal``, ``jax.orthogonal``), name
#: -> factory: :mod:`initlab.spellings` registers Keras's and JAX's when initlab is imported.
_NATIVE: dict[str, Callable[..., Scheme]] = {}


def register_spellings(names: Mapping[str, Callable[..., Scheme]]) -> None:
    """Add names that :func:`get_scheme` accepts as they are (case-sensitive), with their
    library's arguments, positional ones included.

    >>> register_spellings({"my.he": lambda: get_scheme("he_normal")})
    >>> get_scheme("my.he").distribution
    'normal'
    >>> del _NATIVE["my.he"]
    """
    _NATIVE.update(names)


def _native() -> dict[str, Callable[..., Scheme]]:
    return _NATIVE


def native_name(scheme: VarianceScaling) -> str:
    """The registry spelling of a variance-scaling scheme with Keras's fan floor or explicit
    Keras/JAX axes (the gain folded into ``scale``).

    >>> from initlab.schemes import get_scheme
    >>> native_name(get_scheme("jax.he_normal(in_axis=0, out_axis=1)"))
    "jax.variance_scaling(scale=2.0, mode='fan_in', distribution='truncated_normal', ...)"
    """
    scale = float(f"{scheme.scale * scheme.gain**2:.15g}")
    axes = scheme.axes
    if scheme.fan_floor or (axes is not None and axes.convention == "keras"):
        spelled = {"normal": "untruncated_normal"}.get(scheme.distribution, scheme.distribution)
        extra = ""
        if axes is not None:
            extra = f", input_axes={axes.in_axes!r}, output_axes={axes.out_axes!r}"
        return (
            f"keras.VarianceScaling(scale={scale!r}, mode={scheme.mode!r}, "
            f"distribution={spelled!r}{extra})"
        )
    assert axes is not None
    return (
        f"jax.variance_scaling(scale={scale!r}, mode={scheme.mode!r}, "
        f"distribution={scheme.distribution!r}, "
        f"in_axis={axes.in_axes!r}, out_axis={axes.out_axes!r}, batch_axis={axes.batch_axes!r})"
    )


def scheme_names() -> tuple[str, ...]:
    """Every name :func:`get_scheme` accepts, canonical presets first.

    >>> {"he_normal", "HeNormal", "jax.he_normal", "xavier"} <= set(scheme_names())
    True
    """
    return (*SCHEMES, *ALIASES, *_native())


def _lookup(name: str) -> tuple[Callable[..., Scheme], dict[str, Any]]:
    if name in _native():  # Keras and JAX names are case-sensitive, as in Keras and JAX
        return _native()[name], {}
    for candidate in (name, name.rstrip("_"), name.lower(), name.lower().rstrip("_")):
        if candidate in SCHEMES:
            return SCHEMES[candidate], {}
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


#: Parameters that say where a tensor's axes lie, not what its values are: they do not count
#: when deciding whether a scheme has one parameter (``orthogonal(2.0)`` sets the gain).
_LAYOUT_PARAMS = frozenset({"column_axis"})


def _check_positional(text: str, name: str, args: list[Any], params: Any) -> None:
    """The one argument-order convention of scheme strings: arguments are named, except the
    single argument of a one-parameter scheme (``constant(0.5)``, ``orthogonal(2.0)``,
    ``dirac(2)``). So ``normal(0.02)`` is an error, never a silent mean of 0.02. Keras's and
    JAX's own names take their library's positional order too (``jax.variance_scaling(1.0,
    "fan_in", "normal")``): that order is theirs, documented, and the same as in their code."""
    values = [p for p in params if p not in _LAYOUT_PARAMS]
    if not args or (len(values) == 1 and len(args) == 1) or name in _NATIVE:
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
    _check_positional(scheme, name, args, params)
    unknown = sorted(set(merged) - set(params))
    if unknown:
        raise ValueError(
            f"scheme={scheme!r}: unknown argument(s) {unknown}; allowed: {list(params)}."
        )
    try:
        return factory(*args, **merged)
    except TypeError as error:
        raise ValueError(f"scheme={scheme!r}: {error}; allowed: {list(params)}.") from None
