r"""Layer-sequential unit-variance initialization (Mishkin and Matas 2015), in one forward pass.

LSUV pre-initializes every weight orthogonally, then walks the layers in execution order and
multiplies each layer's weight by ``target / std(output)`` until its output std on a batch is
the target. The reference implementation (the ``lsuv`` package) reruns the whole model after
every rescale of every layer: ``O(L^2)`` layer evaluations for ``L`` layers, in registration
order. Here a forward hook rescales each layer *while the batch passes through it*: the layer
computed ``y = A(W) x + b``; with ``W <- alpha W`` its output is ``alpha (y - b) + b``, so
the hook finds ``alpha``, rescales the weight, and hands the rescaled output on. The layers
after it see exactly what they would see in a fresh pass with the final weights, so one pass
leaves every layer at its target.

One pass is exact when each weight is rescaled before anything else has used it in that pass.
When a weight has been used earlier in the pass (a weight tied to an Embedding or another
module that ran first), rescaling it changes an output already consumed: the pass is then
repeated, rescaling only the layers still off target, until a pass rescales no weight that
was used before (at most ``max_passes``). A weight shared by several layers, or a module
called several times, is rescaled once, at its first call; its later calls are measured.
"""

from __future__ import annotations

import math
import secrets
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from initlab._validation import check_int, check_real
from initlab.torch.fill import fill_
from initlab.torch.lsuv.layers import Target, find_targets, preinit_parameters
from initlab.torch.lsuv.report import LSUVLayer, LSUVReport
from initlab.torch.model.anatomy import layer_kind
from initlab.torch.runtime import Preserved, call_arguments, call_model

__all__ = ["lsuv"]


@dataclass(eq=False)
class _Layer:
    """What LSUV learned about one target across passes."""

    target: Target
    calls: int = 0
    std_before: float = math.nan
    std: float = math.nan
    later_stds: list[float] = field(default_factory=list)
    scale: float = 1.0
    iterations: int = 0
    zero: bool = False
    tied_to: str | None = None
    capped: bool = False


@dataclass(eq=False)
class _Pass:
    """One forward pass: who used which parameter, which weights were settled, what changed."""

    correct: bool
    uses: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    settled: dict[int, str] = field(default_factory=dict)
    order: list[_Layer] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)
    layer_calls: int = 0


def _std(y: torch.Tensor) -> float:
    return float(y.std())


