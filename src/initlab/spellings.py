r"""Keras 3 and JAX initializers under their own names, with their exact semantics.

Every initializer of ``keras.initializers`` (Keras 3) and every function of
``jax.nn.initializers``, with every argument, maps to an initlab :class:`~initlab.schemes.Scheme`
that draws the same distribution. The registry (:func:`~initlab.schemes.get_scheme`) knows
them as Keras class names (``HeNormal``), ``keras.<name>`` (``keras.he_normal``,
``keras.VarianceScaling``) and ``jax.<name>`` (``jax.glorot_normal``); :mod:`initlab.keras`
and :mod:`initlab.jax` look them up without the prefix, as Keras and JAX do.

What differs between the three conventions, and what each spelling therefore means:

==========================  ==========================  =================================
                            Keras 3                     JAX
==========================  ==========================  =================================
``*_normal`` presets        truncated normal            truncated normal
``distribution="normal"``   truncated (Keras renames    plain normal
                            it); ``"untruncated_normal"``
                            is the plain one; any case
``mode``                    fan_in, fan_out, fan_avg    also ``fan_geo_avg``:
                                                        ``sqrt(fan_in * fan_out)``
fans                        ``max(1, fan)``; 1-D        ``in_axis``/``out_axis`` ints or
                            ``(n,)``: ``(n, n)``; 0-D:  tuples, ``batch_axis``; a
                            ``(1, 1)``; explicit        zero-size in/out axis is an error
                            ``input_axes``/             (JAX divides by zero)
                            ``output_axes``: products
                            of those sizes only
orthogonal                  ``(prod(shape[:-1]),        ``column_axis`` (default -1),
                            shape[-1])``, ``gain``      ``scale``
identity                    ``Identity(gain)``, 2-D     (none)
==========================  ==========================  =================================

Default axes follow the caller's layout: ``initlab.numpy.initialize(..., layout="keras")``,
:mod:`initlab.keras` and :mod:`initlab.jax` read ``(*k, in, out)``; the same name used on a
torch tensor ``(out, in, *k)`` reads torch's axes (fans, orthogonal flattening). Explicit
axes (``input_axes``, ``in_axis``, ``column_axis`` other than -1) are kept as given.

A ``seed`` (Keras) or ``dtype`` (JAX) argument belongs to the adapters
(:func:`initlab.keras.get`, :func:`initlab.jax.get`); a scheme from the registry has neither
(its caller gives the seed and the dtype), so a value other than None is an error there.

>>> from initlab.schemes import get_scheme
>>> get_scheme("VarianceScaling(scale=2.0, distribution='normal')").distribution
'truncated_normal'
>>> get_scheme("keras.variance_scaling(distribution='Untruncated_Normal')").distribution
'normal'
>>> get_scheme("jax.variance_scaling(1.0, 'fan_geo_avg', 'normal')").mode
'fan_geo_avg'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from initlab._validation import check_choice, choice_error
from initlab.fans import FAN_MODES, VARIANCE_MODES, FanAxes, Fans
from initlab.rng import Stream
from initlab.schemes import (
    Constant,
    DeltaOrthogonal,
    Eye,
    Normal,
    Orthogonal,
    Scheme,
    TruncNormal,
    Uniform,
    VarianceScaling,
    register_spellings,
)

__all__ = ["JAX", "KERAS", "STFT", "registry"]

KERAS_FAN_FLOOR = 1.0


def _no_seed(seed: Any) -> None:
    if seed is not None:
        raise ValueError(
            f"seed={seed!r}: a registry scheme has no seed (its caller gives one); pass the "
            "seed to initlab.keras.get(identifier, seed=...) or initialize(..., seed=...)."
        )


def _no_dtype(dtype: Any) -> None:
    if dtype is not None:
        raise ValueError(
            f"dtype={dtype!r}: a registry scheme has no dtype (its caller chooses it); use "
            "initlab.jax.get(identifier, dtype=...) or initialize(..., dtype=...)."
        )


# --------------------------------------------------------------------------------------
# Keras 3
# --------------------------------------------------------------------------------------

_KERAS_DISTRIBUTIONS = {
    "uniform": "uniform",
    "truncated_normal": "truncated_normal",
    "normal": "truncated_normal",  # Keras renames "normal" to its truncated normal
    "untruncated_normal": "normal",
}


def _keras_axes(input_axes: Any, output_axes: Any) -> FanAxes | None:
    if input_axes is None or output_axes is None:  # Keras uses them only as a pair
        return None
    return FanAxes("keras", _tuple("input_axes", input_axes), _tuple("output_axes", output_axes))


def _tuple(param: str, axes: Any) -> tuple[int, ...]:
    if isinstance(axes, int) and not isinstance(axes, bool):
        return (axes,)
    try:
        values = tuple(axes)
    except TypeError:
        values = (axes,)
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in values):
        raise ValueError(f"{param}={axes!r} is not valid; allowed: an int or a sequence of ints.")
    return values


def keras_variance_scaling(
    scale=1.0,
    mode="fan_in",
    distribution="truncated_normal",
    seed=None,
    input_axes=None,
    output_axes=None,
):
    """Keras's ``VarianceScaling``: ``"normal"`` is truncated, ``"untruncated_normal"`` plain,
    distribution names in any case, ``max(1, fan)``."""
    _no_seed(seed)
    check_choice("mode", mode, FAN_MODES)
    if not isinstance(distribution, str):
        raise choice_error("distribution", distribution, _KERAS_DISTRIBUTIONS)
    key = distribution.lower()
    if key not in _KERAS_DISTRIBUTIONS:
        raise choice_error("distribution", distribution, _KERAS_DISTRIBUTIONS)
    return VarianceScaling(
        scale,
        mode,
        _KERAS_DISTRIBUTIONS[key],
        fan_floor=KERAS_FAN_FLOOR,
        axes=_keras_axes(input_axes, output_axes),
    )


def _keras_preset(cls: str, scale: float, mode: str, distribution: str) -> Callable[..., Scheme]:
    def preset(seed=None, input_axes=None, output_axes=None):
        return keras_variance_scaling(scale, mode, distribution, seed, input_axes, output_axes)

    preset.__name__ = cls
    preset.__doc__ = f"Keras's ``{cls}``: ``VarianceScaling({scale}, {mode!r}, {distribution!r})``."
    return preset


def keras_random_normal(mean=0.0, stddev=0.05, seed=None):
    """Keras's ``RandomNormal``: ``N(mean, stddev^2)``."""
    _no_seed(seed)
    return Normal(mean, stddev)


