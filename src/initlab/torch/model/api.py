r"""``initlab.init``: initialize a whole PyTorch model in one call, and say what was done.

Three passes, so that a call either initializes every parameter it should or changes nothing:

1. **plan**: discover what follows each layer, split parameters into blocks (attention q/k/v,
   recurrent gates), choose each block's scheme and fans;
2. **validate**: check every block (shape, fans, dtype, overrides; a callable override runs
   here on a scratch tensor) before anything is written; a failure raises :class:`InitError`
   naming the parameter and the reason, with every parameter untouched;
3. **write**: fill each block from initlab's random stream ``(seed, block name)``
   (:func:`initlab.torch.fill.fill_`), so that a parameter's values depend on the seed and its
   name only, never on which other parameters exist or the order they are visited in.

After validation nothing foreseeable can fail; for the unforeseeable (out of memory, an
interrupt) ``atomic="snapshot"`` keeps a host copy of each parameter before overwriting it and
restores all of them on any error, at the cost of one model copy in host memory. The default,
``atomic="validate"``, never holds a second copy. A model on the meta device is materialized
(only its meta tensors, on ``device``) and initialized in place: one copy, and on failure it is
put back on the meta device.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from rich.progress import Progress
from torch import nn

from initlab.fans import Fans, compute_fans
from initlab.rng import Moments
from initlab.schemes import Constant, Orthogonal, Scheme
from initlab.torch.distributed import (
    META_DTENSOR,
    is_dtensor,
    local_region,
    unsupported_reason,
    write_block_,
)
from initlab.torch.fill import fill_
from initlab.torch.finite import check_fill, check_values
from initlab.torch.model.conventions import apply_norm_policy
from initlab.torch.model.discovery import Discovery, LayerLink, discover
from initlab.torch.model.fake import module_order_warning
from initlab.torch.model.known import embedding_scheme, normalized_next
from initlab.torch.model.layers import BlockSpec, Context, blocks_for
from initlab.torch.model.options import (
    ATOMIC_MODES,
    BIAS_POLICIES,
    CUSTOM_POLICIES,
    InitOptions,
    label,
)
from initlab.torch.model.parametrized import layer_context, link_weight_norms
from initlab.torch.model.report import InitReport, ParamRow
from initlab.torch.model.rules import (
    ONES,
    RECURRENT,
    ZEROS,
    Choice,
    bias_scheme,
    effective_gain,
    weight_choice,
    with_mode,
)
from initlab.torch.residual import plan_residual_policy, residual_option, write_residual_actions
from initlab.torch.runtime import Preserved

__all__ = ["ATOMIC_MODES", "BIAS_POLICIES", "CUSTOM_POLICIES", "InitError", "InitWarning", "init"]
_WEIGHT_KINDS = ("weight", "recurrent", "embedding")
_PROGRESS_ELEMENTS = 50_000_000


class InitError(ValueError):
    """A parameter could not be initialized; ``failures`` lists ``(parameter, reason)``.

    Raised before anything is written (or after everything written is restored), so the
    model is exactly as it was.
    """

    def __init__(self, failures: list[tuple[str, str]], note: str = "") -> None:
        self.failures = list(failures)
        self.parameter, self.reason = self.failures[0]
        shown = "; ".join(f"parameter {p!r}: {r.rstrip('.')}" for p, r in self.failures[:5])
        more = f" (and {len(self.failures) - 5} more)" if len(self.failures) > 5 else ""
        tail = note or "No parameter was changed."
        super().__init__(f"initlab.init failed: {shown}{more}. {tail}")


class InitWarning(UserWarning):
    """Something in an initialization that deserves attention (symmetric layers, buffers)."""


# --------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------


@dataclass
class _Block:
    spec: BlockSpec
    shape: tuple[int, ...]
    choice: Choice | None
    stream: str
    reason: str = ""
    filler: Callable[[torch.Tensor], Any] | None = None
    values: torch.Tensor | None = None
    fans: Fans | None = None
    # what the fill wrote (count, sums from the kernels) and the parameter's version after it
    written: tuple[Moments, int] | None = None


@dataclass
class _ParamPlan:
    name: str
    aliases: tuple[str, ...]
    param: nn.Parameter
    path: str
    module: nn.Module
    blocks: list[_Block] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return any(b.choice is not None or b.filler is not None for b in self.blocks)


def _block_shape(shape: tuple[int, ...], rows: tuple[int, int] | None) -> tuple[int, ...]:
    if rows is None:
        return shape
    return (rows[1] - rows[0], *shape[1:])


def _auto(spec: BlockSpec, mode: str, distribution: str) -> Choice:
    if spec.kind == "recurrent":
        return Choice(RECURRENT, "recurrent", RECURRENT.gain)
    if spec.kind == "embedding":  # issue 11: std 1/sqrt(d), see initlab.torch.model.known
        return Choice(embedding_scheme(distribution), "embedding", 1.0)
    return weight_choice(spec.known_activation, mode, distribution)


def _choose(
    spec: BlockSpec,
    model_scheme: Scheme | None,
    override: Any,
    settings: dict[str, Any],
) -> tuple[Choice | None, str, Callable | None]:
    """(choice, skip reason, callable filler) for one block."""
    if override is not None:
        pattern, value = override
        if value == "keep":
            return None, f"override {pattern!r}: keep", None
        if isinstance(value, Scheme):
            return Choice(value, "override", effective_gain(value)), "", None
        if callable(value) and value != "auto":
            return None, "", value
        # "auto": the rule for this block, whatever the model-wide scheme
        model_scheme = None
    kind = spec.kind
    if kind == "skip":
        return None, spec.note, None
    mode = settings["mode"] or "fan_in"
    distribution = settings["distribution"] or "normal"
    if kind in _WEIGHT_KINDS:
        if model_scheme is None:
            if settings["mode"] is None and normalized_next(spec):  # issue 11
                mode = "fan_out"
            return _auto(spec, mode, distribution), "", None
        scheme = with_mode(model_scheme, settings["mode"], settings["distribution"])
        return Choice(scheme, "model-wide", effective_gain(scheme)), "", None
    if kind == "bias":
        scheme = bias_scheme(settings["bias"], spec.fans)
        if scheme is None:
            return None, "bias='keep'", None
        return Choice(scheme, "bias", None), "", None
    if kind == "norm_weight":
        return Choice(ONES, "norm", None), "", None
    if kind == "norm_bias":
        return Choice(ZEROS, "norm", None), "", None
    if kind == "prelu":
        slope = spec.value if spec.value is not None else 0.25
        return Choice(Constant(slope), "prelu", None), "", None
    raise AssertionError(kind)


def _match(patterns: Iterable[str], names: Iterable[str]) -> str | None:
    names = tuple(names)
    for pattern in patterns:
        if any(fnmatch.fnmatchcase(n, pattern) for n in names):
            return pattern
    return None


def _plan(
    model: nn.Module,
    found: Discovery,
    model_scheme: Scheme | None,
    overrides: dict[str, Any],
    exclude: tuple[str, ...],
    settings: dict[str, Any],
) -> tuple[list[_ParamPlan], list[tuple[str, str]]]:
    names: dict[int, list[str]] = {}
    params: dict[int, nn.Parameter] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
        params[id(p)] = p
    plans: list[_ParamPlan] = []
    failures: list[tuple[str, str]] = []
    used: set[str] = set()
    for key, all_names in names.items():
        name, aliases = all_names[0], tuple(all_names[1:])
        p = params[key]
        if isinstance(p, nn.parameter.UninitializedParameter):
            failures.append((name, "an uninitialized lazy parameter: its shape is not known "
                             "until one forward pass has run; run one first"))  # fmt: skip
            continue
        path, _, local = name.rpartition(".")
        module = model.get_submodule(path)
        link: LayerLink | None = found.link_for(path, name)
        if name not in found.param_links:
            for alias in aliases:
                if alias in found.param_links:
                    link = found.param_links[alias]
                    break
        ctx = Context(module, path, local, name, tuple(p.shape), link, settings["custom"])
        ctx = layer_context(model, ctx, found)  # issue 11: parametrized weights
        try:
            specs = blocks_for(ctx)
        except ValueError as error:
            failures.append((name, str(error)))
            continue
        plan = _ParamPlan(name, aliases, p, path, module)
        excluded = _match(exclude, (*all_names, *_modules_of(all_names)))
        pattern = _match(overrides, all_names)
        if excluded:
            used.add(excluded)
        if pattern:
            used.add(pattern)
        for spec in specs:
            stream = f"{name}[{spec.part}]" if spec.part else name
            shape = _block_shape(tuple(p.shape), spec.rows)
            if excluded is not None:
                plan.blocks.append(_Block(spec, shape, None, stream, f"excluded by {excluded!r}"))
                continue
            if not p.requires_grad and not settings["include_frozen"]:
                reason = "frozen (requires_grad=False); include_frozen=True initializes it"
                plan.blocks.append(_Block(spec, shape, None, stream, reason))
                continue
            override = (pattern, overrides[pattern]) if pattern is not None else None
            try:
                choice, reason, filler = _choose(spec, model_scheme, override, settings)
            except ValueError as error:
                failures.append((name, str(error)))
                continue
            fans = spec.fans
            plan.blocks.append(_Block(spec, shape, choice, stream, reason, filler, None, fans))
        plans.append(plan)
    for param_name, patterns in (("overrides", overrides), ("exclude", exclude)):
        for pattern in patterns:
            if pattern not in used:
                sample = ", ".join(repr(n) for n in list(_all_names(names))[:6])
                raise ValueError(
                    f"{param_name}: pattern {pattern!r} matches no parameter; parameter names "
                    f"look like {sample} (globs use fnmatch: '*' matches across dots)."
                )
    return plans, failures


def _modules_of(names: Iterable[str]) -> tuple[str, ...]:
    """Every module path that holds one of the parameters ``names`` (ancestors included)."""
    out: dict[str, None] = {}
    for name in names:
        path = name.rpartition(".")[0]
        while path:
            out.setdefault(path, None)
            path = path.rpartition(".")[0]
    return tuple(out)


def _all_names(names: dict[int, list[str]]) -> Iterable[str]:
    """Every parameter name, aliases included."""
    for group in names.values():
        yield from group


# --------------------------------------------------------------------------------------
# Validate
# --------------------------------------------------------------------------------------


def _target_device(model: nn.Module, device: Any) -> torch.device:
    if device is not None:
        return torch.device(device)
    for t in (*model.parameters(), *model.buffers()):
        if not t.is_meta:
            return t.device
    return torch.device("cpu")


def _validate(plans: list[_ParamPlan], device: torch.device) -> list[tuple[str, str]]:
    failures: list[tuple[str, str]] = []
    for plan in plans:
        p = plan.param
        writes = [b for b in plan.blocks if b.choice is not None or b.filler is not None]
        if writes and is_dtensor(p) and not p.is_meta:  # issue 14: a shard initlab can't write
            reason = unsupported_reason(p)
            if reason is not None:
                failures.append((plan.name, reason))
                continue
        if p.is_meta and len(writes) != len(plan.blocks):
            reasons = {b.reason for b in plan.blocks if b not in writes}
            failures.append((plan.name, (
                f"on the meta device and left without values ({'; '.join(sorted(reasons))}); "
                "initialize it too, or materialize the model yourself")))  # fmt: skip
            continue
        if writes and p.is_inference() and not torch.is_inference_mode_enabled():
            failures.append((plan.name, "an inference tensor (made under inference_mode) "
                             "cannot be updated in place outside inference mode; allowed: a "
                             "normal tensor (clone it), or init in inference_mode"))  # fmt: skip
            continue
        if writes and not p.dtype.is_floating_point:
            failures.append((plan.name, f"dtype {p.dtype} is not a floating-point type; allowed: "
                             "float32, float64, bfloat16, float16"))  # fmt: skip
            continue
        for block in writes:
            where = f"[{block.spec.part}] " if block.spec.part else ""
            if block.filler is not None:
                block.values = _run_filler(block, p, device, failures, plan.name)
                continue
            scheme = block.choice.scheme  # type: ignore[union-attr]
            try:
                scheme.check_shape(block.shape)
                if scheme.uses_fans:
                    fans = block.fans if block.fans is not None else compute_fans(block.shape)
                    block.fans = fans
                    scheme.statistics(fans)
            except ValueError as error:
                failures.append((plan.name, f"{where}{_rule_text(block)}: {error}"))
                continue
            try:  # every value finite in the parameter's dtype, known before any write
                check_fill(scheme, block.shape, block.fans, p.dtype)
            except ValueError as error:
                failures.append((plan.name, f"{where}({block.choice.rule}) {error}"))
            for row in block.spec.zero_rows:
                if not 0 <= row < block.shape[0]:
                    failures.append((plan.name, f"padding row {row} outside {block.shape}"))
    return failures


def _rule_text(block: _Block) -> str:
    assert block.choice is not None
    return f"scheme {block.choice.scheme.name!r} ({block.choice.rule})"


def _run_filler(
    block: _Block, p: torch.Tensor, device: torch.device, failures: list, name: str
) -> torch.Tensor | None:
    scratch_device = device if p.is_meta else p.device
    scratch = torch.zeros(block.shape, dtype=p.dtype, device=scratch_device)
    version = scratch._version
    try:
        with torch.no_grad():
            out = block.filler(scratch)  # type: ignore[misc]
    except Exception as error:
        failures.append((name, f"override callable raised {type(error).__name__}: {error}"))
        return None
    if not isinstance(out, torch.Tensor) and scratch._version == version:
        failures.append((name, f"override callable returned {type(out).__name__} and did not "
                         "fill the tensor it was given; allowed: fill it in place or return "
                         "a tensor"))  # fmt: skip
        return None
    values = out if isinstance(out, torch.Tensor) else scratch
    if tuple(values.shape) != block.shape:
        failures.append((name, f"override callable returned shape {tuple(values.shape)}, "
                         f"expected {block.shape}"))  # fmt: skip
        return None
    try:
        check_values(values.detach().to(p.dtype), "override callable")
    except ValueError as error:
        failures.append((name, str(error)))
        return None
    return values.detach()


# --------------------------------------------------------------------------------------
# Write
# --------------------------------------------------------------------------------------


def _materialize(model: nn.Module, device: torch.device) -> tuple[list, list[str]]:
    """Replace meta parameters and buffers by empty tensors on ``device``; returns the undo
    list and the names of buffers that had no values."""
    undo: list[tuple[nn.Module, str, str, Any]] = []
    memo: dict[int, Any] = {}
    blank: list[str] = []
    for path, module in model.named_modules(remove_duplicate=False):
        for name, p in list(module._parameters.items()):
            if p is not None and p.is_meta:
                if id(p) not in memo:
                    memo[id(p)] = nn.Parameter(
                        torch.empty_like(p, device=device), requires_grad=p.requires_grad
                    )
                undo.append((module, "_parameters", name, p))
                module._parameters[name] = memo[id(p)]
        for name, b in list(module._buffers.items()):
            if b is not None and b.is_meta:
                if id(b) not in memo:
                    memo[id(b)] = torch.zeros_like(b, device=device)
                    if not hasattr(module, "reset_running_stats"):
                        blank.append(f"{path}.{name}" if path else name)
                undo.append((module, "_buffers", name, b))
                module._buffers[name] = memo[id(b)]
        if hasattr(module, "reset_running_stats") and any(
            u[0] is module and u[1] == "_buffers" for u in undo
        ):
            module.reset_running_stats()
    return undo, blank


def _view(p: torch.Tensor, rows: tuple[int, int] | None) -> torch.Tensor:
    if is_dtensor(p):  # issue 14: this rank's part of the block (what is measured here)
        return local_region(p, rows)[0]
    t = p.detach()
    if t.dim() == 0:  # a scalar as one element: the stream's value 0 either way
        return t.view(1)
    return t if rows is None else t[rows[0] : rows[1]]


def _write(plans: list[_ParamPlan], seed: int, progress: Any) -> None:
    for plan in plans:
        target = plan.param.detach()
        for block in plan.blocks:
            if is_dtensor(plan.param):  # issue 14: this rank's shard, by global offsets
                _write_sharded(plan.param, block, seed, progress)
                continue
            view = _view(plan.param, block.spec.rows)
            if block.values is not None:
                with torch.no_grad():
                    view.copy_(block.values.to(device=view.device, dtype=view.dtype))
            elif block.choice is not None:
                moments = Moments()
                fill_(
                    view,
                    block.choice.scheme,
                    seed=seed,
                    name=block.stream,
                    fans=block.fans,
                    moments=moments,
                )
                block.written = (moments, -1)
            else:
                continue
            if block.spec.zero_rows:
                _forget_zeroed_rows(block, target)
                with torch.no_grad():
                    for row in block.spec.zero_rows:
                        target[row].zero_()
            if progress is not None:
                progress(math.prod(block.shape))
        for block in plan.blocks:  # the version the parameter has once all its blocks are written
            if block.written is not None:
                block.written = (block.written[0], plan.param._version)


def _forget_zeroed_rows(block: _Block, target: torch.Tensor) -> None:
    """Take the rows about to be zeroed out of the block's sums (their count stays)."""
    if block.written is None:
        return
    moments, _ = block.written
    if block.spec.rows is not None:  # rows of a part: measure the result instead
        block.written = None
        return
    with torch.no_grad():
        for row in block.spec.zero_rows:
            values = target[row].reshape(-1).to(torch.float64)
            moments.add(0, -float(values.sum()), -float(values.square().sum()))


