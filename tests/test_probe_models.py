"""The probe on real architectures: attention, several inputs, dict outputs, convolutions,
functional and in-place activations; and the model left exactly as it was."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initlab.torch.probe import probe, random_projection, sum_of_squares


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 32)
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.ff = nn.Linear(32, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.embed(x))
        a, _ = self.attn(h, h, h)
        return self.ff(F.gelu(a))


def test_out_proj_hooks_do_not_fire_pytorch_78109():
    """Why the probe treats MultiheadAttention as the layer: out_proj's hooks never run."""
    mha = nn.MultiheadAttention(8, 2)
    fired = []
    mha.out_proj.register_forward_hook(lambda *a: fired.append("out_proj"))
    mha.register_forward_hook(lambda *a: fired.append("mha"))
    x = torch.randn(5, 3, 8)
    mha(x, x, x)
    assert fired == ["mha"]


def test_multihead_attention_is_measured_at_its_output_projection():
    torch.manual_seed(0)
    model = Attention()
    x = torch.randn(8, 10, 16, generator=_gen())
    report = probe(model, x)
    assert [s.name for s in report.layers] == ["embed", "attn", "ff"]
    attn = report.layer("attn")
    assert attn.kind == "MultiheadAttention" and attn.weight_name == "out_proj.weight"
    assert attn.activation == "gelu"
    with torch.no_grad():
        h = torch.relu(model.embed(x))
        a, _ = model.attn(h, h, h)  # the attention output is out_proj's output
    assert attn.pre_std == pytest.approx(a.std(unbiased=False).item(), rel=1e-4)
    assert attn.act_std == pytest.approx(F.gelu(a).std(unbiased=False).item(), rel=1e-4)
    w = model.attn.out_proj.weight
    assert attn.weight_std == pytest.approx(w.detach().std(unbiased=False).item(), rel=1e-5)
    assert attn.grad_norm is not None and attn.grad_norm > 0
    assert attn.weight_grad_norm is not None and attn.weight_grad_norm > 0


def test_transformer_encoder_layer_in_execution_order():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    report = probe(layer, torch.randn(4, 6, 32, generator=_gen()))
    names = [s.name for s in report.layers]
    assert names == ["self_attn", "norm1", "linear1", "linear2", "norm2"]
    assert report.layer("linear1").activation == "relu"
    assert all(s.grad_norm is not None for s in report.layers)
    assert report.forward.status == "healthy" and report.backward.status == "healthy"


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(4, 16)
        self.cls = nn.Linear(16, 3)
        self.reg = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor, scale: float = 1.0) -> dict:
        h = torch.tanh(self.a(x)) + self.b(y).relu()
        return {"cls": self.cls(h) * scale, "reg": (self.reg(h), None)}


@pytest.fixture
def two_inputs():
    torch.manual_seed(0)
    return TwoInputs(), torch.randn(32, 8, generator=_gen(1)), torch.randn(32, 4, generator=_gen(2))


def test_several_inputs_and_a_dict_output(two_inputs):
    model, x, y = two_inputs
    by_tuple = probe(model, (x, y))
    by_dict = probe(model, {"x": x, "y": y})
    assert by_tuple.to_dict()["layers"] == by_dict.to_dict()["layers"]
    assert [s.name for s in by_tuple.layers] == ["a", "b", "cls", "reg"]
    assert [s.activation for s in by_tuple.layers] == ["tanh", "relu", None, None]
    # The default loss reaches both heads of the dict output.
    assert all(s.grad_norm is not None for s in by_tuple.layers)
    assert by_tuple.meta["loss"] == "random_projection"


def test_a_user_loss_on_one_output(two_inputs):
    model, x, y = two_inputs
    report = probe(model, (x, y), loss_fn=lambda out: out["cls"].square().mean())
    assert report.layer("reg").grad_norm is None  # no gradient reaches the unused head
    assert report.layer("reg").weight_grad_norm is None
    assert report.layer("cls").grad_norm is not None
    with torch.no_grad():
        expected = model(x, y)["cls"].square().mean().item()
    assert report.loss == pytest.approx(expected, rel=1e-6)
    assert "-" in str(report)


