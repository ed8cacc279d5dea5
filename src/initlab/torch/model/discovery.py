"""Which nonlinearity follows each layer, and how that was found.

:func:`discover` answers, for every layer of a model, what its output reaches first once it
has passed through the steps that do not change a gain (dropout, reshapes, pooling,
normalization, concatenation, scaling by a constant, adding a bias): a nonlinearity (with its
slope), or something that is not one, which gets gain 1: the model's output, a residual add
(two data-dependent tensors summed), attention logits or a product of two signals, the next
layer, a softmax.

It tries, in order, per layer:

1. ``fx``: torch.fx symbolic tracing of ``forward`` (no forward is run), so that functional
   calls count: ``F.relu(x)``, ``torch.tanh(x)``, ``x.relu()``, ``F.gelu(x)``,
   ``F.leaky_relu(x, 0.2)``; a submodule that cannot be traced becomes opaque;
2. ``fake``: for a model fx cannot trace (or layers inside an opaque submodule), without
   ``example_inputs`` (or on the meta device): one forward pass on fake tensors, inputs read
   off the model (:mod:`initlab.torch.model.inputs`, :mod:`initlab.torch.model.fake`): no
   compute, no memory, the model untouched;
3. ``hooks``: one forward pass on ``example_inputs``, recorded with hooks and a torch function
   mode (for a model fx cannot trace, or layers inside an opaque submodule);
4. ``structure``: known layouts of torch's own blocks (TransformerEncoderLayer and
   TransformerDecoderLayer: ``linear1`` then ``self.activation``, ``linear2`` and attention
   into residual adds);
5. ``module order``: registration order, as for an ``nn.Sequential``: the next module that is
   not a pass-through step (``initlab.init`` warns, naming every layer guessed this way).

The answer per layer is a :class:`LayerLink`; :class:`Discovery` holds them all together with
the execution order and the graph, for reuse (residual branches, probes).

>>> import torch
>>> import torch.nn.functional as F
>>> class Net(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc1, self.fc2 = torch.nn.Linear(4, 8), torch.nn.Linear(8, 2)
...     def forward(self, x):
...         return self.fc2(F.leaky_relu(self.fc1(x), 0.2))
>>> found = discover(Net())
>>> found.links["fc1"].activation.label, found.links["fc1"].found_by
('leaky_relu(0.2)', 'fx')
>>> found.links["fc2"].kind
'output'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.nn.utils.parametrize import is_parametrized

from initlab._validation import choice_error
from initlab.torch.model.activations import (
    SOFTMAX_MODULES,
    Activation,
    function_activation,
    is_elementwise,
    make_activation,
    module_activation,
)
from initlab.torch.model.anatomy import atomic_types, is_norm, layer_kind
from initlab.torch.model.fake import fake_graph
from initlab.torch.model.graph import (
    Graph,
    Node,
    Ref,
    is_leaf,
    record_or_fail,
    try_fx,
)
from initlab.torch.model.signal import feeds_normalization, origin
from initlab.torch.runtime import Preserved

__all__ = ["Discovery", "LayerLink", "discover", "is_norm"]


@dataclass(frozen=True)
class LayerLink:
    """What a layer's output reaches first.

    ``kind``: ``"activation"`` (then ``activation`` is set), ``"output"``, ``"residual"``,
    ``"attention"``, ``"product"``, ``"layer"``, ``"softmax"``, ``"opaque"``, ``"op"`` (an
    operation with no gain rule) or ``"unused"``. ``detail`` names the step (``F.relu``,
    ``module 'act'``). ``found_by``: ``fx``, ``fake``, ``hooks``, ``structure (...)`` or
    ``module order``. ``norms`` lists normalizations passed on the way; ``also`` other
    things the output reaches on other paths.
    """

    target: str
    kind: str
    activation: Activation | None
    detail: str
    found_by: str
    norms: tuple[str, ...] = ()
    also: tuple[str, ...] = ()

    @property
    def follows(self) -> str:
        """One phrase: ``relu (F.relu)``, ``residual add``, ``output``."""
        if self.activation is not None:
            return f"{self.activation.label} ({self.detail})"
        return self.detail

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON."""
        return {
            "target": self.target,
            "kind": self.kind,
            "activation": None if self.activation is None else self.activation.to_dict(),
            "detail": self.detail,
            "found_by": self.found_by,
            "norms": list(self.norms),
            "also": list(self.also),
        }


