"""``probe(model, inputs)``: one forward and one backward pass, measured layer by layer."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from initlab._validation import check_choice, check_int
from initlab.torch.probe.layers import discover_layers
from initlab.torch.probe.recorder import Recorder, _as_float, finite_std, moments
from initlab.torch.probe.report import Histogram, LayerStats, ProbeReport
from initlab.torch.probe.verdicts import Thresholds
from initlab.torch.runtime import Preserved, call_arguments, model_running

__all__ = ["LOSSES", "MODES", "probe", "random_projection", "sum_of_squares"]

MODES = ("train", "eval")
HISTOGRAM_BINS = 40


def _floating_tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() or value.is_complex() else []
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _floating_tensors(v)]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _floating_tensors(v)]
    return []


def _float_tensor(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _output_tensors(output: Any) -> list[torch.Tensor]:
    tensors = _floating_tensors(output)
    if not tensors:
        raise ValueError(
            f"model output of type {type(output).__name__} holds no floating-point tensor; "
            "allowed: a tensor, or tuples, lists and dicts of tensors. Pass loss_fn= for "
            "anything else."
        )
    return tensors


def random_projection(output: Any, *, seed: int = 0) -> torch.Tensor:
    r"""The default loss: a fixed random projection of every output, so dL/dy is unit noise.

    .. math::  L = \sum_k \langle r_k, y_k \rangle,\qquad r_k \sim \mathcal{N}(0, I)

    over every floating tensor :math:`y_k` of the output (a tensor, or tuples, lists and
    dicts of them), :math:`r_k` drawn in float32 on the CPU from a generator seeded with
    ``seed`` (the same numbers whatever the output's dtype and device). The gradient
    fed back is :math:`r_k` whatever the forward pass produced, so the backward statistics
    measure the backward pass alone (the transposed Jacobians), as in the signal-propagation
    analyses of Glorot and Bengio (2010) and He et al. (2015). A loss built from the outputs
    themselves couples the two: with :func:`sum_of_squares` the gradient is ``2 y``, which
    overflows to inf when the forward pass explodes and underflows to 0 when it vanishes,
    and even under He initialization it correlates with the forward pass (a depth-30 ReLU
    MLP of width 256 shows a first/last gradient ratio near 7 instead of 1).

    >>> y = torch.ones(2, 3, requires_grad=True)
    >>> random_projection(y, seed=0).backward()
    >>> bool(torch.equal(y.grad, torch.randn(2, 3, generator=torch.Generator().manual_seed(0))))
    True
    """
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    total = None
    for t in _output_tensors(output):
        t = _float_tensor(t)
        r = torch.randn(t.shape, generator=generator).to(device=t.device, dtype=t.dtype)
        term = (t * r).sum()
        total = term if total is None else total + term.to(total.device)
    assert total is not None
    return total


def sum_of_squares(output: Any) -> torch.Tensor:
    """The sum of squares of every output tensor, ``L = sum_k sum_i y_k[i]^2`` (grad ``2 y``).

    >>> float(sum_of_squares({"a": torch.ones(2), "b": (torch.full((1,), 3.0), None)}))
    11.0
    """
    total = None
    for t in _output_tensors(output):
        term = _float_tensor(t).abs().pow(2).sum()
        total = term if total is None else total + term.to(total.device)
    assert total is not None
    return total


#: The losses a name selects; any callable works too.
LOSSES = ("random_projection", "sum_of_squares")


def _loss(
    output: Any, target: Any, loss_fn: str | Callable[..., torch.Tensor], seed: int
) -> torch.Tensor:
    if loss_fn == "random_projection" and target is None:
        loss = random_projection(output, seed=seed)
    elif loss_fn == "sum_of_squares" and target is None:
        loss = sum_of_squares(output)
    elif callable(loss_fn):
        loss = loss_fn(output, target) if target is not None else loss_fn(output)
    else:  # a target with the default loss: MSE or cross entropy
        if not isinstance(output, torch.Tensor):
            raise ValueError(
                f"target= needs a model that returns a tensor, got {type(output).__name__}; "
                "allowed: pass loss_fn=(output, target) -> scalar tensor for other outputs."
            )
        if not isinstance(target, torch.Tensor):
            raise TypeError(f"target={type(target).__name__} is not valid; allowed: a tensor.")
        if target.is_floating_point():
            loss = F.mse_loss(output, target)
        else:
            loss = F.cross_entropy(output, target)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shown = type(loss).__name__ if not isinstance(loss, torch.Tensor) else tuple(loss.shape)
        raise ValueError(f"loss_fn returned {shown}; allowed: a scalar tensor.")
    return loss.reshape(())


def _loss_name(loss_fn: str | Callable[..., torch.Tensor], target: Any) -> str:
    if callable(loss_fn):
        return getattr(loss_fn, "__name__", type(loss_fn).__name__)
    if target is not None:
        return "mse" if target.is_floating_point() else "cross_entropy"
    return loss_fn


def _with_grad(value: Any, leaves: list[torch.Tensor], clone: bool = True) -> Any:
    """A floating input as a fresh leaf that requires grad (fed through a copy, so that the
    model may modify it in place; ``clone=False`` feeds the leaf itself, for a forward that
    sets ``requires_grad`` on its input); gradients then reach every layer, frozen or not."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        leaf = value.detach().clone().requires_grad_(True)
        leaves.append(leaf)
        return leaf.clone() if clone else leaf
    return value


def _leaf_error(error: RuntimeError) -> bool:
    return "requires_grad flags of leaf variables" in str(error)


def _seed_forked(seed: int, cuda_devices: list[int]) -> None:
    """Seed dropout's generators inside ``fork_rng``: the CPU one and the model's CUDA
    devices (not ``torch.manual_seed``, which would also reseed devices that were not
    forked)."""
    torch.random.default_generator.manual_seed(seed)
    for index in cuda_devices:
        with torch.cuda.device(index):
            torch.cuda.manual_seed(seed)


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={type(model).__name__} is not valid; allowed: a torch nn.Module.")
    for name, p in model.named_parameters():
        if isinstance(p, nn.parameter.UninitializedParameter):
            raise ValueError(
                f"parameter {name!r} is uninitialized (a lazy module); allowed: a model whose "
                "parameters exist: run one forward pass before probing."
            )
        if p.is_meta:
            raise ValueError(
                f"parameter {name!r} is on the meta device; allowed: a materialized model "
                "(model.to_empty(device=...) and initialize it first)."
            )


#: A float32 sum of squares is exact enough while the root-mean-square stays in this range;
#: outside it (squares near under- or overflow) the scaled :func:`moments` is used instead.
_SAFE_RMS = (1e-15, 1e15)


def _weight_numbers(
    records: list, weight_grads: dict[int, torch.Tensor | None]
) -> dict[int, tuple[float | None, float | None]]:
    """``{id(weight): (weight std, weight-gradient norm)}``: a cheap float32 pass for all,
    with one transfer; the few tensors whose scale is extreme are redone with scaling."""
    tensors: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
    for r in records:
        w = r.info.weight
        if w is not None and w.numel() and id(w) not in tensors:
            g = weight_grads.get(id(w))
            tensors[id(w)] = (w, g if g is not None and g.numel() else None)
    cheap: list[torch.Tensor] = []
    with torch.no_grad():
        for w, g in tensors.values():
            v = _as_float(w)
            mean = v.mean()
            cheap.append(torch.stack([mean, torch.linalg.vector_norm(v - mean)]).cpu())
            norm = torch.linalg.vector_norm(_as_float(g)) if g is not None else mean.new_zeros(())
            cheap.append(norm.reshape(1).cpu())
    values = torch.cat(cheap).tolist() if cheap else []
    out: dict[int, tuple[float | None, float | None]] = {}
    for k, (key, (w, g)) in enumerate(tensors.items()):
        _, centred, g_norm = values[3 * k : 3 * k + 3]
        w_std = centred / math.sqrt(w.numel())
        if not _SAFE_RMS[0] <= w_std <= _SAFE_RMS[1]:  # 0 included: constant or underflow
            w_std = finite_std(moments(_as_float(w.detach())).tolist())[1]
        grad_norm: float | None = None
        if g is not None:
            grad_norm = g_norm
            if not _SAFE_RMS[0] <= g_norm / math.sqrt(g.numel()) <= _SAFE_RMS[1]:
                grad_norm = _norm(moments(_as_float(g.detach())).tolist(), g.numel())
        out[key] = (w_std, grad_norm)
    return out


def _numbers(records: list) -> list[list]:
    """Every scalar the hooks recorded, as Python floats, in one transfer per device."""
    scalars: list[torch.Tensor] = []
    slots: list[list[int | None]] = []

    def put(t: torch.Tensor | None) -> int | None:
        if t is None:
            return None
        scalars.append(t.detach().reshape(-1).to(torch.float64))
        return len(scalars) - 1

    for r in records:
        slots.append(
            [put(r.pre), put(r.act), put(r.dead), put(r.saturated), put(r.symmetric), put(r.grad)]
        )
    by_device: dict[torch.device, list[int]] = {}
    for i, t in enumerate(scalars):
        by_device.setdefault(t.device, []).append(i)
    moved: list[torch.Tensor] = list(scalars)
    for positions in by_device.values():  # one device-to-host copy per device
        host = torch.cat([scalars[i] for i in positions]).cpu()
        for i, part in zip(positions, host.split([scalars[i].numel() for i in positions]),
                           strict=True):  # fmt: skip
            moved[i] = part
    flat = torch.cat(moved).tolist() if moved else []
    offsets = np.cumsum([0] + [int(s.numel()) for s in scalars]).tolist()

    def get(i: int | None) -> list[float] | None:
        return None if i is None else flat[offsets[i] : offsets[i + 1]]

    return [[get(i) for i in row] for row in slots]


def _norm(values: list[float], numel: int) -> float:
    """A tensor's 2-norm from its :func:`moments`: ``sqrt(numel (mean^2 + std^2))``."""
    mean, std = finite_std(values)
    return math.hypot(mean, std) * math.sqrt(numel)


def _stats(
    index: int,
    record: Any,
    values: list,
    weight: tuple[float | None, float | None],
    hists: tuple[Histogram | None, Histogram | None],
) -> LayerStats:
    pre, act, dead, sat, sym, grad = values
    pre_mean, pre_std = finite_std(pre)
    act_mean, act_std = finite_std(act) if act is not None else (pre_mean, pre_std)
    return LayerStats(
        index=index,
        name=record.name,
        kind=record.info.kind,
        shape=record.shape,
        activation=record.activation,
        pre_mean=pre_mean,
        pre_std=pre_std,
        act_mean=act_mean,
        act_std=act_std,
        dead_fraction=None if dead is None else dead[0],
        saturated_fraction=None if sat is None else sat[0],
        symmetric=bool(sym and sym[0]),
        grad_std=None if grad is None else finite_std(grad)[1],
        grad_norm=None if grad is None else _norm(grad, math.prod(record.shape)),
        weight_name=record.info.weight_name,
        weight_std=weight[0],
        weight_grad_norm=weight[1],
        act_hist=hists[0],
        grad_hist=hists[1],
    )


def probe(
    model: nn.Module,
    inputs: torch.Tensor | Sequence[Any] | Mapping[str, Any],
    *,
    target: Any = None,
    loss_fn: str | Callable[..., torch.Tensor] = "random_projection",
    thresholds: Thresholds | None = None,
    mode: str = "train",
    samples: int = 2048,
    seed: int = 0,
    label: str | None = None,
) -> ProbeReport:
    r"""Measure ``model`` on one batch: one forward and one backward pass with hooks.

    Per layer (every module that owns parameters, and ``MultiheadAttention``), in execution
    order: the mean and std of its output (pre-activation) and of the nonlinearity applied to
    it (activation); the fraction of dead units (zero for the whole batch) and of saturated
    values (bounded activations beyond ``thresholds.saturation`` of their range); the std
    and 2-norm of :math:`\partial L/\partial y`; the std of the weight and the norm
    of its gradient; whether all units are identical (symmetric). Over the model: the
    last/first activation std ratio, the first/last gradient norm ratio and a verdict per
    direction (:mod:`initlab.torch.probe.verdicts`).

    ``inputs``: a tensor (``model(x)``), a tuple or list (``model(*inputs)``) or a dict
    (``model(**inputs)``). The loss: a callable ``loss_fn(output, target)`` (or
    ``loss_fn(output)`` without a target); without a target, ``"random_projection"`` (the
    default, :func:`random_projection`: unit-noise gradients into every output tensor, so
    the backward pass is measured on its own) or ``"sum_of_squares"``
    (:func:`sum_of_squares`), both of which take any tensor, tuple, list or dict output; with
    a target and a named loss, MSE for a floating target and cross entropy for class
    indices. ``mode``: ``"train"`` (batch norm
    uses batch statistics, dropout is on) or ``"eval"``. ``samples``: values kept per layer
    for histograms. ``seed``: dropout and sampling. ``label``: a name for the report.

    The model is left exactly as it was: parameters, their ``.grad``, buffers (batch-norm
    running statistics), training flags, hooks and torch's global random state.

    >>> torch.manual_seed(0) and None
    >>> net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
    ...                     nn.Linear(64, 64))
    >>> report = probe(net, torch.randn(128, 64))
    >>> [s.activation for s in report.layers]
    ['relu', 'relu', None]
    >>> report.forward.status, report.backward.status
    ('healthy', 'healthy')
    """
    _check_model(model)
    thresholds = Thresholds() if thresholds is None else thresholds
    if not isinstance(thresholds, Thresholds):
        raise TypeError(
            f"thresholds={thresholds!r} is not valid; allowed: an initlab Thresholds or None."
        )
    check_choice("mode", mode, MODES)
    samples = check_int("samples", samples, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    if not callable(loss_fn):
        check_choice("loss_fn", loss_fn, LOSSES)
    args, kwargs = call_arguments(inputs)
    layers = discover_layers(model)
    if not layers:
        raise ValueError(
            f"model={type(model).__name__} has no layer with parameters to probe; allowed: a "
            "model with at least one module that owns parameters."
        )

    devices = sorted({p.device.index for p in model.parameters() if p.device.type == "cuda"})
    # Training flags, buffers (batch norm statistics move) and slots come back afterwards.
    with Preserved(model, parameters=False), model_running():
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            _seed_forked(seed, devices)
            model.train(mode == "train")
            for clone in (True, False):  # the second try: a forward that flags its input
                leaves: list[torch.Tensor] = []
                call_args = tuple(_with_grad(a, leaves, clone) for a in args)
                call_kwargs = {k: _with_grad(v, leaves, clone) for k, v in kwargs.items()}
                recorder = Recorder(
                    layers, samples=samples, seed=seed, saturation=thresholds.saturation
                )
                try:
                    with recorder.attached(), recorder.watching():
                        output = model(*call_args, **call_kwargs)
                    break
                except RuntimeError as error:
                    if not clone or not _leaf_error(error):
                        raise
                    _seed_forked(seed, devices)
            loss = _loss(output, target, loss_fn, seed)
            params = [p for p in model.parameters() if p.requires_grad]
            sources = params + leaves
            weight_grads: dict[int, torch.Tensor | None] = {}
            if loss.requires_grad and sources:
                grads = torch.autograd.grad(loss, sources, allow_unused=True)
                weight_grads = {id(p): g for p, g in zip(params, grads[: len(params)], strict=True)}
            records = recorder.finish()
            loss_value = float(loss.detach())

    samples_in = [r.act_samples for r in records] + [r.grad_samples for r in records]
    hists = Histogram.many(
        [None if t is None else t.to("cpu", torch.float64).numpy() for t in samples_in],
        bins=HISTOGRAM_BINS,
    )
    n = len(records)
    weights = _weight_numbers(records, weight_grads)
    stats = [
        _stats(
            i + 1,
            record,
            values,
            weights.get(id(record.info.weight), (None, None)),
            (hists[i], hists[n + i]),
        )
        for i, (record, values) in enumerate(zip(records, _numbers(records), strict=True))
    ]
    meta = {
        "mode": mode,
        "seed": seed,
        "samples": samples,
        "loss": _loss_name(loss_fn, target),
        "model": type(model).__name__,
        "torch": torch.__version__,
    }
    return ProbeReport(tuple(stats), thresholds, label, loss_value, meta)