def test_keyword_arguments_and_a_target():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.randn(20, 6, generator=_gen())
    labels = torch.randint(0, 3, (20,), generator=_gen())
    report = probe(model, x, target=labels)
    with torch.no_grad():
        assert report.loss == pytest.approx(F.cross_entropy(model(x), labels).item(), rel=1e-6)
    assert report.meta["loss"] == "cross_entropy"
    regression = probe(model, x, target=torch.zeros(20, 3))
    assert regression.meta["loss"] == "mse"


def test_default_losses():
    y = torch.randn(3, 4, requires_grad=True)
    random_projection({"out": y}, seed=5).backward()
    assert torch.equal(y.grad, torch.randn(3, 4, generator=_gen(5)))
    z = torch.randn(3, requires_grad=True)
    sum_of_squares([z]).backward()
    assert torch.allclose(z.grad, 2 * z.detach())
    with pytest.raises(ValueError, match="no floating-point tensor"):
        sum_of_squares({"ids": torch.arange(3)})


def test_functional_and_inplace_activations():
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.l2, self.l3 = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
            self.l4, self.l5 = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.l1(x), inplace=True)
            x = self.l2(x).sigmoid()
            x = F.hardtanh(self.l3(x), -0.5, 0.5)
            x = F.leaky_relu(self.l4(x), 0.1)
            return self.l5(x)

    torch.manual_seed(0)
    model = Functional()
    x = torch.randn(64, 8, generator=_gen())
    report = probe(model, x)
    assert [s.activation for s in report.layers] == [
        "relu", "sigmoid", "hardtanh", "leaky_relu", None,
    ]  # fmt: skip
    with torch.no_grad():
        z1 = model.l1(x)
        z3 = model.l3(model.l2(F.relu(z1)).sigmoid())
    l1 = report.layer("l1")
    # In-place ReLU: the pre-activation was measured before it was overwritten.
    assert l1.pre_mean == pytest.approx(z1.mean().item(), rel=1e-4)
    assert l1.pre_mean < l1.act_mean
    # hardtanh's range comes from its arguments: saturated means |a| >= 0.99 * 0.5.
    expected = (F.hardtanh(z3, -0.5, 0.5).abs() >= 0.495).double().mean().item()
    assert report.layer("l3").saturated_fraction == pytest.approx(expected, abs=1e-7)
    assert report.layer("l4").saturated_fraction is None


def test_gradient_of_an_inplace_activation_is_the_pre_activation_gradient():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(inplace=True), nn.Linear(8, 4))
    x = torch.randn(16, 8, generator=_gen())
    report = probe(model, x, loss_fn="sum_of_squares")
    z = model[0](x)
    z.retain_grad()
    model[2](torch.relu(z)).square().sum().backward()
    grad = z.grad.double()
    assert report.layer("0").grad_std == pytest.approx(grad.std(unbiased=False).item(), rel=1e-5)
    model.zero_grad(set_to_none=True)


def test_convolutions_count_dead_channels():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    with torch.no_grad():
        conv.bias[:4] = -1e3  # four channels can never be positive: dead for the batch
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 2))
    report = probe(model, torch.randn(5, 3, 6, 6, generator=_gen()))
    assert report.layer("0").dead_fraction == 0.5
    assert report.layer("0").shape == (5, 8, 6, 6)


def test_a_layer_called_twice_is_reported_per_call():
    shared = nn.Linear(8, 8)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    report = probe(model, torch.randn(4, 8, generator=_gen()))
    assert [s.name for s in report.layers] == ["0", "0#2"]


