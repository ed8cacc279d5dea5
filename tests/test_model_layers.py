"""Per-layer handling: true fans, split parameters, every parameter listed in the report."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initlab
from initlab.fans import compute_fans, layer_fans


def names(model: nn.Module) -> set[str]:
    return {n for n, _ in model.named_parameters()}


# ---- convolutions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "fans"),
    [
        # ConvTranspose2d(8, 16, 3, groups=2): weight (8, 8, 3, 3); each output sees 4 * 9.
        (nn.ConvTranspose2d(8, 16, 3, groups=2), (36, 72)),
        (nn.ConvTranspose1d(6, 12, 5), (30, 60)),
        (nn.ConvTranspose3d(4, 2, 2), (32, 16)),
        # Conv2d(16, 32, 3, groups=4): each output sees 4 * 9 inputs, each input feeds 8 * 9.
        (nn.Conv2d(16, 32, 3, groups=4), (36, 72)),
        # depthwise
        (nn.Conv2d(8, 8, 3, groups=8), (9, 9)),
        (nn.Conv1d(4, 8, 3), (12, 24)),
    ],
)
def test_transposed_and_grouped_convs_use_layer_aware_fans(layer, fans):
    model = nn.Sequential(layer, nn.ReLU())
    report = initlab.init(model, seed=0)
    row = report["0.weight"]
    assert (row.fan_in, row.fan_out) == fans
    transposed = isinstance(layer, nn.modules.conv._ConvTransposeNd)
    assert tuple(layer_fans(layer.weight.shape, groups=layer.groups, transposed=transposed)) == fans
    # He with fan_in: std = sqrt(2 / fan_in), and the written values have it.
    assert row.std == pytest.approx(math.sqrt(2.0 / fans[0]))
    assert row.measured_std == pytest.approx(row.std, rel=0.2)
    if transposed or layer.groups > 1:  # torch.nn.init reads other fans off the tensor
        torch_fans = compute_fans(tuple(layer.weight.shape))
        assert tuple(torch_fans) != fans


def test_fan_out_mode_uses_the_layer_aware_fan_out():
    model = nn.Sequential(nn.ConvTranspose2d(8, 16, 3, groups=2), nn.ReLU())
    report = initlab.init(model, seed=0, mode="fan_out")
    assert report["0.weight"].std == pytest.approx(math.sqrt(2.0 / 72))


# ---- the three architectures of the issue -----------------------------------------------


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),
        nn.GroupNorm(4, 16),
        nn.SiLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(32, 10),
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: nn.TransformerEncoderLayer(32, 4, 64, batch_first=True),
        lambda: nn.LSTM(8, 16, num_layers=2, bidirectional=True),
        small_cnn,
    ],
    ids=["transformer-encoder-layer", "lstm", "cnn"],
)
def test_every_parameter_is_initialized_and_listed(build):
    model = build()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))  # every value must be written by init
    report = initlab.init(model, seed=3)
    assert set(report.parameters) == names(model)
    assert set(report.initialized) == names(model) and not report.skipped
    for name, p in model.named_parameters():
        assert bool(torch.isfinite(p).all()), name
    for row in report.rows:
        assert row.action == "initialized" and row.rule
        if row.kind == "weight":
            assert row.measured_std == pytest.approx(row.std, rel=0.35), row.key


def test_cnn_rules():
    report = initlab.init(small_cnn(), seed=0)
    assert report["0.weight"].activation == "relu" and report["0.weight"].rule == "he"
    assert report["3.weight"].activation == "silu" and report["3.weight"].rule == "numeric"
    assert (report["3.weight"].fan_in, report["3.weight"].fan_out) == (9, 9)
    assert report["12.weight"].rule == "linear"
    assert report["1.weight"].rule == report["4.bias"].rule == "norm"


def test_multihead_attention_in_proj_is_three_matrices_with_their_own_fans():
    attention = nn.MultiheadAttention(16, 4)
    report = initlab.init(attention, seed=0, bias="torch")
    blocks = report.rows_for("in_proj_weight")
    assert [b.part for b in blocks] == ["q", "k", "v"]
    assert [b.rows for b in blocks] == [(0, 16), (16, 32), (32, 48)]
    for block in blocks:
        assert (block.fan_in, block.fan_out) == (16, 16)  # not (16, 48) as for the whole tensor
        assert block.std == pytest.approx(1 / 4)
        assert block.rule == "linear" and block.found_by == "structure (MultiheadAttention)"
    # Each block is its own stream: q, k and v differ.
    q, k, v = attention.in_proj_weight.detach().split(16)
    assert not torch.equal(q, k) and not torch.equal(k, v)
    assert [b.part for b in report.rows_for("in_proj_bias")] == ["q", "k", "v"]
    assert float(attention.in_proj_bias.detach().abs().max()) <= 0.25  # U(-1/4, 1/4)
    assert report["out_proj.weight"].rule == "linear"


def test_attention_with_separate_kv_dims_and_kv_biases():
    attention = nn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True)
    report = initlab.init(attention, seed=0)
    assert set(report.parameters) == names(attention)
    assert (report["k_proj_weight[k]"].fan_in, report["k_proj_weight[k]"].fan_out) == (4, 8)
    assert (report["v_proj_weight[v]"].fan_in, report["v_proj_weight[v]"].fan_out) == (6, 8)
    assert report["bias_k"].rule == "bias"


def test_transformer_encoder_layer_rules():
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    report = initlab.init(layer, seed=0)
    assert report["linear1.weight"].activation == "relu"
    assert report["linear1.weight"].rule == "he"
    assert report["linear2.weight"].follows.startswith("residual add")
    assert report["self_attn.in_proj_weight[q]"].follows == "attention logits (q . k)"
    assert report["norm1.weight"].rule == "norm"


@pytest.mark.parametrize(
    ("rnn", "gates"),
    [
        (nn.LSTM(8, 16), {"i": "sigmoid", "f": "sigmoid", "g": "tanh", "o": "sigmoid"}),
        (nn.GRU(8, 16), {"r": "sigmoid", "z": "sigmoid", "n": "tanh"}),
        (nn.RNN(8, 16, nonlinearity="relu"), {"": "relu"}),
        (nn.RNN(8, 16), {"": "tanh"}),
    ],
)
def test_recurrent_layers_per_gate(rnn, gates):
    report = initlab.init(rnn, seed=0)
    ih = report.rows_for("weight_ih_l0")
    hh = report.rows_for("weight_hh_l0")
    assert [b.part for b in ih] == list(gates)
    for block, activation in zip(ih, gates.values(), strict=True):
        assert block.activation == activation and (block.fan_in, block.fan_out) == (8, 16)
        assert block.rule == ("he" if activation == "relu" else "xavier")
    for block in hh:
        assert block.rule == "recurrent"
        part = (
            rnn.weight_hh_l0.detach()[block.rows[0] : block.rows[1]]
            if block.rows
            else (rnn.weight_hh_l0.detach())
        )
        assert torch.allclose(part @ part.T, torch.eye(16), atol=1e-5)  # orthogonal per gate


def test_lstm_projection_and_model_wide_scheme_per_gate():
    lstm = nn.LSTM(8, 16, proj_size=4)
    report = initlab.init(lstm, "he_normal", seed=0)
    assert set(report.parameters) == names(lstm)
    hh = report.rows_for("weight_hh_l0")
    assert [(b.fan_in, b.fan_out) for b in hh] == [(4, 16)] * 4
    assert all(b.std == pytest.approx(math.sqrt(2 / 4)) for b in hh)
    assert report["weight_hr_l0"].rule == "model-wide"


# ---- embeddings, norms, biases -----------------------------------------------------------


def test_embedding_normal_and_padding_row_zero():
    embedding = nn.Embedding(100, 32, padding_idx=0)
    report = initlab.init(nn.Sequential(embedding), seed=0)
    assert report["0.weight"].rule == "embedding"
    assert torch.equal(embedding.weight[0], torch.zeros(32))
    # std 1/sqrt(d): the output role's scale, whether or not it is tied to an output layer
    assert float(embedding.weight[1:].detach().std()) == pytest.approx(32**-0.5, rel=0.05)


def test_norms_get_one_and_zero_whatever_the_scheme():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.BatchNorm1d(4), nn.GroupNorm(2, 4))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    initlab.init(model, "xavier_uniform", seed=0)
    for i in (1, 2, 3):
        assert torch.equal(model[i].weight, torch.ones(4))
        assert torch.equal(model[i].bias, torch.zeros(4))


def test_rms_norm_and_a_users_norm_by_class_name():
    class MyRMSNorm(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.scale = nn.Parameter(torch.full((dim,), 3.0))

        def forward(self, x):
            return x * self.scale / x.pow(2).mean(-1, keepdim=True).sqrt()

    model = nn.Sequential(nn.Linear(4, 4), nn.RMSNorm(4), MyRMSNorm(4))
    report = initlab.init(model, seed=0)
    assert torch.equal(model[2].scale, torch.ones(4))
    assert report["2.scale"].rule == report["1.weight"].rule == "norm"


@pytest.mark.parametrize(
    ("bias", "check"),
    [
        ("zeros", lambda b: bool((b == 0).all())),
        ("torch", lambda b: float(b.abs().max()) <= 1 / math.sqrt(64) and float(b.std()) > 0),
        ("normal(std=0.5)", lambda b: 0.3 < float(b.std()) < 0.7),
    ],
)
def test_bias_policies(bias, check):
    model = nn.Sequential(nn.Linear(64, 256))
    initlab.init(model, seed=0, bias=bias)
    assert check(model[0].bias.detach())


def test_bias_keep_leaves_biases():
    model = nn.Sequential(nn.Linear(8, 8))
    before = model[0].bias.detach().clone()
    report = initlab.init(model, seed=0, bias="keep")
    assert torch.equal(model[0].bias, before)
    assert report["0.bias"].action == "skipped" and report["0.bias"].reason == "bias='keep'"


# ---- custom modules, tied and frozen parameters -----------------------------------------


class RawLinear(nn.Module):
    """A user's layer with raw parameters, used functionally in forward."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.bias = nn.Parameter(torch.empty(n_out))
        self.temperature = nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        return (x @ self.weight.t() + self.bias) / self.temperature


class WithRawBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.raw = RawLinear(16, 32)
        self.gamma = nn.Parameter(torch.full((32,), 5.0))  # a layer scale, used in forward
        self.head = nn.Linear(32, 2)

    def forward(self, x):
        return self.head(torch.tanh(self.raw(x)) * self.gamma)


def test_custom_raw_parameters_policy():
    model = WithRawBlock()
    report = initlab.init(model, seed=0)
    assert set(report.parameters) == names(model)
    weight = report["raw.weight"]
    assert weight.rule == "xavier" and weight.activation == "tanh"  # fx saw the tanh
    assert (weight.fan_in, weight.fan_out) == (16, 32)
    assert "torch layout (out, in, *k) assumed" in weight.note
    assert report["raw.bias"].rule == "bias" and torch.equal(model.raw.bias, torch.zeros(32))
    for name in ("raw.temperature", "gamma"):
        assert report[name].action == "skipped" and "overrides" in report[name].reason
    assert float(model.raw.temperature.detach()) == 2.0 and torch.equal(
        model.gamma, torch.full((32,), 5.0)
    )
    # An override sets what the policy leaves.
    initlab.init(model, seed=0, overrides={"gamma": "ones", "raw.temperature": "ones"})
    assert float(model.raw.temperature.detach()) == 1.0 and torch.equal(model.gamma, torch.ones(32))


