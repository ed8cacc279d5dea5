"""One layer registry shared by init, discovery, probe, LSUV and the residual policies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab.fans import Fans
from initlab.torch.lsuv.layers import rescalable
from initlab.torch.model import anatomy
from initlab.torch.model.anatomy import LayerKind, is_norm, layer_kind, register_layer
from initlab.torch.probe.layers import discover_layers


@pytest.mark.parametrize(
    ("module", "name", "norm", "affine", "atomic"),
    [
        (nn.Linear(2, 3), "linear", False, True, False),
        (nn.Conv1d(2, 3, 3), "conv", False, True, False),
        (nn.ConvTranspose3d(2, 3, 3), "conv_transpose", False, True, False),
        (nn.MultiheadAttention(4, 2), "attention", False, True, True),
        (nn.GRU(2, 3), "recurrent", False, False, True),
        (nn.Embedding(5, 2), "embedding", False, False, False),
        (nn.BatchNorm1d(3), "channel_norm", True, False, False),
        (nn.InstanceNorm2d(3, affine=True), "channel_norm", True, False, False),
        (nn.GroupNorm(1, 3), "channel_norm", True, False, False),
        (nn.LayerNorm(3), "norm", True, False, False),
        (nn.PReLU(), "prelu", False, False, False),
    ],
)
def test_every_torch_layer_has_one_entry(module, name, norm, affine, atomic):
    kind = layer_kind(module)
    assert (kind.name, kind.norm, kind.affine, kind.atomic) == (name, norm, affine, atomic)
    assert is_norm(module) == norm and rescalable(module) == affine


class RMSNorm(nn.Module):  # a user's norm, known by its class name
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))


def test_a_users_norm_is_a_norm_everywhere():
    assert is_norm(RMSNorm()) and layer_kind(RMSNorm()).name == "named_norm"
    assert layer_kind(nn.ReLU()) is None


class InOut(nn.Module):
    """A layer storing its weight as (in, out), like transformers' Conv1D."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.empty(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


@pytest.fixture
def in_out_registered():
    before = anatomy.layer_kinds()
    register_layer(LayerKind("in_out_linear", (InOut,), "linear", layout="in_out", affine=True))
    yield
    anatomy._KINDS[:] = before


def test_a_new_layout_is_one_registration(in_out_registered):
    model = nn.Sequential(InOut(8, 32), nn.ReLU(), InOut(32, 4))
    report = initlab.init(model, seed=0)
    row = report["0.weight"]
    assert (row.fan_in, row.fan_out) == (8, 32)
    assert row.std == pytest.approx((2 / 8) ** 0.5)
    assert layer_kind(model[0]).fans((8, 32)) == Fans(8, 32)
    assert model[0].weight.std().item() == pytest.approx((2 / 8) ** 0.5, rel=0.1)
    (info,) = [i for i in discover_layers(model) if i.name == "0"]
    assert info.weight_unit_axis == 1  # one unit's weights are a column of (in, out)
    assert rescalable(model[0])


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="layout='io' is not valid"):
        LayerKind("x", (nn.Linear,), "linear", layout="io")
