r"""The instrument: hooks that measure every layer during one forward and one backward pass.

Per layer call (in execution order) the recorder keeps, as small tensors on the layer's
device so that nothing synchronizes until the pass is over:

* from a forward hook on the layer: the mean and std of its output :math:`y` (the
  pre-activation), whether all its units are identical, and a sample of its values;
* from a :class:`~torch.overrides.TorchFunctionMode` watching torch calls: when a
  nonlinearity (:mod:`.activations`) is applied to :math:`y` itself, the mean and std of the
  activation :math:`a = f(y)`, the fraction of dead units (zero for every sample and
  position of the batch), the fraction of saturated values for a bounded :math:`f`, and a
  sample of :math:`a`;
* from a gradient hook on :math:`y`: the mean and std (hence the 2-norm) of
  :math:`\partial L / \partial y` and a sample of it. Hooks registered before an in-place
  activation still receive the gradient of the pre-activation.

All statistics are over every entry of the tensor (``std`` is the population std). Samples
are drawn with replacement at indices from a seeded generator: deterministic and cheap.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from initlab.torch.probe.activations import ActivationSpec, activation_spec
from initlab.torch.probe.layers import LayerInfo, weights_identical

__all__ = ["Recorder", "first_tensor"]

#: Units are identical when they differ by at most this fraction of the largest |value|.
SYMMETRY_RTOL = 1e-6


@contextmanager
def _quiet() -> Iterator[None]:
    """No autograd, and no torch-function dispatch (our own statistics are not the model's
    calls, and skipping the mode keeps the hooks cheap)."""
    with torch.no_grad(), _DISABLE_TORCH_FUNCTION():
        yield


#: torch's switch that turns __torch_function__ dispatch off (modes included); a no-op
#: fallback keeps the probe working, only slower, should torch ever rename it.
_DISABLE_TORCH_FUNCTION = getattr(torch._C, "DisableTorchFunction", nullcontext)


def first_tensor(output: Any) -> torch.Tensor | None:
    """The first tensor in a module's output (a tensor, or the first in a tuple or list).

    >>> first_tensor((None, torch.ones(2))).shape
    torch.Size([2])
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def _as_float(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def moments(v: torch.Tensor) -> torch.Tensor:
    """``[mean, std, max |v|]`` over every entry of ``v`` (population std), safe from
    under- and overflow.

    Two passes over ``v / s`` with ``s = max |v|``, then scaled back: float32 tensors whose
    values are near 1e-30 or 1e30 (vanishing or exploding signals) keep exact statistics
    where a plain sum of squares would give 0 or inf. With a non-finite entry the mean and
    std are NaN and ``max |v|`` says why (:func:`finite_std` turns that into inf).

    >>> [f"{x:.3g}" for x in moments(torch.tensor([1e-30, 3e-30])).tolist()]
    ['2e-30', '1e-30', '3e-30']
    >>> [f"{x:.3g}" for x in moments(torch.tensor([1e-40, 3e-40])).tolist()]  # subnormal
    ['2e-40', '1e-40', '3e-40']
    """
    lo, hi = torch.aminmax(v)
    largest = torch.maximum(hi, -lo)
    scale = largest.clamp(min=torch.finfo(v.dtype).tiny)
    u = v / scale
    mean = u.mean()
    std = torch.linalg.vector_norm(u.sub_(mean)) / math.sqrt(max(v.numel(), 1))
    return torch.stack([mean * scale, std * scale, largest])


def finite_std(values: list[float]) -> tuple[float, float]:
    """``(mean, std)`` from :func:`moments` output; the std is inf when an entry was not finite.

    >>> finite_std([float("nan"), float("nan"), float("inf")])
    (nan, inf)
    """
    mean, std, scale = values
    if not math.isfinite(scale):
        return mean, math.inf
    return mean, std


def dead_fraction(a: torch.Tensor, axis: int, *, nonnegative: bool = False) -> torch.Tensor:
    """Fraction of units (slices along ``axis``) that are exactly zero everywhere.

    ``nonnegative``: ``a`` has no negative values (a ReLU output), so its largest value
    says whether a unit is all zero and no ``abs`` pass is needed.

    >>> a = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    >>> round(float(dead_fraction(a, 1)), 6)
    0.333333
    """
    if a.ndim == 0:
        return a.eq(0).float()
    other = tuple(d for d in range(a.ndim) if d != axis)
    magnitude = a if nonnegative else a.abs()
    largest = magnitude.amax(dim=other) if other else magnitude  # amax: far faster than any()
    return largest.eq(0).float().mean()


def saturated_fraction(a: torch.Tensor, low: float, high: float, level: float) -> torch.Tensor:
    """Fraction of values at least ``level`` of the half-range away from the range's centre.

    >>> float(saturated_fraction(torch.tensor([0.995, 0.5, -1.0, 0.0]), -1.0, 1.0, 0.99))
    0.5
    """
    centre, half = (low + high) / 2.0, (high - low) / 2.0
    return ((a - centre).abs() >= level * half).float().mean()


def units_identical(y: torch.Tensor, axis: int) -> torch.Tensor:
    """Whether, for every sample and position, all units along ``axis`` have one value.

    >>> bool(units_identical(torch.zeros(4, 3), 1)), bool(units_identical(torch.eye(3), 1))
    (True, False)
    """
    spread = (y - y.narrow(axis, 0, 1)).abs().amax()
    return spread <= SYMMETRY_RTOL * y.abs().amax()


@dataclass(eq=False)
class Record:
    """What one call of one layer measured (tensors until :meth:`Recorder.finish`)."""

    info: LayerInfo
    name: str
    shape: tuple[int, ...]
    unit_axis: int
    output: torch.Tensor | None
    version: int
    pre: torch.Tensor
    symmetric: torch.Tensor | None = None
    activation: str | None = None
    act: torch.Tensor | None = None
    dead: torch.Tensor | None = None
    saturated: torch.Tensor | None = None
    act_samples: torch.Tensor | None = None
    grad: torch.Tensor | None = None
    grad_samples: torch.Tensor | None = None


class _Watch(TorchFunctionMode):
    """Sees every torch call of the forward pass; reports nonlinearities to the recorder."""

    def __init__(self, on_call: Callable[[ActivationSpec, tuple, dict, Any], None]) -> None:
        super().__init__()
        self._on_call = on_call

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        spec = activation_spec(func)
        if spec is not None:
            self._on_call(spec, args, kwargs, result)
        return result


class Recorder:
    """Hooks for one probe: register with :meth:`attached`, run forward inside :meth:`watching`,
    run backward, then :meth:`finish` turns the tensors into Python numbers.

    ``samples``: values kept per layer and direction for histograms (0: none). ``seed``: the
    sample indices. ``saturation``: the saturation level (fraction of the half-range).
    """

    def __init__(
        self, layers: list[LayerInfo], *, samples: int, seed: int, saturation: float
    ) -> None:
        self.layers = layers
        self.samples = samples
        self.saturation = saturation
        self.records: list[Record] = []
        self._by_output: dict[int, Record] = {}
        self._calls: Counter[str] = Counter()
        self._generator = torch.Generator().manual_seed(seed)
        self._indices: dict[tuple[int, torch.device], torch.Tensor] = {}
        self._weights_identical = {id(info): weights_identical(info) for info in layers}

    # -- registration ------------------------------------------------------------------
    @contextmanager
    def attached(self) -> Iterator[Recorder]:
        """Forward hooks on every layer, removed on exit (whatever happens)."""
        handles = [
            info.module.register_forward_hook(partial(self._on_layer, info)) for info in self.layers
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    @contextmanager
    def watching(self) -> Iterator[Recorder]:
        """Watch torch calls for nonlinearities applied to layer outputs (forward pass only)."""
        with _Watch(self._on_activation):
            yield self

    # -- measurements ------------------------------------------------------------------
    def _sample(self, t: torch.Tensor) -> torch.Tensor | None:
        if self.samples <= 0:
            return None
        flat = t.reshape(-1)
        n = flat.numel()
        if n <= self.samples:
            return _as_float(flat).clone()
        key = (n, flat.device)
        index = self._indices.get(key)
        if index is None:
            index = torch.randint(n, (self.samples,), generator=self._generator)
            index = self._indices[key] = index.to(flat.device)
        return _as_float(flat[index])

    def _on_layer(self, info: LayerInfo, module: nn.Module, args: Any, output: Any) -> None:
        y = first_tensor(output)
        if y is None or not y.is_floating_point() or y.numel() == 0:
            return
        self._calls[info.name] += 1
        calls = self._calls[info.name]
        name = info.name if calls == 1 else f"{info.name}#{calls}"
        axis = info.unit_axis(y)
        with _quiet():
            v = _as_float(y)
            symmetric = None
            if self._weights_identical[id(info)] is not False and v.ndim and v.shape[axis] > 1:
                symmetric = units_identical(v, axis)
            record = Record(
                info=info,
                name=name,
                shape=tuple(y.shape),
                unit_axis=axis,
                output=y,
                version=y._version,
                pre=moments(v),
                symmetric=symmetric,
                act_samples=self._sample(v),
            )
            if y.requires_grad:
                y.register_hook(partial(self._on_grad, record))
        self.records.append(record)
        self._by_output[id(y)] = record

    def _on_activation(self, spec: ActivationSpec, args: tuple, kwargs: dict, result: Any) -> None:
        if not args or not isinstance(args[0], torch.Tensor):
            return
        record = self._by_output.get(id(args[0]))
        if record is None or record.output is not args[0] or record.activation is not None:
            return
        if not isinstance(result, torch.Tensor) or result.shape != args[0].shape:
            return
        with _quiet():
            a = _as_float(result)
            record.act = moments(a)
            record.dead = dead_fraction(a, record.unit_axis, nonnegative=spec.nonnegative)
            bounds = spec.range_for(args, kwargs)
            if bounds is not None:
                record.saturated = saturated_fraction(a, *bounds, self.saturation)
            record.act_samples = self._sample(a)
        record.activation = spec.name

    def _on_grad(self, record: Record, grad: torch.Tensor) -> None:
        with _quiet():
            g = _as_float(grad)
            record.grad = moments(g)
            record.grad_samples = self._sample(g)

    # -- results -----------------------------------------------------------------------
    def finish(self) -> list[Record]:
        """Complete the records (dead units of layers with no nonlinearity); drop references.

        A layer whose output was modified in place by something other than a recognised
        nonlinearity has no dead-unit fraction (``None``): its output is no longer what the
        layer produced.
        """
        with torch.no_grad():
            for record in self.records:
                y = record.output
                if record.activation is None and y is not None and y._version == record.version:
                    record.dead = dead_fraction(_as_float(y), record.unit_axis)
                record.output = None
        self._by_output.clear()
        return self.records
