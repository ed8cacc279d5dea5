"""Discovery without inputs, signals meeting themselves, and layer knowledge beyond torch's.

Inputs read off a model; one forward on fake tensors that leaves the model as it was; an
InitWarning instead of a silent guess; rotary embeddings and written-out normalizations are
not residual adds or nonlinearities; weight_norm, spectral_norm and orthogonal
parametrizations; position embeddings, tokens, layer scales and unknown raw parameters;
zero-initialized norms; the probe on a forward that flags its input.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

import initlab
from initlab.torch.model import InitWarning, discover
from initlab.torch.model.fake import record_fake
from initlab.torch.model.inputs import find_inputs
from initlab.torch.probe import probe

# ---- inputs and the fake forward -----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "shape", "dtype"),
    [
        (nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), (2, 3, 32, 32), torch.float32),
        (nn.Sequential(nn.Conv1d(5, 8, 3), nn.ReLU()), (2, 5, 32), torch.float32),
        (nn.Sequential(nn.Embedding(20, 8), nn.Linear(8, 2)), (2, 8), torch.long),
        (nn.Sequential(nn.Linear(6, 4), nn.Tanh()), (2, 6), torch.float32),
    ],
)
def test_inputs_are_read_off_the_first_layer(model, shape, dtype):
    recipe = find_inputs(model)
    (tensor,) = recipe.tensors.values()
    assert (tensor.shape, tensor.dtype) == (shape, dtype)
    assert "first layer '0'" in recipe.source


def test_an_image_models_input_size_is_used():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    model.input_size = (3, 64, 48)
    (tensor,) = find_inputs(model).tensors.values()
    assert tensor.shape == (2, 3, 64, 48)


class Counting(nn.Module):
    """Counts its calls in a buffer and draws dropout: a forward with side effects, that fx
    cannot trace (it branches on a shape it reads as a Python int)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 2)
        self.bn = nn.BatchNorm1d(16)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        if int(x.shape[-1]) != 8:  # fx stops here (before the side effects)
            raise ValueError("8 features")
        self.calls += 1
        h = F.dropout(F.silu(self.bn(self.fc1(x))), 0.5, self.training)
        return self.fc2(h)


def test_the_fake_forward_changes_nothing():
    model = Counting()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    found = discover(model)
    assert found.links["fc1"].activation.name == "silu" and found.links["fc1"].found_by == "fake"
    assert found.links["fc1"].norms == ("bn",)
    assert found.links["fc2"].kind == "output"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.random.get_rng_state(), rng)
    graph = record_fake(model, (torch.randn(4, 8),), {})
    assert [n.target for n in graph.nodes if n.op == "module"] == ["fc1", "bn", "fc2"]
    assert int(model.calls) == 0


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 2)
        self.act = nn.Tanh()

    def forward(self, x):
        h = self.a(x)
        if h.abs().sum() > 0:  # needs values: neither fx nor fake tensors can follow it
            h = torch.relu(h)
        return self.b(self.act(h))


def test_a_guess_by_module_order_is_never_silent():
    with pytest.warns(InitWarning, match=r"guessed by module order: 'a', 'b'"):
        report = initlab.init(DataDependent(), seed=0)
    assert report["a.weight"].found_by == "module order"
    assert any("fake tensors" in note for note in report.discovery_notes)


# ---- signals that meet themselves --------------------------------------------------------


def _rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Rotary(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.register_buffer("cos", torch.cos(torch.arange(d) * 0.1))
        self.register_buffer("sin", torch.sin(torch.arange(d) * 0.1))

    def forward(self, x):
        q, k = self.q(x), self.k(x)
        q = q * self.cos + _rotate_half(q) * self.sin
        k = k * self.cos + _rotate_half(k) * self.sin
        attn = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        return x + self.out(attn @ self.v(x))


class WrittenNorms(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.fc4 = nn.Linear(8, 2)

    def forward(self, x):
        h = self.fc1(x)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)  # RMS norm, written out
        h = self.fc2(torch.relu(h))
        h = h / h.norm(dim=-1, keepdim=True)  # L2 normalization
        h = self.fc3(h)
        mean = h.mean(-1, keepdim=True)  # layer norm, written out
        h = (h - mean) / torch.sqrt(((h - mean) ** 2).mean(-1, keepdim=True) + 1e-5)
        return self.fc4(torch.tanh(h))


@pytest.mark.parametrize("methods", [("fx",), ("fake",)])
def test_rotary_adds_are_not_residual_adds(methods):
    found = discover(Rotary(), methods=methods)
    for layer in ("q", "k"):
        assert found.links[layer].kind == "attention", found.links[layer]
    assert found.links["out"].kind == "residual"


@pytest.mark.parametrize("methods", [("fx",), ("fake",)])
def test_a_written_out_normalization_is_not_a_nonlinearity(methods):
    found = discover(WrittenNorms(), methods=methods)
    assert found.links["fc1"].activation.name == "relu", found.links["fc1"]
    assert found.links["fc2"].kind == "layer", found.links["fc2"]  # normalized, then fc3
    assert found.links["fc2"].norms
    assert found.links["fc3"].activation.name == "tanh", found.links["fc3"]
    assert found.links["fc3"].norms


# ---- parametrizations -------------------------------------------------------------------


def test_weight_norm_direction_is_the_weight_and_magnitude_its_norm():
    model = nn.Sequential(parametrizations.weight_norm(nn.Linear(64, 256)), nn.ReLU(),
                          nn.Linear(256, 2))  # fmt: skip
    report = initlab.init(model, seed=0)
    v = report["0.parametrizations.weight.original1"]
    assert v.rule == "he" and (v.fan_in, v.fan_out) == (64, 256)
    g = model[0].parametrizations.weight.original0.detach()
    direction = model[0].parametrizations.weight.original1.detach()
    assert torch.allclose(g, direction.norm(dim=1, keepdim=True), rtol=1e-6)
    assert bool((g > 0).all())
    weight = model[0].weight.detach()  # the effective weight g v / ||v|| is v itself
    assert torch.allclose(weight, direction, atol=1e-6)
    assert float(weight.std()) == pytest.approx(math.sqrt(2 / 64), rel=0.05)


def test_spectral_norm_original_has_the_layers_fans_and_orthogonal_is_kept():
    model = nn.Sequential(
        parametrizations.spectral_norm(nn.Linear(16, 32)), nn.ReLU(),
        parametrizations.orthogonal(nn.Linear(32, 32)), nn.Linear(32, 2),
    )  # fmt: skip
    kept = model[2].parametrizations.weight.original.detach().clone()
    u = model[0].parametrizations.weight[0]._u.clone()
    report = initlab.init(model, seed=0)
    row = report["0.parametrizations.weight.original"]
    assert (row.fan_in, row.fan_out, row.rule) == (16, 32, "he")
    ortho = report["2.parametrizations.weight.original"]
    assert ortho.action == "skipped" and "orthogonal" in ortho.reason
    assert torch.equal(model[2].parametrizations.weight.original.detach(), kept)
    assert torch.equal(model[0].parametrizations.weight[0]._u, u)


# ---- raw parameters and norms ----------------------------------------------------------


class Tokens(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.proj = nn.Linear(d, d)
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, d))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.gamma = nn.Parameter(torch.full((d,), 1e-5))
        self.mystery = nn.Parameter(torch.full((2, 3, d), 7.0))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 2)
        nn.init.zeros_(self.norm.weight)

    def forward(self, x):
        h = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        h = h + self.gamma * self.norm(self.proj(h))
        return self.head(h[:, 0]) + self.mystery.sum() * 0


