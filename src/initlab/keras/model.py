r"""``initlab.keras.init``: initialize a built Keras model, each layer by what follows it.

The ``"auto"`` rule is initlab's (the same table as :func:`initlab.init` for torch):
``std = gain * sqrt(1 / n)``, ``n`` the fan that ``mode`` names (fan_in by default):

====================================================  ================  ===================
what the layer's output reaches first                 scheme            gain
====================================================  ================  ===================
relu, relu6, leaky_relu(a), ReLU, LeakyReLU, PReLU    He (``mode``)     sqrt(2 / (1 + a^2))
tanh, sigmoid                                         Xavier (fan_avg)  5/3, 1
selu                                                  LeCun (``mode``)  1
gelu, silu/swish, elu, mish, softplus, ...            He form           1 / sqrt(E[f(z)^2])
nothing: linear, softmax, the output, another layer   LeCun form        1
====================================================  ================  ===================

The activation is the layer's own ``activation`` argument (Dense, Conv), else the layer its
output reaches: an ``Activation``, ``ReLU``, ``LeakyReLU``, ``PReLU``, ``ELU`` or ``Softmax``
layer, looked up through the model's graph (Sequential and functional models alike) and
through layers that do not change the nonlinearity's input scale in kind (Dropout, Flatten,
Reshape, Permute, pooling, padding, normalization).

Fans are the layer's true fans in Keras's layout: Dense ``(in, out)``; Conv ``(*k, in/groups,
out)`` with ``fan_out = out/groups * prod(k)``; ConvTranspose ``(*k, out, in)``; depthwise
``(*k, in, multiplier)`` with ``fan_in = prod(k)``. Biases get zeros, normalization gamma 1
and beta 0 (moving mean 0, moving variance 1); other variables (embeddings, recurrent cells,
custom layers) are left as they are and reported as skipped.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from initlab._validation import check_choice, check_int
from initlab.fans import FAN_MODES, Fans
from initlab.gains import calculate_gain, gain_names
from initlab.keras.initializer import keras_scheme
from initlab.keras.report import KerasInitReport, KerasRow
from initlab.rng import Stream
from initlab.schemes import DISTRIBUTIONS, Constant, Scheme, VarianceScaling

__all__ = ["init"]

_L = keras.layers
_PASS_THROUGH = tuple(
    getattr(_L, name)
    for name in (
        "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
        "AlphaDropout", "Flatten", "Reshape", "Permute", "MaxPooling1D", "MaxPooling2D",
        "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
        "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D",
        "Cropping3D", "BatchNormalization", "LayerNormalization", "GroupNormalization",
    )
    if hasattr(_L, name)
)  # fmt: skip
_NORMS = tuple(
    getattr(_L, n)
    for n in ("BatchNormalization", "LayerNormalization", "GroupNormalization")
    if hasattr(_L, n)
)
_CONV = (_L.Conv1D, _L.Conv2D, _L.Conv3D)
_CONV_T = (_L.Conv1DTranspose, _L.Conv2DTranspose, _L.Conv3DTranspose)
_DEPTHWISE = (_L.DepthwiseConv1D, _L.DepthwiseConv2D)
_SEPARABLE = (_L.SeparableConv1D, _L.SeparableConv2D)
_ZEROS = Constant(0.0, "zeros")
_ONES = Constant(1.0, "ones")
#: Keras activation names -> initlab gain names, where they differ.
_GAIN_NAMES = {"swish": "silu", "hard_silu": "hardswish", "hard_swish": "hardswish"}


@dataclass(frozen=True)
class _Activation:
    name: str | None  # None: no nonlinearity
    param: float | None
    follows: str
    found_by: str


def _from_function(fn: Any) -> tuple[str | None, float | None]:
    name = getattr(fn, "__name__", None) if fn is not None else None
    if name in (None, "linear", "softmax", "log_softmax"):
        return None, None
    if name == "leaky_relu":
        return "leaky_relu", 0.2  # keras.activations.leaky_relu's default negative_slope
    return name, None


def _from_layer(layer: Any) -> tuple[str | None, float | None] | None:
    """The nonlinearity an activation layer applies; None if ``layer`` is not one."""
    if isinstance(layer, _L.Activation):
        return _from_function(layer.activation)
    if isinstance(layer, _L.ReLU):
        slope = float(layer.negative_slope)
        return ("leaky_relu", slope) if slope else ("relu", None)
    if isinstance(layer, _L.LeakyReLU):
        return "leaky_relu", float(layer.negative_slope)
    if isinstance(layer, _L.PReLU):
        alpha = keras.ops.convert_to_numpy(layer.alpha) if layer.built else np.zeros(1)
        return "leaky_relu", float(np.mean(alpha))
    if isinstance(layer, _L.ELU):
        return "elu", float(layer.alpha)
    if isinstance(layer, _L.Softmax):
        return None, None
    return None


def _consumers(layer: Any, members: set[int], order: list[Any]) -> tuple[list[Any], str]:
    nodes = getattr(layer, "_outbound_nodes", None) or []
    found = [n.operation for n in nodes if id(n.operation) in members]
    if found:
        return list({id(c): c for c in found}.values()), "graph"
    index = next((i for i, item in enumerate(order) if item is layer), None)
    if index is not None and index + 1 < len(order):
        return [order[index + 1]], "order"
    return [], "graph"


def _activation_after(layer: Any, members: set[int], order: list[Any]) -> _Activation:
    own = getattr(layer, "activation", None)
    name, param = _from_function(own)
    if name is not None:
        return _Activation(name, param, f"activation={name!r}", "activation argument")
    path: list[str] = []
    current = layer
    for _ in range(len(order) + 1):
        consumers, how = _consumers(current, members, order)
        if not consumers:
            return _Activation(None, None, " -> ".join([*path, "output"]), how)
        kinds = [_from_layer(c) for c in consumers]
        if all(k is not None for k in kinds) and len(set(kinds)) == 1:
            name, param = kinds[0]  # type: ignore[misc]
            label = consumers[0].name if name is not None else f"{consumers[0].name} (linear)"
            return _Activation(name, param, " -> ".join([*path, label]), how)
        if len(consumers) == 1 and isinstance(consumers[0], _PASS_THROUGH):
            path.append(consumers[0].name)
            current = consumers[0]
            continue
        names = ", ".join(c.name for c in consumers)
        return _Activation(None, None, " -> ".join([*path, names]), how)
    return _Activation(None, None, "cycle", "graph")  # pragma: no cover


def _auto(
    activation: _Activation, mode: str, distribution: str
) -> tuple[VarianceScaling, str, float]:
    name, param = activation.name, activation.param
    if name is None:
        return VarianceScaling(1.0, mode, distribution, 1.0), "linear", 1.0
    if name in ("relu", "relu6", "leaky_relu"):
        gain = calculate_gain("leaky_relu", param or 0.0) if name == "leaky_relu" else math.sqrt(2)
        return VarianceScaling(1.0, mode, distribution, gain), "he", gain
    if name in ("tanh", "sigmoid"):
        gain = calculate_gain(name)
        return VarianceScaling(1.0, "fan_avg", distribution, gain), "xavier", gain
    if name == "selu":
        return VarianceScaling(1.0, mode, distribution, 1.0), "lecun", 1.0
    gain_name = _GAIN_NAMES.get(name, name)
    if gain_name in gain_names():
        gain = calculate_gain(gain_name, param)
        return VarianceScaling(1.0, mode, distribution, gain), "numeric", gain
    return VarianceScaling(1.0, mode, distribution, 1.0), "linear", 1.0


def _kernel_fans(layer: Any, variable: Any) -> Fans | None:
    shape = tuple(int(d) for d in variable.shape)
    if isinstance(layer, _L.Dense) and len(shape) == 2:
        return Fans(shape[0], shape[1])
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    if isinstance(layer, _DEPTHWISE) or (
        isinstance(layer, _SEPARABLE) and variable is getattr(layer, "depthwise_kernel", None)
    ):
        return Fans(receptive, shape[-1] * receptive)
    if isinstance(layer, _SEPARABLE):
        return Fans(shape[-2] * receptive, shape[-1] * receptive)
    if isinstance(layer, _CONV_T):
        groups = int(getattr(layer, "groups", 1) or 1)
        return Fans(shape[-1] // groups * receptive, shape[-2] * receptive)
    if isinstance(layer, _CONV):
        groups = int(getattr(layer, "groups", 1) or 1)
        return Fans(shape[-2] * receptive, shape[-1] // groups * receptive)
    return None


def _layers(model: Any) -> list[Any]:
    out: list[Any] = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            out.extend(_layers(layer))
        else:
            out.append(layer)
    return out


@dataclass
class _Plan:
    variable: Any
    row: KerasRow
    scheme: Scheme | None
    fans: Fans | None


def _plan_layer(
    layer: Any, members: set[int], order: list[Any], chosen: Scheme | None, mode: str,
    distribution: str, scheme_label: str,
) -> list[_Plan]:  # fmt: skip
    plans = []
    for variable in layer.weights:
        shape = tuple(int(d) for d in variable.shape)
        base = {"parameter": variable.path, "layer": layer.name,
                "layer_type": type(layer).__name__, "shape": shape}  # fmt: skip
        attr = variable.path.rsplit("/", 1)[-1]
        fans = _kernel_fans(layer, variable) if "kernel" in attr else None
        if fans is not None:
            separable_depthwise = isinstance(layer, _SEPARABLE) and attr == "depthwise_kernel"
            act = (
                _Activation(None, None, layer.name + " pointwise", "layer")
                if separable_depthwise else _activation_after(layer, members, order)
            )  # fmt: skip
            if chosen is None:
                scheme, rule, gain = _auto(act, mode, distribution)
            else:
                scheme, rule, gain = chosen, "model-wide", None
            stats = scheme.statistics(fans)
            row = KerasRow(**base, action="initialized", activation=act.name, follows=act.follows,
                           found_by=act.found_by, rule=rule, scheme=scheme.name,
                           formula=scheme.formula(), fan_in=fans.fan_in, fan_out=fans.fan_out,
                           gain=gain, std=stats.get("std"), bound=stats.get("bound"))  # fmt: skip
            plans.append(_Plan(variable, row, scheme, fans))
            continue
        fixed = None
        if attr == "bias":
            fixed, rule = _ZEROS, "bias"
        elif isinstance(layer, _NORMS) and attr in ("gamma", "beta", "moving_mean",
                                                      "moving_variance"):  # fmt: skip
            fixed, rule = (_ONES if attr in ("gamma", "moving_variance") else _ZEROS), "norm"
        if fixed is None:
            reason = f"{type(layer).__name__}.{attr}: no rule; Keras's own values kept"
            plans.append(_Plan(variable, KerasRow(**base, action="skipped", reason=reason),
                               None, None))  # fmt: skip
            continue
        row = KerasRow(**base, action="initialized", rule=rule, scheme=fixed.name,
                       formula=fixed.formula())  # fmt: skip
        plans.append(_Plan(variable, row, fixed, None))
    return plans


def init(
    model: Any,
    scheme: str | Scheme = "auto",
    seed: int | None = None,
    *,
    mode: str = "fan_in",
    distribution: str = "normal",
) -> KerasInitReport:
    """Initialize every kernel of a built Keras model from the activation after its layer.

    ``scheme="auto"``: the table in this module's docstring (He before ReLU, Xavier before
    tanh, LeCun before SELU, ...), with ``mode`` (``"fan_in"``, ``"fan_out"``) and
    ``distribution`` (``"normal"``, ``"uniform"``, ``"truncated_normal"``). Any other
    identifier that :func:`initlab.keras.get` accepts (``"he_normal"`` means Keras's) applies
    to every kernel, with each layer's true fans. Biases become 0, normalization gamma 1 and
    beta 0. Values come from initlab's stream ``(seed, variable path)``; None draws a seed
    from Python's ``random`` (which ``keras.utils.set_random_seed`` seeds), recorded in the
    report. Every value is computed before any variable is written: an error leaves the
    model unchanged.

    >>> import keras, initlab.keras
    >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, name="hidden"),
    ...                           keras.layers.ReLU(), keras.layers.Dense(10, "tanh", name="out")],
    ...                          name="mlp")
    >>> report = initlab.keras.init(model, seed=0)
    >>> row = report["mlp/hidden/kernel"]
    >>> row.activation, row.found_by, row.rule, round(row.std, 4)
    ('relu', 'graph', 'he', 0.1768)
    >>> report["mlp/out/kernel"].rule
    'xavier'
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"model={model!r} is not valid; allowed: a Keras Model or Layer.")
    if not model.built:
        raise ValueError(
            f"model {model.name!r} is not built; build it first (model.build(input_shape), "
            "keras.Input(...) as the first layer, or call it on data once)."
        )
    check_choice("mode", mode, FAN_MODES)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    seed = random.randint(0, 2**31 - 1) if seed is None else check_int("seed", seed, minimum=0)
    chosen = None if scheme == "auto" else keras_scheme(scheme)
    label = scheme if isinstance(scheme, str) else scheme.name
    order = _layers(model) if isinstance(model, keras.Model) else [model]
    members = {id(layer) for layer in order}
    plans = [
        p for layer in order
        for p in _plan_layer(layer, members, order, chosen, mode, distribution, label)
    ]  # fmt: skip
    values: dict[int, np.ndarray] = {}
    errors = []
    for i, plan in enumerate(plans):
        if plan.scheme is None:
            continue
        shape = plan.row.shape
        try:
            resolved = plan.scheme.for_layout("keras")
            resolved.check_shape(shape)
            values[i] = resolved.sample(shape, Stream(seed, plan.row.parameter), plan.fans)
        except ValueError as error:
            errors.append(f"{plan.row.parameter}: {error}")
    if errors:
        raise ValueError("initlab.keras.init: nothing was changed; " + "; ".join(errors))
    rows = []
    for i, plan in enumerate(plans):
        row = plan.row
        if i in values:
            v = values[i]
            plan.variable.assign(v)  # converted to the variable's dtype by Keras
            row = _with(row, measured_std=float(v.std()) if v.size else None,
                        measured_mean=float(v.mean()) if v.size else None)  # fmt: skip
        rows.append(row)
    return KerasInitReport(rows, seed=seed, scheme=label)


def _with(row: KerasRow, **changes: Any) -> KerasRow:
    return dataclasses.replace(row, **changes)