def _written_stats(block: _Block, param: torch.Tensor) -> tuple[float | None, float | None]:
    """(std, mean) of what the fill wrote, from its sums: no second pass over the weights;
    measured again if anything wrote to the parameter since (its version moved)."""
    if block.written is not None:
        moments, version = block.written
        if param._version == version and moments.count:
            return moments.std, moments.mean
    return _measure(_view(param, block.spec.rows))


def _write_sharded(param: torch.Tensor, block: _Block, seed: int, progress: Any) -> None:
    """Issue 14: ``_write`` of one block of a DTensor parameter, on this rank's shard."""
    if block.values is None and block.choice is None:
        return
    scheme = block.choice.scheme if block.choice is not None else None
    write_block_(param, block.spec.rows, scheme=scheme, seed=seed, name=block.stream,
                 fans=block.fans, values=block.values, zero_rows=block.spec.zero_rows)  # fmt: skip
    if progress is not None:
        progress(math.prod(block.shape))


def _measure(view: torch.Tensor) -> tuple[float | None, float | None]:
    if view.numel() == 0:
        return None, None
    with torch.no_grad():
        if view.numel() == 1:
            return 0.0, float(view.reshape(()).float())
        var, mean = torch.var_mean(view.float() if view.dtype in (torch.float16,) else view,
                                   correction=0)  # fmt: skip
    return float(var.float().sqrt()), float(mean.float())


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _rows(plans: list[_ParamPlan], dry_run: bool, measure: bool) -> tuple[list[ParamRow], list]:
    rows: list[ParamRow] = []
    symmetric: list[str] = []
    for plan in plans:
        for block in plan.blocks:
            row = _row(plan, block, dry_run, measure)
            if row.symmetric and plan.path not in symmetric:
                symmetric.append(plan.path)
            rows.append(row)
    return rows, symmetric