def keras_truncated_normal(mean=0.0, stddev=0.05, seed=None):
    """Keras's ``TruncatedNormal``: ``N(mean, stddev^2)`` cut at ``mean +- 2 stddev``
    (the drawn std is ``0.88 stddev``: Keras does not correct it)."""
    _no_seed(seed)
    return TruncNormal(mean, stddev, mean - 2.0 * stddev, mean + 2.0 * stddev)


def keras_random_uniform(minval=-0.05, maxval=0.05, seed=None):
    """Keras's ``RandomUniform``: ``U(minval, maxval)``."""
    _no_seed(seed)
    return Uniform(minval, maxval)


def keras_orthogonal(gain=1.0, seed=None):
    """Keras's ``Orthogonal``: ``(prod(shape[:-1]), shape[-1])`` flattening on a Keras kernel."""
    _no_seed(seed)
    return Orthogonal(gain)


def keras_constant(value=0.0):
    """Keras's ``Constant``: every value equals ``value``."""
    return Constant(value)


def keras_zeros():
    """Keras's ``Zeros``."""
    return Constant(0.0, "zeros")


def keras_ones():
    """Keras's ``Ones``."""
    return Constant(1.0, "ones")


def keras_identity(gain=1.0):
    """Keras's ``Identity``: ``gain * eye(rows, cols)``, 2-D only."""
    return Eye(gain)


