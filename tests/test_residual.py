"""Residual-aware initialization: branch discovery, the three policies, and what they buy.

* discovery: identity and projection shortcuts, in-place adds, functional layers, torch's
  transformer layers by structure, adds that are not residual, overrides by name;
* zero_last / fixup / gpt2: exactly the parameters and factors of their definitions;
* Fixup trains a 50-block residual MLP without normalization where He init diverges
  (sklearn digits, three seeds, with margins);
* GPT-2 scaling: the residual stream's variance growth over N branches drops from ~N to ~1
  branch's worth.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import initlab
import initlab.torch as itorch
from initlab.torch import residual
from initlab.torch.residual import apply_residual_policy, find_residual_branches


class Block(nn.Module):
    def __init__(self, width: int, inner: int = 2) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.mid = nn.Linear(width, width) if inner == 3 else None
        self.fc2 = nn.Linear(width, width)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        if self.mid is not None:
            h = torch.relu(self.mid(h))
        return x + self.fc2(h)


class ResMLP(nn.Module):
    """Input layer, ``blocks`` residual blocks without normalization, a classifier."""

    def __init__(self, d_in=64, width=32, blocks=50, d_out=10, inner=2) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.blocks = nn.Sequential(*[Block(width, inner) for _ in range(blocks)])
        self.head = nn.Linear(width, d_out)

    def forward(self, x):
        return self.head(torch.relu(self.blocks(self.inp(x))))


def he_init(model: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            itorch.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)
            nn.init.zeros_(m.bias)


def names(found) -> list[list[str]]:
    return [[layer.name for layer in b.layers] for b in found.branches]


# ---------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------


def test_residual_mlp_branches_and_classifier():
    model = ResMLP(blocks=5)
    found = find_residual_branches(model)
    assert found.method == "fx"
    assert names(found) == [[f"blocks.{i}.fc1", f"blocks.{i}.fc2"] for i in range(5)]
    assert all(b.shortcut == () and b.found_by == "fx" for b in found.branches)
    assert found.layers[0].name == "inp"  # execution order
    report = apply_residual_policy(model, "fixup", dry_run=True)
    assert report.classifier == "head"


class BasicBlock(nn.Module):
    """ResNet's basic block, with a projection shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))  # fmt: skip

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        skip = x if self.down is None else self.down(x)
        return F.relu(out + skip)


class PreActBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1)
        self.bn2, self.conv2 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out += x  # in place
        return out


def tiny_resnet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        BasicBlock(8, 8),
        BasicBlock(8, 16, stride=2),
        PreActBlock(16),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )


def test_resnet_blocks_identity_projection_and_in_place():
    found = find_residual_branches(tiny_resnet())
    assert names(found) == [
        ["1.conv1", "1.bn1", "1.conv2", "1.bn2"],
        ["2.conv1", "2.bn1", "2.conv2", "2.bn2"],
        ["3.bn1", "3.conv1", "3.bn2", "3.conv2"],
    ]
    assert [layer.name for layer in found.branches[1].shortcut] == ["2.down.0", "2.down.1"]
    assert found.branches[0].shortcut == ()


def test_zero_last_zeroes_the_last_norm_gamma_or_the_last_layer():
    model = tiny_resnet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = apply_residual_policy(model, "zero_last")
    zeroed = {a.parameter for a in report.actions}
    assert zeroed == {"1.bn2.weight", "2.bn2.weight", "3.conv2.weight", "3.conv2.bias"}
    for name, value in model.state_dict().items():
        if name in zeroed:
            assert int(torch.count_nonzero(value)) == 0
        else:
            assert torch.equal(value, before[name]), name
    # Each block is now the identity on its shortcut: the post-activation block outputs
    # relu(bn2.bias + x) = relu(x), the pre-activation block x + 0.
    x = torch.randn(2, 16, 4, 4)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model[3](x), x)
        y = torch.randn(2, 8, 4, 4).relu()
        assert torch.allclose(model[1](y), y)


class TokenAndPosition(nn.Module):
    """Adds that are not residual: token + position embeddings, two parallel single layers."""

    def __init__(self) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(20, 8), nn.Embedding(10, 8)
        self.left, self.right = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = self.tok(ids) + self.pos(pos)
        return self.left(h) + self.right(h)


