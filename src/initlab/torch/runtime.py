"""The runtime toolkit shared by init, probe, LSUV and the residual policies.

* :func:`call_arguments` / :func:`call_model`: the one rule for calling a model with inputs:
  a tensor is ``model(x)``, a tuple or list ``model(*inputs)``, a dict of str keys
  ``model(**inputs)``;
* :class:`Preserved`: a model's state (which tensor sits in each parameter and buffer slot,
  their values, plain tensor attributes, training flags), restored on exit or only on error;
* :func:`fx_tracing` and :func:`model_running`: torch.fx's tracer patches ``nn.Module``
  process-wide while it traces; a trace holds a process-wide lock that excludes every other
  trace and every forward pass initlab runs, and ``nn.Module`` is checked (and put back) after
  each trace, so that no thread ever sees or keeps a patched ``nn.Module``.

>>> import torch
>>> model = torch.nn.BatchNorm1d(2)
>>> with Preserved(model):
...     _ = call_model(model, [torch.randn(4, 2)])
>>> model.running_mean.tolist(), model.num_batches_tracked.item()
([0.0, 0.0], 0)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

__all__ = [
    "Preserved",
    "call_arguments",
    "call_model",
    "fx_tracing",
    "inputs_argument",
    "model_running",
]


# --------------------------------------------------------------------------------------
# Calling a model
# --------------------------------------------------------------------------------------


def call_arguments(inputs: Any, *, name: str = "inputs") -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` for ``model(*args, **kwargs)``: a tensor is the one positional
    argument, a tuple or list the positional arguments, a dict (str keys) the keyword
    arguments; anything else is a TypeError naming ``name``.

    >>> call_arguments(torch.zeros(1))[0][0].shape, call_arguments({"x": 1})
    (torch.Size([1]), ((), {'x': 1}))
    """
    if isinstance(inputs, Mapping):
        if not all(isinstance(k, str) for k in inputs):
            raise TypeError(
                f"{name}= as a dict needs str keys (they are keyword arguments); got keys "
                f"{[k for k in inputs if not isinstance(k, str)][:3]}."
            )
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(
            f"{name}={type(inputs).__name__} is not valid; allowed: a tensor (model(x)), a "
            "tuple or list (model(*inputs)) or a dict of keyword arguments (model(**inputs))."
        )
    return (inputs,), {}


def inputs_argument(inputs: Any, example_inputs: Any) -> Any:
    """The one inputs argument from ``inputs=`` (the common name) or ``example_inputs=``
    (the name init and the residual policies used first, still accepted); both is a
    TypeError.

    >>> inputs_argument(None, 3), inputs_argument(3, None)
    (3, 3)
    """
    if inputs is not None and example_inputs is not None:
        raise TypeError(
            "inputs= and example_inputs= were both given; allowed: one of them (the same "
            "argument under its two names)."
        )
    return inputs if inputs is not None else example_inputs


def call_model(model: nn.Module, inputs: Any, *, name: str = "inputs") -> Any:
    """``model`` called on ``inputs`` by :func:`call_arguments`' rule, while no torch.fx
    trace can patch ``nn.Module`` (:func:`model_running`)."""
    args, kwargs = call_arguments(inputs, name=name)
    with model_running():
        return model(*args, **kwargs)


# --------------------------------------------------------------------------------------
# torch.fx's process-wide patch
# --------------------------------------------------------------------------------------


