"""initlab.lsuv: every layer at its target std in one forward pass, measured independently.

The stds are never read off the report alone: a separate forward pass with plain hooks
measures every layer's output, on the batch LSUV saw (where one pass must be exact) and on a
fresh batch (where the targets must hold within tol).
"""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.torch.lsuv import LSUVReport, lsuv
from initlab.torch.lsuv.layers import find_targets

TARGET, TOL = 1.0, 0.1


def relu_mlp(depth: int = 30, width: int = 64, d_in: int = 32, d_out: int = 10) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(d_in, width), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, d_out))
    return nn.Sequential(*layers)


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, groups=4),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 16, 2, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )


def batch(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def measure(model: nn.Module, inputs, names) -> dict[str, list[float]]:
    """Output std of each named layer at each call, by plain hooks in a fresh forward pass."""
    stds: dict[str, list[float]] = {n: [] for n in names}
    modules = dict(model.named_modules())
    handles = []
    for n in names:

        def hook(module, args, output, n=n):
            y = output[0] if isinstance(output, tuple) else output
            stds[n].append(float(y.float().std()))

        handles.append(modules[n].register_forward_hook(hook))
    was = model.training
    model.eval()
    with torch.no_grad():
        model(inputs)
    model.train(was)
    for h in handles:
        h.remove()
    return stds


def first_call_stds(model, inputs, report: LSUVReport) -> dict[str, float]:
    stds = measure(model, inputs, [layer.name for layer in report.reached])
    return {n: s[0] for n, s in stds.items()}


@pytest.mark.parametrize(
    ("build", "shape"),
    [(relu_mlp, (512, 32)), (small_cnn, (64, 3, 16, 16))],
    ids=["mlp30", "cnn"],
)
def test_every_layer_at_target_in_one_pass_on_a_fresh_batch(build, shape):
    torch.manual_seed(0)
    model = build()
    seen, fresh = batch(*shape, seed=1), batch(*shape, seed=2)
    report = lsuv(model, seen, seed=0)
    layers = find_targets(model)
    assert len(report.layers) == len(layers) == (30 if build is relu_mlp else 5)
    assert report.passes == 1 and report.method == "single pass" and report.converged
    assert report.layer_calls == len(layers)  # each layer evaluated once: O(L), not O(L^2)
    # The batch LSUV saw: the one pass is exact (the report's std is what a new pass measures).
    on_seen = first_call_stds(model, seen, report)
    for layer in report.layers:
        assert math.isclose(on_seen[layer.name], layer.std, rel_tol=1e-4), layer.name
        assert abs(layer.std - TARGET) <= TOL
    # A fresh batch from the same distribution: every layer within target +- tol.
    on_fresh = first_call_stds(model, fresh, report)
    assert all(abs(s - TARGET) <= TOL for s in on_fresh.values()), on_fresh


def test_without_lsuv_the_deep_mlp_is_far_off_target():
    """The control: torch's default init of the same MLP does not hold the std."""
    torch.manual_seed(0)
    model = relu_mlp()
    names = [t.name for t in find_targets(model)]
    stds = measure(model, batch(512, 32, seed=2), names)
    assert stds[names[-1]][0] < 0.2  # 0.085 with this seed: far outside 1 +- 0.1


@pytest.mark.parametrize("target_std", [0.5, 2.0])
def test_other_targets(target_std):
    torch.manual_seed(0)
    model = relu_mlp(depth=8)
    x = batch(256, 32, seed=1)
    report = lsuv(model, x, target_std=target_std, tol=0.05, seed=0)
    assert report.converged
    for s in first_call_stds(model, x, report).values():
        assert abs(s - target_std) <= 0.05


class Reversed(nn.Module):
    """Registration order is the reverse of execution order."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Linear(32, 4)
        self.b = nn.Linear(32, 32)
        self.a = nn.Linear(8, 32)

    def forward(self, x):
        return self.c(torch.tanh(self.b(torch.relu(self.a(x)))))


def test_layers_are_processed_in_execution_order():
    model = Reversed()
    x = batch(256, 8, seed=1)
    report = lsuv(model, x, seed=0)
    assert [layer.name for layer in report.layers] == ["a", "b", "c"]
    assert report.passes == 1
    assert all(abs(s - 1) <= 1e-3 for s in first_call_stds(model, x, report).values())


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(8, 32)
        self.mha = nn.MultiheadAttention(32, 4, batch_first=True)
        self.out = nn.Linear(32, 4)

    def forward(self, x):
        h = self.inp(x)
        a, _ = self.mha(h, h, h)
        return self.out(a + h)


def test_multihead_attention_is_rescaled_through_out_proj():
    model = Attention()
    x = batch(64, 10, 8, seed=1)
    report = lsuv(model, x, seed=0)
    names = [layer.name for layer in report.layers]
    assert names == ["inp", "mha", "out"]  # out_proj is not a layer of its own
    mha = report.layers[1]
    assert mha.weight == "mha.out_proj.weight" and mha.scale != 1.0
    assert report.passes == 1
    for s in first_call_stds(model, x, report).values():
        assert abs(s - 1) <= 1e-3
    fresh = first_call_stds(model, batch(64, 10, 8, seed=2), report)
    assert all(abs(s - 1) <= TOL for s in fresh.values())


def test_orthogonal_preinit_covers_q_k_v_and_out_proj():
    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(16, 2)

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    model = SelfAttention()
    mha = model.mha
    report = lsuv(model, batch(6, 4, 16, seed=0), seed=0)
    eye = torch.eye(16)
    for block in mha.in_proj_weight.detach().chunk(3):
        assert torch.allclose(block @ block.T, eye, atol=1e-5)
    w = mha.out_proj.weight.detach() / report.layers[0].scale
    assert torch.allclose(w @ w.T, eye, atol=1e-5)
    assert float(mha.in_proj_bias.detach().abs().max()) == 0.0


def test_transformer_encoder_in_eval_mode_reaches_every_layer():
    """Eval mode under no_grad is the encoder's fused fast path, which skips submodule calls;
    LSUV's hooks make PyTorch take the regular path, so every layer is reached."""
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
    model = nn.Sequential(nn.Linear(8, 32), nn.TransformerEncoder(layer, 2), nn.Linear(32, 3))
    model.eval()
    x = batch(64, 10, 8, seed=1)
    report = lsuv(model, x, seed=0)
    assert not model.training
    assert len(report.layers) == 8 and report.converged and report.passes == 1
    assert {layer.kind for layer in report.layers} == {"Linear", "MultiheadAttention"}
    fresh = first_call_stds(model, batch(64, 10, 8, seed=2), report)
    assert all(abs(s - 1) <= TOL for s in fresh.values()), fresh


class TiedPair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(16, 16)
        self.b = nn.Linear(16, 16)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_tied_weights_are_rescaled_once_in_one_pass():
    model = TiedPair()
    x = batch(256, 16, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a tied layer off target is by design, not a warning
        report = lsuv(model, x, seed=0, target_std=2.0)
    a, b = report.layers
    assert report.passes == 1
    assert a.status == "ok" and a.scale != 1.0
    assert b.status == "tied" and b.scale == 1.0 and "rescaled at a" in b.note
    # The shared weight is the orthogonal pre-init times a's scale, once.
    w = model.a.weight.detach() / a.scale
    assert torch.allclose(w @ w.T, torch.eye(16), atol=1e-5)
    assert report.converged


class TiedLM(nn.Module):
    """A language-model head tied to the embedding, which runs first."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 32)
        self.fc = nn.Linear(32, 32)
        self.head = nn.Linear(32, 50, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, ids):
        return self.head(torch.relu(self.fc(self.emb(ids))))


def test_weight_used_before_its_layer_falls_back_to_repeated_passes():
    model = TiedLM()
    ids = torch.randint(0, 50, (64, 10), generator=torch.Generator().manual_seed(0))
    report = lsuv(model, ids, seed=0)
    assert report.passes == 2 and report.method == "repeated passes"
    assert any("emb" in reason and "head" in reason for reason in report.reasons)
    assert report.converged
    measured = first_call_stds(model, ids, report)
    for layer in report.layers:
        assert math.isclose(measured[layer.name], layer.std, rel_tol=1e-4)
        assert abs(layer.std - 1) <= TOL


class Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(8, 16)
        self.block = nn.Linear(16, 16)
        self.out = nn.Linear(16, 4)

    def forward(self, x):
        h = self.inp(x)
        for _ in range(3):
            h = torch.relu(self.block(h))
        return self.out(h)


def test_module_called_several_times_is_rescaled_at_its_first_call():
    model = Reused()
    x = batch(256, 8, seed=1)
    report = lsuv(model, x, seed=0)
    block = report.layers[1]
    assert report.passes == 1 and block.calls == 3
    assert "3 calls" in block.note
    stds = measure(model, x, ["block"])["block"]
    assert len(stds) == 3 and math.isclose(stds[0], block.std, rel_tol=1e-4)
    assert abs(stds[0] - 1) <= TOL


class Sneaky(nn.Module):
    """Reads fc2's weight functionally before fc2 runs: no hook can see that use."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 16)

    def forward(self, x):
        h = F.linear(x, self.fc2.weight)
        return self.fc2(torch.relu(self.fc1(h)))


def test_verify_catches_uses_no_hook_can_see():
    x = batch(256, 16, seed=1)
    plain = Sneaky()
    report = lsuv(plain, x, seed=0, target_std=0.5)
    assert report.passes == 1  # the report believes it, but fc1 moved when fc2 was rescaled
    assert abs(measure(plain, x, ["fc1"])["fc1"][0] - 0.5) > TOL
    checked = Sneaky()
    report = lsuv(checked, x, seed=0, target_std=0.5, verify=True)
    assert report.passes == 3 and report.converged
    for s in first_call_stds(checked, x, report).values():
        assert abs(s - 0.5) <= TOL


def test_verify_on_a_plain_network_costs_one_more_pass():
    torch.manual_seed(0)
    report = lsuv(relu_mlp(depth=6), batch(128, 32, seed=1), seed=0, verify=True)
    assert report.passes == 2 and report.converged and report.reasons == ()


def test_train_and_eval_flags_of_every_module_are_restored():
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5), nn.BatchNorm1d(8), nn.Linear(8, 2))
    model.train()
    model[1].eval()
    flags = [m.training for m in model.modules()]
    stats = model[2].running_mean.clone()
    lsuv(model, batch(64, 8, seed=0), seed=0)
    assert [m.training for m in model.modules()] == flags
    assert torch.equal(model[2].running_mean, stats)  # ran in eval mode: BN stats untouched


