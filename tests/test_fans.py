"""Fans: torch and Keras layouts, explicit axes, and the true fans of grouped/transposed convs."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.init import _calculate_fan_in_and_fan_out

from initlab.fans import Fans, compute_fans, layer_fans, select_fan


def random_shapes(n=25, seed=0):
    rng = np.random.default_rng(seed)
    return [tuple(int(d) for d in rng.integers(1, 9, size=rng.integers(2, 6))) for _ in range(n)]


@pytest.mark.parametrize("shape", random_shapes())
def test_torch_layout_equals_torch(shape):
    assert compute_fans(shape) == _calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("shape", random_shapes(seed=1))
def test_keras_layout_is_torch_layout_permuted(shape):
    # Keras (*k, in, out) of the same kernel as torch (out, in, *k).
    keras_shape = (*shape[2:], shape[1], shape[0])
    assert compute_fans(keras_shape, layout="keras") == compute_fans(shape)
    assert compute_fans(keras_shape, layout="jax") == compute_fans(shape)


def test_explicit_axes():
    # JAX-style: batch of 4 kernels (4, in=3, out=5): in_axis=-2, out_axis=-1; rest is receptive.
    assert compute_fans((4, 3, 5), in_axis=-2, out_axis=-1) == Fans(12, 20)
    assert compute_fans((7, 2), in_axis=0, out_axis=1) == Fans(7, 2)


@pytest.mark.parametrize("shape", [(), (5,)])
def test_under_two_dims_is_value_error(shape):
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        compute_fans(shape)


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="layout='tf'"):
        compute_fans((3, 3), layout="tf")
    with pytest.raises(ValueError, match="in_axis=5"):
        compute_fans((3, 3), in_axis=5)
    with pytest.raises(ValueError, match=r"mode=.fan_sum.*Did you mean"):
        select_fan(Fans(1, 2), "fan_sum")
    with pytest.raises(ValueError, match="groups=3 does not divide out_channels=16"):
        layer_fans((16, 8, 3, 3), groups=3)


def connections(layer: nn.Module, in_shape):
    """Count fans by definition: with all-ones weights, how many inputs reach one output
    (fan_in) and how many outputs one input reaches (fan_out), for a central element."""
    with torch.no_grad():
        layer.weight.fill_(1.0)
        if layer.bias is not None:
            layer.bias.zero_()
    x = torch.zeros(in_shape, requires_grad=True)
    y = layer(x)
    centre_out = tuple(s // 2 for s in y.shape[2:])
    y[(0, 0, *centre_out)].backward()
    fan_in = int((x.grad != 0).sum())
    x2 = torch.zeros(in_shape)
    centre_in = tuple(s // 2 for s in in_shape[2:])
    x2[(0, 0, *centre_in)] = 1.0
    with torch.no_grad():
        fan_out = int((layer(x2) != 0).sum())
    return Fans(fan_in, fan_out)


def test_grouped_conv_true_fans():
    conv = nn.Conv2d(16, 16, 3, groups=2)
    fans = layer_fans(conv.weight.shape, groups=2)
    assert fans == Fans(72, 72)  # 8 channels/group * 9 taps, both ways
    assert fans == connections(conv, (1, 16, 9, 9))
    assert _calculate_fan_in_and_fan_out(conv.weight) == (72, 144)  # torch: fan_out off by 2x


def test_depthwise_conv_true_fans():
    conv = nn.Conv2d(32, 32, 3, groups=32)
    fans = layer_fans(conv.weight.shape, groups=32)
    assert fans == Fans(9, 9)
    assert fans == connections(conv, (1, 32, 9, 9))
    assert _calculate_fan_in_and_fan_out(conv.weight) == (9, 288)  # torch: fan_out 32x too big


def test_conv_transpose_true_fans():
    deconv = nn.ConvTranspose2d(8, 16, 3, groups=2)
    assert tuple(deconv.weight.shape) == (8, 8, 3, 3)
    fans = layer_fans(deconv.weight.shape, groups=2, transposed=True)
    assert fans == Fans(36, 72)  # 4 in-channels/group * 9 taps in, 8 out-channels/group * 9 out
    assert fans == connections(deconv, (1, 8, 9, 9))
    assert _calculate_fan_in_and_fan_out(deconv.weight) == (72, 72)  # torch: fan_in 2x too big


@pytest.mark.parametrize(
    "layer",
    [
        nn.Conv1d(6, 4, 5),
        nn.Conv3d(4, 6, 3, groups=2),
        nn.ConvTranspose1d(6, 4, 3),
        nn.ConvTranspose3d(4, 6, 3, groups=2),
    ],
)
def test_layer_fans_match_connection_count(layer):
    transposed = isinstance(layer, nn.modules.conv._ConvTransposeNd)
    fans = layer_fans(layer.weight.shape, groups=layer.groups, transposed=transposed)
    in_shape = (1, layer.in_channels, *([15] * (layer.weight.dim() - 2)))
    assert fans == connections(layer, in_shape)


def test_linear_layer_fans_equal_torch():
    assert layer_fans((10, 20)) == Fans(20, 10) == compute_fans((10, 20))