def test_raw_parameters_have_stated_rules():
    model = Tokens()
    report = initlab.init(model, seed=0)
    for name in ("pos_embed", "cls_token"):
        assert report[name].kind == "embedding" and report[name].fan_in == 16
        assert report[name].std == pytest.approx(0.25)
    assert report["gamma"].action == "skipped" and "layer scale" in report["gamma"].reason
    assert torch.equal(model.gamma.detach(), torch.full((16,), 1e-5))
    mystery = report["mystery"]
    assert mystery.action == "skipped" and "not a known layer's weight" in mystery.reason
    assert torch.equal(model.mystery.detach(), torch.full((2, 3, 16), 7.0))


class ZeroLastNorm(nn.Module):
    """Two residual blocks; the second's norm starts at weight 0 (timm's zero_init_last)."""

    def __init__(self, d=16):
        super().__init__()
        self.fc1, self.norm1 = nn.Linear(d, d), nn.LayerNorm(d)
        self.fc2, self.norm2 = nn.Linear(d, d), nn.LayerNorm(d)
        nn.init.zeros_(self.norm2.weight)

    def forward(self, x):
        x = x + self.norm1(torch.relu(self.fc1(x)))
        return x + self.norm2(torch.relu(self.fc2(x)))


def test_zero_initialized_norms_are_kept_unless_reset():
    model = ZeroLastNorm()
    report = initlab.init(model, seed=0)
    assert report["norm2.weight"].action == "skipped" and "zero-initialized" in report[
        "norm2.weight"].reason  # fmt: skip
    assert int(torch.count_nonzero(model.norm2.weight)) == 0
    assert torch.equal(model.norm1.weight.detach(), torch.ones(16))
    initlab.init(model, seed=0, norms="keep")
    assert int(torch.count_nonzero(model.norm2.weight)) == 0
    initlab.init(model, seed=0, norms="reset")
    assert torch.equal(model.norm2.weight.detach(), torch.ones(16))
    with pytest.raises(ValueError, match="norms='x' is not valid"):
        initlab.init(model, seed=0, norms="x")


def test_norms_all_zero_are_fresh_memory_and_reset():
    """Every norm weight zero (a model from to_empty on zeroed pages) is no choice: reset."""
    model = ZeroLastNorm()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    initlab.init(model, seed=0)
    assert torch.equal(model.norm1.weight.detach(), torch.ones(16))
    assert torch.equal(model.norm2.weight.detach(), torch.ones(16))


# ---- the probe on a forward that flags its input -------------------------------------------


class FlagsItsInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 2)

    def forward(self, x):
        x.requires_grad = True  # as some models do for gradient checkpointing
        return self.fc2(torch.relu(self.fc1(x)))


def test_probe_runs_in_train_mode_on_a_forward_that_flags_its_input():
    model = FlagsItsInput()
    initlab.init(model, seed=0)
    report = probe(model, torch.randn(32, 8), mode="train")
    assert [layer.name for layer in report.layers] == ["fc1", "fc2"]
    assert report.forward.status == "healthy"


def test_a_weight_normalized_first_is_sized_for_the_backward_pass():
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.Flatten(),
                          nn.Linear(16 * 30 * 30, 2))  # fmt: skip
    row = initlab.init(model, seed=0)["0.weight"]
    assert (row.fan_in, row.fan_out, row.rule) == (27, 144, "he")
    assert row.std == pytest.approx(math.sqrt(2 / 144))
    given = initlab.init(model, seed=0, mode="fan_in")["0.weight"]  # a given mode wins
    assert given.std == pytest.approx(math.sqrt(2 / 27))