def test_custom_skip_policy():
    model = WithRawBlock()
    before = model.raw.weight.detach().clone()
    report = initlab.init(model, seed=0, custom="skip")
    assert torch.equal(model.raw.weight.nan_to_num(), before.nan_to_num())
    assert report["raw.weight"].action == "skipped"


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.body = nn.Linear(16, 16)
        self.head = nn.Linear(16, 50, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, idx):
        return self.head(torch.relu(self.body(self.embed(idx))))


def test_tied_parameters_are_initialized_once_and_listed_with_aliases():
    model = Tied()
    report = initlab.init(model, seed=0)
    assert report.parameters.count("embed.weight") == 1
    assert "head.weight" not in report.parameters
    assert report["embed.weight"].aliases == ("head.weight",)
    assert report["head.weight"] is report["embed.weight"]
    assert model.head.weight is model.embed.weight


def test_frozen_parameters_are_left_unless_asked():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    model[0].requires_grad_(False)
    before = model[0].weight.detach().clone()
    report = initlab.init(model, seed=0)
    assert torch.equal(model[0].weight, before)
    assert report["0.weight"].action == "skipped" and "frozen" in report["0.weight"].reason
    initlab.init(model, seed=0, include_frozen=True)
    assert not torch.equal(model[0].weight, before)
    assert not model[0].weight.requires_grad
