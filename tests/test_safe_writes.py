"""Writes that autograd sees, inference tensors refused, and no non-finite value written."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import initlab
import initlab.torch as init
from initlab.torch import fill_
from initlab.torch.model import InitError

#: Every drop-in that writes, with the extra arguments it needs and a shape it accepts.
WRITERS = {
    "uniform_": ((), (5, 4)),
    "normal_": ((), (5, 4)),
    "trunc_normal_": ((), (5, 4)),
    "constant_": ((0.5,), (5, 4)),
    "ones_": ((), (5, 4)),
    "zeros_": ((), (5, 4)),
    "eye_": ((), (5, 4)),
    "dirac_": ((), (4, 4, 3)),
    "xavier_uniform_": ((), (5, 4)),
    "xavier_normal_": ((), (5, 4)),
    "kaiming_uniform_": ((), (5, 4)),
    "kaiming_normal_": ((), (5, 4)),
    "orthogonal_": ((), (5, 4)),
    "sparse_": ((0.5,), (5, 4)),
}
RNG = ("initlab", "torch")


@pytest.fixture(params=RNG)
def rng(request):
    previous = init.set_default_rng(request.param)
    yield request.param
    init.set_default_rng(previous)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_drop_in_write_bumps_the_version_counter(name, rng):
    """``y = (w * w).sum(); init.f(w); y.backward()`` raises as with torch.nn.init."""
    args, shape = WRITERS[name]
    w = nn.Parameter(torch.randn(shape))
    before = w._version
    y = (w * w).sum()
    getattr(init, name)(w, *args)
    assert w._version > before
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_drop_in_refuses_inference_tensors_like_torch(name, rng):
    args, shape = WRITERS[name]
    with torch.inference_mode():
        w = torch.empty(shape)
        getattr(init, name)(w, *args)  # inside inference mode: allowed, as in torch
    with pytest.raises(RuntimeError) as ours:
        getattr(init, name)(w, *args)
    with pytest.raises(RuntimeError) as theirs:
        getattr(torch.nn.init, name)(w, *args)
    assert "inference tensor" in str(ours.value) and "inference tensor" in str(theirs.value)


def test_version_counter_through_views_and_bfloat16():
    w = nn.Parameter(torch.randn(8, 4, dtype=torch.bfloat16))
    y = (w * w).sum()
    init.normal_(w[2:6])  # a row view shares its base's version counter
    with pytest.raises(RuntimeError, match="inplace"):
        y.backward()


def test_fill_bumps_version_and_refuses_inference_tensors():
    w = nn.Parameter(torch.randn(6, 4))
    y = (w * w).sum()
    fill_(w, "he_normal", seed=0, name="w")
    with pytest.raises(RuntimeError, match="inplace"):
        y.backward()
    with torch.inference_mode():
        t = torch.empty(6, 4)
    with pytest.raises(RuntimeError, match="inference tensor"):
        fill_(t, "he_normal", seed=0)


def test_init_bumps_every_written_parameter():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 2))
    versions = {n: p._version for n, p in model.named_parameters()}
    y = sum((p * p).sum() for p in model.parameters())
    initlab.init(model, seed=0)
    assert all(p._version > versions[n] for n, p in model.named_parameters())
    with pytest.raises(RuntimeError, match="inplace"):
        y.backward()


def test_init_refuses_inference_parameters_and_changes_nothing():
    with torch.inference_mode():
        model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(InitError, match="inference tensor"):
        initlab.init(model, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


# --------------------------------------------------------------------------------------
# Finite values, known before anything is written
# --------------------------------------------------------------------------------------

OVERFLOWS = [
    ("normal(std=1e300)", torch.float32, "std=1e+300"),
    ("normal(mean=1e39)", torch.float32, "mean=1e+39"),
    ("variance_scaling(scale=1e300)", torch.float32, "scale=1e+300"),
    ("variance_scaling(scale=1e300, gain=1e300)", torch.float64, "scale=1e+300"),
    ("orthogonal(gain=1e300)", torch.float32, "gain=1e+300"),
    ("normal(std=1e5)", torch.float16, "std=100000.0"),
    ("he_normal", torch.float16, None),  # fine: the control
    ("uniform(a=-1e308, b=1e308)", torch.float64, "a=-1e+308"),
    ("constant(1e300)", torch.float32, "value=1e+300"),
    ("constant(1e5)", torch.float16, "value=100000.0"),
    ("constant(1e300)", torch.float64, None),  # written by torch in float64: fine
    ("trunc_normal(std=1e300, a=-1e300, b=1e300)", torch.float64, "std=1e+300"),
    ("sparse(std=1e5)", torch.float16, "std=100000.0"),
]


@pytest.mark.parametrize(("scheme", "dtype", "argument"), OVERFLOWS)
def test_fill_refuses_non_finite_values_before_writing(scheme, dtype, argument):
    t = torch.full((20, 10), 7.0, dtype=dtype)
    version = t._version
    if argument is None:
        fill_(t, scheme, seed=0)
        assert bool(torch.isfinite(t).all())
        return
    with pytest.raises(ValueError, match="inf") as error:
        fill_(t, scheme, seed=0)
    assert argument in str(error.value) and str(dtype).replace("torch.", "") in str(error.value)
    assert bool((t == 7.0).all()) and t._version == version


def _model() -> nn.Module:
    return nn.Sequential(*[nn.Linear(6, 6) for _ in range(6)])


def _snapshot(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _unchanged(model: nn.Module, before: list[torch.Tensor]) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"overrides": {"5.weight": "constant(1e300)"}}, ["'5.weight'", "value=1e+300"]),
        ({"scheme": "variance_scaling(scale=1e300)"}, ["'0.weight'", "scale=1e+300"]),
        ({"scheme": "orthogonal(gain=1e300)"}, ["'0.weight'", "gain=1e+300"]),
        ({"bias": "normal(std=1e300)"}, ["'0.bias'", "std=1e+300"]),
    ],
)
def test_init_refuses_non_finite_at_plan_time(kwargs, words):
    model = _model()
    before = _snapshot(model)
    with pytest.raises(InitError) as error:
        initlab.init(model, seed=0, **kwargs)
    assert all(w in str(error.value) for w in words), str(error.value)
    assert _unchanged(model, before)


def test_init_fp16_model_refuses_large_std():
    model = _model().half()
    before = _snapshot(model)
    with pytest.raises(InitError, match="float16"):
        initlab.init(model, "normal(std=1e5)", seed=0)
    assert _unchanged(model, before)


@pytest.mark.parametrize(
    ("filler", "words"),
    [
        (lambda t: t.fill_(float("nan")), "non-finite"),
        (lambda t: torch.full(t.shape, float("inf")), "non-finite"),
        (lambda t: torch.full(t.shape, 1e6), "non-finite"),  # finite in float64, inf in fp16
        (lambda t: None, "did not fill"),
        (lambda t: 3.0, "did not fill"),
    ],
)
def test_init_checks_override_callables(filler, words):
    model = _model().half()
    before = _snapshot(model)
    with pytest.raises(InitError, match=words) as error:
        initlab.init(model, overrides={"3.weight": filler}, seed=0)
    assert "'3.weight'" in str(error.value)
    assert _unchanged(model, before)


def test_init_accepts_well_behaved_callables():
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        initlab.init(model, overrides={"3.weight": lambda t: t.uniform_(-0.1, 0.1)}, seed=0)
        initlab.init(model, overrides={"3.weight": lambda t: torch.ones(6, 6)}, seed=0)
    assert torch.equal(model[3].weight, torch.ones(6, 6))


# --------------------------------------------------------------------------------------
# residual="fixup" on a network without a residual branch
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["fixup", "zero_last", "gpt2"])
def test_residual_policy_without_branches_writes_nothing_and_warns(policy):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.warns(UserWarning, match="no residual branch found"):
        report = initlab.init(model, "he", residual=policy, seed=0)
    reference = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    initlab.init(reference, "he", seed=0)  # the same init without the policy
    assert report.residual.actions == ()
    assert float(model[2].weight.detach().abs().sum()) > 0  # the classifier is not zeroed
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_draw_bumps_version_contiguous_strided_and_half():
    from initlab.rng import Draw, Stream
    from initlab.torch.fill import draw_

    for t in (torch.randn(6, 4), torch.randn(4, 6).T, torch.randn(6, 4).half()):
        w = nn.Parameter(t)
        y = (w * w).sum()
        draw_(w, Draw("normal", scale=0.1), Stream(0))
        with pytest.raises(RuntimeError, match="inplace"):
            y.backward()


def test_writes_inside_inference_mode_still_bump_normal_tensors():
    w = nn.Parameter(torch.randn(5, 4))
    y = (w * w).sum()
    with torch.inference_mode():
        init.normal_(w)  # a normal tensor written in inference mode: torch bumps it too
    with pytest.raises(RuntimeError, match="inplace"):
        y.backward()