def test_adds_that_are_not_residual_are_not_branches():
    found = find_residual_branches(TokenAndPosition())
    assert found.method == "fx" and found.branches == ()
    report = apply_residual_policy(TokenAndPosition(), "zero_last")
    assert report.actions == () and "no residual branch found" in report.notes[0]


class RawLinear(nn.Module):
    """A user's layer with raw parameters, applied functionally."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, n) / math.sqrt(n))
        self.bias = nn.Parameter(torch.zeros(n))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class RawBlock(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.a, self.b = RawLinear(n), RawLinear(n)

    def forward(self, x):
        return x + self.b(F.gelu(self.a(x)))


def test_user_layers_with_raw_parameters_are_found():
    model = nn.Sequential(RawBlock(6), RawBlock(6))
    found = find_residual_branches(model)
    assert names(found) == [["0.a", "0.b"], ["1.a", "1.b"]]
    report = apply_residual_policy(model, "zero_last")
    assert {a.parameter for a in report.actions} == {
        "0.b.weight", "0.b.bias", "1.b.weight", "1.b.bias",
    }  # fmt: skip
    assert float(model[0].b.weight.detach().abs().sum()) == 0.0


class MixedBlock(nn.Module):
    """A layer module, then a raw parameter applied functionally in the block's forward."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n, n)
        self.w_out = nn.Parameter(torch.randn(n, n) / math.sqrt(n))

    def forward(self, x):
        return x + F.linear(F.gelu(self.fc(x)), self.w_out)


def test_functional_layers_on_raw_parameters_are_found():
    model = nn.Sequential(MixedBlock(6), MixedBlock(6))
    found = find_residual_branches(model)
    assert names(found) == [["0.fc", "0.w_out"], ["1.fc", "1.w_out"]]
    assert found.branches[0].last.kind == "F.linear"
    report = apply_residual_policy(model, "fixup", classifier=None)
    assert {(a.parameter, a.action) for a in report.actions} == {
        ("0.w_out", "zero"), ("1.w_out", "zero"), ("0.fc.weight", "scale"),
        ("1.fc.weight", "scale"),
    }  # fmt: skip


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_layers_are_known_by_structure(norm_first):
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, norm_first=norm_first)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    model = nn.Sequential(nn.Linear(4, 16), encoder, nn.Linear(16, 2))
    found = find_residual_branches(model)
    assert len(found.branches) == 4
    assert all(b.found_by == "structure (TransformerEncoderLayer)" for b in found.branches)
    first = names(found)[:2]
    prefix = ["1.layers.0.norm1"] if norm_first else []
    assert first[0] == [*prefix, "1.layers.0.self_attn"]
    assert first[1][-2:] == ["1.layers.0.linear1", "1.layers.0.linear2"]
    report = apply_residual_policy(model, "zero_last")
    zeroed = {a.parameter for a in report.actions}
    assert "1.layers.0.self_attn.out_proj.weight" in zeroed
    assert "1.layers.1.linear2.bias" in zeroed
    # Every encoder layer is now the identity before its norms: with norm_first the stack is
    # exactly the identity on its input.
    if norm_first:
        x = torch.randn(3, 5, 16)
        model.eval()
        with torch.no_grad():
            assert torch.allclose(model[1](x), x, atol=1e-6)


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
            x = x * 2
        return x + self.fc2(torch.relu(self.fc1(x)))