@dataclass
class Discovery:
    """All links of a model.

    ``links``: leaf layer path -> :class:`LayerLink`. ``param_links``: parameter name ->
    link, for parameters read directly in a traced ``forward`` (``x @ self.weight``).
    ``order``: leaf modules in execution order (registration order when no graph ran).
    ``graph``: the fx graph, else the recorded one, else None; ``recorded``: the graph of the
    recorded forward pass, if one ran. ``method``: which methods contributed. ``notes``: why a
    method was not used.
    """

    links: dict[str, LayerLink]
    param_links: dict[str, LayerLink]
    order: tuple[str, ...]
    method: str
    graph: Graph | None = None
    opaque: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    recorded: Graph | None = field(default=None, repr=False)

    def link_for(self, module_path: str, param_name: str | None = None) -> LayerLink | None:
        """The link of a parameter read in forward, else of its module."""
        if param_name is not None and param_name in self.param_links:
            return self.param_links[param_name]
        return self.links.get(module_path)

    def residual_layers(self) -> tuple[str, ...]:
        """Layers whose output goes (through pass-through steps) into a residual add."""
        return tuple(path for path, link in self.links.items() if link.kind == "residual")


# --------------------------------------------------------------------------------------
# What a step does to a signal
# --------------------------------------------------------------------------------------


def _classes(*names: str) -> tuple[type, ...]:
    return tuple(getattr(nn, n) for n in names if hasattr(nn, n))



_PASS_MODULES = (
    *_classes(
        "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
        "Identity", "Flatten", "Unflatten", "Upsample", "UpsamplingNearest2d",
        "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle", "ChannelShuffle",
    ),
    *_classes(*(f"{kind}{d}d" for kind in (
        "MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "LPPool", "FractionalMaxPool",
        "ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad",
    ) for d in (1, 2, 3))),
)  # fmt: skip

NORM_OPS = frozenset(
    {"layer_norm", "batch_norm", "group_norm", "instance_norm", "rms_norm", "normalize",
     "local_response_norm"}
)  # fmt: skip

PASS_OPS = frozenset(
    {
        "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
        "feature_alpha_dropout", "view", "view_as", "reshape", "reshape_as", "flatten",
        "unflatten", "permute", "transpose", "t", "T", "mT", "data", "swapaxes", "swapdims",
        "movedim", "moveaxis", "contiguous", "squeeze", "unsqueeze", "expand", "expand_as",
        "repeat", "repeat_interleave", "tile", "getitem", "chunk", "split", "split_with_sizes",
        "tensor_split", "unbind", "narrow", "select", "index_select", "cat", "stack", "hstack",
        "vstack", "dstack", "clone", "detach", "to", "float", "double", "half", "bfloat16",
        "type", "type_as", "cpu", "cuda", "pad", "interpolate", "upsample", "upsample_nearest",
        "upsample_bilinear", "roll", "flip", "fliplr", "flipud", "pixel_shuffle",
        "pixel_unshuffle", "channel_shuffle", "masked_fill", "identity", "neg",
        *(f"{p}pool{d}d" for p in ("max_", "avg_", "adaptive_avg_", "adaptive_max_", "lp_")
          for d in (1, 2, 3)),
        "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
        *NORM_OPS,
    }
)  # fmt: skip

ADD_OPS = frozenset({"add", "sub"})
MUL_OPS = frozenset({"mul", "div"})
ATTENTION_OPS = frozenset(
    {"matmul", "bmm", "mm", "einsum", "baddbmm", "scaled_dot_product_attention", "bilinear"}
)
LINEAR_OPS = frozenset(
    {"linear", "addmm", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
     "conv_transpose3d"}
)  # fmt: skip
SOFTMAX_OPS = frozenset({"softmax", "log_softmax", "softmin"})


def is_layer(module: nn.Module) -> bool:
    """A module whose parameters are weights that discovery should find a successor for."""
    kind = layer_kind(module)
    if (kind is not None and kind.atomic) or is_parametrized(module):
        return True
    if kind is not None and (kind.norm or kind.name == "prelu"):
        return False
    return next(module.parameters(recurse=False), None) is not None


@dataclass(frozen=True)
class _Step:
    kind: str  # "pass" or one of LayerLink's kinds
    detail: str
    activation: Activation | None = None
    norm: str | None = None