class _TraceLock:
    """Many forward passes at once, or one trace alone (reentrant within a thread)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._running = 0
        self._tracer: int | None = None
        self._local = threading.local()

    def _depth(self) -> int:
        return getattr(self._local, "depth", 0)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._depth() or self._tracer == me:
            yield
            return
        with self._cond:
            while self._tracer is not None:
                self._cond.wait()
            self._running += 1
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._tracer == me:
            yield
            return
        if self._depth():
            raise RuntimeError("initlab: a torch.fx trace was started inside a forward pass")
        with self._cond:
            while self._tracer is not None or self._running:
                self._cond.wait()
            self._tracer = me
        try:
            yield
        finally:
            with self._cond:
                self._tracer = None
                self._cond.notify_all()


_LOCK = _TraceLock()
_PATCHED = ("__call__", "__getattr__")
_ORIGINAL = {name: nn.Module.__dict__[name] for name in _PATCHED}


def model_running() -> contextlib.AbstractContextManager[None]:
    """Context of a forward pass run by initlab: no torch.fx trace runs meanwhile."""
    return _LOCK.shared()


@contextlib.contextmanager
def fx_tracing() -> Iterator[None]:
    """Context of a torch.fx trace: alone in the process (among initlab's traces and forward
    passes); on the way out, ``nn.Module.__call__`` and ``__getattr__`` are put back if a
    trace left them patched, whatever happened inside."""
    with _LOCK.exclusive():
        try:
            yield
        finally:
            for name, original in _ORIGINAL.items():
                if nn.Module.__dict__.get(name) is not original:
                    setattr(nn.Module, name, original)


# --------------------------------------------------------------------------------------
# Preserved state
# --------------------------------------------------------------------------------------


class Preserved:
    """A model's state, put back on exit (``restore="always"``) or on any exception,
    KeyboardInterrupt included (``restore="on_error"``).

    Kept: the tensor object in every parameter and buffer slot (so that a slot a forward
    or a materialization replaced gets its old tensor back, a meta tensor included), plain
    tensor attributes (spectral_norm's computed ``weight``), every module's ``training``
    flag, and values: buffers are copied on entry (``buffers=True``), parameters on entry
    with ``parameters=True``, or one at a time through :meth:`save` just before they are
    written (copy on write, to ``storage``, e.g. ``"cpu"``). Only tensors that changed are
    written back, so an untouched tensor is not written at all.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        restore: str = "always",
        parameters: bool = True,
        buffers: bool = True,
        storage: str | torch.device | None = None,
    ) -> None:
        if restore not in ("always", "on_error"):
            raise ValueError(f"restore={restore!r} is not valid; allowed: 'always', 'on_error'.")
        self.model = model
        self.restore_on = restore
        self.eager = {"parameters": parameters, "buffers": buffers}
        self.storage = storage
        self._slots: list[tuple[dict, str, Any]] = []
        self._attrs: list[tuple[nn.Module, str, Any]] = []
        self._training: list[tuple[nn.Module, bool]] = []
        self._saved: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}
        self._names: list[tuple[dict, frozenset[str]]] = []

    def __enter__(self) -> Preserved:
        for module in self.model.modules():
            self._training.append((module, module.training))
            for where, eager in ((module._parameters, self.eager["parameters"]),
                                 (module._buffers, self.eager["buffers"])):  # fmt: skip
                self._names.append((where, frozenset(where)))
                for name, tensor in where.items():
                    self._slots.append((where, name, tensor))
                    if eager and tensor is not None:
                        self.save(tensor)
            for name, value in module.__dict__.items():
                if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                    self._attrs.append((module, name, value))
        return self

    def save(self, tensor: torch.Tensor) -> None:
        """Keep ``tensor``'s current values (once; meta tensors have none to keep)."""
        if id(tensor) in self._saved or tensor.is_meta:
            return
        with torch.no_grad():
            copy = tensor.detach().to(self.storage or tensor.device, copy=True)
        self._saved[id(tensor)] = (tensor, copy, tensor._version)

    def restore(self) -> None:
        """Put every slot, attribute, value and flag back as it was on entry."""
        for where, name, tensor in reversed(self._slots):
            if name not in where or where[name] is not tensor:
                where[name] = tensor
        for where, names in self._names:
            for name in [n for n in where if n not in names]:
                del where[name]  # a slot registered since entry
        for module, name, value in self._attrs:
            if module.__dict__.get(name) is not value:
                module.__dict__[name] = value
        with torch.no_grad():
            for tensor, copy, version in self._saved.values():
                # Some writes do not move the version counter (batch norm's running
                # statistics, a kernel writing through a NumPy view): compare values too.
                copy = copy.to(tensor.device)
                if tensor._version != version or not torch.equal(tensor, copy):
                    tensor.detach().copy_(copy)
        for module, flag in self._training:
            module.training = flag

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is not None or self.restore_on == "always":
            self.restore()