class _Engine:
    """The hooks and their shared state for one :func:`lsuv` call (no global state)."""

    def __init__(
        self,
        model: nn.Module,
        targets: list[Target],
        *,
        target_std: float,
        tol: float,
        max_iter: int,
        bias_correction: bool,
    ) -> None:
        self.model = model
        self.target_std = target_std
        self.tol = tol
        self.max_iter = max_iter
        self.bias_correction = bias_correction
        self.layers = [_Layer(t) for t in targets]
        self.current: _Pass | None = None
        tracked: dict[int, torch.Tensor] = {}
        for t in targets:
            tracked[id(t.weight)] = t.weight
            if t.bias is not None:
                tracked[id(t.bias)] = t.bias
        self.tracked = tracked

    # ---- hooks --------------------------------------------------------------------------

    def _used_by(self, module: nn.Module) -> list[int]:
        """Tracked parameters a call of ``module`` reads."""
        kind = layer_kind(module)
        # An atomic layer (attention) applies its children's weights inside its own call.
        params = module.parameters(recurse=kind is not None and kind.atomic)
        return [id(p) for p in params if id(p) in self.tracked]

    def install(self) -> list[torch.utils.hooks.RemovableHandle]:
        handles = []
        for name, module in self.model.named_modules():
            used = self._used_by(module)
            if used:
                handles.append(module.register_forward_pre_hook(self._pre_hook(name, used)))
        for layer in self.layers:
            hook = self._hook(layer)
            handles.append(layer.target.module.register_forward_hook(hook, prepend=True))
        return handles

    def _pre_hook(self, name: str, used: list[int]):
        def pre_hook(module: nn.Module, args: Any) -> None:
            if self.current is not None:
                for pid in used:
                    self.current.uses[pid].append(name or "<model>")

        return pre_hook

    def _hook(self, layer: _Layer):
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            if self.current is None:
                return None
            return self._visit(self.current, layer, output)

        return hook

    # ---- the work of one call -------------------------------------------------------------

    def _visit(self, p: _Pass, layer: _Layer, output: Any) -> Any:
        target = layer.target
        p.layer_calls += 1
        layer.calls += 1
        if layer.calls == 1:
            p.order.append(layer)
        y = target.output(output)
        if y is None:
            p.inconsistent.append(f"{target.name}: output of type {type(output).__name__}")
            return None
        y = y.detach()
        if y.numel() < 2:
            raise ValueError(
                f"layer {target.name!r} produced {y.numel()} value(s); LSUV needs a batch "
                "whose outputs have a spread (pass more than one sample)."
            )
        yf = y.float()
        s = _std(yf)
        if not math.isfinite(s):
            raise ValueError(
                f"layer {target.name!r}: output std is {s} on this batch; LSUV needs finite "
                "activations (check the inputs and the layers before it)."
            )
        wid = id(target.weight)
        if wid in p.settled:  # a later use of a weight already settled in this pass
            if layer.calls == 1:
                layer.tied_to = p.settled[wid] if p.settled[wid] != target.name else None
                layer.std = s
                if math.isnan(layer.std_before):
                    layer.std_before = s
            else:
                layer.later_stds.append(s)
            return None
        p.settled[wid] = target.name
        layer.later_stds = []
        if math.isnan(layer.std_before):
            layer.std_before = s
        layer.std = s
        if not p.correct or abs(s - self.target_std) <= self.tol:
            return None
        if s == 0.0:
            layer.zero = True
            return None
        new = self._rescale(p, layer, yf)
        return target.replace(output, new.to(y.dtype))

    def _rescale(self, p: _Pass, layer: _Layer, yf: torch.Tensor) -> torch.Tensor:
        target, t = layer.target, self.target_std
        bias = None if target.bias is None else target.bias.detach().float()
        u = yf if bias is None else yf - target.bias_view(yf, bias)
        new_bias = None
        if self.bias_correction and bias is not None:
            # b <- -mean_c(u): every output channel centred; then W and b scale together.
            mean = target.channel_mean(u)
            centred = u - target.bias_view(u, mean)
            sc = _std(centred)
            if sc == 0.0:
                layer.zero = True
                return yf
            alpha, iterations = t / sc, 1
            new = alpha * centred
            new_bias = -alpha * mean
        else:
            b = 0.0 if bias is None else target.bias_view(u, bias)
            alpha, iterations, new, s = 1.0, 0, yf, _std(yf)
            # Aim at the target (to a tenth of tol): exact in one step when the bias is zero.
            while abs(s - t) > 0.1 * self.tol and iterations < self.max_iter and s > 0.0:
                alpha *= t / s
                iterations += 1
                new = alpha * u + b
                s = _std(new)
            layer.capped = abs(s - t) > self.tol
        with torch.no_grad():
            target.weight.mul_(alpha)
            if new_bias is not None:
                target.bias.copy_(new_bias.to(target.bias.dtype))
        layer.scale *= alpha
        layer.iterations += iterations
        layer.std = _std(new)
        p.changed.append(target.name)
        earlier = list(p.uses[id(target.weight)][:-1])
        if new_bias is not None:
            earlier += p.uses[id(target.bias)][:-1]
        if earlier:
            used = ", ".join(sorted(set(earlier)))
            p.inconsistent.append(
                f"{target.name}: its weight {target.weight_name!r} was used earlier in the "
                f"pass (by {used}) and then rescaled"
            )
        return new

    def run(self, inputs: Any, *, correct: bool) -> _Pass:
        p = _Pass(correct=correct)
        for layer in self.layers:
            layer.calls = 0
        self.current = p
        try:
            call_model(self.model, inputs)
        finally:
            self.current = None
        return p

    # ---- the result ---------------------------------------------------------------------

    def rows(self, order: list[_Layer]) -> tuple[LSUVLayer, ...]:
        seen = {id(layer) for layer in order}
        ordered = order + [layer for layer in self.layers if id(layer) not in seen]
        return tuple(self._row(layer) for layer in ordered)

    def _row(self, layer: _Layer) -> LSUVLayer:
        t, tol = self.target_std, self.tol
        notes = []
        if layer.calls == 0:
            status = "not reached"
            notes.append("no call in the forward pass")
        elif layer.zero:
            status = "zero output"
        elif layer.tied_to is not None:
            status = "tied"
            notes.append(f"weight rescaled at {layer.tied_to}")
            if abs(layer.std - t) > tol:
                notes.append("std off target here: one weight, one scale")
        elif abs(layer.std - t) > tol:
            status = "off target"
            if layer.capped:
                notes.append(f"not within tol after max_iter={self.max_iter} steps")
        else:
            status = "ok"
        if layer.later_stds:
            stds = ", ".join(f"{s:.3g}" for s in layer.later_stds)
            notes.append(f"{layer.calls} calls, rescaled at the first; later stds {stds}")
        return LSUVLayer(
            name=layer.target.name,
            kind=layer.target.kind,
            weight=layer.target.weight_name,
            calls=layer.calls,
            std_before=layer.std_before,
            std=layer.std,
            scale=layer.scale,
            iterations=layer.iterations,
            status=status,
            note="; ".join(notes),
        )


