"""A model's data flow as a small graph of layer calls and tensor operations.

Two builders give the same :class:`Graph`:

* :func:`trace_fx` traces ``forward`` symbolically with torch.fx, without running it, so that
  functional calls (``F.relu``, ``torch.tanh``, ``x.relu()``) are nodes like modules are. A
  submodule whose ``forward`` cannot be traced (data-dependent control flow) is retried as an
  opaque leaf, so one untraceable block does not lose the whole model.
* :func:`record_forward` runs ``forward`` once on example inputs and records, through forward
  hooks and a ``TorchFunctionMode``, every layer call and every torch function or tensor
  method applied to their outputs, linked by tensor identity. It leaves the model as it was:
  buffers (batch-norm running statistics) are restored, torch's random state is forked, no
  gradient is recorded, and the fused fast path of attention is switched off while it runs.

Leaves are the modules the graph does not look into (:func:`is_leaf`): layers with their own
parameters, MultiheadAttention and the recurrent layers, torch's parameter-free modules, and a
user's parameter-free module when it is an elementwise function; every other module is traced
through.

>>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
>>> [(n.op, n.target) for n in trace_fx(model).nodes]
[('input', 'input'), ('module', '0'), ('module', '1'), ('output', 'output')]
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.nn.utils.parametrize import is_parametrized
from torch.overrides import TorchFunctionMode

from initlab.torch.model.activations import module_activation
from initlab.torch.model.anatomy import atomic_types
from initlab.torch.runtime import Preserved, call_arguments, fx_tracing, model_running

__all__ = ["Graph", "Node", "is_leaf", "record_forward", "record_or_fail", "trace_fx", "try_fx"]


@dataclass(frozen=True)
class Ref:
    """Placeholder for the i-th tensor input inside a call's stored arguments."""

    index: int


@dataclass(eq=False)
class Node:
    """One value-producing step: an input, a layer call, a torch call, a parameter, the output.

    ``op`` is ``"input"``, ``"module"`` (``target`` is the module's path), ``"call"`` (a torch
    function or tensor method; ``target`` is its normalized name, e.g. ``"relu"``, ``"add"``),
    ``"attr"`` (a parameter or buffer read in ``forward``; ``target`` is its name), ``"const"``
    or ``"output"``. ``data`` says whether the value depends on the model's inputs.
    """

    index: int
    op: str
    target: str
    display: str = ""
    module: nn.Module | None = None
    fn: Callable[..., Any] | None = None
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: list[Node] = field(default_factory=list)
    users: list[Node] = field(default_factory=list)
    data: bool = False
    inplace: bool = False

    @property
    def label(self) -> str:
        """Short text for messages: ``module fc1``, ``call relu``."""
        return f"{self.op} {self.target}"

    def __repr__(self) -> str:
        return f"Node({self.index}, {self.label})"

    def data_inputs(self) -> list[Node]:
        """Distinct inputs whose values depend on the model's inputs, in argument order."""
        seen: list[Node] = []
        for node in self.inputs:
            if node.data and node not in seen:
                seen.append(node)
        return seen

    def probe(self) -> Callable[[torch.Tensor], Any] | None:
        """This call as a function of its one data input (other arguments fixed), or None.

        Used to test whether an unknown operation is elementwise and to compute its gain.
        """
        if self.op != "call" or self.fn is None:
            return None
        data = [i for i, node in enumerate(self.inputs) if node.data]
        if len(data) != 1 or len(self.inputs) != 1:
            return None
        fn, args, kwargs = self.fn, self.args, self.kwargs

        def substitute(value: Any, t: torch.Tensor) -> Any:
            if isinstance(value, Ref):
                return t
            if isinstance(value, (list, tuple)):
                return type(value)(substitute(v, t) for v in value)
            if isinstance(value, dict):
                return {k: substitute(v, t) for k, v in value.items()}
            return value

        def call(t: torch.Tensor) -> Any:
            return fn(*substitute(args, t), **substitute(kwargs, t))

        return call


