"""``init(..., residual=...)`` is one transaction: fault injection at every in-place write.

A RuntimeError or a KeyboardInterrupt raised at each in-place write of
``init(model, residual="fixup", atomic="snapshot")`` (every block the stream fills, every
tensor method that writes in place, the residual policy's scalings) leaves every parameter and
buffer bit-identical, and a model on the meta device on the meta device.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

import initlab
from initlab.torch.model import InitError, api


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


class ResMLP(nn.Module):
    """4 residual blocks (20 parameters), a batch norm with buffers, a classifier."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.inp = nn.Linear(6, width)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(4)])
        self.bn = nn.BatchNorm1d(width)
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.blocks(self.inp(x)))))


class Fault(Exception):
    pass


class Injector(TorchFunctionMode):
    """Counts in-place writes (tensor methods ending in ``_``, ``out=``) and raises at one."""

    def __init__(self, at: int | None, error: type[BaseException]) -> None:
        super().__init__()
        self.at, self.error, self.count = at, error, 0

    def hit(self) -> None:
        self.count += 1
        if self.count == self.at:
            raise self.error("injected")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if (name.endswith("_") and not name.startswith("_")) or "out" in kwargs:
            self.hit()
        return func(*args, **kwargs)


def run(model: nn.Module, injector: Injector, monkeypatch) -> None:
    fill = api.fill_

    def counted_fill(*args, **kwargs):  # the kernels write through NumPy views
        injector.hit()
        return fill(*args, **kwargs)

    monkeypatch.setattr(api, "fill_", counted_fill)
    with injector:
        initlab.init(model, seed=3, residual="fixup", atomic="snapshot", measure=False)


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}


def writes(monkeypatch) -> int:
    injector = Injector(None, RuntimeError)
    run(ResMLP(), injector, monkeypatch)
    return injector.count


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_any_write_that_fails_leaves_every_parameter_and_buffer(error, monkeypatch):
    total = writes(monkeypatch)
    assert total >= 20 + 8  # every block, then the residual scalings
    torch.manual_seed(0)
    model = ResMLP()
    model.bn.running_mean.normal_()
    before = state(model)
    for at in range(1, total + 1):
        expected = KeyboardInterrupt if error is KeyboardInterrupt else InitError
        with pytest.raises(expected):
            run(model, Injector(at, error), monkeypatch)
        after = state(model)
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        assert not changed, f"fault at write {at}/{total}: changed {changed}"


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_meta_model_stays_on_meta_whatever_write_fails(error, monkeypatch):
    total = writes(monkeypatch)
    for at in range(1, total + 1, 3):
        with torch.device("meta"):
            model = ResMLP()
        tensors = {k: v for k, v in model.state_dict(keep_vars=True).items()}
        with pytest.raises(KeyboardInterrupt if error is KeyboardInterrupt else InitError):
            run(model, Injector(at, error), monkeypatch)
        after = model.state_dict(keep_vars=True)
        assert all(t.is_meta for t in after.values()), f"fault at write {at}"
        assert all(after[k] is tensors[k] for k in tensors)


def test_without_faults_the_transaction_writes_base_and_residual(monkeypatch):
    model = ResMLP()
    run(model, Injector(None, RuntimeError), monkeypatch)
    reference = ResMLP()
    initlab.init(reference, seed=3, residual="fixup", measure=False)
    assert all(
        torch.equal(a, b)
        for a, b in zip(state(model).values(), state(reference).values(), strict=True)
    )
    assert not model.blocks[0].fc2.weight.any()  # fixup: the last layer of a branch is zero