class _Classifier:
    """Classifies a graph node as a step on a signal arriving from one of its inputs."""

    def __init__(
        self, opaque: tuple[str, ...], params: dict[str, nn.Parameter] | None = None
    ) -> None:
        self.opaque = set(opaque)
        self.params = params or {}
        self.module_cache: dict[int, Activation | None] = {}
        self.steps: dict[int, _Step] = {}

    def concrete(self, value: Any, node: Node) -> Any:
        """Arguments with tensor placeholders replaced by parameter values where known."""
        if isinstance(value, Ref):
            source = node.inputs[value.index]
            return self.params.get(source.target, source) if source.op == "attr" else source
        if isinstance(value, (list, tuple)):
            return type(value)(self.concrete(v, node) for v in value)
        if isinstance(value, dict):
            return {k: self.concrete(v, node) for k, v in value.items()}
        return value

    def module(self, node: Node) -> _Step:
        module, path = node.module, node.target
        assert module is not None
        if path in self.opaque:
            return _Step("opaque", f"opaque module '{path}'")
        if is_norm(module):
            return _Step("pass", f"module '{path}'", norm=path)
        if isinstance(module, _PASS_MODULES):
            return _Step("pass", f"module '{path}'")
        if isinstance(module, SOFTMAX_MODULES):
            return _Step("softmax", f"softmax (module '{path}')")
        if is_layer(module):
            return _Step("layer", f"next layer '{path}'")
        if id(module) not in self.module_cache:
            self.module_cache[id(module)] = module_activation(module)
        activation = self.module_cache[id(module)]
        if activation is not None:
            return _Step("activation", f"module '{path}'", activation)
        return _Step("op", f"module '{path}' ({type(module).__name__}, no gain rule)")

    def call(self, node: Node) -> _Step:
        name = node.target
        args = self.concrete(node.args, node)
        kwargs = self.concrete(node.kwargs, node)
        activation = function_activation(name, args, kwargs)
        if activation is not None:
            return _Step("activation", node.display or name, activation)
        if name in NORM_OPS:
            return _Step("pass", node.display, norm=node.display)
        if name in PASS_OPS:
            return _Step("pass", node.display)
        data = node.data_inputs()
        if name in ADD_OPS:
            if len(data) >= 2:
                return _Step("residual", f"residual add ({node.display})")
            return _Step("pass", node.display)
        if name in MUL_OPS:
            if len(data) >= 2:
                return _Step("product", f"product of two signals ({node.display})")
            return _Step("pass", node.display)
        if name in LINEAR_OPS or name in ATTENTION_OPS:
            weights = [n.target for n in node.inputs if n.op == "attr"]
            if name in LINEAR_OPS or (weights and len(data) < 2):
                shown = f" with '{weights[0]}'" if weights else ""
                return _Step("layer", f"next layer ({node.display}{shown})")
            return _Step("attention", f"attention logits or product ({node.display})")
        if name in SOFTMAX_OPS:
            return _Step("softmax", f"softmax ({node.display})")
        probe = node.probe()
        if probe is not None and is_elementwise(probe):
            return _Step("activation", node.display, make_activation(name, None, fn=probe))
        return _Step("op", f"{node.display} (no gain rule)")

    def step(self, node: Node) -> _Step:
        """What ``node`` does to a signal arriving at it (cached: it depends on the node only)."""
        if id(node) not in self.steps:
            if node.op == "output":
                step = _Step("output", "output")
            elif node.op == "module":
                step = self.module(node)
            elif node.op == "call":
                step = self.call(node)
            else:
                step = _Step("op", node.label)
            self.steps[id(node)] = step
        return self.steps[id(node)]


@dataclass(frozen=True)
class _End:
    step: _Step
    norms: tuple[str, ...]


def _ends(start: list[Node], classify: _Classifier, live: set[int] | None = None) -> list[_End]:
    """Everything the outputs of ``start`` reach through pass-through steps, in graph order,
    on paths to the model's output (``live``; all paths if none of them gets there)."""
    found: list[_End] = []
    seen: set[int] = set()
    same = _SameSignal(start, classify)

    def walk(node: Node, norms: tuple[str, ...]) -> None:
        users = sorted(node.users, key=lambda n: n.index)
        for user in users:  # an in-place nonlinearity changes what every other user sees
            if user.inplace and user.op == "call":
                step = classify.step(user)
                if step.kind == "activation":
                    found.append(_End(step, norms))
                    return
        for user in users:
            if user.index in seen or (live is not None and user.index not in live):
                continue
            seen.add(user.index)
            step = same.step(user, classify.step(user))
            if step is None:  # a statistic of the signal that normalizes it further on
                continue
            if step.kind == "pass":
                walk(user, (*norms, step.norm) if step.norm else norms)
            else:
                found.append(_End(step, norms))

    for node in start:
        walk(node, ())
    if not found and live is not None:
        return _ends(start, classify, None)
    return found