@dataclass(frozen=True)
class STFT(Scheme):
    r"""Keras's STFT kernel ``(T, channels, F)``: the real or imaginary part of the DFT.

    .. math::  W[t, :, f] = w[t] \cos(-2\pi t f / (2 (F - 1))) / s \quad (\sin: \text{imag})

    ``w`` the window (``scipy.signal.get_window(window, T, fftbins=periodic)``, an array, or
    None: ones), ``s`` its L2 norm (``scaling="density"``), its L1 norm (``"spectrum"``) or 1.

    >>> w = STFT(window=None, scaling=None).sample((4, 1, 3), Stream(0))
    >>> w[:, 0, 0].tolist()  # frequency 0: the DC component
    [1.0, 1.0, 1.0, 1.0]
    """

    side: str = "real"
    window: str | tuple[float, ...] | None = "hann"
    scaling: str | None = "density"
    periodic: bool = False
    random = False

    def __post_init__(self) -> None:
        check_choice("side", self.side, ("real", "imag"))
        if self.scaling is not None:
            check_choice("scaling", self.scaling, ("density", "spectrum"))
        if isinstance(self.window, str):
            from scipy.signal import get_window

            try:
                get_window(self.window, 1)
            except ValueError as error:
                raise ValueError(
                    f"window={self.window!r} is not valid ({error}); allowed: a name from "
                    "scipy.signal.windows, an array of T values, or None."
                ) from None
        elif self.window is not None and not isinstance(self.window, tuple):
            object.__setattr__(self, "window", tuple(float(v) for v in self.window))

    @property
    def name(self) -> str:
        return (
            f"keras.STFT(side={self.side!r}, window={self.window!r}, "
            f"scaling={self.scaling!r}, periodic={self.periodic!r})"
        )

    def formula(self) -> str:
        part = "cos" if self.side == "real" else "sin"
        return f"w[t] {part}(-2 pi t f / (2 (F - 1))) / {self.scaling or 1}"

    def check_shape(self, shape: Sequence[int]) -> None:
        if len(shape) != 3 or shape[2] < 2:
            raise ValueError(
                f"scheme 'STFT' needs a 3-D kernel (frame_length, channels, fft_bins) with "
                f"fft_bins >= 2; got shape {tuple(shape)}."
            )

    def sample(self, shape: Sequence[int], stream: Stream, fans: Fans | None = None) -> np.ndarray:
        self.check_shape(shape)
        frames, channels, bins = shape
        window = np.ones(frames)
        if isinstance(self.window, str):
            from scipy.signal import get_window

            window = get_window(self.window, frames, fftbins=self.periodic)
        elif self.window is not None:
            window = np.asarray(self.window, dtype=np.float64)
            if window.shape != (frames,):
                raise ValueError(
                    f"window has {window.size} values; allowed: frame_length={frames} values."
                )
        norm = 1.0
        if self.window is not None and self.scaling == "density":
            norm = math.sqrt(float(np.sum(window**2)))
        elif self.window is not None and self.scaling == "spectrum":
            norm = float(np.sum(np.abs(window)))
        angle = -2.0 * np.pi * np.outer(np.arange(frames), np.arange(bins)) / (2 * (bins - 1))
        part = np.cos(angle) if self.side == "real" else np.sin(angle)
        kernel = part * window[:, None] / norm
        return np.broadcast_to(kernel[:, None, :], (frames, channels, bins)).copy()


def keras_stft(side="real", window="hann", scaling="density", periodic=False):
    """Keras's ``STFT`` (``STFTInitializer``): DFT kernels for ``STFTSpectrogram``."""
    if window is not None and not isinstance(window, str):
        window = tuple(float(v) for v in np.asarray(window, dtype=np.float64).ravel())
    return STFT(side, window, scaling, periodic)