@dataclass
class Graph:
    """Nodes in execution order, with users linked; built by :func:`trace_fx` or
    :func:`record_forward` (``method`` says which). ``opaque`` lists submodules fx could not
    trace into (treated as leaves)."""

    nodes: list[Node]
    method: str
    opaque: tuple[str, ...] = ()

    def module_nodes(self, path: str) -> list[Node]:
        """Every call of the module at ``path`` (a shared layer is called more than once)."""
        index = self.__dict__.get("_calls")
        if index is None:
            index = {}
            for n in self.nodes:
                if n.op == "module":
                    index.setdefault(n.target, []).append(n)
            self.__dict__["_calls"] = index
        return list(index.get(path, ()))

    def live(self) -> set[int]:
        """Indices of nodes whose value reaches the output (a check such as
        ``if x.abs().sum() > 0`` in a recorded forward is not on the way)."""
        alive: set[int] = set()
        stack = [n for n in self.nodes if n.op == "output"]
        while stack:
            node = stack.pop()
            if node.index in alive:
                continue
            alive.add(node.index)
            stack.extend(node.inputs)
        return alive

    def module_order(self) -> tuple[str, ...]:
        """Leaf modules in the order forward first calls them."""
        seen: dict[str, None] = {}
        for n in self.nodes:
            if n.op == "module":
                seen.setdefault(n.target, None)
        return tuple(seen)

    def covers(self, path: str) -> bool:
        """Whether the graph saw inside the module at ``path`` (not in an opaque module)."""
        return not any(path == o or path.startswith(o + ".") for o in self.opaque if o)


# --------------------------------------------------------------------------------------
# Names and leaves
# --------------------------------------------------------------------------------------

_ARITH = frozenset({"add", "sub", "mul", "truediv", "floordiv", "matmul", "div", "pow", "mod"})
_CANONICAL = {
    "truediv": "div",
    "floordiv": "div",
    "true_divide": "div",
    "divide": "div",
    "multiply": "mul",
    "subtract": "sub",
    "rsub": "sub",
    "concat": "cat",
    "concatenate": "cat",
}


#: Calls whose result is metadata (a size, a dtype), not values: they carry no signal.
METADATA = frozenset(
    {"size", "dim", "ndim", "numel", "nelement", "shape", "getattr", "device", "dtype",
     "is_floating_point", "is_contiguous", "stride", "storage_offset"}
)  # fmt: skip


def normalize(raw: str) -> tuple[str, bool]:
    """``(name, inplace)`` for a function or method name: ``"__iadd__"`` is ``("add", True)``,
    ``"relu_"`` is ``("relu", True)``, ``"__rmul__"`` is ``("mul", False)``.

    >>> normalize("__iadd__"), normalize("relu_"), normalize("__radd__"), normalize("truediv")
    (('add', True), ('relu', True), ('add', False), ('div', False))
    """
    name, inplace = raw, False
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name[:1] == "r" and name[1:] in _ARITH:
            name = name[1:]
    if name[:1] == "i" and name[1:] in _ARITH:
        name, inplace = name[1:], True
    if name.endswith("_") and not name.startswith("_"):
        name, inplace = name[:-1], True
    return _CANONICAL.get(name, name), inplace


def _display(fn: Any, raw: str) -> str:
    """How the report names a call: ``F.relu``, ``torch.tanh``, ``Tensor.relu``, ``+``."""
    module = getattr(fn, "__module__", None) or ""
    qualname = getattr(fn, "__qualname__", "") or ""
    if module in ("torch.nn.functional", "torch._C._nn"):
        return f"F.{raw}"
    if qualname.startswith(("TensorBase.", "Tensor.")):
        return f"Tensor.{raw}"
    if module == "_operator" or module == "operator":
        return f"operator.{raw}"
    if qualname.startswith("_VariableFunctionsClass.") or module.startswith("torch"):
        return f"torch.{raw}"
    return raw


def is_leaf(module: nn.Module, _cache: dict[int, bool] | None = None) -> bool:
    """Whether discovery treats ``module`` as one step instead of looking inside it.

    >>> is_leaf(torch.nn.Linear(2, 2)), is_leaf(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    (True, False)
    """
    if _cache is not None and id(module) in _cache:
        return _cache[id(module)]
    if isinstance(module, atomic_types()) or is_parametrized(module):
        result = True
    elif next(module.children(), None) is not None:
        result = False
    elif next(module.parameters(recurse=False), None) is not None:
        result = True
    elif type(module).__module__.startswith("torch.nn"):
        result = True
    else:  # a user's parameter-free module: one step only if it is an elementwise function
        result = module_activation(module) is not None
    if _cache is not None:
        _cache[id(module)] = result
    return result