def test_no_device_or_dtype_moves_and_same_parameter_objects():
    model = relu_mlp(depth=4)
    before = [(id(p), p.device, p.dtype, p.data_ptr()) for p in model.parameters()]
    lsuv(model, batch(64, 32, seed=0), seed=0)
    assert before == [(id(p), p.device, p.dtype, p.data_ptr()) for p in model.parameters()]


def test_bfloat16_model():
    model = small_cnn().to(torch.bfloat16)
    x = batch(32, 3, 16, 16, seed=1).to(torch.bfloat16)
    report = lsuv(model, x, seed=0)
    assert report.converged
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert all(abs(s - 1) <= TOL for s in first_call_stds(model, x, report).values())


def test_failure_leaves_every_parameter_unchanged():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(9, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        lsuv(model, batch(16, 4, seed=0), seed=0)  # fails after two layers were rescaled
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training


def test_non_finite_activations_are_an_error_naming_the_layer():
    model = relu_mlp(depth=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = batch(16, 32, seed=0)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"layer '0': output std is nan"):
        lsuv(model, x, seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bias_correction_centres_every_channel():
    torch.manual_seed(0)
    model = small_cnn()
    x = batch(64, 3, 16, 16, seed=1)
    report = lsuv(model, x, seed=0, bias_correction=True, orthogonal_first=False)
    assert report.converged and report.passes == 1
    modules = dict(model.named_modules())
    means = {}

    def hook(module, args, output, name):
        dim = 1 if output.dim() > 2 else output.dim() - 1
        means[name] = output.movedim(dim, -1).reshape(-1, output.shape[dim]).mean(0)

    handles = [
        modules[layer.name].register_forward_hook(lambda m, a, o, n=layer.name: hook(m, a, o, n))
        for layer in report.layers
    ]
    with torch.no_grad():
        model.eval()
        model(x)
    for h in handles:
        h.remove()
    assert all(float(m.abs().max()) < 1e-4 for m in means.values()), means
    assert all(abs(s - 1) <= TOL for s in first_call_stds(model, x, report).values())


def test_nonzero_biases_need_several_steps_and_converge():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32))
    with torch.no_grad():
        model[2].bias.uniform_(-0.8, 0.8)
    x = batch(256, 16, seed=1)
    report = lsuv(model, x, seed=0, orthogonal_first=False)
    assert report.layers[1].iterations > 1 and report.converged
    assert all(abs(s - 1) <= TOL for s in first_call_stds(model, x, report).values())