def _keras_table() -> dict[str, Callable[..., Scheme]]:
    classes: dict[str, Callable[..., Scheme]] = {
        "Constant": keras_constant,
        "Zeros": keras_zeros,
        "Ones": keras_ones,
        "Identity": keras_identity,
        "STFT": keras_stft,
        "RandomNormal": keras_random_normal,
        "TruncatedNormal": keras_truncated_normal,
        "RandomUniform": keras_random_uniform,
        "VarianceScaling": keras_variance_scaling,
        "GlorotUniform": _keras_preset("GlorotUniform", 1.0, "fan_avg", "uniform"),
        "GlorotNormal": _keras_preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal"),
        "LecunNormal": _keras_preset("LecunNormal", 1.0, "fan_in", "truncated_normal"),
        "LecunUniform": _keras_preset("LecunUniform", 1.0, "fan_in", "uniform"),
        "HeNormal": _keras_preset("HeNormal", 2.0, "fan_in", "truncated_normal"),
        "HeUniform": _keras_preset("HeUniform", 2.0, "fan_in", "uniform"),
        "Orthogonal": keras_orthogonal,
    }
    snake = {
        "Constant": "constant", "Zeros": "zeros", "Ones": "ones", "Identity": "identity",
        "STFT": "stft", "RandomNormal": "random_normal", "TruncatedNormal": "truncated_normal",
        "RandomUniform": "random_uniform", "VarianceScaling": "variance_scaling",
        "GlorotUniform": "glorot_uniform", "GlorotNormal": "glorot_normal",
        "LecunNormal": "lecun_normal", "LecunUniform": "lecun_uniform",
        "HeNormal": "he_normal", "HeUniform": "he_uniform", "Orthogonal": "orthogonal",
    }  # fmt: skip
    table = dict(classes)
    table.update({snake[c]: f for c, f in classes.items()})
    table.update(
        {  # Keras's own aliases
            "IdentityInitializer": keras_identity,
            "normal": keras_random_normal,
            "one": keras_ones,
            "STFTInitializer": keras_stft,
            "OrthogonalInitializer": keras_orthogonal,
            "uniform": keras_random_uniform,
            "zero": keras_zeros,
        }
    )
    return table


#: Every name ``keras.initializers.get`` accepts (Keras 3) -> its initlab factory, which takes
#: exactly the Keras initializer's arguments.
KERAS: dict[str, Callable[..., Scheme]] = _keras_table()


# --------------------------------------------------------------------------------------
# JAX
# --------------------------------------------------------------------------------------

_JAX_DEFAULT_AXES = ((-2,), (-1,), ())


def _jax_axes(in_axis: Any, out_axis: Any, batch_axis: Any) -> FanAxes | None:
    axes = (
        _tuple("in_axis", in_axis),
        _tuple("out_axis", out_axis),
        _tuple("batch_axis", batch_axis),
    )
    return None if axes == _JAX_DEFAULT_AXES else FanAxes("jax", *axes)


def jax_variance_scaling(
    scale, mode, distribution, in_axis=-2, out_axis=-1, batch_axis=(), dtype=None
):
    """``jax.nn.initializers.variance_scaling``: ``"normal"`` is a plain normal, ``mode`` may
    be ``"fan_geo_avg"``, axes may be tuples, ``batch_axis`` leaves the receptive field."""
    _no_dtype(dtype)
    check_choice("mode", mode, VARIANCE_MODES)
    check_choice("distribution", distribution, ("truncated_normal", "normal", "uniform"))
    return VarianceScaling(scale, mode, distribution, axes=_jax_axes(in_axis, out_axis, batch_axis))


