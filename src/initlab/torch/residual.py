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

Branches are found on the model's data-flow graph, the one ``initlab.init`` discovers
activations on (torch.fx tracing, else one recorded forward pass on ``example_inputs``): an
addition of two data-dependent tensors is a residual add when, from the last tensor both
depend on (the block input), one operand is reached through no parametrized layer (identity
shortcut) or through exactly one affine layer while the other goes through two or more
(projection shortcut, as in ResNet's downsampling blocks); the other operand's path is the
branch. torch's TransformerEncoderLayer and TransformerDecoderLayer, which fx does not look
into, are known by structure. ``branches=`` overrides discovery by name.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from rich.table import Table
from torch import nn

from initlab._format import num
from initlab._validation import check_int, check_real, choice_error
from initlab.reporting import Report
from initlab.schemes import Normal
from initlab.torch.fill import fill_
from initlab.torch.model.anatomy import layer_kind
from initlab.torch.model.graph import Graph, Node, record_or_fail, try_fx
from initlab.torch.runtime import Preserved, inputs_argument

__all__ = [
    "POLICIES",
    "BranchLayer",
    "ResidualAction",
    "ResidualBranch",
    "ResidualReport",
    "apply_residual_policy",
    "find_residual_branches",
    "plan_residual_policy",
    "residual_option",
    "write_residual_actions",
    "write_residual_policy",
]

POLICIES = ("zero_last", "fixup", "gpt2")
_POLICY_ALIASES = {"goyal": "zero_last", "zero_init_residual": "zero_last", "gpt-2": "gpt2"}

_FUNCTIONAL_AFFINE = frozenset(
    {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
     "conv_transpose3d"}
)  # fmt: skip


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
    """An affine layer or a normalization, by the layer registry (its weight and bias
    names: ``out_proj.weight`` for attention), else a user's module with a weight."""
    kind = layer_kind(module)
    if kind is None or not (kind.affine or kind.norm) or kind.name == "named_norm":
        return _custom_layer(name, module)
    if not isinstance(_parameter(module, kind.weight), nn.Parameter):
        return None  # a parametrized weight, or a norm with affine=False: nothing to write
    bias = kind.bias if isinstance(_parameter(module, kind.bias), nn.Parameter) else None
    return BranchLayer(name, type(module).__name__, _join(name, kind.weight),
                       _join(name, bias), norm=kind.norm)  # fmt: skip


def _parameter(module: nn.Module, name: str | None) -> Any:
    """The tensor registered as parameter ``name`` (dotted) of ``module``, or None."""
    if name is None:
        return None
    path, _, local = name.rpartition(".")
    owner = module.get_submodule(path) if path else module
    return owner._parameters.get(local)


def _custom_layer(name: str, module: nn.Module) -> BranchLayer | None:
    """A user's module holding its own ``weight`` (the graph may keep it as one step): a
    2-D or larger weight is an affine layer, a 1-D one in a ``*Norm*`` class a normalization."""
    if type(module).__module__.startswith("torch.nn"):
        return None
    weight = module._parameters.get("weight")
    if not isinstance(weight, nn.Parameter):
        return None
    bias = "bias" if isinstance(module._parameters.get("bias"), nn.Parameter) else None
    kind = type(module).__name__
    if weight.dim() >= 2:
        return BranchLayer(name, kind, _join(name, "weight"), _join(name, bias))
    if "norm" in kind.lower():
        return BranchLayer(name, kind, _join(name, "weight"), _join(name, bias), norm=True)
    return None


def _join(prefix: str, name: str | None) -> str | None:
    if name is None:
        return None
    return f"{prefix}.{name}" if prefix else name


# --------------------------------------------------------------------------------------
# Branches on the data-flow graph
# --------------------------------------------------------------------------------------


def _node_layer(node: Node, params: Mapping[str, nn.Parameter]) -> BranchLayer | None:
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
    graph: Graph, params: Mapping[str, nn.Parameter]
) -> tuple[list[ResidualBranch], list[BranchLayer]]:
    """Residual branches closed by an add, and every affine layer in execution order."""
    nodes = graph.nodes
    ancestors: list[int] = []  # bit k set: node k is an ancestor
    for node in nodes:
        bits = 0
        for i in node.inputs:
            bits |= ancestors[i.index] | (1 << i.index)
        ancestors.append(bits)
    layers = {n.index: layer for n in nodes if (layer := _node_layer(n, params)) is not None}

    def path(fork: int, end: Node) -> list[int]:
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
            branches.append(ResidualBranch(label, tuple(branch), graph.method, tuple(skip)))
    affine: dict[str, BranchLayer] = {}
    for k in sorted(layers):
        if not layers[k].norm:
            affine.setdefault(layers[k].name, layers[k])
    return branches, list(affine.values())


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
    example_inputs: Any = None,
    graph: Graph | None = None,
) -> ResidualDiscovery:
    """The residual branches of ``model`` (see the module docstring for the rule).

    The graph is the one ``initlab.init`` discovers activations on
    (:mod:`initlab.torch.model.graph`): torch.fx tracing, or, when fx cannot trace forward,
    one recorded forward pass on ``example_inputs``; ``graph=`` passes one already built.

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
        return ResidualDiscovery(
            tuple(_override_branches(model, branches)), tuple(_registered(model)), "override"
        )
    if graph is None:
        graph, notes = _graph(model, example_inputs)
    found: list[ResidualBranch] = []
    method = "structure"
    if graph is not None:
        found, layers = _branches_from_graph(graph, params)
        method = graph.method
        if graph.opaque:
            notes.append(f"the graph treats {', '.join(graph.opaque)} as opaque steps")
    inside = {layer.name for b in found for layer in b.layers}
    for branch in _structure_branches(model):
        if not any(layer.name in inside for layer in branch.layers):
            found.append(branch)
    if not layers:  # registration order, when no graph gave the execution order
        layers = _registered(model)
    return ResidualDiscovery(tuple(found), tuple(layers), method, tuple(notes))


def _graph(model: nn.Module, example_inputs: Any) -> tuple[Graph | None, list[str]]:
    """fx, else a recorded forward on ``example_inputs``, else None (with the reasons)."""
    notes: list[str] = []
    graph = try_fx(model, notes)
    if graph is not None:
        return graph, []
    if example_inputs is None:
        return None, [notes[0] + "; pass example_inputs to record one forward pass"]
    return record_or_fail(model, example_inputs), notes


def _registered(model: nn.Module) -> list[BranchLayer]:
    return [
        layer
        for name, m in model.named_modules()
        if (layer := _module_layer(name, m)) is not None and not layer.norm
    ]


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
class ResidualReport(Report):
    """What :func:`apply_residual_policy` found and did (or would do, with ``dry_run``)."""

    policy: str
    branches: tuple[ResidualBranch, ...]
    actions: tuple[ResidualAction, ...]
    method: str
    classifier: str | None = None
    dry_run: bool = False
    notes: tuple[str, ...] = ()
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form."""
        return {
            "policy": self.policy,
            "seed": self.seed,
            "method": self.method,
            "classifier": self.classifier,
            "dry_run": self.dry_run,
            "notes": list(self.notes),
            "branches": [b.to_dict() for b in self.branches],
            "actions": [dataclasses.asdict(a) for a in self.actions],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResidualReport:
        """Inverse of :meth:`to_dict`."""

        def branch(d: dict[str, Any]) -> ResidualBranch:
            return ResidualBranch(
                d["add"],
                tuple(BranchLayer(**layer) for layer in d["layers"]),
                d["found_by"],
                tuple(BranchLayer(**layer) for layer in d.get("shortcut", ())),
            )

        return cls(
            policy=data["policy"],
            branches=tuple(branch(b) for b in data["branches"]),
            actions=tuple(ResidualAction(**a) for a in data["actions"]),
            method=data["method"],
            classifier=data.get("classifier"),
            dry_run=data["dry_run"],
            notes=tuple(data.get("notes", ())),
            seed=data.get("seed", 0),
        )

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
            value = "" if a.action == "zero" else num(a.value, 4)
            table.add_row(a.parameter, a.action, value, a.branch, a.reason)
        if self.notes:
            table.caption = "; ".join(self.notes)
        return table

    def __rich__(self) -> Table:
        return self.table()


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
    seed: int | None = None,
    example_inputs: Any = None,
    dry_run: bool = False,
    inputs: Any = None,
) -> ResidualReport:
    """Apply a residual-aware policy (``zero_last``, ``fixup``, ``gpt2``) to ``model`` in place.

    Run it after the weights have their base initialization (``initlab.init(model, ...,
    residual=policy)`` does both): ``zero_last`` and ``fixup`` zero and scale the weights
    already there; ``gpt2`` scales the residual projections by ``1/sqrt(N)``, or with ``std``
    redraws them from ``N(0, (std/sqrt(N))^2)`` (stream keyed by ``seed`` and the parameter
    name; ``seed=None`` draws a fresh seed, recorded in the report, as ``initlab.init``).
    ``classifier`` (Fixup): ``"auto"`` takes the last affine layer outside every branch,
    ``None`` leaves it, a module name picks it. ``n_layers``: transformer blocks
    (``N = 2 * n_layers``); by default ``N`` is the number of branches found.
    ``inputs`` (or its first name ``example_inputs``): for a model fx cannot trace, one
    recorded forward pass finds the branches. ``dry_run``: plan and report only. If
    anything fails, no parameter changes.

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
    if not isinstance(dry_run, bool):
        raise TypeError(f"dry_run={dry_run!r} is not valid; allowed: True or False.")
    example_inputs = inputs_argument(inputs, example_inputs)
    plan = plan_residual_policy(
        model,
        policy,
        branches=branches,
        classifier=classifier,
        n_layers=n_layers,
        std=std,
        seed=seed,
        example_inputs=example_inputs,
    )
    return plan if dry_run else write_residual_policy(model, plan)


def plan_residual_policy(
    model: nn.Module,
    policy: str,
    *,
    branches: Sequence[Sequence[str]] | Mapping[str, Sequence[str]] | None = None,
    classifier: str | None = "auto",
    n_layers: int | None = None,
    std: float | None = None,
    seed: int | None = None,
    example_inputs: Any = None,
    graph: Graph | None = None,
) -> ResidualReport:
    """What :func:`apply_residual_policy` would write (a report with ``dry_run=True``); every
    argument is checked here, so :func:`write_residual_policy` has nothing left to refuse.
    ``graph``: a data-flow graph already built (``initlab.init`` passes its own)."""
    policy = _policy(policy)
    if n_layers is not None:
        n_layers = check_int("n_layers", n_layers, minimum=1)
    if std is not None:
        std = check_real("std", std, minimum=0.0, strict_minimum=True)
    seed = check_int("seed", secrets.randbelow(2**32) if seed is None else seed, minimum=0)
    found = find_residual_branches(
        model, branches=branches, example_inputs=example_inputs, graph=graph
    )
    notes = list(found.notes)
    if not found.branches:  # then nothing at all is written, the classifier included
        notes.append("no residual branch found: nothing to do (pass branches= to name them)")
        warnings.warn(
            f"residual={policy!r}: no residual branch found in {type(model).__name__}, so the "
            "policy changes nothing (not even the classifier); pass branches= to name them.",
            UserWarning,
            stacklevel=3,
        )
    head = _classifier(model, found, classifier) if policy == "fixup" and found.branches else None
    actions = _plan(policy, found, classifier=head, n_layers=n_layers, std=std)
    params = dict(model.named_parameters(remove_duplicate=False))
    missing = sorted({a.parameter for a in actions} - set(params))
    if missing:
        raise ValueError(f"parameters {missing} are not in the model; nothing was written.")
    return ResidualReport(
        policy=policy,
        branches=found.branches,
        actions=tuple(actions),
        method=found.method,
        classifier=None if head is None else head.name,
        dry_run=True,
        notes=tuple(notes),
        seed=seed,
    )


def write_residual_policy(model: nn.Module, plan: ResidualReport) -> ResidualReport:
    """Write a plan from :func:`plan_residual_policy`; on any error every parameter it
    touched gets its old value back. Returns the report with ``dry_run=False``."""
    state = Preserved(model, restore="on_error", parameters=False, buffers=False)
    with state:
        return write_residual_actions(model, plan, lambda p, name: state.save(p))


def write_residual_actions(
    model: nn.Module,
    plan: ResidualReport,
    before_write: Callable[[torch.Tensor, str], None] | None = None,
) -> ResidualReport:
    """Write a plan's actions, calling ``before_write(parameter, name)`` before each write
    (a transaction keeps the old values there); no rollback of its own."""
    params = dict(model.named_parameters(remove_duplicate=False))
    done: set[int] = set()
    with torch.no_grad():
        for a in plan.actions:
            p = params[a.parameter]
            if id(p) in done and a.action == "scale":
                continue  # a tied weight is scaled once
            done.add(id(p))
            if before_write is not None:
                before_write(p, a.parameter)
            _apply(p, a, plan.seed)
    return dataclasses.replace(plan, dry_run=False)


def _apply(p: torch.Tensor, a: ResidualAction, seed: int) -> None:
    if a.action == "zero":
        p.zero_()
    elif a.action == "scale":
        p.mul_(a.value)
    else:
        fill_(p, Normal(0.0, a.value), seed=seed, name=a.parameter)


_OPTIONS = ("policy", "branches", "classifier", "n_layers", "std", "example_inputs")


def residual_option(value: str | Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`plan_residual_policy` from ``initlab.init``'s ``residual=``:
    a policy name, or a dict with ``policy`` and any of ``branches``, ``classifier``,
    ``n_layers``, ``std``.

    >>> residual_option("fixup")
    {'policy': 'fixup'}
    >>> residual_option({"policy": "gpt2", "std": 0.02, "n_layers": 12})["n_layers"]
    12
    """
    if isinstance(value, str):
        return {"policy": value}
    if not isinstance(value, Mapping) or "policy" not in value:
        raise ValueError(
            f"residual={value!r} is not valid; allowed: None, a policy name "
            f"({', '.join(repr(p) for p in POLICIES)}) or a dict with 'policy' and any of "
            f"{list(_OPTIONS[1:-1])}."
        )
    unknown = sorted(set(value) - set(_OPTIONS[:-1]))
    if unknown:
        raise ValueError(f"residual: unknown key(s) {unknown}; allowed: {list(_OPTIONS[:-1])}.")
    return dict(value)