class _SameSignal:
    """Rotary embeddings and written-out normalizations: steps where a signal meets itself
    (:mod:`initlab.torch.model.signal`) pass it on instead of ending it."""

    def __init__(self, start: list[Node], classify: _Classifier) -> None:
        self.start = {n.index for n in start}
        self.memo: dict[int, str | None] = {}
        self.is_pass = lambda n: classify.step(n).kind == "pass"

    def step(self, node: Node, step: _Step) -> _Step | None:
        if node.op != "call" or step.kind == "pass":
            return step
        kind = origin(node, self.start, self.is_pass, self.memo)
        if kind == "stat" and feeds_normalization(node, self.start, self.is_pass, self.memo):
            return None
        if kind == "signal" and step.kind in ("residual", "product"):
            if node.target in MUL_OPS:
                return _Step("pass", node.display, norm=f"normalization ({node.display})")
            return _Step("pass", f"{node.display} of the same signal (rotary, centering)")
        return step


def _consumers(attr: Node) -> list[Node]:
    """The first operations that use a parameter read in forward (after views of it)."""
    out: list[Node] = []
    stack = [attr]
    while stack:
        node = stack.pop()
        for user in node.users:
            if user.op == "call" and user.target in PASS_OPS and not user.data:
                stack.append(user)
            elif user not in out:
                out.append(user)
    return out


def _resolve(target: str, ends: list[_End], found_by: str) -> LayerLink:
    if not ends:
        return LayerLink(target, "unused", None, "not used in forward", found_by)
    activations = [e for e in ends if e.step.kind == "activation"]
    chosen = activations[0] if activations else ends[0]
    labels: list[str] = []
    for end in ends:
        if end is chosen:
            continue
        a = end.step.activation
        text = f"{a.label} ({end.step.detail})" if a is not None else end.step.detail
        if text not in labels:
            labels.append(text)
    return LayerLink(
        target,
        chosen.step.kind,
        chosen.step.activation,
        chosen.step.detail,
        found_by,
        tuple(dict.fromkeys(chosen.norms)),
        tuple(labels),
    )


def _graph_links(
    graph: Graph, layers: dict[str, nn.Module], params: dict[str, nn.Parameter]
) -> tuple[dict[str, LayerLink], dict[str, LayerLink]]:
    classify = _Classifier(graph.opaque, params)
    live = graph.live()
    links: dict[str, LayerLink] = {}
    for path in layers:
        calls = graph.module_nodes(path)
        if calls:
            links[path] = _resolve(path, _ends(calls, classify, live), graph.method)
    param_links: dict[str, LayerLink] = {}
    for node in graph.nodes:
        if node.op == "attr" and node.target in params:
            ends: list[_End] = []
            for consumer in _consumers(node):
                if consumer.op == "output":
                    ends.append(_End(_Step("output", "output"), ()))
                else:
                    ends.extend(_ends([consumer], classify, live))
            param_links[node.target] = _resolve(node.target, ends, graph.method)
    return links, param_links


# --------------------------------------------------------------------------------------
# Known structures and module order
# --------------------------------------------------------------------------------------


def _callable_activation(fn: Any) -> Activation | None:
    if isinstance(fn, nn.Module):
        return module_activation(fn)
    name = getattr(fn, "__name__", "")
    found = function_activation(name, (None,), {})
    if found is not None:
        return found
    if callable(fn) and is_elementwise(fn):
        return make_activation(name or "function", None, fn=fn)
    return None


def _transformer_layer(module: nn.Module, path: str) -> dict[str, LayerLink]:
    prefix = f"{path}." if path else ""
    how = f"structure ({type(module).__name__})"
    activation = _callable_activation(getattr(module, "activation", None))
    links = {}
    if activation is not None:
        links[f"{prefix}linear1"] = LayerLink(
            f"{prefix}linear1", "activation", activation, "self.activation", how
        )
    else:
        links[f"{prefix}linear1"] = LayerLink(
            f"{prefix}linear1", "op", None, "self.activation (no gain rule)", how
        )
    for child in ("linear2", "self_attn", "multihead_attn"):
        if hasattr(module, child):
            links[f"{prefix}{child}"] = LayerLink(
                f"{prefix}{child}", "residual", None, "residual add", how
            )
    return links


