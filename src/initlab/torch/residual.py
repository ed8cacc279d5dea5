r"""Residual-aware initialization: find each residual branch, then zero, scale or redraw it.

A residual block computes ``x + F(x)``. Three policies act on the branch ``F``:

==============  ===========================================================================
policy          what it does (per residual branch, ``L`` branches in the model)
==============  ===========================================================================
``zero_last``   Goyal et al. 2017: the branch's last parametrized layer is zeroed, so that
                every block starts as the identity: a normalization's weight (gamma) when
                the branch ends with one (torchvision's ``zero_init_residual``), else the
                last Linear/Conv's weight and bias.
``fixup``       Zhang et al. 2019 (Fixup), for networks without normalization: the branch's
                last affine layer and the classifier are zeroed, the other ``m - 1`` affine
                layers of a branch of ``m`` are multiplied by ``L^(-1/(2m-2))``. (Fixup's
                scalar multipliers and biases are architecture, not initialization: add them
                to the model if wanted.)
``gpt2``        Radford et al. 2019: the branch's last affine layer (the residual projection)
                is multiplied by ``1/sqrt(N)``, ``N = L`` residual layers (``2 * n_layers``
                for a transformer of ``n_layers`` blocks); with ``std=`` it is redrawn from
                ``N(0, (std / sqrt(N))^2)`` instead, nanoGPT's ``0.02 / sqrt(2 * n_layer)``.
==============  ===========================================================================

Branches are found on the model's data-flow graph (torch.fx symbolic tracing): an addition of
two data-dependent tensors is a residual add when, from the last tensor both depend on (the
block input), one operand is reached through no parametrized layer (identity shortcut) or
through exactly one affine layer while the other goes through two or more (projection
shortcut, as in ResNet's downsampling blocks); the other operand's path is the branch. torch's
TransformerEncoderLayer and TransformerDecoderLayer, which fx does not look into, are known by
structure. ``branches=`` overrides discovery by name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd

from initlab._validation import check_int, check_real, choice_error
from initlab.schemes import Normal
from initlab.torch.fill import fill_

__all__ = [
    "POLICIES",
    "BranchLayer",
    "ResidualAction",
    "ResidualBranch",
    "ResidualReport",
    "apply_residual_policy",
    "find_residual_branches",
]

POLICIES = ("zero_last", "fixup", "gpt2")
_POLICY_ALIASES = {"goyal": "zero_last", "zero_init_residual": "zero_last", "gpt-2": "gpt2"}

NORMS: tuple[type[nn.Module], ...] = (_NormBase, nn.LayerNorm, nn.GroupNorm) + (
    (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()
)
AFFINE: tuple[type[nn.Module], ...] = (nn.Linear, _ConvNd, nn.MultiheadAttention)
_FUNCTIONAL_AFFINE = frozenset(
    {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
     "conv_transpose3d"}
)  # fmt: skip
_ADDS = frozenset({"add", "iadd", "__add__", "__iadd__", "__radd__", "add_"})


# --------------------------------------------------------------------------------------
# What a branch is made of
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BranchLayer:
    """A parametrized step on a branch: its name, kind, and the parameters a policy writes.

    ``weight`` is the parameter name of the weight (gamma for a normalization,
    ``out_proj.weight`` for MultiheadAttention); ``norm`` says whether it normalizes.
    """

    name: str
    kind: str
    weight: str
    bias: str | None
    norm: bool = False


@dataclass(frozen=True)
class ResidualBranch:
    """One residual branch: its parametrized layers in execution order, and how it was found.

    ``add`` names the addition that closes it; ``shortcut`` lists the layers of a projection
    shortcut (empty for an identity shortcut).
    """

    add: str
    layers: tuple[BranchLayer, ...]
    found_by: str
    shortcut: tuple[BranchLayer, ...] = ()

    @property
    def affine(self) -> tuple[BranchLayer, ...]:
        """The branch's affine layers (Linear, Conv, attention), without normalizations."""
        return tuple(layer for layer in self.layers if not layer.norm)

    @property
    def last(self) -> BranchLayer:
        """The last parametrized layer (a normalization or an affine layer)."""
        return self.layers[-1]

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form."""
        return dataclasses.asdict(self)


def _module_layer(name: str, module: nn.Module) -> BranchLayer | None:
    if isinstance(module, nn.MultiheadAttention):
        bias = "out_proj.bias" if module.out_proj.bias is not None else None
        return BranchLayer(name, "MultiheadAttention", _join(name, "out_proj.weight"),
                           _join(name, bias))  # fmt: skip
    if isinstance(module, AFFINE):
        if not isinstance(getattr(module, "weight", None), nn.Parameter):
            return None
        bias = "bias" if isinstance(getattr(module, "bias", None), nn.Parameter) else None
        return BranchLayer(name, type(module).__name__, _join(name, "weight"), _join(name, bias))
    if isinstance(module, NORMS):
        if not isinstance(getattr(module, "weight", None), nn.Parameter):
            return None  # affine=False: nothing to zero
        bias = "bias" if isinstance(getattr(module, "bias", None), nn.Parameter) else None
        return BranchLayer(name, type(module).__name__, _join(name, "weight"),
                           _join(name, bias), norm=True)  # fmt: skip
    return None


def _join(prefix: str, name: str | None) -> str | None:
    if name is None:
        return None
    return f"{prefix}.{name}" if prefix else name


# --------------------------------------------------------------------------------------
# The data-flow graph (torch.fx)
# --------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    """A step of the traced forward: ``op`` is input, module, call, attr or output."""

    index: int
    op: str
    target: str
    module: nn.Module | None = None
    inputs: list[_Node] = field(default_factory=list)
    data: bool = False


#: Modules fx would have to trace through Python control flow: one step each.
_OPAQUE_TYPES: tuple[type[nn.Module], ...] = (
    nn.MultiheadAttention, nn.RNNBase, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer,
    nn.TransformerEncoder, nn.TransformerDecoder, nn.Transformer,
)  # fmt: skip


class _Tracer(fx.Tracer):
    def __init__(self, opaque: set[str]) -> None:
        super().__init__()
        self.opaque = opaque
        self.failed_in: str | None = None

    def is_leaf_module(self, m: nn.Module, qualified_name: str) -> bool:
        if qualified_name in self.opaque or isinstance(m, _OPAQUE_TYPES):
            return True
        if next(m.children(), None) is not None:
            return False
        # torch's layers are steps; a user's module with raw parameters is traced through, so
        # that F.linear(x, self.weight) inside it is seen.
        own = next(m.parameters(recurse=False), None) is not None
        return type(m).__module__.startswith("torch.nn") or not own

    def call_module(self, m, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = self.path_of_module(m)
            raise


def _trace(model: nn.Module, max_retries: int = 16) -> tuple[list[_Node], tuple[str, ...]]:
    """The model's forward as nodes in execution order; submodules fx cannot trace are
    retried as opaque steps. Raises if the top-level forward cannot be traced."""
    opaque: set[str] = set()
    for _ in range(max_retries + 1):
        tracer = _Tracer(opaque)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = tracer.trace(model)
        except Exception:
            if not tracer.failed_in or tracer.failed_in in opaque:
                raise
            opaque.add(tracer.failed_in)
            continue
        return _nodes(model, graph), tuple(sorted(opaque))
    raise RuntimeError(f"torch.fx: more than {max_retries} untraceable submodules")


def _call_name(target: Any) -> str:
    if target in (operator.add, operator.iadd, torch.add):
        return "add"
    raw = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    return "add" if raw in _ADDS else raw


def _nodes(model: nn.Module, graph: fx.Graph) -> list[_Node]:
    nodes: list[_Node] = []
    by_fx: dict[fx.Node, _Node] = {}
    for fx_node in graph.nodes:
        inputs: list[_Node] = [by_fx[a] for a in fx_node.all_input_nodes]
        index = len(nodes)
        if fx_node.op == "placeholder":
            node = _Node(index, "input", str(fx_node.target), data=True)
        elif fx_node.op == "get_attr":
            node = _Node(index, "attr", str(fx_node.target))
        elif fx_node.op == "call_module":
            path = str(fx_node.target)
            node = _Node(index, "module", path, model.get_submodule(path))
        elif fx_node.op in ("call_function", "call_method"):
            node = _Node(index, "call", _call_name(fx_node.target))
        else:
            node = _Node(index, "output", "output")
        node.inputs = inputs
        if node.op != "input":
            node.data = any(i.data for i in inputs)
        by_fx[fx_node] = node
        nodes.append(node)
    return nodes


def _node_layer(node: _Node, params: Mapping[str, nn.Parameter]) -> BranchLayer | None:
    """The parametrized layer a node is, if any."""
    if node.op == "module" and node.module is not None:
        return _module_layer(node.target, node.module)
    if node.op == "call" and node.target in _FUNCTIONAL_AFFINE:
        attrs = [i.target for i in node.inputs if i.op == "attr" and i.target in params]
        if attrs:
            weight, bias = attrs[0], (attrs[1] if len(attrs) > 1 else None)
            return BranchLayer(weight, f"F.{node.target}", weight, bias)
    return None


def _branches_from_graph(
    nodes: list[_Node], params: Mapping[str, nn.Parameter]
) -> tuple[list[ResidualBranch], list[BranchLayer]]:
    """Residual branches closed by an add, and every affine layer in execution order."""
    ancestors: list[int] = []
    for node in nodes:
        bits = 0
        for i in node.inputs:
            bits |= ancestors[i.index] | (1 << i.index)
        ancestors.append(bits)
    layers = {n.index: layer for n in nodes if (layer := _node_layer(n, params)) is not None}

    def path(fork: int, end: _Node) -> list[int]:
        """Nodes after ``fork`` on the way to ``end`` (inclusive)."""
        reach = ancestors[end.index] | (1 << end.index)
        return [
            k for k in range(fork + 1, end.index + 1) if reach >> k & 1 and ancestors[k] >> fork & 1
        ]

    branches: list[ResidualBranch] = []
    for node in nodes:
        if node.op != "call" or node.target != "add":
            continue
        operands = [i for i in node.inputs if i.data]
        if len(operands) != 2 or operands[0] is operands[1]:
            continue
        a, b = operands
        common = (ancestors[a.index] | 1 << a.index) & (ancestors[b.index] | 1 << b.index)
        if not common:
            continue
        fork = common.bit_length() - 1
        sides = []
        for end in (a, b):
            on_path = [layers[k] for k in path(fork, end) if k in layers]
            sides.append(on_path)
        sides.sort(key=lambda s: sum(not layer.norm for layer in s))
        skip, branch = sides
        n_skip = sum(not layer.norm for layer in skip)
        n_branch = sum(not layer.norm for layer in branch)
        identity = not skip and n_branch >= 1
        projection = n_skip == 1 and n_branch >= 2
        if identity or projection:
            label = f"add #{len(branches)} (after {branch[-1].name})"
            branches.append(ResidualBranch(label, tuple(branch), "fx", tuple(skip)))
    affine = [layers[k] for k in sorted(layers) if not layers[k].norm]
    return branches, affine


def _structure_branches(model: nn.Module) -> list[ResidualBranch]:
    """Branches of torch's transformer layers, known by their layout."""
    found: list[ResidualBranch] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.TransformerEncoderLayer):
            blocks = [("self_attn", ["norm1"]), ("ff", ["norm2"])]
        elif isinstance(module, nn.TransformerDecoderLayer):
            blocks = [("self_attn", ["norm1"]), ("multihead_attn", ["norm2"]), ("ff", ["norm3"])]
        else:
            continue
        kind = type(module).__name__
        for block, norms in blocks:
            parts = ["linear1", "linear2"] if block == "ff" else [block]
            if module.norm_first:
                parts = norms + parts
            layers = []
            for part in parts:
                layer = _module_layer(_join(name, part) or part, module.get_submodule(part))
                if layer is not None:
                    layers.append(layer)
            if layers:
                label = f"{_join(name, block)} (residual add)"
                found.append(ResidualBranch(label, tuple(layers), f"structure ({kind})"))
    return found