def _state(model: nn.Module) -> dict:
    return {
        "params": {k: v.detach().clone() for k, v in model.named_parameters()},
        "grads": {
            k: None if v.grad is None else v.grad.clone() for k, v in model.named_parameters()
        },
        "buffers": {k: v.clone() for k, v in model.named_buffers()},
        "training": [m.training for m in model.modules()],
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for m in model.modules()
        ],
    }


def _assert_same(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for key in ("params", "buffers"):
        for name in before[key]:
            assert torch.equal(before[key][name], after[key][name]), name
    for name, grad in before["grads"].items():
        other = after["grads"][name]
        assert (grad is None and other is None) or torch.equal(grad, other), name
    assert before["training"] == after["training"]
    assert before["hooks"] == after["hooks"]


def test_the_model_is_left_exactly_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 3),
    )  # fmt: skip
    model.eval()
    model[5].weight.grad = torch.ones_like(model[5].weight)  # a gradient the user had
    before = _state(model)
    rng_before = torch.random.get_rng_state()
    x = torch.randn(6, 3, 6, 6, generator=_gen())
    report = probe(model, x, mode="train")
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    _assert_same(before, _state(model))
    assert probe(model, x, mode="train").to_dict() == report.to_dict()  # seeded dropout
    assert probe(model, x, mode="train", seed=1).to_dict() != report.to_dict()
    assert report.layer("1").kind == "BatchNorm2d"
    assert report.layer("1").pre_std == pytest.approx(1.0, abs=0.05)  # batch statistics


def test_a_failing_forward_leaves_the_model_as_it_was():
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm1d(4)
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.fc(self.bn(x))
            raise RuntimeError("boom")

    model = Broken().eval()
    before = _state(model)
    with pytest.raises(RuntimeError, match="boom"):
        probe(model, torch.randn(8, 4))
    _assert_same(before, _state(model))


def test_bad_arguments_name_the_parameter():
    model = nn.Linear(3, 3)
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match=r"mode='training' is not valid.*'train'"):
        probe(model, x, mode="training")
    with pytest.raises(ValueError, match="loss_fn='mse' is not valid"):
        probe(model, x, loss_fn="mse")
    with pytest.raises(ValueError, match="samples=-1 is not valid"):
        probe(model, x, samples=-1)
    with pytest.raises(TypeError, match="model=str is not valid"):
        probe("model", x)
    with pytest.raises(TypeError, match="inputs=int is not valid"):
        probe(model, 3)
    with pytest.raises(TypeError, match="thresholds="):
        probe(model, x, thresholds={"vanishing": 0.1})
    with pytest.raises(ValueError, match="no layer with parameters"):
        probe(nn.ReLU(), x)
    with pytest.raises(ValueError, match="uninitialized"):
        probe(nn.LazyLinear(3), x)
    with pytest.raises(ValueError, match="loss_fn returned"):
        probe(model, x, loss_fn=lambda out: out)


def test_backward_norm_is_steady_across_widths_and_pooling():
    """He (fan_in) keeps ||dL/dy|| through a narrowing head and a global average pool, so
    the backward verdict does not flag what the architecture does by design."""
    from initlab.torch.probe import compare
    from initlab.torch.probe.models import cnn, mlp

    gen = _gen()
    narrow = compare(lambda: mlp(10, 256, out_features=1), torch.randn(128, 256, generator=gen),
                     ["he"])["he"]  # fmt: skip
    assert narrow.backward.status == "healthy"
    assert 0.3 < narrow.gradient_norm_ratio < 3.0
    # A per-element measure would have fallen by about sqrt(2 * 1 / 256) at the head.
    head, below = narrow.layers[-1], narrow.layers[-2]
    assert below.grad_std / head.grad_std < 0.2
    images = torch.randn(32, 3, 32, 32, generator=gen)
    convs = compare(lambda: cnn(8, 32), images, ["he", "default"])
    assert convs["he"].backward.status == "healthy"
    # torch's default conv init, Var(w) = 1 / (3 fan_in): 1/6 of He's variance per layer.
    assert convs["default"].backward.status == "vanishing"