def _row(plan: _ParamPlan, block: _Block, dry_run: bool, measure: bool) -> ParamRow:
    """The report's row of one block."""
    module_type = type(plan.module).__name__
    spec = block.spec
    link = spec.link
    activation = spec.known_activation
    if spec.kind in _WEIGHT_KINDS or spec.follows:
        follows = spec.follows or (link.follows if link is not None else None)
        found_by = spec.found_by or (link.found_by if link is not None else None)
    else:
        follows = found_by = None
    choice = block.choice
    writes = choice is not None or block.filler is not None
    stats: dict[str, float] = {}
    scheme_name = formula = rule = None
    gain = None
    if choice is not None:
        stats = choice.scheme.statistics(block.fans)
        scheme_name, formula = choice.scheme.name, choice.scheme.formula()
        rule, gain = choice.rule, choice.gain
    elif block.filler is not None:
        rule, scheme_name = "override", getattr(block.filler, "__name__", "callable")
    is_symmetric = bool(
        choice is not None
        and isinstance(choice.scheme, Constant)
        and spec.kind in _WEIGHT_KINDS
        and block.shape
        and block.shape[0] > 1
    )
    measured = (None, None)
    if measure and writes and not dry_run:
        measured = _written_stats(block, plan.param)
    notes = [spec.note] if spec.note else []
    if plan.aliases and spec.kind == "embedding":  # issue 11
        notes.append(f"tied with {', '.join(plan.aliases)}: std 1/sqrt(d) suits its output "
                     "role (logits std about 1)")  # fmt: skip
    if link is not None and link.also and spec.kind in _WEIGHT_KINDS:
        notes.append("also reaches " + ", ".join(link.also))
    note = "; ".join(notes)
    fans = block.fans if block.fans is not None else spec.fans
    if choice is not None and not choice.scheme.uses_fans and spec.kind not in _WEIGHT_KINDS:
        fans = None  # a bias or norm set without fans: fans would only mislead
    if choice is not None and isinstance(choice.scheme, Orthogonal) and block.shape:
        # rows (or columns) orthonormal times gain: mean square gain^2 / max(rows, cols)
        widest = max(block.shape[0], math.prod(block.shape[1:]))
        stats = {"std": choice.scheme.gain / math.sqrt(widest)} if widest else {}
    return ParamRow(
        parameter=plan.name,
        part=spec.part,
        rows=spec.rows,
        shape=block.shape,
        dtype=str(plan.param.dtype).replace("torch.", ""),
        layer=plan.path,
        layer_type=module_type,
        kind=spec.kind,
        action=("planned" if dry_run else "initialized") if writes else "skipped",
        reason=block.reason,
        activation=(activation.label if activation is not None else None)
        if spec.kind in _WEIGHT_KINDS
        else None,
        follows=follows,
        found_by=found_by,
        rule=rule,
        scheme=scheme_name,
        formula=formula,
        fan_in=None if fans is None else int(fans.fan_in),
        fan_out=None if fans is None else int(fans.fan_out),
        gain=gain,
        std=stats.get("std"),
        bound=stats.get("bound"),
        stream=block.stream if choice is not None and choice.scheme.random else None,
        aliases=plan.aliases,
        symmetric=is_symmetric,
        note=note,
        measured_std=measured[0],
        measured_mean=measured[1],
    )