def _override_branches(
    model: nn.Module, branches: Sequence[Sequence[str]] | Mapping[str, Sequence[str]]
) -> list[ResidualBranch]:
    modules = dict(model.named_modules())
    items: Iterable[tuple[str, Sequence[str]]]
    if isinstance(branches, Mapping):
        items = branches.items()
    elif isinstance(branches, (list, tuple)):
        items = ((f"branch {i}", names) for i, names in enumerate(branches))
    else:
        raise ValueError(
            f"branches={branches!r} is not valid; allowed: a list of lists of module names "
            "(each branch in execution order) or a dict label -> list of module names."
        )
    found = []
    for label, names in items:
        if isinstance(names, str) or not isinstance(names, Sequence) or not names:
            raise ValueError(
                f"branches[{label!r}]={names!r} is not valid; allowed: a non-empty list of "
                "module names in execution order."
            )
        layers = []
        for name in names:
            if name not in modules:
                raise choice_error(f"branches[{label!r}] module", name, [n for n in modules if n])
            layer = _module_layer(name, modules[name])
            if layer is None:
                raise ValueError(
                    f"branches[{label!r}]: module {name!r} ({type(modules[name]).__name__}) "
                    "is not a layer a policy can act on; allowed: Linear, Conv, ConvTranspose, "
                    "MultiheadAttention or a normalization with a weight."
                )
            layers.append(layer)
        found.append(ResidualBranch(str(label), tuple(layers), "override"))
    return found


