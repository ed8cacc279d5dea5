"""Steps that recombine one signal with itself: not a residual add, not a nonlinearity.

A layer's output ``y`` often meets itself again a few operations later:

* **rotary position embeddings**: ``y * cos + rotate_half(y) * sin``: an add of two tensors
  that both come from ``y`` through linear steps (views, slices, negation, scaling by
  constants). It is a linear map of ``y``, not a residual add of two signals;
* **normalizations written out**: ``y * rsqrt(mean(y^2) + eps)``, ``y / y.norm(dim=-1)``,
  ``(y - mean(y)) / sqrt(var(y) + eps)``: ``y`` centered or scaled by statistics of
  itself. The ``pow``, ``rsqrt``, ``norm`` on the way are not nonlinearities that follow
  the layer; the whole is a normalization, which does not change a gain.

:func:`origin` traces a graph node back to the layer's output through such steps.
"""

from __future__ import annotations

from collections.abc import Callable

from initlab.torch.model.graph import Node

__all__ = ["STATISTIC_OPS", "feeds_normalization", "origin"]

#: Operations that compute a statistic of a signal on the way to normalizing it by it.
STATISTIC_OPS = frozenset(
    {"pow", "square", "abs", "sqrt", "rsqrt", "reciprocal", "mean", "sum", "norm", "var",
     "std", "var_mean", "std_mean", "linalg_vector_norm", "vector_norm", "amax", "max",
     "clamp", "clamp_min", "maximum", "add", "sub", "mul", "div", "to", "float",
     "type_as", "expand_as", "expand", "unsqueeze", "view", "reshape", "detach"}
)  # fmt: skip

_COMBINE = frozenset({"add", "sub"})
_SCALE = frozenset({"mul", "div"})


def origin(
    node: Node,
    start: set[int],
    is_pass: Callable[[Node], bool],
    memo: dict[int, str | None],
) -> str | None:
    """``"signal"`` when ``node``'s value is a linear function of the signal that leaves the
    nodes in ``start`` (possibly normalized by a statistic of it), ``"stat"`` when it is a
    statistic of that signal, else None."""
    if node.index in start:
        return "signal"
    if node.index in memo:
        return memo[node.index]
    memo[node.index] = None  # guards against cycles
    result: str | None = None
    data = node.data_inputs() if node.op == "call" else []
    if data:
        found = [origin(d, start, is_pass, memo) for d in data]
        kinds = set(found)
        name = node.target
        if None in kinds:
            result = None
        elif name in _SCALE and kinds == {"signal", "stat"}:
            result = "signal" if found[0] == "signal" else None  # y * s or y / s, not s / y
        elif name in _COMBINE and kinds == {"signal", "stat"} and found[0] == "signal":
            result = "signal"  # y - mean(y): centering
        elif kinds == {"signal"} and (is_pass(node) or name in _COMBINE or name in _SCALE):
            result = "signal" if name not in _SCALE or len(data) == 1 else None
        elif name in STATISTIC_OPS or is_pass(node):
            result = "stat"
    memo[node.index] = result
    return result


def feeds_normalization(
    node: Node, start: set[int], is_pass: Callable[[Node], bool], memo: dict[int, str | None]
) -> bool:
    """Whether ``node`` (a statistic of the signal) ends up scaling the signal itself."""
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        for user in current.users:
            if user.index in seen:
                continue
            seen.add(user.index)
            kind = origin(user, start, is_pass, memo)
            if kind == "signal" and (user.target in _SCALE or user.target in _COMBINE):
                return True
            if kind == "stat":
                stack.append(user)
    return False
