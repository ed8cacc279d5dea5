"""Built-in models for probing, and loading a user's model factory by name.

* :func:`mlp`: ``depth`` Linear layers of ``width`` units, the activation after every one
  but the last: the network of the depth studies (He et al. 2015; Glorot and Bengio 2010).
* :func:`cnn`: a small convolutional network, ``depth`` 3x3 convolutions of ``width``
  channels (stride 2 every third), global average pooling and a linear head, on 3x32x32.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from initlab._validation import check_choice, check_int

__all__ = [
    "ACTIVATIONS",
    "BUILTIN_MODELS",
    "BuiltModel",
    "build_model",
    "cnn",
    "load_factory",
    "mlp",
]

#: Activation names the built-in models accept.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softsign": nn.Softsign,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "linear": nn.Identity,
}


def _activation(name: str) -> nn.Module:
    return ACTIVATIONS[check_choice("activation", name, ACTIVATIONS)]()


def mlp(
    depth: int = 30,
    width: int = 256,
    activation: str = "relu",
    *,
    in_features: int | None = None,
    out_features: int | None = None,
    bias: bool = True,
) -> nn.Sequential:
    """``depth`` Linear layers ``fc1 .. fc{depth}``, ``activation`` after each but the last.

    ``in_features`` and ``out_features`` default to ``width``.

    >>> net = mlp(depth=3, width=8, activation="tanh", out_features=2)
    >>> [name for name, _ in net.named_children()]
    ['fc1', 'act1', 'fc2', 'act2', 'fc3']
    """
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    n_in = width if in_features is None else check_int("in_features", in_features, minimum=1)
    n_out = width if out_features is None else check_int("out_features", out_features, minimum=1)
    _activation(activation)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i in range(1, depth + 1):
        fan_in = n_in if i == 1 else width
        fan_out = n_out if i == depth else width
        layers[f"fc{i}"] = nn.Linear(fan_in, fan_out, bias=bias)
        if i < depth:
            layers[f"act{i}"] = _activation(activation)
    return nn.Sequential(layers)


def cnn(
    depth: int = 6,
    width: int = 32,
    activation: str = "relu",
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    bias: bool = True,
) -> nn.Sequential:
    """``depth`` 3x3 convolutions ``conv1 ..`` of ``width`` channels (stride 2 at every third),
    the activation after each, global average pooling and a Linear head ``head``.

    >>> net = cnn(depth=2, width=4)
    >>> [name for name, _ in net.named_children()]
    ['conv1', 'act1', 'conv2', 'act2', 'pool', 'flatten', 'head']
    """
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    in_channels = check_int("in_channels", in_channels, minimum=1)
    num_classes = check_int("num_classes", num_classes, minimum=1)
    _activation(activation)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i in range(1, depth + 1):
        stride = 2 if i % 3 == 0 else 1
        c_in = in_channels if i == 1 else width
        layers[f"conv{i}"] = nn.Conv2d(c_in, width, 3, stride=stride, padding=1, bias=bias)
        layers[f"act{i}"] = _activation(activation)
    layers["pool"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["head"] = nn.Linear(width, num_classes, bias=bias)
    return nn.Sequential(layers)


@dataclass(frozen=True)
class BuiltModel:
    """A model factory and the shape of one input sample (without the batch dimension)."""

    factory: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    description: str


#: name -> (builder(depth, width, activation) -> BuiltModel)
BUILTIN_MODELS: dict[str, Callable[[int, int, str], BuiltModel]] = {
    "mlp": lambda depth, width, activation: BuiltModel(
        lambda: mlp(depth, width, activation),
        (width,),
        f"MLP, {depth} Linear layers of width {width}, {activation}",
    ),
    "cnn": lambda depth, width, activation: BuiltModel(
        lambda: cnn(depth, width, activation),
        (3, 32, 32),
        f"CNN, {depth} conv3x3 layers of {width} channels, {activation}, 3x32x32 input",
    ),
}


def load_factory(spec: str) -> Callable[[], nn.Module]:
    """The callable named ``package.module:function`` (called with no arguments).

    >>> load_factory("initlab.torch.probe.models:mlp") is mlp
    True
    >>> load_factory("mlp")
    Traceback (most recent call last):
    ...
    ValueError: model='mlp' is not valid; allowed: 'package.module:function' ...
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(
            f"model={spec!r} is not valid; allowed: 'package.module:function' (a factory "
            f"returning an nn.Module) or a built-in model: {', '.join(BUILTIN_MODELS)}."
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"model={spec!r}: cannot import {module_name!r} ({error}).") from None
    factory = module
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise ValueError(f"model={spec!r}: {module_name!r} has no attribute {attribute!r}.")
        factory = getattr(factory, part)
    if not callable(factory):
        raise ValueError(f"model={spec!r}: {attribute!r} is not callable.")
    return factory


def build_model(
    name: str,
    *,
    depth: int = 30,
    width: int = 256,
    activation: str = "relu",
    input_shape: tuple[int, ...] | None = None,
) -> BuiltModel:
    """A built-in model by name, or a user factory ``package.module:function``.

    A user factory needs ``input_shape`` (one sample, no batch dimension); a built-in model
    knows its own and refuses a different one.

    >>> build_model("mlp", depth=2, width=4).input_shape
    (4,)
    """
    if name in BUILTIN_MODELS:
        built = BUILTIN_MODELS[name](depth, width, activation)
        built.factory()  # validate the arguments now, not in the middle of a comparison
        if input_shape is not None and tuple(input_shape) != built.input_shape:
            raise ValueError(
                f"input_shape={tuple(input_shape)} is not valid for model={name!r}; allowed: "
                f"{built.input_shape} (or leave it out)."
            )
        return built
    factory = load_factory(name)
    if input_shape is None:
        raise ValueError(
            f"model={name!r} is a user factory: input_shape is required; allowed: the shape "
            "of one sample without the batch dimension, e.g. 3,32,32."
        )
    return BuiltModel(factory, tuple(input_shape), f"{name}()")
