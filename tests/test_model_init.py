"""initlab.init as a whole: schemes, determinism, atomicity, meta device, dtypes, the report."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import initlab
from initlab.schemes import Constant, get_scheme, scheme_names
from initlab.torch.fill import fill_
from initlab.torch.model import InitError, InitWarning


def mlp(width: int = 16, depth: int = 3, n_in: int = 8, n_out: int = 4) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(n_in, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def same_bits(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and torch.equal(a[k].view(-1).view(torch.uint8),
                                                 b[k].view(-1).view(torch.uint8))
        for k in a
    )  # fmt: skip


# ---- every scheme model-wide -------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::initlab.torch.model.InitWarning")
@pytest.mark.parametrize("name", scheme_names())
def test_every_registry_name_applies_model_wide(name):
    model = mlp()
    # JAX's constant(value) and variance_scaling(scale, mode, distribution) need arguments.
    name += {"jax.constant": "(0.5)", "jax.variance_scaling": "(1.0, 'fan_in', 'normal')"}.get(
        name, "")  # fmt: skip
    scheme = get_scheme(name)
    convs_only = ("dirac", "delta_orthogonal", "stft", "stftinitializer")
    if name.split(".")[-1].lower().rstrip("_") in convs_only:
        with pytest.raises(InitError, match=r"parameter '0.weight'.*(dirac|delta_orthogonal|STFT)"):
            initlab.init(model, name, seed=0)
        return
    report = initlab.init(model, name, seed=0)
    weights = [r for r in report.rows if r.kind == "weight"]
    assert {r.rule for r in weights} == {"model-wide"}
    assert {r.scheme for r in weights} == {scheme.name}
    assert {r.rule for r in report.rows if r.kind == "bias"} == {"bias"}
    if isinstance(scheme, Constant):
        assert torch.equal(model[2].weight, torch.full((16, 16), scheme.value))
    else:
        assert float(model[2].weight.detach().std()) > 0


@pytest.mark.parametrize(
    ("name", "std"),
    [
        ("he", math.sqrt(2 / 16)),
        ("kaiming_uniform_", math.sqrt(2 / 16)),
        ("xavier", math.sqrt(2 / 32)),
        ("lecun", math.sqrt(1 / 16)),
        ("random", 0.01),
        ("he_uniform(mode=fan_out)", math.sqrt(2 / 16)),
    ],
)
def test_seed_schemes_and_presets_have_their_std(name, std):
    model = mlp(width=16, depth=2)
    report = initlab.init(model, name, seed=0)
    assert report["2.weight"].std == pytest.approx(std)
    assert float(model[2].weight.detach().std()) == pytest.approx(std, rel=0.2)


def test_mode_and_distribution_reach_a_model_wide_variance_scaling_scheme():
    model = nn.Sequential(nn.Linear(10, 40))
    report = initlab.init(model, "he", seed=0, mode="fan_out", distribution="uniform")
    assert report["0.weight"].std == pytest.approx(math.sqrt(2 / 40))
    assert report["0.weight"].bound == pytest.approx(math.sqrt(3) * math.sqrt(2 / 40))
    assert float(model[0].weight.detach().abs().max()) <= report["0.weight"].bound


# ---- zeros: the symmetry problem ---------------------------------------------------------


def test_zeros_makes_every_hidden_unit_identical_and_the_report_says_so():
    model = mlp(width=32, depth=3)
    with pytest.warns(InitWarning, match="every unit starts identical"):
        report = initlab.init(model, "zeros", seed=0)
    assert report.symmetric_layers == ("0", "2", "4", "6")
    assert all(r.symmetric for r in report.rows if r.kind == "weight")
    assert any("symmetry" in w for w in report.warnings)
    assert "warning" in str(report)
    # Every unit of every hidden layer computes the same value, on any input ...
    x = torch.randn(64, 8)
    h = x
    for layer in list(model)[:-1]:
        h = layer(h)
        assert torch.equal(h, h[:, :1].expand_as(h))
    # ... and gets the same gradient, so training cannot separate them.
    loss = model(x).pow(2).sum() + model(x).sum()
    loss.backward()
    for layer in (model[0], model[2], model[4]):
        grad = layer.weight.grad
        assert torch.equal(grad, grad[:1].expand_as(grad))


def test_random_schemes_are_not_flagged():
    report = initlab.init(mlp(), "random", seed=0)
    assert report.symmetric_layers == () and report.warnings == []


# ---- nothing half-done -------------------------------------------------------------------


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, 4),
    )  # fmt: skip


def test_a_failing_override_leaves_every_weight_unchanged_bit_for_bit():
    model = cnn()
    before = snapshot(model)
    # "eye" needs a 2-D tensor: the second convolution cannot take it.
    with pytest.raises(InitError) as caught:
        initlab.init(model, seed=0, overrides={"2.weight": "eye"})
    assert caught.value.parameter == "2.weight"
    assert "eye" in caught.value.reason and "2-D" in caught.value.reason
    assert "No parameter was changed" in str(caught.value)
    assert same_bits(snapshot(model), before)


def test_a_raising_callable_override_leaves_every_weight_unchanged():
    model = cnn()
    before = snapshot(model)

    def broken(tensor):
        raise RuntimeError("boom")

    with pytest.raises(InitError, match=r"parameter '6.weight': override callable raised.*boom"):
        initlab.init(model, seed=0, overrides={"6.weight": broken})
    assert same_bits(snapshot(model), before)


def test_a_failure_while_writing_rolls_back_under_snapshot(monkeypatch):
    import initlab.torch.model.api as api

    model = mlp()
    before = snapshot(model)
    calls = {"n": 0}

    def flaky(tensor, scheme, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise MemoryError("simulated")
        return fill_(tensor, scheme, **kwargs)

    monkeypatch.setattr(api, "fill_", flaky)
    with pytest.raises(InitError, match="MemoryError while writing"):
        initlab.init(model, seed=0, atomic="snapshot")
    assert calls["n"] == 5
    assert same_bits(snapshot(model), before)
    # Without a snapshot the error says which parameters kept new values.
    calls["n"] = 0
    with pytest.raises(InitError, match="keep their new values"):
        initlab.init(model, seed=0)


def test_snapshot_mode_progress_bar_and_no_measure_give_the_same_weights():
    a, b = mlp(), mlp()
    initlab.init(a, seed=9)
    report = initlab.init(b, seed=9, atomic="snapshot", progress=True, measure=False)
    assert same_bits(snapshot(a), snapshot(b))
    assert report["0.weight"].measured_std is None


def test_callable_override_is_used():
    model = mlp()
    report = initlab.init(model, seed=0, overrides={"0.weight": torch.nn.init.ones_})
    assert torch.equal(model[0].weight, torch.ones(16, 8))
    assert report["0.weight"].rule == "override"


def test_overrides_by_glob_first_match_wins_and_keep():
    model = mlp()
    before = model[6].weight.detach().clone()
    report = initlab.init(
        model,
        seed=0,
        overrides={"6.weight": "keep", "*.weight": "orthogonal", "*.bias": "ones"},
    )
    assert torch.equal(model[6].weight, before)
    w = model[2].weight.detach()
    assert torch.allclose(w @ w.T, torch.eye(16), atol=1e-5)
    assert torch.equal(model[0].bias, torch.ones(16))
    assert report["2.weight"].rule == "override"


def test_unmatched_glob_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"overrides: pattern 'fc\.\*' matches no parameter"):
        initlab.init(mlp(), seed=0, overrides={"fc.*": "zeros"})
    with pytest.raises(ValueError, match="exclude: pattern 'nothing' matches no parameter"):
        initlab.init(mlp(), seed=0, exclude="nothing")


def test_exclude_leaves_parameters():
    model = mlp()
    before = snapshot(model)
    report = initlab.init(model, seed=0, exclude=["0.*"])
    after = snapshot(model)
    assert torch.equal(after["0.weight"], before["0.weight"])
    assert torch.equal(after["0.bias"], before["0.bias"])
    assert not torch.equal(after["2.weight"], before["2.weight"])
    assert report["0.weight"].reason == "excluded by '0.*'"


# ---- determinism -------------------------------------------------------------------------


class Keyed(nn.Module):
    """Same parameter names, registration order chosen by the caller."""

    def __init__(self, order):
        super().__init__()
        layers = {"a": nn.Linear(8, 16), "b": nn.Linear(16, 16), "c": nn.Linear(16, 4)}
        self.layers = nn.ModuleDict({k: layers[k] for k in order})

    def forward(self, x):
        return self.layers["c"](torch.relu(self.layers["b"](torch.relu(self.layers["a"](x)))))


def test_same_seed_same_bits_whatever_the_visiting_order():
    forward, backward = Keyed("abc"), Keyed("cba")
    assert [n for n, _ in forward.named_parameters()] != [n for n, _ in backward.named_parameters()]
    initlab.init(forward, seed=42)
    initlab.init(backward, seed=42)
    assert same_bits(snapshot(forward), snapshot(backward))


def test_a_parameter_does_not_depend_on_the_others():
    whole, part = mlp(), mlp()
    initlab.init(whole, seed=5)
    initlab.init(part, seed=5, exclude=["0.*", "4.*"])
    assert torch.equal(whole[2].weight, part[2].weight)
    assert torch.equal(whole[6].weight, part[6].weight)
    # and equals the stream drawn on its own: fill_ with the same scheme, seed and name
    alone = torch.empty(16, 16)
    scheme = get_scheme("variance_scaling(scale=1.0, mode=fan_in, distribution=normal)")
    fill_(alone, scheme.with_gain(math.sqrt(2.0)), seed=5, name="2.weight")
    assert torch.equal(alone, whole[2].weight.detach())


def test_different_seeds_differ_and_seed_none_is_recorded():
    a, b = mlp(), mlp()
    initlab.init(a, seed=1)
    initlab.init(b, seed=2)
    assert not torch.equal(a[2].weight, b[2].weight)
    c = mlp()
    report = initlab.init(c)
    assert isinstance(report.seed, int) and report.seed >= 0
    d = mlp()
    initlab.init(d, seed=report.seed)
    assert same_bits(snapshot(c), snapshot(d))


def test_init_does_not_touch_torchs_random_state():
    model = mlp()
    state = torch.random.get_rng_state()
    initlab.init(model, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)


# ---- dry run, meta device, dtypes --------------------------------------------------------


def test_dry_run_touches_nothing():
    model = mlp()
    before = snapshot(model)
    report = initlab.init(model, seed=0, dry_run=True)
    assert same_bits(snapshot(model), before)
    assert {r.action for r in report.rows} == {"planned"}
    assert report["0.weight"].measured_std is None and report["0.weight"].std is not None


class MetaNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.fc = nn.Linear(8, 8)
        self.bn = nn.BatchNorm1d(8)
        self.out = nn.Linear(8, 20, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, idx):
        return self.out(torch.relu(self.bn(self.fc(self.embed(idx)))))


def test_meta_model_is_materialized_and_equals_the_cpu_init():
    with torch.device("meta"):
        model = MetaNet()
    assert model.fc.weight.is_meta
    report = initlab.init(model, seed=7)
    assert report.materialized == "cpu"
    assert not any(t.is_meta for t in (*model.parameters(), *model.buffers()))
    assert model.out.weight is model.embed.weight  # still tied
    assert torch.equal(model.bn.running_var, torch.ones(8))
    assert int(model.bn.num_batches_tracked) == 0
    reference = MetaNet()
    initlab.init(reference, seed=7)
    assert same_bits(snapshot(model), snapshot(reference))
    model(torch.tensor([[1, 2, 3]]).view(-1))


def test_a_failing_meta_init_stays_on_meta():
    with torch.device("meta"):
        model = MetaNet()
    with pytest.raises(InitError, match="meta device"):
        initlab.init(model, seed=0, exclude="fc.*")
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_dtypes(dtype):
    model = mlp(width=64).to(dtype)
    reference = mlp(width=64).to(torch.float64)
    report = initlab.init(model, seed=0)
    initlab.init(reference, seed=0)
    for name, p in model.named_parameters():
        assert p.dtype == dtype
        expected = dict(reference.named_parameters())[name].detach()
        assert torch.allclose(p.detach().double(), expected, rtol=1e-2, atol=1e-6), name
    assert report["2.weight"].dtype == str(dtype).replace("torch.", "")
    assert report["2.weight"].measured_std == pytest.approx(report["2.weight"].std, rel=0.2)


# ---- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"scheme": "he_normla"}, ValueError, "Did you mean 'he_normal'"),
        ({"scheme": 3}, TypeError, "scheme=3 is not valid"),
        ({"mode": "fan_inn"}, ValueError, "mode='fan_inn' is not valid"),
        ({"seed": -1}, ValueError, "seed=-1 is not valid"),
        ({"seed": 1.5}, ValueError, "seed=1.5 is not valid"),
        ({"bias": "zeroes"}, ValueError, "bias='zeroes' is not valid"),
        ({"bias": "he_normal"}, ValueError, "a bias has none"),
        ({"atomic": "maybe"}, ValueError, "atomic='maybe' is not valid"),
        ({"custom": "x"}, ValueError, "custom='x' is not valid"),
        ({"overrides": {"0.weight": "nope"}}, ValueError, r"overrides\['0.weight'\]"),
        ({"overrides": {"0.weight": 3}}, TypeError, r"overrides\['0.weight'\]=3"),
        ({"scheme": "zeros", "mode": "fan_out"}, ValueError, "has no fans"),
        ({"dry_run": "yes"}, TypeError, "dry_run='yes'"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    model = mlp()
    before = snapshot(model)
    with pytest.raises(error, match=match):
        initlab.init(model, **kwargs)
    assert same_bits(snapshot(model), before)


def test_lazy_parameters_need_a_forward_first():
    model = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.Linear(4, 2))
    before = snapshot(nn.Sequential(model[2]))
    with pytest.raises(InitError, match=r"'0.weight': an uninitialized lazy parameter"):
        initlab.init(model, seed=0)
    assert same_bits(snapshot(nn.Sequential(model[2])), before)
    model(torch.randn(3, 5))
    assert initlab.init(model, seed=0)["0.weight"].fan_in == 5


def test_not_a_module():
    with pytest.raises(TypeError, match="model="):
        initlab.init(torch.zeros(3))


def test_integer_parameter_is_refused():
    model = mlp()
    model.register_parameter("count", nn.Parameter(torch.zeros(2, 2, dtype=torch.int64),
                                                   requires_grad=False))  # fmt: skip
    with pytest.raises(InitError, match=r"count.*not a floating-point"):
        initlab.init(model, seed=0, include_frozen=True)


# ---- the report --------------------------------------------------------------------------


def test_report_table_json_and_lookup():
    model = mlp()
    report = initlab.init(model, seed=11)
    text = str(report)
    assert "0.weight" in text and "he" in text and "seed=11" in text
    data = json.loads(report.to_json())
    assert data == json.loads(json.dumps(report.to_dict()))
    assert data["seed"] == 11 and len(data["rows"]) == len(report.rows)
    row = data["rows"][0]
    for key in ("parameter", "shape", "layer_type", "fan_in", "fan_out", "activation",
                "found_by", "scheme", "gain", "std"):  # fmt: skip
        assert key in row
    assert report.parameters == tuple(n for n, _ in model.named_parameters())
    with pytest.raises(KeyError, match=r"did you mean .0\.weight."):
        report["0.weigth"]
    assert "InitReport(scheme='auto', seed=11" in repr(report)


def test_report_json_file(tmp_path):
    report = initlab.init(mlp(), seed=0)
    path = tmp_path / "init.json"
    report.to_json(path)
    assert json.loads(path.read_text())["scheme"] == "auto"


def test_lazy_export():
    from initlab.torch.model import InitReport, init

    assert initlab.init is init and initlab.InitReport is InitReport


def test_init_does_not_keep_the_model_alive():
    """torch.fx's tracer sits in a reference cycle; init must not let it pin the model's
    weights until the next garbage collection (a loop over big models would hold them all)."""
    import gc
    import weakref

    gc.disable()
    try:
        model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        alive = weakref.ref(model)
        initlab.init(model, "auto", seed=0)
        del model
        assert alive() is None
    finally:
        gc.enable()