#: Layouts of torch's own blocks whose forward fx cannot trace.
STRUCTURES: dict[type[nn.Module], Callable[[nn.Module, str], dict[str, LayerLink]]] = {
    nn.TransformerEncoderLayer: _transformer_layer,
    nn.TransformerDecoderLayer: _transformer_layer,
}


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    cache: dict[int, bool] = {}
    out: list[tuple[str, nn.Module]] = []
    skip: list[str] = []
    for path, module in model.named_modules():
        if any(path.startswith(p + ".") for p in skip):
            continue
        if is_leaf(module, cache) and (path or not list(model.children())):
            out.append((path, module))
            skip.append(path)
    return out


def _module_order_links(model: nn.Module) -> dict[str, LayerLink]:
    leaves = _leaves(model)
    classify = _Classifier(())
    steps = [
        classify.module(Node(0, "module", path, f"module '{path}'", module))
        for path, module in leaves
    ]
    links: dict[str, LayerLink] = {}
    for i, (path, module) in enumerate(leaves):
        if not is_layer(module):
            continue
        norms: list[str] = []
        for step in steps[i + 1 :]:
            if step.kind == "pass":
                if step.norm:
                    norms.append(step.norm)
                continue
            link = LayerLink(
                path, step.kind, step.activation, step.detail, "module order", tuple(norms)
            )
            break
        else:
            link = LayerLink(path, "output", None, "output (last module)", "module order",
                             tuple(norms))  # fmt: skip
        links[path] = link
    return links


# --------------------------------------------------------------------------------------
# discover()
# --------------------------------------------------------------------------------------


def _inside(path: str, roots: tuple[str, ...] | list[str]) -> str | None:
    for root in roots:
        if root == "" or path == root or path.startswith(root + "."):
            return root
    return None