def _link_users(nodes: list[Node]) -> None:
    for node in nodes:
        for source in node.inputs:
            if node not in source.users:
                source.users.append(node)


# --------------------------------------------------------------------------------------
# torch.fx
# --------------------------------------------------------------------------------------


class _Tracer(fx.Tracer):
    def __init__(self, opaque: set[str], cache: dict[int, bool]) -> None:
        super().__init__()
        self.opaque = opaque
        self.cache = cache
        self.failed_in: str | None = None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.opaque or is_leaf(m, self.cache)

    def call_module(
        self, m: nn.Module, forward: Callable[..., Any], args: tuple, kwargs: dict
    ) -> Any:
        if _is_fsdp(m):  # issue 14: trace FSDP2 modules' own forward, not their all-gathers
            forward = m.forward
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = self.path_of_module(m)
            raise


def _is_fsdp(m: nn.Module) -> bool:
    """Issue 14: whether ``fully_shard`` manages ``m`` (its hooks gather parameters: no fx)."""
    fsdp = sys.modules.get("torch.distributed.fsdp")
    return fsdp is not None and isinstance(m, getattr(fsdp, "FSDPModule", ()))


def _method(name: str) -> Callable[..., Any]:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, name)(*args, **kwargs)

    call.__qualname__ = f"Tensor.{name}"
    return call


def _from_fx(model: nn.Module, graph: fx.Graph, opaque: tuple[str, ...]) -> Graph:
    nodes: list[Node] = []
    by_fx: dict[fx.Node, Node] = {}
    for fx_node in graph.nodes:
        inputs: list[Node] = []

        def ref(arg: fx.Node, inputs: list[Node] = inputs) -> Ref:
            inputs.append(by_fx[arg])
            return Ref(len(inputs) - 1)

        args = fx.node.map_arg(fx_node.args, ref)
        kwargs = fx.node.map_arg(fx_node.kwargs, ref)
        index = len(nodes)
        if fx_node.op == "placeholder":
            node = Node(index, "input", str(fx_node.target), data=True)
        elif fx_node.op == "get_attr":
            node = Node(index, "attr", str(fx_node.target))
        elif fx_node.op == "call_module":
            path = str(fx_node.target)
            node = Node(index, "module", path, f"module '{path}'", model.get_submodule(path))
        elif fx_node.op in ("call_function", "call_method"):
            target = fx_node.target
            if fx_node.op == "call_method":
                raw, fn = str(target), _method(str(target))
                display = f"Tensor.{raw}"
            else:
                raw = getattr(target, "__name__", str(target))
                fn, display = target, _display(target, raw)
            name, inplace = normalize(raw)
            inplace = inplace or kwargs.get("inplace") is True
            node = Node(index, "call", name, display, None, fn, args, kwargs, inplace=inplace)
        else:  # output
            node = Node(index, "output", "output", "model output")
        node.inputs = inputs
        if node.op in ("module", "call", "output"):
            node.data = any(i.data for i in inputs) and not (
                node.op == "call" and node.target in METADATA
            )
        by_fx[fx_node] = node
        nodes.append(node)
    _link_users(nodes)
    return Graph(nodes, "fx", opaque)


def trace_fx(model: nn.Module, *, max_retries: int = 32) -> Graph:
    """Trace ``model.forward`` with torch.fx into a :class:`Graph`.

    A submodule whose forward cannot be traced becomes an opaque leaf and tracing restarts,
    up to ``max_retries`` times; if the top-level forward itself cannot be traced, the
    tracer's exception propagates. Traces hold a process-wide lock (:func:`fx_tracing`), and
    buffers that ``forward`` updates (``self.steps += 1``) are put back afterwards.
    """
    with Preserved(model, parameters=False):  # fx runs buffer updates on the real buffers
        return _trace_fx(model, max_retries)


