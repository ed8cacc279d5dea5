"""Activation discovery: what follows each layer, and the gain "auto" derives from it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.gains import calculate_gain
from initlab.torch.model import InitWarning, discover

SQRT2 = math.sqrt(2.0)
GELU = calculate_gain("gelu")


class Functional(nn.Module):
    """Every nonlinearity is a functional call in forward: no activation modules at all."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 16)
        self.d, self.e, self.f = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 3)

    def forward(self, x):
        x = F.relu(self.a(x))
        x = torch.tanh(self.b(x))
        x = F.gelu(self.c(x))
        x = self.d(x).relu()
        x = F.leaky_relu(self.e(x), 0.2)
        return self.f(x)


def test_functional_calls_give_each_layer_its_gain():
    model = Functional()
    report = initlab.init(model, seed=0)
    expected = {
        "a": ("relu", "he", SQRT2),
        "b": ("tanh", "xavier", 5.0 / 3.0),
        "c": ("gelu", "numeric", GELU),
        "d": ("relu", "he", SQRT2),
        "e": ("leaky_relu(0.2)", "he", math.sqrt(2.0 / 1.04)),
        "f": (None, "linear", 1.0),
    }
    for layer, (activation, rule, gain) in expected.items():
        row = report[f"{layer}.weight"]
        assert (row.activation, row.rule, row.found_by) == (activation, rule, "fx"), layer
        assert row.gain == pytest.approx(gain, rel=1e-12), layer
    # The std follows from the rule: He uses fan_in, Xavier the fan average.
    assert report["a.weight"].std == pytest.approx(SQRT2 / math.sqrt(8))
    assert report["b.weight"].std == pytest.approx(5.0 / 3.0 * math.sqrt(2.0 / 32))
    assert report["c.weight"].std == pytest.approx(GELU / 4.0)
    # The values written have that std (16*16 = 256 values: within 15%).
    assert float(model.c.weight.detach().std()) == pytest.approx(GELU / 4.0, rel=0.15)
    # How each was found is named.
    assert report["a.weight"].follows == "relu (F.relu)"
    assert report["b.weight"].follows == "tanh (torch.tanh)"
    assert report["d.weight"].follows == "relu (Tensor.relu)"
    assert report["f.weight"].follows == "output"


@pytest.mark.parametrize(
    ("activation", "slope"),
    [(nn.LeakyReLU(0.2), 0.2), (nn.PReLU(init=0.25), 0.25), (nn.LeakyReLU(), 0.01)],
)
def test_leaky_relu_and_prelu_slopes(activation, slope):
    model = nn.Sequential(nn.Linear(32, 32), activation, nn.Linear(32, 1))
    report = initlab.init(model, seed=0)
    row = report["0.weight"]
    assert row.rule == "he"
    assert row.gain == pytest.approx(math.sqrt(2.0 / (1.0 + slope**2)), rel=1e-12)
    assert row.std == pytest.approx(row.gain / math.sqrt(32))


def test_prelu_slope_is_set_to_its_init_and_listed():
    model = nn.Sequential(nn.Linear(4, 4), nn.PReLU(num_parameters=4, init=0.25))
    with torch.no_grad():
        model[1].weight.fill_(0.9)  # a trained slope: init puts it back to 0.25
    report = initlab.init(model, seed=0)
    assert torch.equal(model[1].weight, torch.full((4,), 0.25))
    assert report["1.weight"].rule == "prelu"


def test_selu_gets_lecun_and_sigmoid_xavier_with_gain_one():
    model = nn.Sequential(nn.Linear(10, 20), nn.SELU(), nn.Linear(20, 30), nn.Sigmoid())
    report = initlab.init(model, seed=0)
    assert (report["0.weight"].rule, report["0.weight"].gain) == ("lecun", 1.0)
    assert report["0.weight"].std == pytest.approx(1 / math.sqrt(10))
    assert (report["2.weight"].rule, report["2.weight"].gain) == ("xavier", 1.0)
    assert report["2.weight"].std == pytest.approx(math.sqrt(2.0 / 50))