@dataclass(frozen=True)
class ResidualDiscovery:
    """Branches found, the affine layers in execution order, and how."""

    branches: tuple[ResidualBranch, ...]
    layers: tuple[BranchLayer, ...]
    method: str
    notes: tuple[str, ...] = ()


def find_residual_branches(
    model: nn.Module,
    *,
    branches: Sequence[Sequence[str]] | Mapping[str, Sequence[str]] | None = None,
) -> ResidualDiscovery:
    """The residual branches of ``model`` (see the module docstring for the rule).

    >>> class Block(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)
    ...     def forward(self, x):
    ...         return x + self.fc2(torch.relu(self.fc1(x)))
    >>> found = find_residual_branches(nn.Sequential(Block(), Block(), nn.Linear(8, 2)))
    >>> [[layer.name for layer in b.layers] for b in found.branches]
    [['0.fc1', '0.fc2'], ['1.fc1', '1.fc2']]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={type(model).__name__} is not valid; allowed: a torch.nn.Module.")
    params = dict(model.named_parameters(remove_duplicate=False))
    notes: list[str] = []
    layers: list[BranchLayer] = []
    if branches is not None:
        found = _override_branches(model, branches)
        method = "override"
    else:
        found, method = [], "fx"
        try:
            nodes, opaque = _trace(model)
        except Exception as error:  # fx cannot trace forward: structure rules only
            notes.append(f"torch.fx could not trace forward ({type(error).__name__}: {error})")
            method = "structure"
        else:
            found, layers = _branches_from_graph(nodes, params)
            if opaque:
                notes.append(f"fx treated {', '.join(opaque)} as opaque steps")
        inside = {layer.name for b in found for layer in b.layers}
        for branch in _structure_branches(model):
            if not any(layer.name in inside for layer in branch.layers):
                found.append(branch)
    if not layers:  # registration order, when no graph gave the execution order
        layers = [
            layer
            for name, m in model.named_modules()
            if (layer := _module_layer(name, m)) is not None and not layer.norm
        ]
    return ResidualDiscovery(tuple(found), tuple(layers), method, tuple(notes))


# --------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResidualAction:
    """One write: ``action`` is ``zero``, ``scale`` (by ``value``) or ``redraw`` (std ``value``)."""

    parameter: str
    action: str
    value: float
    branch: str
    reason: str


@dataclass(frozen=True)
class ResidualReport:
    """What :func:`apply_residual_policy` found and did (or would do, with ``dry_run``)."""

    policy: str
    branches: tuple[ResidualBranch, ...]
    actions: tuple[ResidualAction, ...]
    method: str
    classifier: str | None = None
    dry_run: bool = False
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form."""
        return {
            "policy": self.policy,
            "method": self.method,
            "classifier": self.classifier,
            "dry_run": self.dry_run,
            "notes": list(self.notes),
            "branches": [b.to_dict() for b in self.branches],
            "actions": [dataclasses.asdict(a) for a in self.actions],
        }

    def to_json(self, **kwargs: Any) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), **kwargs)

    def table(self) -> Table:
        """A rich table: one row per parameter written."""
        done = "would write" if self.dry_run else "wrote"
        table = Table(
            title=f"residual policy {self.policy!r}: {len(self.branches)} branches "
            f"(found by {self.method}), {done} {len(self.actions)} parameters"
        )
        for column in ("parameter", "action", "value", "branch", "why"):
            table.add_column(column, justify="right" if column == "value" else "left")
        for a in self.actions:
            value = "" if a.action == "zero" else f"{a.value:.4g}"
            table.add_row(a.parameter, a.action, value, a.branch, a.reason)
        if self.notes:
            table.caption = "; ".join(self.notes)
        return table

    def __rich__(self) -> Table:
        return self.table()

    def __str__(self) -> str:
        console = Console(width=160, record=True, color_system=None, force_terminal=False)
        with console.capture() as capture:
            console.print(self.table())
        return capture.get().rstrip()