def _trace_fx(model: nn.Module, max_retries: int) -> Graph:
    opaque: set[str] = set()
    cache: dict[int, bool] = {}
    for module in model.modules():  # decided before tracing patches Module.__call__
        is_leaf(module, cache)
    for _ in range(max_retries + 1):
        tracer = _Tracer(opaque, cache)
        try:
            with fx_tracing(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = tracer.trace(model)
        except Exception:
            failed = tracer.failed_in
            if not failed or failed in opaque:
                raise
            opaque.add(failed)
            continue
        finally:
            # fx's tracer sits in a reference cycle; its `root` would keep the model (and
            # its weights) alive until the next garbage collection.
            tracer.root = None
        return _from_fx(model, graph, tuple(sorted(opaque)))
    raise RuntimeError(f"torch.fx: more than {max_retries} untraceable submodules")


# --------------------------------------------------------------------------------------
# One recorded forward pass
# --------------------------------------------------------------------------------------


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


class _Recorder(TorchFunctionMode):
    """Builds graph nodes from module hooks and torch calls made outside leaf modules."""

    def __init__(self, model: nn.Module, preserved: Preserved | None = None) -> None:
        super().__init__()
        self.preserved = preserved
        self.params = {id(p): p for p in model.parameters()}
        self.nodes: list[Node] = []
        self.by_id: dict[int, Node] = {}
        self.alive: list[Any] = []  # keeps recorded tensors alive so that ids stay unique
        self.depth = 0
        self.pending: list[tuple[tuple, dict]] = []
        self.names: dict[int, str] = {}
        for name, tensor in model.named_buffers(remove_duplicate=False):
            self.names.setdefault(id(tensor), name)
        for name, tensor in model.named_parameters(remove_duplicate=False):
            self.names.setdefault(id(tensor), name)

    def add(self, node: Node) -> Node:
        node.index = len(self.nodes)
        self.nodes.append(node)
        return node

    def node_of(self, tensor: torch.Tensor) -> Node:
        node = self.by_id.get(id(tensor))
        if node is None:
            name = self.names.get(id(tensor))
            op = "const" if name is None else "attr"
            node = self.add(Node(0, op, name or "constant"))
            self.by_id[id(tensor)] = node
            self.alive.append(tensor)
        return node

    def template(self, value: Any, inputs: list[Node]) -> Any:
        if isinstance(value, torch.Tensor):
            inputs.append(self.node_of(value))
            return Ref(len(inputs) - 1)
        if isinstance(value, (list, tuple)):
            return type(value)(self.template(v, inputs) for v in value)
        if isinstance(value, dict):
            return {k: self.template(v, inputs) for k, v in value.items()}
        return value

    def produce(self, node: Node, output: Any) -> None:
        for tensor in _tensors(output):
            self.by_id[id(tensor)] = node
            self.alive.append(tensor)

    def inputs(self, args: tuple, kwargs: dict) -> None:
        for tensor in _tensors((args, kwargs)):
            node = self.add(Node(0, "input", f"input {len(self.nodes)}", data=True))
            self.by_id[id(tensor)] = node
            self.alive.append(tensor)

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        self.copy_on_write(func, args, kwargs)
        output = func(*args, **kwargs)
        if self.depth == 0 and any(True for _ in _tensors(output)):
            raw = getattr(func, "__name__", str(func))
            if raw == "__get__":  # a tensor property such as x.T or x.data
                raw = getattr(getattr(func, "__self__", None), "__name__", "get")
            inputs: list[Node] = []
            t_args = self.template(args, inputs)
            t_kwargs = self.template(kwargs, inputs)
            name, inplace = normalize(raw)
            inplace = inplace or kwargs.get("inplace") is True
            node = Node(0, "call", name, _display(func, raw), None, func, t_args, t_kwargs)
            node.inputs, node.inplace = inputs, inplace
            node.data = any(i.data for i in inputs) and name not in METADATA
            self.produce(self.add(node), output)
        return output

    def copy_on_write(self, func: Any, args: tuple, kwargs: dict) -> None:
        """Keep a parameter's values before a call that may write into it (in place, out=)."""
        if self.preserved is None:
            return
        raw = getattr(func, "__name__", "")
        targets = [kwargs.get("out")]
        if normalize(raw)[1] or raw in ("__setitem__", "copy_", "set_"):
            targets.append(args[0] if args else None)
        for tensor in _tensors(targets):
            if id(tensor) in self.params:
                self.preserved.save(tensor)

    def pre_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self.depth == 0:
            self.pending.append((args, kwargs))
        self.depth += 1

    def make_hook(self, path: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            self.depth -= 1
            if self.depth:
                return
            call_args, call_kwargs = self.pending.pop()
            inputs: list[Node] = []
            t_args = self.template(call_args, inputs)
            t_kwargs = self.template(call_kwargs, inputs)
            node = Node(0, "module", path, f"module '{path}'", module, None, t_args, t_kwargs)
            node.inputs = inputs
            node.data = any(i.data for i in inputs)
            self.produce(self.add(node), output)

        return hook


@contextlib.contextmanager
def _no_fast_path() -> Iterator[None]:
    backend = getattr(torch.backends, "mha", None)
    if backend is None or not hasattr(backend, "set_fastpath_enabled"):
        yield
        return
    before = backend.get_fastpath_enabled()
    backend.set_fastpath_enabled(False)
    try:
        yield
    finally:
        backend.set_fastpath_enabled(before)


def _install_hooks(model: nn.Module, recorder: _Recorder) -> list[Any]:
    cache: dict[int, bool] = {}
    handles = []
    inside_leaf: list[str] = []
    for path, module in model.named_modules():
        if any(path.startswith(p + ".") for p in inside_leaf):
            continue
        if path and is_leaf(module, cache):
            inside_leaf.append(path)
            handles.append(module.register_forward_pre_hook(recorder.pre_hook, with_kwargs=True))
            handles.append(module.register_forward_hook(recorder.make_hook(path), with_kwargs=True))
    return handles


def record_forward(model: nn.Module, example_inputs: Any) -> Graph:
    """Run ``model`` once on ``example_inputs`` (a tensor, a tuple of positional arguments or
    a dict of keyword arguments) and record its data flow. The model is left as it was:
    every parameter and buffer slot, every buffer's values, and a parameter's values when
    the forward writes into it (copied just before), training flags, torch's random state.
    """
    args, kwargs = call_arguments(example_inputs, name="example_inputs")
    with Preserved(model, parameters=False) as preserved:
        recorder = _Recorder(model, preserved)
        handles = _install_hooks(model, recorder)
        devices = sorted(
            {t.device.index or 0 for t in model.parameters() if t.device.type == "cuda"}
        )
        try:
            with (
                torch.random.fork_rng(devices=devices),
                torch.no_grad(),
                _no_fast_path(),
                warnings.catch_warnings(),
                model_running(),
            ):
                warnings.simplefilter("ignore")
                recorder.inputs(args, kwargs)
                with recorder:
                    output = model(*args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()
    return _finish(recorder, output, "hooks")


def _finish(recorder: _Recorder, output: Any, method: str) -> Graph:
    """The recorded graph: the model's output node, and each node's users."""
    out_inputs: list[Node] = []
    recorder.template(output, out_inputs)
    out = recorder.add(Node(0, "output", "output", "model output", data=True))
    out.inputs = out_inputs
    _link_users(recorder.nodes)
    return Graph(recorder.nodes, method)


# --------------------------------------------------------------------------------------
# The graph of a model, as discovery and the residual policies build it
# --------------------------------------------------------------------------------------


def short_error(error: BaseException) -> str:
    """``Type: message``, first line, at most 160 characters."""
    text = f"{type(error).__name__}: {error}".strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return first if len(first) <= 160 else first[:157] + "..."


def try_fx(model: nn.Module, notes: list[str]) -> Graph | None:
    """The fx graph of ``model``, or None; why (or which parts stayed opaque) goes to
    ``notes``."""
    try:
        graph = trace_fx(model)
    except Exception as error:
        notes.append(f"torch.fx could not trace forward: {short_error(error)}")
        return None
    if graph.opaque:
        notes.append(
            "fx traced around untraceable submodules: " + ", ".join(f"'{p}'" for p in graph.opaque)
        )
    return graph


def record_or_fail(model: nn.Module, example_inputs: Any) -> Graph:
    """:func:`record_forward`; a forward that fails on the inputs is a ValueError naming
    ``example_inputs``."""
    try:
        return record_forward(model, example_inputs)
    except Exception as error:
        raise ValueError(
            f"example_inputs: the forward pass on them failed ({short_error(error)}); allowed: "
            "a tensor, a tuple of positional arguments or a dict of keyword arguments "
            "that model(...) accepts."
        ) from error