def _jax_preset(name: str, scale: float, mode: str, distribution: str) -> Callable[..., Scheme]:
    def preset(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
        return jax_variance_scaling(scale, mode, distribution, in_axis, out_axis, batch_axis, dtype)

    preset.__name__ = name
    preset.__doc__ = f"JAX's ``{name}``: ``variance_scaling({scale}, {mode!r}, {distribution!r})``."
    return preset


def jax_zeros():
    """``jax.nn.initializers.zeros``."""
    return Constant(0.0, "zeros")


def jax_ones():
    """``jax.nn.initializers.ones``."""
    return Constant(1.0, "ones")


def jax_constant(value, dtype=None):
    """``jax.nn.initializers.constant``: every value equals ``value`` (a scalar)."""
    _no_dtype(dtype)
    if np.ndim(value) != 0:
        raise ValueError(
            f"value with shape {np.shape(value)} is not valid here; allowed: a scalar "
            "(an array value broadcast over the shape is not supported)."
        )
    return Constant(float(value))


def jax_uniform(scale=1e-2, dtype=None):
    """``jax.nn.initializers.uniform``: ``U(0, scale)`` (``U(scale, 0)`` for a negative one)."""
    _no_dtype(dtype)
    return Uniform(min(0.0, scale), max(0.0, scale))


def jax_normal(stddev=1e-2, dtype=None):
    """``jax.nn.initializers.normal``: ``stddev * N(0, 1)``."""
    _no_dtype(dtype)
    return Normal(0.0, abs(stddev))


def jax_truncated_normal(stddev=1e-2, dtype=None, lower=-2.0, upper=2.0):
    """``jax.nn.initializers.truncated_normal``: ``stddev * X``, ``X ~ N(0, 1) | [lower, upper]``
    (not std-corrected)."""
    _no_dtype(dtype)
    a, b = sorted((lower * stddev, upper * stddev))
    return TruncNormal(0.0, abs(stddev), a, b)


def jax_orthogonal(scale=1.0, column_axis=-1, dtype=None):
    """``jax.nn.initializers.orthogonal``: orthonormal vectors along ``column_axis``, times
    ``scale``."""
    _no_dtype(dtype)
    return Orthogonal(scale, None if column_axis == -1 else column_axis)


def jax_delta_orthogonal(scale=1.0, column_axis=-1, dtype=None):
    """``jax.nn.initializers.delta_orthogonal``: an orthogonal ``(in, out)`` matrix at the
    centre tap of a ``(*k, in, out)`` kernel, zeros elsewhere."""
    _no_dtype(dtype)
    return DeltaOrthogonal(scale, 1, None if column_axis == -1 else column_axis)


def _jax_table() -> dict[str, Callable[..., Scheme]]:
    presets = {
        "glorot_uniform": (1.0, "fan_avg", "uniform"),
        "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
        "lecun_uniform": (1.0, "fan_in", "uniform"),
        "lecun_normal": (1.0, "fan_in", "truncated_normal"),
        "he_uniform": (2.0, "fan_in", "uniform"),
        "he_normal": (2.0, "fan_in", "truncated_normal"),
    }
    table: dict[str, Callable[..., Scheme]] = {
        "zeros": jax_zeros,
        "ones": jax_ones,
        "constant": jax_constant,
        "uniform": jax_uniform,
        "normal": jax_normal,
        "truncated_normal": jax_truncated_normal,
        "variance_scaling": jax_variance_scaling,
        **{name: _jax_preset(name, *args) for name, args in presets.items()},
        "orthogonal": jax_orthogonal,
        "delta_orthogonal": jax_delta_orthogonal,
    }
    for alias, name in (
        ("xavier_uniform", "glorot_uniform"), ("xavier_normal", "glorot_normal"),
        ("kaiming_uniform", "he_uniform"), ("kaiming_normal", "he_normal"),
    ):  # fmt: skip
        table[alias] = table[name]
    return table


#: Every function of ``jax.nn.initializers`` -> its initlab factory, with JAX's arguments.
#: ``zeros`` and ``ones`` are initializers in JAX (no factory call); here they take no
#: arguments.
JAX: dict[str, Callable[..., Scheme]] = _jax_table()


@cache
def registry() -> dict[str, Callable[..., Scheme]]:
    """The names :func:`~initlab.schemes.get_scheme` adds for Keras and JAX: Keras class
    names, ``keras.<any Keras name>`` and ``jax.<any JAX name>``.

    >>> {"HeNormal", "keras.he_normal", "keras.STFT", "jax.orthogonal"} <= set(registry())
    True
    """
    names: dict[str, Callable[..., Scheme]] = {}
    for name, factory in KERAS.items():
        if name[0].isupper():
            names[name] = factory
        names[f"keras.{name}"] = factory
    for name, factory in JAX.items():
        names[f"jax.{name}"] = factory
    return names


# get_scheme knows these names from here on (initlab/__init__ imports this module).
register_spellings(registry())