def _policy(policy: Any) -> str:
    if isinstance(policy, str):
        key = policy.lower()
        key = _POLICY_ALIASES.get(key, key)
        if key in POLICIES:
            return key
    raise choice_error("policy", policy, POLICIES)


def _zero(layer: BranchLayer, branch: str, reason: str) -> list[ResidualAction]:
    actions = [ResidualAction(layer.weight, "zero", 0.0, branch, reason)]
    if layer.bias is not None and not layer.norm:
        actions.append(ResidualAction(layer.bias, "zero", 0.0, branch, reason))
    return actions


def _plan(
    policy: str,
    found: ResidualDiscovery,
    *,
    classifier: BranchLayer | None,
    n_layers: int | None,
    std: float | None,
) -> list[ResidualAction]:
    branches = found.branches
    count = len(branches)
    actions: list[ResidualAction] = []
    if policy == "zero_last":
        for b in branches:
            what = "last normalization" if b.last.norm else "last layer"
            actions += _zero(b.last, b.add, f"{what} of the branch (Goyal et al. 2017)")
    elif policy == "fixup":
        for b in branches:
            affine = b.affine
            if not affine:
                continue
            m = len(affine)
            actions += _zero(affine[-1], b.add, "last affine layer of the branch (Fixup)")
            if m >= 2:
                factor = count ** (-1.0 / (2 * m - 2))
                reason = f"L^(-1/(2m-2)), L={count}, m={m} (Fixup)"
                for layer in affine[:-1]:
                    actions.append(ResidualAction(layer.weight, "scale", factor, b.add, reason))
        if classifier is not None:
            actions += _zero(classifier, "-", "classifier (Fixup)")
    else:  # gpt2
        n = 2 * n_layers if n_layers is not None else count
        for b in branches:
            affine = b.affine
            if not affine:
                continue
            last = affine[-1]
            if std is None:
                reason = f"1/sqrt(N), N={n} residual layers (GPT-2)"
                actions.append(
                    ResidualAction(last.weight, "scale", 1 / math.sqrt(n), b.add, reason)
                )
            else:
                reason = f"N(0, ({std:g}/sqrt({n}))^2) (GPT-2, nanoGPT)"
                actions.append(ResidualAction(last.weight, "redraw", std / math.sqrt(n), b.add,
                                              reason))  # fmt: skip
    return actions