# --------------------------------------------------------------------------------------
# init()
# --------------------------------------------------------------------------------------


def init(
    model: nn.Module,
    scheme: str | Scheme = "auto",
    *,
    seed: int | None = None,
    mode: str | None = None,
    distribution: str | None = None,
    bias: str | Scheme = "zeros",
    overrides: Mapping[str, str | Scheme | Callable[[torch.Tensor], Any]] | None = None,
    exclude: str | Iterable[str] | None = None,
    example_inputs: Any = None,
    dry_run: bool = False,
    include_frozen: bool = False,
    custom: str = "init",
    device: str | torch.device | None = None,
    atomic: str = "validate",
    measure: bool = True,
    progress: bool | None = None,
    residual: str | Mapping[str, Any] | None = None,
    inputs: Any = None,
    norms: str = "auto",
) -> InitReport:
    r"""Initialize every parameter of ``model``, each layer by what follows it; return a report.

    ``scheme="auto"`` chooses per layer from the nonlinearity its output reaches (found by
    torch.fx tracing, else one forward pass on ``example_inputs``, else module order):
    ``std = gain * sqrt(1 / n)``,

    ==========================================  =================  ========================
    output reaches                              scheme             gain
    ==========================================  =================  ========================
    ReLU, Leaky ReLU(a), PReLU(a), RReLU        He (``mode``)      sqrt(2 / (1 + a^2))
    tanh, sigmoid                               Xavier (fan_avg)   5/3, 1
    SELU                                        LeCun (``mode``)   1
    GELU, SiLU, Mish, any other elementwise fn  He form            1 / sqrt(E[f(z)^2])
    no nonlinearity (output, residual add,      LeCun form         1
    attention logits, next layer)
    ==========================================  =================  ========================

    A weight whose output reaches a normalization first (conv then BatchNorm) uses
    ``mode="fan_out"`` unless ``mode`` is given (the norm fixes the forward scale).
    Embeddings (and position embeddings, class tokens) get ``std = 1 / sqrt(d)``, ``d`` their
    width, so that one tied to the output layer gives logits of std about 1; recurrent
    (hidden-to-hidden) gate matrices orthogonal, norms weight 1 and bias 0 (``norms``),
    PReLU its ``init`` slope, biases ``bias``. Any other registry name
    (``"he"``, ``"xavier_uniform"``, ``"random"``, ``"zeros"``, ``"orthogonal"``, Keras and
    JAX spellings, ``"he_uniform(mode=fan_out)"``) applies to every weight model-wide, with
    each layer's true fans (grouped and transposed convolutions, q/k/v and gates apart).

    Parameters
    ----------
    seed: values come from initlab's stream ``(seed, parameter name)``; None draws a fresh
        seed, recorded in the report.
    mode: ``"fan_in"`` (default) or ``"fan_out"`` for the He and LeCun rows (and a model-wide
        variance-scaling scheme). distribution: ``"normal"`` (default), ``"uniform"`` or
        ``"truncated_normal"``, likewise.
    bias: ``"zeros"``, ``"keep"``, ``"torch"`` (U(-1/sqrt(fan_in), 1/sqrt(fan_in))) or a scheme
        without fans (``"normal(std=0.01)"``).
    overrides: ``{glob: scheme}`` on parameter names (fnmatch; the first matching glob wins);
        a value may be a scheme name or Scheme, ``"auto"``, ``"keep"``, or a callable that
        fills the tensor it is given in place (or returns one). A glob matching nothing is an
        error. exclude: globs of parameters to leave as they are, on parameter names or
        on module names (a module's glob excludes every parameter inside it), as in
        :func:`initlab.lsuv`.
    inputs: inputs for one recorded forward pass, used when fx cannot trace, by the one rule
        of :func:`initlab.torch.runtime.call_arguments` (a tensor, a tuple or list, a dict);
        ``example_inputs`` is the same argument under its first name.
    dry_run: compute the report only; no parameter is touched.
    include_frozen: also initialize parameters with ``requires_grad=False``.
    custom: ``"init"`` (raw parameters of unknown modules: 2-D+ as weights in torch layout,
        1-D named "bias" as biases, others left and reported) or ``"skip"``.
    device: where a meta-device model is materialized (default: where its other tensors are,
        else CPU). atomic: ``"validate"`` or ``"snapshot"`` (see the module docstring).
    measure: record each written block's std and mean in the report.
    progress: show a progress bar (None: only for models over 50M elements).
    norms: ``"auto"`` (norm weights 1 and biases 0, but a norm weight that is all zeros,
        a model's deliberate zero-init of a residual block's last norm, is kept), ``"reset"``
        (always 1 and 0) or ``"keep"`` (norm parameters left as they are).
    residual: a residual-aware policy applied after the weights are written
        (:mod:`initlab.torch.residual`): ``"zero_last"`` (Goyal et al. 2017), ``"fixup"``
        (Zhang et al. 2019) or ``"gpt2"`` (projections by ``1/sqrt(N)``), or a dict with
        ``policy`` and any of ``branches``, ``classifier``, ``n_layers``, ``std``. The
        branches are found on the same graph as the activations; the policy is planned and
        checked with the rest, written in the same transaction, and shows in
        ``report.residual``.

    The call runs in phases: options (every argument checked: ValueError or TypeError
    naming it) -> discovery (changes nothing in the model) -> plan (per block: fans,
    activation, scheme, std; the residual policy's actions) -> validate (everything
    checkable before a write; a failure raises :class:`InitError`, a ValueError, naming each
    parameter and why) -> write (one transaction: the blocks, then the residual policy).

    What a failure leaves: before the write phase, nothing is changed (parameters, buffers,
    the model's placement). In the write phase, ``atomic="snapshot"`` restores every
    parameter and buffer bit for bit, and a meta model to the meta device, on any exception,
    KeyboardInterrupt included (an Exception is re-raised as :class:`InitError`). The default
    ``atomic="validate"`` holds no copy: a meta model goes back to the meta device and a
    buffer it set is put back, but a parameter already written keeps its new values; the
    :class:`InitError` lists them (an interrupt is re-raised as it is). After validation
    only the unforeseeable fails there (out of memory, an interrupt).

    >>> import torch, initlab
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
    ...                             torch.nn.Linear(16, 2))
    >>> report = initlab.init(model, seed=0)
    >>> row = report["0.weight"]
    >>> row.activation, row.found_by, row.rule, round(row.gain, 4), round(row.std, 4)
    ('relu', 'fx', 'he', 1.4142, 0.5)
    >>> report["2.weight"].rule, report["2.weight"].follows
    ('linear', 'output')
    >>> float(model[0].bias.detach().abs().max())
    0.0
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={model!r} is not valid; allowed: a torch.nn.Module.")
    options = InitOptions(
        scheme=scheme, seed=seed, mode=mode, distribution=distribution, bias=bias,
        overrides=overrides, exclude=exclude, example_inputs=example_inputs, dry_run=dry_run,
        include_frozen=include_frozen, custom=custom, device=device, atomic=atomic,
        measure=measure, progress=progress, residual=residual, inputs=inputs, norms=norms,
    )  # fmt: skip
    found = discover(model, options.example_inputs)
    plans, failures = _plan(
        model, found, options.model_scheme, options.resolved_overrides, options.excluded,
        options.settings,
    )  # fmt: skip
    apply_norm_policy(plans, options.norms)  # issue 11: zero-initialized norms kept
    link_weight_norms(plans, options.seed)  # issue 11: weight_norm's g = ||v||
    target = _target_device(model, options.device)
    failures += _validate(plans, target)
    if not options.dry_run:  # issue 14: initlab cannot materialize a sharded meta parameter itself
        failures += [(p.name, META_DTENSOR) for p in plans if p.writes and is_dtensor(p.param)
                     and p.param.is_meta]  # fmt: skip
    if failures:
        raise InitError(failures)
    residual_plan = _plan_residual(model, options, found)
    outcome = _Outcome(residual=residual_plan)
    if not options.dry_run:
        outcome = _transaction(model, plans, residual_plan, options, target)
    return _report(plans, options, found, outcome)


def _plan_residual(model: nn.Module, options: InitOptions, found: Discovery) -> Any:
    """The residual policy's actions, planned and checked before anything is written."""
    if options.residual is None:
        return None
    return plan_residual_policy(
        model, **residual_option(options.residual), seed=options.seed,
        example_inputs=options.example_inputs, graph=found.graph,
    )  # fmt: skip