def discover(
    model: nn.Module,
    example_inputs: Any = None,
    *,
    methods: tuple[str, ...] = ("fx", "fake", "hooks", "structure", "module order"),
) -> Discovery:
    """Find what follows every layer of ``model`` (see the module docstring for the methods).

    ``example_inputs`` (a tensor, a tuple of positional arguments or a dict of keyword
    arguments) enables the ``hooks`` method: one forward pass. Discovery leaves the model as
    it was: parameters, buffers (a forward's own counters, spectral_norm's u and v), the
    tensors in every slot, training flags and torch's random state. A forward that fails on
    them is a ValueError. ``methods`` restricts the methods tried (``"module order"`` always
    runs last).

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
    ...                             torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(72, 2))
    >>> link = discover(model).links["0"]
    >>> link.activation.name, link.norms
    ('relu', ('1',))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={model!r} is not valid; allowed: a torch.nn.Module.")
    allowed = ("fx", "fake", "hooks", "structure", "module order")
    for method in methods:
        if method not in allowed:
            raise choice_error("methods", method, allowed)
    # Nothing discovery runs (a trace, a probe of a parameter-free module, a recorded
    # forward) may leave a trace in the model: every buffer and slot is put back.
    with Preserved(model, parameters=False):
        return _discover(model, example_inputs, methods)


def _discover(model: nn.Module, example_inputs: Any, methods: tuple[str, ...]) -> Discovery:
    if is_leaf(model):  # the model is one layer: its output is the model's output
        link = LayerLink("", "output", None, "output (the model is one layer)", "structure")
        alone = {"": link} if is_layer(model) else {}
        if isinstance(model, nn.MultiheadAttention):
            alone["out_proj"] = LayerLink("out_proj", "output", None, link.detail, "structure")
        return Discovery(alone, {}, ("",), "structure")
    layers = {path: m for path, m in model.named_modules() if is_layer(m)}
    notes: list[str] = []
    fx_graph = try_fx(model, notes) if "fx" in methods else None
    run_graph: Graph | None = None
    need_run = fx_graph is None or bool(fx_graph.opaque)
    on_meta = any(p.is_meta for p in model.parameters())
    if "fake" in methods and need_run and (example_inputs is None or on_meta):
        run_graph, note = fake_graph(model, example_inputs)  # issue 11: no compute, no writes
        notes.append(note)
    elif "hooks" in methods and example_inputs is not None and need_run:
        run_graph = record_or_fail(model, example_inputs)
    links, param_links, used = _links_from_graphs(model, layers, (fx_graph, run_graph))
    # fx saw the whole model except its opaque parts (a fake forward all of it)
    whole = fx_graph if fx_graph is not None else run_graph
    if whole is not None and whole.method in ("fx", "fake"):
        _mark_unused(model, layers, whole, links, param_links)
    if "structure" in methods and _structure_links(model, links):
        used.append("structure")
    fallback = _module_order_links(model)
    if any(path not in links for path in fallback):
        used.append("module order")
    for path, link in fallback.items():
        links.setdefault(path, link)
    _attention_out_proj(model, links)
    order_graph = fx_graph if fx_graph is not None and not fx_graph.opaque else run_graph
    if order_graph is None:
        order_graph = fx_graph
    order = (
        order_graph.module_order()
        if order_graph is not None
        else tuple(p for p, _ in _leaves(model))
    )
    return Discovery(
        links=links,
        param_links=param_links,
        order=order,
        method=" + ".join(dict.fromkeys(used)) or "none",
        graph=fx_graph or run_graph,
        opaque=fx_graph.opaque if fx_graph is not None else (),
        notes=tuple(notes),
        recorded=run_graph,
    )


def _links_from_graphs(
    model: nn.Module, layers: dict[str, nn.Module], graphs: tuple[Graph | None, ...]
) -> tuple[dict[str, LayerLink], dict[str, LayerLink], list[str]]:
    """Links from the fx graph, then the recorded one for what fx could not see."""
    params = dict(model.named_parameters(remove_duplicate=False))
    links: dict[str, LayerLink] = {}
    param_links: dict[str, LayerLink] = {}
    into_opaque: dict[str, LayerLink] = {}
    used: list[str] = []
    for graph in graphs:
        if graph is None:
            continue
        g_links, g_params = _graph_links(graph, layers, params)
        for path, link in g_links.items():
            if not graph.covers(path) or path in links:
                continue
            if link.kind == "opaque":  # a better method may see inside; else keep this
                into_opaque.setdefault(path, link)
            else:
                links[path] = link
        for name, link in g_params.items():
            param_links.setdefault(name, link)
        if g_links or g_params:
            used.append(graph.method)
    for path, link in into_opaque.items():
        links.setdefault(path, link)
    return links, param_links, used


def _mark_unused(
    model: nn.Module,
    layers: dict[str, nn.Module],
    fx_graph: Graph,
    links: dict[str, LayerLink],
    param_links: dict[str, LayerLink],
) -> None:
    """fx saw the whole model except its opaque parts (a fake forward saw all of it): a layer
    it never met is unused."""
    atomic = _atomic(model)
    for path in layers:
        if path in links or not fx_graph.covers(path) or _inside(path, atomic):
            continue
        if fx_graph.module_nodes(path):
            continue
        if any(name.rpartition(".")[0] == path for name in param_links):
            continue
        links[path] = LayerLink(path, "unused", None, "not called in forward", fx_graph.method)


def _structure_links(model: nn.Module, links: dict[str, LayerLink]) -> bool:
    """Links of known structures (:data:`STRUCTURES`) not found otherwise; whether any."""
    hinted = False
    for path, module in model.named_modules():
        rule = STRUCTURES.get(type(module))
        if rule is None:
            continue
        for inner, link in rule(module, path).items():
            if inner in links:
                continue
            links[inner] = link
            hinted = True
            if inner.endswith(("self_attn", "multihead_attn")):
                out = f"{inner}.out_proj"
                links.setdefault(out, LayerLink(out, link.kind, None, link.detail, link.found_by))
    return hinted


def _attention_out_proj(model: nn.Module, links: dict[str, LayerLink]) -> None:
    """Attention's out_proj is called inside MultiheadAttention: it leads where attention
    does."""
    for path, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            inner = f"{path}.out_proj" if path else "out_proj"
            outer = links.get(path)
            if outer is not None and inner not in links:
                links[inner] = dataclasses.replace(outer, target=inner)


def _atomic(model: nn.Module) -> list[str]:
    """Paths of modules whose children are handled by the parent (attention's out_proj)."""
    atomic = atomic_types()
    return [p for p, m in model.named_modules() if isinstance(m, atomic) and p]