def _classifier(
    model: nn.Module, found: ResidualDiscovery, classifier: str | None
) -> BranchLayer | None:
    if classifier is None:
        return None
    if classifier == "auto":
        inside = {layer.name for b in found.branches for layer in (*b.layers, *b.shortcut)}
        outside = [layer for layer in found.layers if layer.name not in inside]
        return outside[-1] if outside else None
    if not isinstance(classifier, str):
        raise ValueError(
            f"classifier={classifier!r} is not valid; allowed: 'auto', None or a module name."
        )
    modules = dict(model.named_modules())
    if classifier not in modules:
        raise choice_error("classifier", classifier, [n for n in modules if n])
    layer = _module_layer(classifier, modules[classifier])
    if layer is None or layer.norm:
        raise ValueError(
            f"classifier={classifier!r} ({type(modules[classifier]).__name__}) is not valid; "
            "allowed: a Linear or Conv layer."
        )
    return layer


def apply_residual_policy(
    model: nn.Module,
    policy: str,
    *,
    branches: Sequence[Sequence[str]] | Mapping[str, Sequence[str]] | None = None,
    classifier: str | None = "auto",
    n_layers: int | None = None,
    std: float | None = None,
    seed: int = 0,
    dry_run: bool = False,
) -> ResidualReport:
    """Apply a residual-aware policy (``zero_last``, ``fixup``, ``gpt2``) to ``model`` in place.

    Run it after the weights have their base initialization (``initlab.init`` calls it with
    ``residual=``): ``zero_last`` and ``fixup`` zero and scale the weights already there;
    ``gpt2`` scales the residual projections by ``1/sqrt(N)``, or with ``std`` redraws them
    from ``N(0, (std/sqrt(N))^2)`` (stream keyed by ``seed`` and the parameter name).
    ``classifier`` (Fixup): ``"auto"`` takes the last affine layer outside every branch,
    ``None`` leaves it. ``n_layers``: transformer blocks (``N = 2 * n_layers``); by default
    ``N`` is the number of branches found. If anything fails, no parameter changes.

    >>> class Block(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)
    ...     def forward(self, x):
    ...         return x + self.fc2(torch.relu(self.fc1(x)))
    >>> model = nn.Sequential(nn.Linear(4, 8), *[Block() for _ in range(4)], nn.Linear(8, 2))
    >>> report = apply_residual_policy(model, "fixup")
    >>> [(a.parameter, a.action, round(a.value, 3)) for a in report.actions[:3]]
    [('1.fc2.weight', 'zero', 0.0), ('1.fc2.bias', 'zero', 0.0), ('1.fc1.weight', 'scale', 0.5)]
    >>> report.classifier, float(model[5].weight.detach().abs().sum())
    ('5', 0.0)
    """
    policy = _policy(policy)
    if n_layers is not None:
        n_layers = check_int("n_layers", n_layers, minimum=1)
    if std is not None:
        std = check_real("std", std, minimum=0.0, strict_minimum=True)
    seed = check_int("seed", seed, minimum=0)
    if not isinstance(dry_run, bool):
        raise ValueError(f"dry_run={dry_run!r} is not valid; allowed: True or False.")
    found = find_residual_branches(model, branches=branches)
    notes = list(found.notes)
    if not found.branches:
        notes.append("no residual branch found: nothing to do (pass branches= to name them)")
    head = _classifier(model, found, classifier) if policy == "fixup" else None
    actions = _plan(policy, found, classifier=head, n_layers=n_layers, std=std)
    if not dry_run:
        _write(model, actions, seed)
    return ResidualReport(
        policy,
        found.branches,
        tuple(actions),
        found.method,
        None if head is None else head.name,
        dry_run,
        tuple(notes),
    )


def _write(model: nn.Module, actions: list[ResidualAction], seed: int) -> None:
    params = dict(model.named_parameters(remove_duplicate=False))
    missing = [a.parameter for a in actions if a.parameter not in params]
    if missing:
        raise ValueError(f"parameters {missing} are not in the model (tied or removed?).")
    targets: dict[str, torch.Tensor] = {a.parameter: params[a.parameter] for a in actions}
    saved = {name: p.detach().clone() for name, p in targets.items()}
    done: set[int] = set()
    try:
        with torch.no_grad():
            for a in actions:
                p = params[a.parameter]
                if id(p) in done and a.action == "scale":
                    continue  # a tied weight is scaled once
                done.add(id(p))
                _apply(p, a, seed)
    except BaseException:
        with torch.no_grad():
            for name, old in saved.items():
                params[name].copy_(old)
        raise


def _apply(p: torch.Tensor, a: ResidualAction, seed: int) -> None:
    if a.action == "zero":
        p.zero_()
    elif a.action == "scale":
        p.mul_(a.value)
    else:
        fill_(p, Normal(0.0, a.value), seed=seed, name=a.parameter)