def test_untraceable_models_take_branches_by_name():
    found = find_residual_branches(Untraceable())
    assert found.method == "structure" and found.branches == ()
    assert "torch.fx could not trace forward" in found.notes[0]
    model = Untraceable()
    report = apply_residual_policy(model, "zero_last", branches=[["fc1", "fc2"]])
    assert report.method == "override"
    assert {a.parameter for a in report.actions} == {"fc2.weight", "fc2.bias"}
    report = apply_residual_policy(Untraceable(), "fixup", branches={"block": ["fc1", "fc2"]})
    assert report.branches[0].add == "block"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"policy": "fixupp"}, ValueError, r"policy='fixupp' is not valid; .* 'fixup'\?"),
        ({"policy": 3}, ValueError, r"policy=3 is not valid; allowed: 'zero_last', 'fixup'"),
        ({"n_layers": 0}, ValueError, r"n_layers=0 is not valid"),
        ({"std": -1.0}, ValueError, r"std=-1.0 is not valid"),
        ({"seed": -2}, ValueError, r"seed=-2 is not valid"),
        ({"dry_run": 1}, TypeError, r"dry_run=1 is not valid"),
        ({"branches": [["fc1", "fc3"]]}, ValueError, r"module='fc3' is not valid.*'fc1'"),
        ({"branches": [["fc1", "fc2"], "fc1"]}, ValueError, r"branches\[.branch 1.\]='fc1'"),
        ({"branches": "fc1"}, ValueError, r"branches='fc1' is not valid"),
        ({"classifier": "fc9"}, ValueError, r"classifier='fc9' is not valid"),
    ],
)
def test_bad_arguments_name_the_parameter_and_change_nothing(kwargs, error, match):
    model = Untraceable()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = {"policy": "fixup", "branches": [["fc1", "fc2"]], **kwargs}
    with pytest.raises(error, match=match):
        apply_residual_policy(model, **kwargs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_branch_layer_must_be_a_layer():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(ValueError, match=r"module '1' \(ReLU\) is not a layer"):
        apply_residual_policy(model, "zero_last", branches=[["0", "1"]])


def test_a_failure_half_way_restores_every_parameter(monkeypatch):
    model = ResMLP(blocks=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []
    original = residual._apply

    def failing(p, action, seed):
        calls.append(action.parameter)
        if len(calls) == 5:
            raise RuntimeError("disk on fire")
        original(p, action, seed)

    monkeypatch.setattr(residual, "_apply", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        apply_residual_policy(model, "fixup")
    assert len(calls) == 5
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_dry_run_reports_without_writing():
    model = ResMLP(blocks=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = apply_residual_policy(model, "fixup", dry_run=True)
    assert report.dry_run and len(report.actions) == 3 * 3 + 2
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert "would write 11 parameters" in str(report)
    data = report.to_dict()
    assert data["classifier"] == "head" and len(data["branches"]) == 3
    assert '"policy": "fixup"' in report.to_json()


# ---------------------------------------------------------------------------------------
# The policies' numbers
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("inner", "blocks"), [(2, 8), (3, 16)])
def test_fixup_factors_follow_the_formula(inner, blocks):
    model = ResMLP(blocks=blocks, inner=inner)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    apply_residual_policy(model, "fixup")
    factor = blocks ** (-1.0 / (2 * inner - 2))  # L^(-1/(2m-2))
    for i in range(blocks):
        b = f"blocks.{i}"
        inner_layers = ["fc1"] + (["mid"] if inner == 3 else [])
        for name in inner_layers:
            w = model.state_dict()[f"{b}.{name}.weight"]
            assert torch.allclose(w, before[f"{b}.{name}.weight"] * factor)
            assert torch.equal(model.state_dict()[f"{b}.{name}.bias"], before[f"{b}.{name}.bias"])
        assert int(torch.count_nonzero(model.state_dict()[f"{b}.fc2.weight"])) == 0
        assert int(torch.count_nonzero(model.state_dict()[f"{b}.fc2.bias"])) == 0
    assert int(torch.count_nonzero(model.head.weight)) == 0
    assert torch.equal(model.inp.weight, before["inp.weight"])


def test_fixup_classifier_can_be_named_or_left_alone():
    model = ResMLP(blocks=2)
    head = model.head.weight.detach().clone()
    report = apply_residual_policy(model, "fixup", classifier=None)
    assert report.classifier is None and torch.equal(model.head.weight, head)
    report = apply_residual_policy(ResMLP(blocks=2), "fixup", classifier="inp")
    assert report.classifier == "inp"


class TiedBlocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = Block(4), Block(4)
        self.b.fc1.weight = self.a.fc1.weight

    def forward(self, x):
        return self.b(self.a(x))


def test_a_tied_weight_is_scaled_once():
    model = TiedBlocks()
    w = model.a.fc1.weight.detach().clone()
    apply_residual_policy(model, "fixup", classifier=None)
    assert torch.allclose(model.a.fc1.weight, w * 2 ** (-1 / 2))


class CausalSelfAttention(nn.Module):
    """nanoGPT's attention, written the same way (functional SDPA, views)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.c_attn, self.c_proj, self.heads = nn.Linear(d, 3 * d), nn.Linear(d, d), heads

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_fc, self.c_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class GPTBlock(nn.Module):
    def __init__(self, d: int, heads: int, attention: bool = True) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads) if attention else None
        self.mlp = MLP(d)

    def forward(self, x):
        if self.attn is not None:
            x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, n_layer: int, d: int = 32, vocab: int = 50, attention: bool = True):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(16, d)
        self.h = nn.ModuleList([GPTBlock(d, 4, attention) for _ in range(n_layer)])
        self.ln_f, self.lm_head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.wte(ids) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def test_gpt_branches_end_at_the_residual_projections():
    found = find_residual_branches(GPT(3))
    assert len(found.branches) == 6
    assert [b.last.name for b in found.branches] == [
        f"h.{i}.{part}.c_proj" for i in range(3) for part in ("attn", "mlp")
    ]
    assert names(found)[0] == ["h.0.ln_1", "h.0.attn.c_attn", "h.0.attn.c_proj"]


def test_gpt2_redraw_matches_nanogpt_std():
    n_layer = 6
    model = GPT(n_layer, d=64)
    report = apply_residual_policy(model, "gpt2", std=0.02, n_layers=n_layer, seed=1)
    expected = 0.02 / math.sqrt(2 * n_layer)
    redrawn = {a.parameter for a in report.actions}
    assert len(redrawn) == 2 * n_layer and all(p.endswith("c_proj.weight") for p in redrawn)
    values = torch.cat([model.get_parameter(p).detach().flatten() for p in redrawn])
    assert abs(float(values.std()) / expected - 1) < 0.02  # 6 * 2 * 4096 values
    assert abs(float(values.mean())) < 3 * expected / math.sqrt(values.numel())


def _stream_growth(model: GPT, ids: torch.Tensor) -> float:
    """Var(residual stream after the last block) / Var(before the first)."""
    seen = {}
    model.h[0].register_forward_pre_hook(lambda m, a: seen.__setitem__("in", a[0]))
    model.h[-1].register_forward_hook(lambda m, a, o: seen.__setitem__("out", o))
    with torch.no_grad():
        model(ids)
    return float(seen["out"].var() / seen["in"].var())


def test_gpt2_scaling_keeps_the_residual_stream_variance_flat():
    """N residual branches each add Var(branch) to the stream; scaling the projections by
    1/sqrt(N) makes the N of them add one branch's worth (Radford et al. 2019)."""
    n_layer = 16
    ids = torch.randint(0, 50, (32, 16), generator=torch.Generator().manual_seed(0))
    growth = {}
    for policy in (None, "gpt2"):
        torch.manual_seed(0)
        model = GPT(n_layer, attention=False)  # MLP branches: the cleanest variance sums
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.1)
                nn.init.zeros_(m.bias) if m.bias is not None else None
        if policy:
            report = apply_residual_policy(model, policy)
            assert len(report.actions) == n_layer
        growth[policy] = _stream_growth(model, ids) - 1
    # Without scaling the stream's variance grows ~N times one branch's; with it, ~once.
    assert growth[None] / growth["gpt2"] == pytest.approx(n_layer, rel=0.35)


# ---------------------------------------------------------------------------------------
# Fixup trains a deep residual MLP without normalization; He init does not
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return x, torch.tensor(y)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: threads only contend on a shared machine
    yield
    torch.set_num_threads(before)


def _train(model: nn.Module, x, y, seed: int, steps: int = 60, lr: float = 0.1) -> float:
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=generator)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(F.cross_entropy(model(x), y))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixup_trains_a_50_block_mlp_where_he_init_diverges(digits, one_thread, seed):
    x, y = digits
    losses = {}
    for policy in (None, "fixup"):
        model = ResMLP(blocks=50, width=24)
        report = initlab.init(model, "he", seed=seed, residual=policy)
        assert (report.residual is None) == (policy is None)
        losses[policy] = _train(model, x, y, seed)
    chance = math.log(10)
    assert losses["fixup"] < 0.5 * chance, losses  # trains: well below chance (2.30)
    he = losses[None]
    assert not math.isfinite(he) or he > 2 * losses["fixup"], losses  # diverges or lags


def test_he_init_explodes_the_forward_signal(digits):
    """Why He init fails here: each block multiplies the variance by ~3 (x + a He-scaled
    branch of variance 2 Var(x)), so the std grows by ~3^25 ~ 1e12 over 50 blocks; Fixup's
    blocks start as the identity."""
    x, _ = digits
    stds = {}
    for policy in (None, "fixup"):
        model = ResMLP(blocks=50, width=24)
        he_init(model, 0)
        if policy:
            apply_residual_policy(model, policy)
        with torch.no_grad():
            stds[policy] = float(model.blocks(model.inp(x)).std() / model.inp(x).std())
    assert stds[None] > 1e10 and stds["fixup"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------
# Through initlab.init
# ---------------------------------------------------------------------------------------


def test_init_with_fixup_scales_the_weights_it_wrote():
    plain, fixed = ResMLP(blocks=4), ResMLP(blocks=4)
    initlab.init(plain, "he", seed=3)
    report = initlab.init(fixed, "he", seed=3, residual="fixup")
    assert report.residual.policy == "fixup" and not report.residual.dry_run
    assert report.residual.method == "fx" and report.residual.classifier == "head"
    for i in range(4):
        w, w0 = fixed.blocks[i].fc1.weight, plain.blocks[i].fc1.weight
        assert torch.allclose(w, w0 * 4 ** (-1 / 2))
        assert int(torch.count_nonzero(fixed.blocks[i].fc2.weight)) == 0
    assert int(torch.count_nonzero(fixed.head.weight)) == 0
    assert torch.equal(fixed.inp.weight, plain.inp.weight)
    assert report["blocks.0.fc2.weight"].measured_std == 0.0  # rows measure the final values
    data = report.to_dict()["residual"]
    assert data["policy"] == "fixup" and len(data["branches"]) == 4
    assert "residual policy 'fixup'" in str(report)


def test_init_residual_options_and_dry_run():
    model = GPT(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = initlab.init(
        model, seed=0, dry_run=True, residual={"policy": "gpt2", "std": 0.02, "n_layers": 2}
    )
    assert report.residual.dry_run and len(report.residual.actions) == 4
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    initlab.init(model, seed=0, residual={"policy": "gpt2", "std": 0.02, "n_layers": 2})
    assert model.h[0].mlp.c_proj.weight.detach().std() < 0.02 / 2 * 1.2


@pytest.mark.parametrize(
    ("residual", "match"),
    [
        ("fixupp", r"policy='fixupp' is not valid"),
        ({"std": 0.02}, r"residual=\{'std': 0.02\} is not valid"),
        ({"policy": "gpt2", "depth": 3}, r"unknown key\(s\) \['depth'\]"),
        ({"policy": "zero_last", "branches": [["inp", "nope"]]}, r"module='nope' is not valid"),
    ],
)
def test_init_with_a_bad_residual_option_changes_nothing(residual, match):
    model = ResMLP(blocks=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=match):
        initlab.init(model, "he", seed=0, residual=residual)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_init_finds_branches_of_an_untraceable_model_on_its_recorded_pass():
    model = Untraceable()
    report = initlab.init(model, seed=0, example_inputs=torch.randn(8, 4), residual="zero_last")
    assert report.residual.method == "hooks"
    assert [a.parameter for a in report.residual.actions] == ["fc2.weight", "fc2.bias"]
    assert int(torch.count_nonzero(model.fc2.weight)) == 0


@pytest.mark.parametrize("builder", ["fx", "hooks"])
def test_both_graph_builders_find_the_same_branches(builder):
    from initlab.torch.model.graph import record_forward, trace_fx

    cases = [
        (tiny_resnet(), torch.randn(2, 3, 8, 8)),
        (GPT(2), torch.randint(0, 50, (2, 8))),
        (ResMLP(blocks=3), torch.randn(4, 64)),
    ]
    for model, x in cases:
        graph = trace_fx(model) if builder == "fx" else record_forward(model, x)
        found = find_residual_branches(model, graph=graph)
        assert names(found) == names(find_residual_branches(model)), type(model).__name__
        assert {b.found_by for b in found.branches} == {builder}
