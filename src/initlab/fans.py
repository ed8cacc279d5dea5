r"""Fans: how many inputs feed one output unit (fan_in) and how many outputs one input feeds.

For a weight of shape ``(out, in, *k)`` (PyTorch's layout) the receptive field is
``prod(k)`` and ``fan_in = in * prod(k)``, ``fan_out = out * prod(k)``. Keras and JAX store
kernels as ``(*k, in, out)``; :func:`compute_fans` reads either layout, or explicit axes.

:func:`layer_fans` gives the fans a layer really has, which the tensor alone cannot tell:

* grouped and depthwise convolutions: weight ``(out, in/groups, *k)``; each input channel
  feeds only ``out/groups`` output channels, so ``fan_out = out/groups * prod(k)``
  (torch.nn.init says ``out * prod(k)``, PyTorch issue #23854);
* transposed convolutions: weight ``(in, out/groups, *k)``; each output unit is reached from
  ``in/groups`` channels, so ``fan_in = in/groups * prod(k)`` and
  ``fan_out = out/groups * prod(k)`` (torch.nn.init reads the dimensions the other way
  round, PyTorch issue #7865). With ``stride > 1`` an output position sees about
  ``prod(k) / stride^d`` kernel taps; like every library we count the full kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from initlab._validation import check_choice, check_int

__all__ = [
    "FAN_MODES",
    "LAYOUTS",
    "VARIANCE_MODES",
    "FanAxes",
    "Fans",
    "compute_fans",
    "keras_fans",
    "layer_fans",
    "select_fan",
]

LAYOUTS = ("torch", "keras", "jax")
FAN_MODES = ("fan_in", "fan_out", "fan_avg")
#: The modes variance scaling accepts: torch's and Keras's three, and JAX's ``fan_geo_avg``.
VARIANCE_MODES = (*FAN_MODES, "fan_geo_avg")
Layout = Literal["torch", "keras", "jax"]


class Fans(NamedTuple):
    """A weight's fan_in and fan_out.

    >>> Fans(3, 5).fan_avg
    4.0
    """

    fan_in: int
    fan_out: int

    @property
    def fan_avg(self) -> float:
        """``(fan_in + fan_out) / 2``, the Glorot/Xavier denominator."""
        return (self.fan_in + self.fan_out) / 2.0

    @property
    def fan_geo_avg(self) -> float:
        """``sqrt(fan_in * fan_out)``, JAX's ``mode="fan_geo_avg"``."""
        return math.sqrt(self.fan_in * self.fan_out)


def _shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError as error:
        raise TypeError(f"shape={shape!r} is not valid; allowed: a sequence of ints.") from error
    if any(d < 0 for d in dims):
        raise ValueError(f"shape={shape!r} is not valid; allowed: non-negative sizes.")
    return dims


def compute_fans(
    shape: Sequence[int],
    *,
    layout: Layout = "torch",
    in_axis: int | None = None,
    out_axis: int | None = None,
) -> Fans:
    """Fans of a weight of the given shape.

    ``layout="torch"``: ``(out, in, *k)``. ``layout="keras"`` or ``"jax"``: ``(*k, in, out)``.
    ``in_axis`` and ``out_axis`` override the layout's axes; every other axis is receptive
    field. Fewer than 2 dimensions is a ValueError, as in torch.nn.init.

    >>> compute_fans((64, 32, 3, 3))
    Fans(fan_in=288, fan_out=576)
    >>> compute_fans((3, 3, 32, 64), layout="keras")
    Fans(fan_in=288, fan_out=576)
    """
    dims = _shape(shape)
    check_choice("layout", layout, LAYOUTS)
    if len(dims) < 2:
        raise ValueError(
            f"shape={dims!r}: fan in and fan out can not be computed for a tensor with fewer "
            "than 2 dimensions; allowed: 2 or more dimensions."
        )
    default_in, default_out = (1, 0) if layout == "torch" else (-2, -1)
    i = default_in if in_axis is None else in_axis
    o = default_out if out_axis is None else out_axis
    n = len(dims)
    for param, axis in (("in_axis", i), ("out_axis", o)):
        if isinstance(axis, bool) or not isinstance(axis, int) or not -n <= axis < n:
            raise ValueError(
                f"{param}={axis!r} is not valid for shape {dims}; allowed: an int in "
                f"[{-n}, {n - 1}]."
            )
    i, o = i % n, o % n
    if i == o:
        raise ValueError(f"in_axis and out_axis both name axis {i}; allowed: two distinct axes.")
    receptive = math.prod(d for k, d in enumerate(dims) if k not in (i, o))
    return Fans(dims[i] * receptive, dims[o] * receptive)