def test_bias_spread_above_target_cannot_converge_and_says_so():
    model = nn.Sequential(nn.Linear(16, 32))
    with torch.no_grad():
        model[0].bias.copy_(torch.linspace(-3, 3, 32))
    with pytest.warns(RuntimeWarning, match=r"1 layer\(s\) not at target std 1 \+- 0.1: 0"):
        report = lsuv(model, batch(64, 16, seed=0), orthogonal_first=False, max_iter=5)
    assert report.layers[0].status == "off target" and "max_iter=5" in report.layers[0].note
    assert not report.converged


def test_same_seed_same_weights_and_seed_is_reported():
    x = batch(64, 32, seed=0)
    a, b, c = (relu_mlp(depth=4) for _ in range(3))
    ra = lsuv(a, x, seed=7)
    lsuv(b, x, seed=7)
    lsuv(c, x, seed=8)
    assert ra.seed == 7
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_seed_none_draws_a_fresh_seed_that_reproduces():
    x = batch(64, 32, seed=0)
    a, b, c = relu_mlp(depth=3), relu_mlp(depth=3), relu_mlp(depth=3)
    torch.manual_seed(3)
    ra = lsuv(a, x)
    torch.manual_seed(3)
    rb = lsuv(b, x)  # torch's global generator plays no part
    assert ra.seed is not None and rb.seed is not None and ra.seed != rb.seed
    lsuv(c, x, seed=ra.seed)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_exclude_leaves_layers_alone():
    torch.manual_seed(0)
    model = relu_mlp(depth=4)
    head = model[-1].weight.detach().clone()
    report = lsuv(model, batch(64, 32, seed=0), seed=0, exclude=["6"])
    assert [layer.name for layer in report.layers] == ["0", "2", "4"]
    assert torch.equal(model[-1].weight, head)