@dataclass
class _Outcome:
    """What the write phase did beyond the plan."""

    residual: Any = None
    materialized: str | None = None
    warnings: list[str] = field(default_factory=list)


def _transaction(
    model: nn.Module,
    plans: list[_ParamPlan],
    residual_plan: Any,
    options: InitOptions,
    target: torch.device,
) -> _Outcome:
    """The write phase: materialize a meta model, write every block, then the residual
    policy, as one transaction (see :func:`init` for what a failure leaves)."""
    snapshot = options.atomic == "snapshot"
    outcome = _Outcome()
    written: list[str] = []
    fresh: set[int] = set()  # materialized from the meta device: no values to keep
    state = Preserved(model, restore="on_error", parameters=False, buffers=snapshot, storage="cpu")
    try:
        with state:
            if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
                outcome.materialized, outcome.warnings, fresh = _materialize_plans(
                    model, plans, target
                )

            def before_write(p: torch.Tensor, name: str) -> None:
                written.append(name)
                if snapshot and id(p) not in fresh:
                    state.save(p)

            _write_all(plans, options.seed, options.progress, before_write)
            if residual_plan is not None:
                outcome.residual = write_residual_actions(model, residual_plan, before_write)
    except Exception as error:
        raise _write_error(error, written, plans, snapshot, fresh) from error
    return outcome