class Swish(nn.Module):
    """A user's own activation module: no parameters, elementwise."""

    def forward(self, x):
        return x * torch.sigmoid(x)


class Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.act = Swish()

    def forward(self, x):
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


def test_custom_activation_module_gets_numeric_gain_and_residual_gets_one():
    model = nn.Sequential(Residual(16), Residual(16), nn.Linear(16, 2))
    report = initlab.init(model, seed=0)
    fc1 = report["0.fc1.weight"]
    assert fc1.rule == "numeric" and fc1.activation == "swish"
    assert fc1.gain == pytest.approx(calculate_gain("silu"), rel=1e-9)
    fc2 = report["1.fc2.weight"]
    assert (fc2.rule, fc2.gain, fc2.activation) == ("linear", 1.0, None)
    assert fc2.follows.startswith("residual add")
    assert set(discover(model).residual_layers()) == {"0.fc2", "1.fc2"}


def test_functional_unknown_elementwise_op_gets_numeric_gain():
    class Erf(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)

        def forward(self, x):
            return torch.erf(self.fc(x)).sum(-1)

    report = initlab.init(Erf(), seed=0)
    from scipy import special

    assert report["fc.weight"].rule == "numeric"
    assert report["fc.weight"].gain == pytest.approx(calculate_gain(special.erf), rel=1e-6)


def test_pass_through_steps_are_skipped_and_norms_recorded():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Dropout(0.1), nn.MaxPool2d(2), nn.Tanh()
    )
    link = discover(model).links["0"]
    assert link.activation.name == "tanh" and link.norms == ("1",)


def test_inplace_nonlinearity_counts_even_when_the_original_is_reused():
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            h = self.fc1(x)
            h.relu_()
            return self.fc2(h)

    assert discover(InPlace()).links["fc1"].activation.name == "relu"


def test_attention_logits_and_products_get_gain_one():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
            self.gate, self.up = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            att = torch.softmax(self.q(x) @ self.k(x).transpose(-1, -2), -1) @ self.v(x)
            return F.silu(self.gate(att)) * self.up(att)

    links = discover(Attention()).links
    assert links["q"].kind == links["k"].kind == "attention"
    assert links["v"].kind == "attention"
    assert links["gate"].activation.name == "silu"
    assert links["up"].kind == "product"


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace this forward."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 2)
        self.bn = nn.BatchNorm1d(8)

    def forward(self, x):
        h = self.a(x)
        if h.abs().sum() > 0:
            h = torch.tanh(h)
        h = F.leaky_relu(self.bn(self.b(h)), 0.1)
        return self.c(h)


def test_hooks_find_functional_activations_when_fx_cannot_trace():
    model = Untraceable()
    x = torch.randn(4, 8)
    running = model.bn.running_mean.clone()
    rng = torch.random.get_rng_state()
    report = initlab.init(model, seed=0, example_inputs=x)
    assert report["a.weight"].found_by == "hooks" and report["a.weight"].rule == "xavier"
    assert report["b.weight"].activation == "leaky_relu(0.1)"
    assert report["c.weight"].rule == "linear"
    assert "fx could not trace" in report.discovery_notes[0]
    # The recorded forward left buffers and torch's random state as they were.
    assert torch.equal(model.bn.running_mean, running)
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_module_order_is_the_last_resort_and_says_so():
    with pytest.warns(InitWarning, match="guessed by module order: 'a', 'b', 'c'"):
        report = initlab.init(Untraceable(), seed=0)
    assert report["a.weight"].found_by == "module order"
    assert report["b.weight"].found_by == "module order"
    assert report.discovery == "module order"


def test_bad_example_inputs_raise_naming_them():
    with pytest.raises(ValueError, match="example_inputs"):
        initlab.init(Untraceable(), seed=0, example_inputs=torch.randn(4, 5))


