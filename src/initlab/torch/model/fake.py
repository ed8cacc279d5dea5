"""One forward pass that computes nothing: the data flow of a model on fake tensors.

:func:`record_fake` runs ``model`` under torch's ``FakeTensorMode`` on stand-ins of its
parameters and buffers (same shapes, dtypes and devices, no storage) through
``torch.func.functional_call``, and records every layer call and every torch operation on
their outputs with the recorder of :mod:`initlab.torch.model.graph`. So:

* no arithmetic runs and nothing is allocated: a model on the meta device with 70B
  parameters is read as cheaply as a small one;
* the model's own parameters and buffers are never touched (a forward that counts its calls
  in a buffer, spectral_norm's power iteration, batch-norm statistics: all act on the
  stand-ins, which are dropped);
* torch's random state is not consumed.

A forward that needs the values of its data (``if x.sum() > 0``, ``.item()``) cannot run on
fake tensors: the error propagates and discovery says so.

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GELU())
>>> graph = record_fake(model, (torch.zeros(2, 4),), {})
>>> [n.target for n in graph.nodes if n.op == "module"], graph.method
(['0', '1'], 'fake')
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.func import functional_call

from initlab.torch.model.graph import (
    Graph,
    _finish,
    _install_hooks,
    _no_fast_path,
    _Recorder,
    short_error,
)
from initlab.torch.model.inputs import InputRecipe, build_inputs, find_inputs
from initlab.torch.runtime import call_arguments, model_running

__all__ = ["fake_graph", "model_device", "module_order_warning", "record_fake"]


def model_device(model: nn.Module) -> torch.device:
    """Where the model's first parameter (else buffer) lives; CPU for an empty model."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def _stand_ins(model: nn.Module, mode: FakeTensorMode) -> tuple[dict[str, Any], dict[int, str]]:
    """Fake copies of every parameter and buffer by name (tied tensors share one), and the
    name of each copy by id (for the recorder)."""
    memo: dict[int, torch.Tensor] = {}
    state: dict[str, Any] = {}
    names: dict[int, str] = {}
    tensors = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    for name, tensor in tensors:
        if id(tensor) not in memo:
            fake = mode.from_tensor(tensor.detach())
            if isinstance(tensor, nn.Parameter):
                fake = nn.Parameter(fake, requires_grad=tensor.requires_grad)
            memo[id(tensor)] = fake
            names[id(fake)] = name
        state[name] = memo[id(tensor)]
    return state, names


def _fake_inputs(value: Any, mode: FakeTensorMode, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return mode.from_tensor(value.detach().to(device) if device.type == "meta" else value)
    if isinstance(value, (list, tuple)):
        return type(value)(_fake_inputs(v, mode, device) for v in value)
    if isinstance(value, dict):
        return {k: _fake_inputs(v, mode, device) for k, v in value.items()}
    return value


def record_fake(
    model: nn.Module, args: tuple | InputRecipe, kwargs: dict | None = None
) -> Graph:
    """Record the data flow of ``model(*args, **kwargs)`` on fake tensors (see the module
    docstring). ``args`` may be an :class:`~initlab.torch.model.inputs.InputRecipe` instead;
    real tensors given as inputs are replaced by fake ones of the same shape and dtype."""
    device = model_device(model)
    recorder = _Recorder(nn.Module())
    handles = _install_hooks(model, recorder)
    try:
        with (
            torch.random.fork_rng(devices=[]),
            torch.no_grad(),
            _no_fast_path(),
            warnings.catch_warnings(),
            model_running(),
            FakeTensorMode(allow_non_fake_inputs=True) as mode,
        ):
            warnings.simplefilter("ignore")
            state, names = _stand_ins(model, mode)
            recorder.names = names
            if isinstance(args, InputRecipe):
                call_args, call_kwargs = build_inputs(args, device)
            else:
                call_args = _fake_inputs(tuple(args), mode, device)
                call_kwargs = _fake_inputs(dict(kwargs or {}), mode, device)
            recorder.inputs(call_args, call_kwargs)
            with recorder:
                output = functional_call(model, state, call_args, call_kwargs, strict=False)
    finally:
        for handle in handles:
            handle.remove()
    return _finish(recorder, output, "fake")


def fake_graph(model: nn.Module, example_inputs: Any = None) -> tuple[Graph | None, str]:
    """The graph of one fake forward pass, on ``example_inputs`` (made fake) or on inputs
    found by :func:`~initlab.torch.model.inputs.find_inputs`; with a note saying how, or why
    not (the graph is then None)."""
    if example_inputs is not None:
        args, kwargs = call_arguments(example_inputs, name="example_inputs")
        source = "example_inputs"
        recipe: InputRecipe | None = None
    else:
        recipe = find_inputs(model)
        if recipe is None:
            return None, (
                "no example_inputs, and the model says nothing of what it takes (no "
                "transformers config, no input size, no first layer with a known shape)"
            )
        source = recipe.source
    try:
        graph = record_fake(model, recipe if recipe is not None else args, kwargs if recipe is None
                            else None)  # fmt: skip
    except Exception as error:
        why = short_error(error)
        return None, f"a forward on fake tensors with inputs from {source} failed: {why}"
    return graph, f"one forward on fake tensors, inputs from {source}"


def module_order_warning(found: Any) -> str | None:
    """The warning for layers whose successor was guessed by module order, or None."""
    guessed = [p for p, link in found.links.items() if link.found_by == "module order"]
    if not guessed:
        return None
    shown = ", ".join(repr(p) for p in guessed[:8])
    more = f" and {len(guessed) - 8} more" if len(guessed) > 8 else ""
    why = "; ".join(found.notes) or "no graph of the forward pass"
    return (
        f"discovery could not follow the data flow ({why}); what follows {len(guessed)} "
        f"layer(s) was guessed by module order: {shown}{more}. Pass example_inputs (or check "
        "these rows) to be sure."
    )