def _materialize_plans(
    model: nn.Module, plans: list[_ParamPlan], target: torch.device
) -> tuple[str, list[str], set[int]]:
    """Materialize meta tensors on ``target`` (the transaction puts them back on failure);
    returns the device, warnings and the ids of the new parameters."""
    undo, blank = _materialize(model, target)
    by_old = {id(u[3]): u for u in undo}
    for plan in plans:
        if id(plan.param) in by_old:
            module, _, name, _ = by_old[id(plan.param)]
            plan.param = module._parameters[name]
    notes = []
    if blank:
        notes.append(
            "buffers " + ", ".join(repr(b) for b in blank) + " were on the meta device and "
            "have no defined values: set to zeros; compute them yourself"
        )
    fresh = {id(module._parameters[name]) for module, where, name, _ in undo
             if where == "_parameters"}  # fmt: skip
    return str(target), notes, fresh


def _write_error(
    error: Exception, written: list[str], plans: list[_ParamPlan], snapshot: bool, fresh: set
) -> InitError:
    failing = written[-1] if written else "?"
    reason = f"{type(error).__name__} while writing: {error}"
    by_name = {p.name: p for p in plans}
    changed = [
        n for n in dict.fromkeys(written[:-1])
        if not snapshot and n in by_name and id(by_name[n].param) not in fresh
    ]  # fmt: skip
    if not changed:
        return InitError([(failing, reason)])
    return InitError(
        [(failing, reason)],
        note=(
            f"{len(changed)} parameter(s) written before the failure keep their new values "
            f"({', '.join(changed[:5])}); atomic='snapshot' restores every parameter on any "
            "error."
        ),
    )


