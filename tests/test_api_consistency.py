"""init, lsuv, probe and the residual policies take the same arguments the same way."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.torch.lsuv import lsuv
from initlab.torch.probe import probe
from initlab.torch.residual import apply_residual_policy


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        if bool(h.sum() > -1e9):  # data-dependent: fx cannot trace it
            h = h + self.fc2(h)
        return self.fc3(h)


X = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))


def test_inputs_is_the_common_name_and_example_inputs_still_works():
    a, b = Untraceable(), Untraceable()
    ra = initlab.init(a, seed=0, inputs=X)
    rb = initlab.init(b, seed=0, example_inputs=X)
    assert ra.discovery == rb.discovery == "hooks"
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    with pytest.raises(TypeError, match="both given"):
        initlab.init(Untraceable(), inputs=X, example_inputs=X)
    r1 = apply_residual_policy(Untraceable(), "zero_last", inputs=X, dry_run=True)
    r2 = apply_residual_policy(Untraceable(), "zero_last", example_inputs=X, dry_run=True)
    assert r1.actions == r2.actions and r1.actions


@pytest.mark.parametrize(
    "call",
    [
        lambda bad: initlab.init(Untraceable(), inputs=bad),
        lambda bad: lsuv(Untraceable(), bad),
        lambda bad: probe(Untraceable(), bad),
    ],
)
def test_inputs_that_cannot_be_passed_are_the_same_type_error(call):
    with pytest.raises(TypeError, match=r"inputs=int is not valid; allowed: a tensor"):
        call(3)


@pytest.mark.parametrize(
    "call",
    [
        lambda: initlab.init(Untraceable(), dry_run=1),
        lambda: lsuv(Untraceable(), X, verify=1),
        lambda: apply_residual_policy(Untraceable(), "fixup", dry_run=1, inputs=X),
    ],
)
def test_a_flag_that_is_not_a_bool_is_a_type_error_everywhere(call):
    with pytest.raises(TypeError, match=r"=1 is not valid; allowed: True or False"):
        call()


def test_exclude_matches_module_or_parameter_names_in_init_and_lsuv():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    before = [p.detach().clone() for p in model[0].parameters()]
    report = initlab.init(model, seed=0, exclude="0")  # a module: all its parameters
    assert set(report.skipped) == {"0.weight", "0.bias"}
    assert all(torch.equal(a, b) for a, b in zip(before, model[0].parameters(), strict=True))
    by_module = lsuv(nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2)), X, seed=0, exclude="1")
    by_param = lsuv(nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2)), X, seed=0, exclude="1.weight")
    assert [row.name for row in by_module.layers] == [row.name for row in by_param.layers] == ["0"]


def test_seed_none_draws_a_fresh_seed_and_records_it_everywhere():
    for run in (
        lambda s: initlab.init(Untraceable(), seed=s).seed,
        lambda s: lsuv(Untraceable(), X, seed=s).seed,
        lambda s: apply_residual_policy(Untraceable(), "gpt2", std=0.02, seed=s, inputs=X).seed,
    ):
        seed = run(None)
        assert isinstance(seed, int) and run(seed) == seed
