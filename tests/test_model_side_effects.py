"""Discovery changes nothing: dry runs and failed calls leave every parameter and buffer.

A model's own counter (``self.steps += 1`` in forward), a parameter-free module with a
counter, spectral_norm's ``u`` and ``v`` (updated by every forward in training mode), batch
norm's running statistics: bit-identical after ``init(..., dry_run=True)`` and after a call
that fails, whether discovery traced the model with fx or ran it on example inputs.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.torch.model import InitError, discover


class Counter(nn.Module):
    """Counts its calls in a buffer; a parameter-free step with its own counter."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        self.steps += 1
        return torch.relu(x)


class Net(nn.Module):
    def __init__(self, traceable: bool) -> None:
        super().__init__()
        self.traceable = traceable
        self.a = nn.utils.spectral_norm(nn.Linear(6, 8))
        self.bn = nn.BatchNorm1d(8)
        self.count = Counter()
        self.b = nn.Linear(8, 3)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        h = self.bn(self.a(x))
        if not self.traceable and bool(h.sum() > -1e9):  # data-dependent: fx fails
            h = h * 1.0
        return self.b(F.gelu(self.count(h)))


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    out["<weight attr>"] = model.a.weight.detach().clone()  # spectral_norm's computed weight
    return out


def assert_same(before: dict, model: nn.Module) -> None:
    after = state(model)
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, f"changed: {changed}"


@pytest.mark.parametrize("traceable", [True, False])
def test_dry_run_leaves_counters_spectral_norm_and_running_stats(traceable):
    torch.manual_seed(0)
    model = Net(traceable).train()
    before = state(model)
    report = initlab.init(model, seed=0, dry_run=True, example_inputs=torch.randn(4, 6))
    assert report.discovery.startswith("fx" if traceable else "hooks")
    assert_same(before, model)
    assert model.training and model.a.training


@pytest.mark.parametrize("traceable", [True, False])
def test_a_failed_call_leaves_every_parameter_and_buffer(traceable):
    torch.manual_seed(0)
    model = Net(traceable).train()
    before = state(model)
    with pytest.raises(InitError):  # the override's wrong shape fails validation
        initlab.init(
            model, seed=0, example_inputs=torch.randn(4, 6),
            overrides={"b.weight": lambda t: t[:1]},
        )  # fmt: skip
    assert_same(before, model)


def test_discover_alone_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    for traceable in (True, False):
        model = Net(traceable).train()
        before = state(model)
        discover(model, torch.randn(4, 6))
        assert_same(before, model)


class Rewrites(nn.Module):
    """A forward that writes into its own parameter and replaces a buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("seen", torch.zeros(4))

    def forward(self, x):
        if bool(x.sum() > -1e9):  # untraceable
            self.fc.weight.mul_(0.5)
            self.seen = self.seen + x.mean(0)
        return torch.tanh(self.fc(x))


def test_a_recorded_forward_that_writes_parameters_and_replaces_buffers_is_undone():
    model = Rewrites()
    weight, seen = model.fc.weight.detach().clone(), model.seen
    report = initlab.init(model, seed=0, dry_run=True, example_inputs=torch.ones(2, 4))
    assert report.discovery.startswith("hooks")
    assert torch.equal(model.fc.weight, weight)
    assert model.seen is seen and not seen.any()