def test_transformer_layer_structure_without_inputs_and_hooks_with_them():
    layer = nn.TransformerEncoderLayer(16, 4, 32, activation="gelu", batch_first=True)
    model = nn.Sequential(nn.Linear(4, 16), nn.TransformerEncoder(layer, 2), nn.Linear(16, 3))
    found = discover(model, methods=("fx", "structure"))
    assert found.opaque == ("1",)
    link = found.links["1.layers.0.linear1"]
    assert link.activation.name == "gelu" and link.found_by.startswith("structure")
    assert found.links["1.layers.1.linear2"].kind == "residual"
    # By default a forward on fake tensors, with inputs read off the first layer, sees it all.
    faked = discover(model)
    assert faked.links["1.layers.0.linear1"].found_by == "fake"
    assert faked.links["1.layers.0.linear1"].activation.name == "gelu"
    assert faked.links["1.layers.1.linear2"].kind == "residual"
    recorded = discover(model, torch.randn(2, 5, 4))
    assert recorded.links["1.layers.0.linear1"].found_by == "hooks"
    assert recorded.links["1.layers.0.linear1"].activation.name == "gelu"
    assert recorded.links["1.layers.0.linear2"].kind == "residual"
    assert recorded.links["2"].found_by == "fx"
    # In eval mode torch would take the fused fast path, which calls no submodule: the
    # recorded pass switches it off and still sees every layer; the mode is kept.
    model.eval()
    evaluated = discover(model, torch.randn(2, 5, 4))
    assert evaluated.links["1.layers.1.linear1"].found_by == "hooks"
    assert evaluated.links["1.layers.1.self_attn"].kind == "residual"
    assert not model.training


def test_discovery_reports_execution_order_not_registration_order():
    class Reversed(nn.Module):
        def __init__(self):
            super().__init__()
            self.last, self.first = nn.Linear(4, 2), nn.Linear(4, 4)

        def forward(self, x):
            return self.last(torch.relu(self.first(x)))

    found = discover(Reversed())
    assert found.order == ("first", "last")
    assert found.links["first"].activation.name == "relu"


def test_elementwise_check_rejects_non_elementwise_modules():
    from initlab.torch.model.activations import is_elementwise

    assert is_elementwise(torch.sin)
    assert not is_elementwise(lambda t: torch.softmax(t, -1))
    assert not is_elementwise(lambda t: t + torch.rand_like(t))
    assert np.isfinite(calculate_gain("gelu"))


class GPTBlock(nn.Module):
    """nanoGPT's block, written functionally: fused qkv, scaled_dot_product_attention."""

    def __init__(self, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.attn_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.c_fc, self.gelu, self.c_proj = (
            nn.Linear(d, 4 * d),
            nn.GELU("tanh"),
            nn.Linear(4 * d, d),
        )
        self.heads = heads

    def attention(self, x):
        b, t, c = x.size()
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.attn_proj(y.transpose(1, 2).contiguous().view(b, t, c))

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.c_proj(self.gelu(self.c_fc(self.ln_2(x))))


class TinyGPT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(50, 32), nn.Embedding(16, 32)
        self.blocks = nn.ModuleList([GPTBlock(), GPTBlock()])
        self.lm_head = nn.Linear(32, 50, bias=False)

    def forward(self, idx):
        pos = torch.arange(0, idx.size(1), dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)  # a sum of embeddings, not a residual add
        for block in self.blocks:
            x = block(x)
        return self.lm_head(x)


def test_gpt_attention_mlp_and_residual_branches():
    model = TinyGPT()
    found = discover(model)
    assert found.method == "fx"
    assert set(found.residual_layers()) == {
        f"blocks.{i}.{name}" for i in (0, 1) for name in ("attn_proj", "c_proj")
    }
    assert found.links["blocks.0.c_attn"].kind == "attention"
    assert found.links["blocks.1.c_fc"].activation.name == "gelu_tanh"
    assert found.links["lm_head"].kind == "output"
    recorded = discover(model, torch.randint(0, 50, (2, 8)), methods=("hooks",))
    assert set(recorded.residual_layers()) == set(found.residual_layers())
    assert recorded.links["blocks.1.c_fc"].activation.name == "gelu_tanh"