def _report(
    plans: list[_ParamPlan], options: InitOptions, found: Discovery, outcome: _Outcome
) -> InitReport:
    rows, symmetric = _rows(plans, options.dry_run, options.measure)
    notes = list(outcome.warnings)
    guessed = module_order_warning(found)  # issue 11: never a silent guess
    if guessed:
        notes.insert(0, guessed)
    if symmetric:
        layers = ", ".join(repr(p) for p in symmetric)
        notes.append(
            f"symmetry: in layer(s) {layers} every unit starts identical (a constant weight), "
            "so every unit gets the same gradient and they stay identical: each such layer "
            "acts as one unit. Use a random scheme ('auto', 'he', 'xavier') to break it."
        )
    report = InitReport(
        rows=rows,
        seed=options.seed,
        scheme=label(options.scheme),
        mode=options.mode,
        bias=label(options.bias),
        dry_run=options.dry_run,
        discovery=found.method,
        discovery_notes=found.notes,
        warnings=notes,
        symmetric_layers=tuple(symmetric),
        materialized=outcome.materialized,
        residual=outcome.residual,
    )
    for message in notes:
        warnings.warn(message, InitWarning, stacklevel=3)
    return report


def _write_all(
    plans: list[_ParamPlan],
    seed: int,
    progress: bool | None,
    before_write: Callable[[torch.Tensor, str], None],
) -> None:
    todo = [p for p in plans if p.writes]
    total = sum(math.prod(b.shape) for p in todo for b in p.blocks if b.choice or b.filler)
    show = progress if progress is not None else total > _PROGRESS_ELEMENTS

    def run(advance: Callable[[int], Any] | None) -> None:
        for plan in todo:
            before_write(plan.param, plan.name)
            _write([plan], seed, advance)

    if not show:
        run(None)
        return
    with Progress(transient=True) as bar:
        task = bar.add_task("initlab.init", total=total)
        run(lambda n: bar.advance(task, n))