def _touched(targets: list[Target]) -> list[torch.Tensor]:
    """Every parameter LSUV may write, once each (what a failure must restore): the
    parameters of each target layer (attention's q/k/v and out_proj included)."""
    found: dict[int, torch.Tensor] = {}
    for t in targets:
        for p in t.module.parameters():
            found.setdefault(id(p), p)
    return list(found.values())


def _rescale(
    engine: _Engine,
    model: nn.Module,
    targets: list[Target],
    inputs: Any,
    seed: int | None,
    orthogonal_first: bool,
    verify: bool,
    max_passes: int,
) -> tuple[int, int, list[str], Any]:
    """Pre-initialize, then the rescaling passes (in eval mode, hooks removed afterwards)."""
    handles: list[Any] = []
    try:
        with torch.no_grad():
            if orthogonal_first:
                weights, biases = preinit_parameters(model, targets)
                for name, weight in weights:
                    fill_(weight, "orthogonal", seed=seed, name=name)
                for bias in biases:
                    bias.zero_()
            model.eval()
            handles = engine.install()
            return _run_passes(engine, inputs, verify, max_passes)
    finally:
        for handle in handles:
            handle.remove()


def lsuv(
    model: nn.Module,
    inputs: Any,
    *,
    target_std: float = 1.0,
    tol: float = 0.1,
    max_iter: int = 10,
    orthogonal_first: bool = True,
    bias_correction: bool = False,
    seed: int | None = None,
    exclude: Sequence[str] = (),
    verify: bool = False,
    max_passes: int = 10,
) -> LSUVReport:
    r"""Layer-sequential unit-variance initialization (Mishkin and Matas 2015), in place.

    1. ``orthogonal_first``: every rescalable layer's weight gets an orthogonal matrix
       (:class:`~initlab.schemes.Orthogonal`, stream keyed by the parameter's name and
       ``seed``; MultiheadAttention's q, k and v blocks one each) and its bias zero.
       ``seed=None`` draws a fresh seed, recorded in the report (as ``initlab.init`` does).
    2. In execution order, each layer's weight ``W`` is rescaled until the std of the layer's
       output on ``inputs`` is ``target_std`` within ``tol``:

       .. math::  W \leftarrow \alpha W,\qquad
                  \alpha \leftarrow \alpha \cdot \frac{\mathrm{target\_std}}
                  {\mathrm{std}(\alpha (y - b) + b)},

       at most ``max_iter`` steps (one when the bias is zero), inside the forward pass that
       computes ``y``. With ``bias_correction`` the bias is set so that every output channel
       has mean zero on the batch, ``b = -\alpha\,\mathrm{mean}_c(y - b)``, and ``W`` and ``b``
       are scaled together.

    Rescalable layers: Linear, Conv1d/2d/3d, ConvTranspose1d/2d/3d and MultiheadAttention
    (through ``out_proj``, whose hooks never fire). ``exclude`` takes glob patterns of module
    names (or of their weights' parameter names) to leave alone. ``inputs`` follows
    initlab's one rule (as in ``probe``): a tensor is ``model(x)``, a tuple or list
    ``model(*inputs)``, a dict ``model(**inputs)``. The model
    runs in eval mode under ``no_grad`` on the inputs' device as given (nothing is moved);
    every module's train/eval flag and every buffer (a forward's own counters) come back
    afterwards. If anything raises, every parameter keeps its old value.

    ``verify=True`` repeats passes until one rescales nothing: it catches weight uses no hook
    can see (a weight read functionally before its layer runs), at the cost of one more pass.

    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
    ...                       nn.Linear(32, 4))
    >>> x = torch.randn(256, 16, generator=torch.Generator().manual_seed(0))
    >>> report = lsuv(model, x, seed=0)
    >>> report.passes, report.converged
    (1, True)
    >>> [round(std, 3) for std in report.stds().values()]
    [1.0, 1.0, 1.0]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={type(model).__name__} is not valid; allowed: a torch.nn.Module.")
    target_std = check_real("target_std", target_std, minimum=0.0, strict_minimum=True)
    tol = check_real("tol", tol, minimum=0.0, strict_minimum=True)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    max_passes = check_int("max_passes", max_passes, minimum=1)
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    if isinstance(exclude, str):
        exclude = (exclude,)
    if not all(isinstance(p, str) for p in exclude):
        raise TypeError(f"exclude={exclude!r} is not valid; allowed: a sequence of glob strings.")
    for flag, value in (
        ("orthogonal_first", orthogonal_first),
        ("bias_correction", bias_correction),
        ("verify", verify),
    ):
        if not isinstance(value, bool):
            raise TypeError(f"{flag}={value!r} is not valid; allowed: True or False.")
    call_arguments(inputs)  # a clear TypeError for inputs that cannot be passed

    # ---- issue 14: LSUV rescales by statistics of a forward pass; not on sharded models ----
    from initlab.torch.distributed import is_dtensor

    sharded = [n for n, p in model.named_parameters() if is_dtensor(p)]
    if sharded:
        raise NotImplementedError(
            f"lsuv: parameter {sharded[0]!r} (and {len(sharded) - 1} more) is a DTensor; LSUV "
            "on a sharded model (FSDP2, tensor parallel) is not implemented: its per-layer "
            "statistics would need a reduction across ranks. Use initlab.init, which writes "
            "each rank's shard exactly, or run lsuv on one process and load the weights."
        )
    # ---- end issue 14 ----------------------------------------------------------------------
    targets = find_targets(model, exclude)
    if not targets:
        raise ValueError(
            f"model {type(model).__name__} has no layer LSUV can rescale (Linear, Conv, "
            "ConvTranspose, MultiheadAttention) outside exclude; nothing to do."
        )
    touched = _touched(targets)
    meta = [t.name for t in targets if t.weight.is_meta]
    if meta:
        raise ValueError(
            f"layers {meta} are on the meta device; LSUV needs real weights and data "
            "(materialize the model first, e.g. with model.to_empty(device=...))."
        )
    if orthogonal_first and seed is None:
        seed = secrets.randbelow(2**32)  # a fresh seed, recorded in the report

    engine = _Engine(
        model,
        targets,
        target_std=target_std,
        tol=tol,
        max_iter=max_iter,
        bias_correction=bias_correction,
    )
    # Buffers, slots and train/eval flags come back always; the parameters LSUV writes only
    # if anything raises (KeyboardInterrupt included).
    with (
        Preserved(model, parameters=False),
        Preserved(model, restore="on_error", parameters=False, buffers=False) as written,
    ):
        for p in touched:
            written.save(p)
        passes, calls, reasons, first = _rescale(engine, model, targets, inputs, seed,
                                                 orthogonal_first, verify, max_passes)  # fmt: skip

    report = LSUVReport(
        layers=engine.rows(first.order),
        passes=passes,
        layer_calls=calls,
        target_std=target_std,
        tol=tol,
        seed=seed if orthogonal_first else None,
        orthogonal_first=orthogonal_first,
        bias_correction=bias_correction,
        reasons=tuple(reasons),
    )
    _warn(report)
    return report


def _run_passes(
    engine: _Engine, inputs: Any, verify: bool, max_passes: int
) -> tuple[int, int, list[str], _Pass]:
    """Correcting passes until one is consistent (and, with verify, changes nothing)."""
    reasons: list[str] = []
    passes = calls = 0
    first: _Pass | None = None
    while True:
        p = engine.run(inputs, correct=True)
        passes += 1
        calls += p.layer_calls
        first = first or p
        if passes > 1 and p.changed and not p.inconsistent and verify:
            reasons.append(f"pass {passes} rescaled {', '.join(p.changed)} again")
        reasons.extend(f"pass {passes}: {r}" for r in p.inconsistent)
        settled = not p.inconsistent and not (verify and p.changed)
        if settled:
            break
        if passes >= max_passes:
            if p.inconsistent:  # the last pass's stds are stale: measure them once more
                p = engine.run(inputs, correct=False)
                passes += 1
                calls += p.layer_calls
            break
    return passes, calls, reasons, first


def _warn(report: LSUVReport) -> None:
    bad = [f"{layer.name} ({layer.status})" for layer in report.layers if layer.status not in
           ("ok", "tied")]  # fmt: skip
    if bad:
        warnings.warn(
            f"lsuv: {len(bad)} layer(s) not at target std {report.target_std:g} +- "
            f"{report.tol:g}: {', '.join(bad)}. See the report's status column.",
            RuntimeWarning,
            stacklevel=3,
        )