def test_layers_never_called_and_dead_layers_are_reported():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(4, 4)
            self.unused = nn.Linear(4, 4)
            self.dead = nn.Linear(4, 4)

        def forward(self, x):
            return self.dead(torch.zeros_like(self.used(x)))

    with pytest.warns(RuntimeWarning, match="unused \\(not reached\\)"):
        report = lsuv(Unused(), batch(32, 4, seed=0), seed=0)
    status = {layer.name: layer.status for layer in report.layers}
    assert status == {"used": "ok", "dead": "zero output", "unused": "not reached"}
    assert [layer.name for layer in report.layers][-1] == "unused"
    assert not report.converged


def test_unbatched_and_keyword_inputs():
    conv = nn.Sequential(nn.Conv1d(3, 8, 3), nn.ReLU(), nn.Conv1d(8, 8, 3))
    report = lsuv(conv, batch(3, 40, seed=0), seed=0)  # unbatched (C, L)
    assert report.converged

    class Kw(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x, *, scale):
            return self.fc(x * scale)

    assert lsuv(Kw(), {"x": batch(32, 4, seed=0), "scale": 2.0}, seed=0).converged

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x, y):
            return self.fc(x + y)

    assert lsuv(Two(), (batch(32, 4, seed=0), batch(32, 4, seed=1)), seed=0).converged


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_std": 0.0}, r"target_std=0.0 is not valid; allowed: a real number > 0.0"),
        ({"tol": -1}, r"tol=-1 is not valid"),
        ({"max_iter": 0}, r"max_iter=0 is not valid; allowed: an integer >= 1"),
        ({"max_passes": 0}, r"max_passes=0 is not valid"),
        ({"seed": -1}, r"seed=-1 is not valid"),
        ({"exclude": [1]}, r"exclude=\[1\] is not valid"),
        ({"verify": "yes"}, r"verify='yes' is not valid; allowed: True or False"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, match):
    model = relu_mlp(depth=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    wrong_type = "exclude" in kwargs or "verify" in kwargs  # a type mistake, as in init
    with pytest.raises(TypeError if wrong_type else ValueError, match=match):
        lsuv(model, batch(8, 32, seed=0), **kwargs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_models_it_cannot_work_on():
    with pytest.raises(ValueError, match="no layer LSUV can rescale"):
        lsuv(nn.Sequential(nn.ReLU()), batch(4, 4, seed=0))
    with pytest.raises(TypeError, match="model=function is not valid"):
        lsuv(lambda x: x, batch(4, 4, seed=0))
    with torch.device("meta"):
        meta = nn.Linear(4, 4)
    with pytest.raises(ValueError, match="meta device"):
        lsuv(meta, batch(4, 4, seed=0))


def test_report_table_dict_and_json():
    torch.manual_seed(0)
    model = relu_mlp(depth=3)
    report = lsuv(model, batch(64, 32, seed=0), seed=0)
    text = str(report)
    assert "1 forward pass (single pass)" in text and "std after" in text
    data = json.loads(report.to_json())
    assert data["passes"] == 1 and data["converged"] is True
    assert [row["name"] for row in data["layers"]] == ["0", "2", "4"]
    assert set(data["layers"][0]) >= {"std_before", "std", "scale", "iterations", "status"}
    assert report.stds() == {row["name"]: row["std"] for row in data["layers"]}


def test_lazy_top_level_export():
    assert initlab.lsuv is lsuv


def _count_forward_calls(model: nn.Module) -> list[int]:
    count = [0]
    model.register_forward_pre_hook(lambda m, a: count.__setitem__(0, count[0] + 1))
    return count


def test_reference_package_needs_a_pass_per_attempt_per_layer():
    """The ``lsuv`` package (0.3.0, bench extra) on the same 30-layer MLP: O(L) full passes."""
    reference = pytest.importorskip("lsuv")
    torch.manual_seed(0)
    ours, theirs = relu_mlp(), relu_mlp()
    x = batch(512, 32, seed=1)
    report = lsuv(ours, x, seed=0)
    count = _count_forward_calls(theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.lsuv_with_singlebatch(theirs, x, verbose=False)
    assert report.passes == 1 and report.layer_calls == 30  # O(L)
    # The reference: a full pass per attempt per layer, 60 passes here, 60 * 30 layer calls.
    assert count[0] >= 30
    assert count[0] * 30 >= 30 * report.layer_calls  # O(L^2) against O(L)


def test_inputs_follow_the_one_rule_a_list_is_positional_arguments():
    x = batch(64, 32, seed=0)
    a, b = relu_mlp(depth=3), relu_mlp(depth=3)
    b.load_state_dict(a.state_dict())
    ra, rb = lsuv(a, x, seed=0), lsuv(b, [x], seed=0)
    assert ra.stds() == rb.stds()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


class Counting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(32, 32), nn.Linear(32, 10)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.fc2(torch.relu(self.fc1(x)))


def test_the_models_own_buffers_and_flags_come_back():
    model = Counting().train()
    lsuv(model, batch(64, 32, seed=0), seed=0)
    assert model.calls.item() == 0 and model.training