def layer_fans(weight_shape: Sequence[int], *, groups: int = 1, transposed: bool = False) -> Fans:
    """True fans of a (possibly grouped or transposed) convolution or linear weight.

    ``weight_shape`` is the torch parameter's shape: ``(out, in/groups, *k)`` for Linear and
    Conv, ``(in, out/groups, *k)`` for ConvTranspose.

    >>> layer_fans((16, 8, 3, 3), groups=2)  # Conv2d(16, 16, 3, groups=2)
    Fans(fan_in=72, fan_out=72)
    >>> layer_fans((8, 8, 3, 3), groups=2, transposed=True)  # ConvTranspose2d(8, 16, 3, groups=2)
    Fans(fan_in=36, fan_out=72)
    """
    dims = _shape(weight_shape)
    groups = check_int("groups", groups, minimum=1)
    if len(dims) < 2:
        raise ValueError(f"weight_shape={dims!r}: a layer weight needs 2 or more dimensions.")
    receptive = math.prod(dims[2:])
    if transposed:
        in_channels, out_per_group = dims[0], dims[1]
        if in_channels % groups:
            raise ValueError(
                f"groups={groups} does not divide in_channels={in_channels} "
                f"(weight_shape={dims}); allowed: a divisor of in_channels."
            )
        return Fans(in_channels // groups * receptive, out_per_group * receptive)
    out_channels, in_per_group = dims[0], dims[1]
    if out_channels % groups:
        raise ValueError(
            f"groups={groups} does not divide out_channels={out_channels} "
            f"(weight_shape={dims}); allowed: a divisor of out_channels."
        )
    return Fans(in_per_group * receptive, out_channels // groups * receptive)


def select_fan(fans: Fans, mode: str) -> float:
    """The fan that ``mode`` names: ``fan_in``, ``fan_out``, ``fan_avg`` or ``fan_geo_avg``.

    >>> select_fan(Fans(3, 5), "fan_avg")
    4.0
    >>> select_fan(Fans(4, 9), "fan_geo_avg")
    6.0
    """
    check_choice("mode", mode, VARIANCE_MODES)
    if mode == "fan_in":
        return float(fans.fan_in)
    if mode == "fan_out":
        return float(fans.fan_out)
    if mode == "fan_geo_avg":
        return fans.fan_geo_avg
    return fans.fan_avg


def _axes(param: str, value: object, ndim: int) -> tuple[int, ...]:
    axes = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        axes = tuple(axes)  # type: ignore[arg-type]
    except TypeError:
        axes = (value,)
    for axis in axes:
        if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim <= axis < ndim:
            raise ValueError(
                f"{param}={value!r} is not valid for a {ndim}-D shape; allowed: an int or a "
                f"sequence of ints in [{-ndim}, {ndim - 1}]."
            )
    return axes


@dataclass(frozen=True)
class FanAxes:
    r"""Explicit axes for the fans, in Keras's or JAX's convention.

    ``convention="keras"`` (``input_axes``, ``output_axes`` of Keras 3's variance scaling):
    ``fan_in = prod(shape[input_axes])``, ``fan_out = prod(shape[output_axes])``, nothing
    else counts. ``convention="jax"`` (``in_axis``, ``out_axis``, ``batch_axis`` of
    ``jax.nn.initializers``): with ``r = prod(shape) / (in * out * batch)`` the receptive
    field, ``fan_in = in * r`` and ``fan_out = out * r``, each of ``in``, ``out``, ``batch``
    the product of its axes' sizes.

    >>> FanAxes("jax", (-2,), (-1,), (0,)).fans((4, 3, 5))  # a batch of four (3, 5) kernels
    Fans(fan_in=3, fan_out=5)
    >>> FanAxes("keras", (0, 1), (2,)).fans((3, 3, 8))
    Fans(fan_in=9, fan_out=8)
    """

    convention: str
    in_axes: tuple[int, ...]
    out_axes: tuple[int, ...]
    batch_axes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_choice("convention", self.convention, ("keras", "jax"))

    def fans(self, shape: Sequence[int]) -> Fans:
        """The fans of a tensor of ``shape`` read with these axes."""
        dims = _shape(shape)
        n = len(dims)
        names = ("in_axis", "out_axis", "batch_axis")
        if self.convention == "keras":
            names = ("input_axes", "output_axes", "batch_axis")
        sizes = [
            math.prod(dims[a] for a in _axes(param, axes, n))
            for param, axes in zip(
                names, (self.in_axes, self.out_axes, self.batch_axes), strict=True
            )
        ]
        if self.convention == "keras":
            return Fans(sizes[0], sizes[1])
        divisor = sizes[0] * sizes[1] * sizes[2]
        if divisor == 0:
            raise ValueError(
                f"shape={dims}: an in, out or batch axis has size 0, so the receptive field "
                "(prod(shape) / (in * out * batch)) is undefined, as in JAX."
            )
        receptive = math.prod(dims) / divisor
        fan_in, fan_out = sizes[0] * receptive, sizes[1] * receptive
        return Fans(*(int(f) if float(f).is_integer() else f for f in (fan_in, fan_out)))


def keras_fans(shape: Sequence[int]) -> Fans:
    """Fans as Keras 3 reads a kernel ``(*k, in, out)``, also for fewer than 2 dimensions.

    0-D: ``(1, 1)``; 1-D ``(n,)``: ``(n, n)``; 2-D and more: as :func:`compute_fans` with
    ``layout="keras"``.

    >>> keras_fans((7,)), keras_fans(())
    (Fans(fan_in=7, fan_out=7), Fans(fan_in=1, fan_out=1))
    """
    dims = _shape(shape)
    if not dims:
        return Fans(1, 1)
    if len(dims) == 1:
        return Fans(dims[0], dims[0])
    return compute_fans(dims, layout="keras")
