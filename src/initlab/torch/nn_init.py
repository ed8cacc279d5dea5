r"""Drop-in replacements for the 15 public functions of ``torch.nn.init``.

``import initlab.torch as init`` can replace ``import torch.nn.init as init``: the same
signatures (``generator`` included), the same return value (the tensor, filled in place under
``no_grad``), the same exception types and the same warnings. The fans, gains and stds come
from initlab's core (:mod:`initlab.fans`, :mod:`initlab.gains`, the variance-scaling core of
:mod:`initlab.schemes`).

Where the random draws come from:

* ``generator=`` a ``torch.Generator``: from that generator, so that with the same generator
  state the values are bit-for-bit those of ``torch.nn.init``;
* ``generator=None`` (the default), on a CPU floating-point tensor: from initlab's fast
  counter-based generator (:mod:`initlab.fastrng`, several times faster than torch's CPU
  sampler, in place, bitwise the same on any thread count), keyed by one 63-bit draw from
  torch's default generator. ``torch.manual_seed(s)`` therefore still reproduces the values
  run after run; they have the same distribution as torch's but are not its numbers.
  ``set_default_rng("torch")`` (or the environment variable ``INITLAB_TORCH_RNG=torch``)
  makes ``generator=None`` draw from torch's default generator instead, bit-for-bit
  ``torch.nn.init``. Tensors on other devices always use torch's generator, and so does
  ``sparse_``; ``orthogonal_`` draws its normal matrix the same way (its cost is the QR).

Where initlab does more than torch, it says so in the function's docstring:

* ``orthogonal_`` works in bfloat16 and float16 (torch's QR has no kernel for them) and on
  non-contiguous tensors;
* ``trunc_normal_`` draws the exact truncated normal by the inverse CDF for any bounds;
* ``sparse_`` draws its zero pattern from ``generator`` too (torch ignores it there);
* bad arguments get messages that name the parameter, the value and what is allowed.

On a ``DTensor`` (FSDP2, tensor parallelism) the initlab generator draws this rank's shard of
the values the whole tensor would get, the same on any number of ranks and placements (seed
every rank alike); ``orthogonal_``, ``sparse_``, ``eye_`` and ``dirac_`` compute the whole
matrix on each rank and keep its shard (docs/distributed.md).

Like torch, these functions read the fans off the tensor as ``(out, in, *k)``. For the true
fans of ConvTranspose and grouped convolutions use :func:`initlab.fans.layer_fans` or
``initlab.init``, which knows the layer.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from torch import Tensor

from initlab import gains as _gains
from initlab._validation import check_choice
from initlab.fans import compute_fans, select_fan
from initlab.rng import Draw, Stream
from initlab.schemes import VarianceScaling
from initlab.torch.distributed import is_dtensor  # issue 14
from initlab.torch.fill import draw_, memory_view, prepared_fill

__all__ = [
    "RNG_KINDS",
    "calculate_gain",
    "constant_",
    "dirac_",
    "eye_",
    "get_default_rng",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "set_default_rng",
    "sparse_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_F = TypeVar("_F", bound=Callable[..., Tensor])
_FanMode = Literal["fan_in", "fan_out"]
_LOW_PRECISION = (torch.float16, torch.bfloat16)


#: Where ``generator=None`` draws come from: initlab's fast generator or torch's default one.
RNG_KINDS = ("initlab", "torch")
_FAST_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_default_rng: list[str | None] = [None]  # None: not read from INITLAB_TORCH_RNG yet


def set_default_rng(kind: str) -> str:
    """Choose where the drop-ins draw when ``generator=None``; returns the previous choice.

    ``"initlab"`` (default): the fast counter-based generator, keyed from torch's default
    generator (``torch.manual_seed`` reproduces it). ``"torch"``: torch's default generator,
    bit-for-bit ``torch.nn.init``. A passed ``generator`` is always used as is. The
    environment variable ``INITLAB_TORCH_RNG`` sets the initial choice.

    >>> previous = set_default_rng("torch")
    >>> _ = torch.manual_seed(0); a = kaiming_normal_(torch.empty(4, 4))
    >>> _ = torch.manual_seed(0); b = torch.nn.init.kaiming_normal_(torch.empty(4, 4))
    >>> bool(torch.equal(a, b)), set_default_rng(previous)
    (True, 'torch')
    """
    check_choice("kind", kind, RNG_KINDS)
    previous = get_default_rng()
    _default_rng[0] = kind
    return previous


def get_default_rng() -> str:
    """Where ``generator=None`` draws come from now: ``"initlab"`` or ``"torch"``.

    >>> get_default_rng() in RNG_KINDS
    True
    """
    kind = _default_rng[0]
    if kind is None:
        kind = os.environ.get("INITLAB_TORCH_RNG", "initlab")
        check_choice("INITLAB_TORCH_RNG", kind, RNG_KINDS)
        _default_rng[0] = kind
    return kind


def _fast(tensor: Tensor, generator: torch.Generator | None) -> bool:
    """Whether this draw goes to initlab's generator (see the module docstring): never for a
    dtype that is not floating, so a fast draw needs no dtype check of its own."""
    return (
        generator is None
        and tensor.is_cpu
        and tensor.dtype in _FAST_DTYPES
        and (_default_rng[0] or get_default_rng()) == "initlab"
    )


def _plannable(alpha: float, beta: float) -> bool:
    """Whether the fast truncated normal can hold [alpha, beta] (else torch's path warns)."""
    from initlab.fastrng.truncation import plan_truncation

    try:
        plan_truncation(alpha, beta, "single")
    except ValueError:
        return False
    return True


class _KeyBuffer(threading.local):
    """This thread's one-element tensor that the keys are drawn into, and its NumPy view
    (read back by NumPy's ``item()``: a fifth of the cost of the tensor's)."""

    def __init__(self) -> None:
        with torch.inference_mode(False):  # a normal tensor even if first made in that mode
            self.tensor = torch.empty((), dtype=torch.int64)
        self.value = self.tensor.numpy()


_KEY_BUFFER = _KeyBuffer()


def _default_key() -> int:
    """One 63-bit draw from torch's default CPU generator (what torch.manual_seed seeds)."""
    buffer = _KEY_BUFFER
    buffer.tensor.random_()
    return buffer.value.item()


def _fast_fill(
    tensor: Tensor,
    distribution: str,
    loc: float,
    scale: float,
    low: float = -math.inf,
    high: float = math.inf,
    clip: tuple[float, float] | None = None,
) -> Tensor:
    """Fill from a stream keyed by one draw of torch's default CPU generator."""
    if tensor.numel() == 0:
        return tensor
    key = _default_key()
    fill = prepared_fill(distribution, loc, scale, low, high, clip, tensor.dtype)
    view = None if is_dtensor(tensor) else memory_view(tensor)
    if view is None:  # a strided view; issue 14: a DTensor by its shard
        spec = Draw(distribution, loc, scale, low, high, clip)
        return draw_(tensor, spec, Stream.from_key(key))
    fill(view, key)
    return tensor


_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)
#: Issue 14: functions that need the whole matrix run on it whole on each rank of a DTensor.
_WHOLE_MATRIX = ("orthogonal_", "sparse_", "eye_", "dirac_")
# torch's own samplers, held before anyone can patch torch.nn.init with these drop-ins: the
# torch path of trunc_normal_ (rejection sampling since torch 2.13) and sparse_ (a randperm
# per column from the default generator) are torch's code, so their numbers are torch's.
_TORCH_TRUNC_NORMAL = getattr(torch.nn.init, "_no_grad_trunc_normal_", torch.nn.init.trunc_normal_)
_TORCH_SPARSE = torch.nn.init.sparse_


def _torch_function(fn: _F) -> _F:
    """Let tensor subclasses override the function, as torch.nn.init does."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Tensor:
        first = args[0] if args else kwargs.get("tensor")
        if type(first) in _PLAIN_TENSORS:  # no override possible: skip the binding (speed)
            return fn(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        tensor = bound.arguments["tensor"]
        if fn.__name__ in _WHOLE_MATRIX and is_dtensor(tensor):  # issue 14
            from initlab.torch.distributed import run_on_whole_

            return run_on_whole_(fn, tensor, bound.arguments)
        if torch.overrides.has_torch_function_variadic(tensor):
            return torch.overrides.handle_torch_function(wrapper, (tensor,), **bound.arguments)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _check_floating(tensor: Tensor, fn: str) -> None:
    if not (tensor.is_floating_point() or tensor.is_complex()):
        raise NotImplementedError(
            f"{fn}: tensor dtype={tensor.dtype} is not valid; allowed: a floating-point "
            "tensor (float16, bfloat16, float32, float64)."
        )


def _torch_callable(f: Callable) -> Callable[[np.ndarray], np.ndarray]:
    def on_numpy(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = f(torch.as_tensor(x))
        return y.detach().cpu().double().numpy() if torch.is_tensor(y) else np.asarray(y)

    return on_numpy


def calculate_gain(nonlinearity: str | Callable, param: int | float | None = None) -> float:
    r"""Recommended gain for a nonlinearity; torch's values, extended (see :mod:`initlab.gains`).

    Accepts torch's names, initlab's extra names (``prelu``, ``gelu``, ``silu``, ``mish``,
    ...), and any callable, including torch functions and modules, whose gain is
    :math:`1/\sqrt{E[f(z)^2]}`, ``z ~ N(0, 1)``.

    >>> calculate_gain("tanh")
    1.6666666666666667
    >>> round(calculate_gain(torch.nn.functional.relu), 12) == round(math.sqrt(2), 12)
    True
    """
    if callable(nonlinearity) and not isinstance(nonlinearity, str):
        return _gains.numeric_gain(_torch_callable(nonlinearity))
    return _gains.calculate_gain(nonlinearity, param)


@_torch_function
def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill ``tensor`` with values drawn from :math:`\mathcal{U}(a, b)`.

    >>> w = uniform_(torch.empty(3, 5), -1.0, 1.0)
    >>> bool(w.abs().max() <= 1.0)
    True
    """
    fast = _fast(tensor, generator)  # only floating dtypes are fast: no check to repeat
    if not fast:
        _check_floating(tensor, "uniform_")
    if a > b:
        raise RuntimeError(f"uniform_: a={a!r}, b={b!r} is not valid; allowed: a <= b.")
    if fast and math.isfinite(a) and math.isfinite(b):
        return _fast_fill(tensor, "uniform", float(a), float(b) - float(a))
    with torch.no_grad():
        return tensor.uniform_(a, b, generator=generator)


@_torch_function
def normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill ``tensor`` with values drawn from :math:`\mathcal{N}(\text{mean}, \text{std}^2)`.

    >>> normal_(torch.empty(3, 5), std=0.01).shape
    torch.Size([3, 5])
    """
    fast = _fast(tensor, generator)  # only floating dtypes are fast: no check to repeat
    if not fast:
        _check_floating(tensor, "normal_")
    if std < 0:
        raise RuntimeError(f"normal_: std={std!r} is not valid; allowed: std >= 0.")
    if fast and math.isfinite(mean) and math.isfinite(std):
        return _fast_fill(tensor, "normal", float(mean), float(std))
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator)


@_torch_function
def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill with :math:`\mathcal{N}(\text{mean}, \text{std}^2)` truncated to ``[a, b]``.

    With initlab's generator (``generator=None``, the default): exact for any bounds by the
    inverse CDF, ``u ~ U(Phi(alpha), Phi(beta))``, value = ``mean + std * Phi^{-1}(u)`` with
    ``alpha = (a - mean) / std``, ``beta = (b - mean) / std``. With a ``torch.Generator`` (or
    ``set_default_rng("torch")``, or off the CPU): torch's own rejection sampler, so the
    numbers are torch's. Warns, as torch does, when ``mean`` is more than 2 std outside
    [a, b]. ``std=0`` raises ZeroDivisionError as in torch, ``a > b`` RuntimeError; ``std < 0``
    (which torch accepts) raises RuntimeError, as ``normal_`` does.

    >>> w = trunc_normal_(torch.empty(1000), std=1.0, a=-0.5, b=0.5)
    >>> bool(w.min() >= -0.5 and w.max() <= 0.5)
    True
    """
    _check_floating(tensor, "trunc_normal_")
    if std == 0:  # torch divides by std: ZeroDivisionError
        raise ZeroDivisionError(f"trunc_normal_: std={std!r} is not valid; allowed: std > 0.")
    if std < 0:
        raise RuntimeError(f"trunc_normal_: std={std!r} is not valid; allowed: std > 0.")
    if a > b:
        raise RuntimeError(f"trunc_normal_: a={a!r}, b={b!r} is not valid; allowed: a <= b.")
    if tensor.is_meta:
        return tensor
    alpha, beta = (a - mean) / std, (b - mean) / std
    if not (_fast(tensor, generator) and _plannable(alpha, beta)):
        # torch's own sampler (it warns itself): torch's numbers for a generator's state
        return _TORCH_TRUNC_NORMAL(tensor, mean, std, a, b, generator=generator)
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
            "The distribution of values may be incorrect.",
            stacklevel=3,
        )
    return _fast_fill(tensor, "truncated_normal", mean, std, alpha, beta, (a, b))


@_torch_function
def constant_(tensor: Tensor, val: float) -> Tensor:
    r"""Fill ``tensor`` with the value ``val``.

    >>> constant_(torch.empty(2, 2), 0.3).tolist()
    [[0.3..., 0.3...], [0.3..., 0.3...]]
    """
    with torch.no_grad():
        return tensor.fill_(val)


@_torch_function
def ones_(tensor: Tensor) -> Tensor:
    r"""Fill ``tensor`` with the scalar value 1.

    >>> ones_(torch.empty(2)).tolist()
    [1.0, 1.0]
    """
    with torch.no_grad():
        return tensor.fill_(1.0)


@_torch_function
def zeros_(tensor: Tensor) -> Tensor:
    r"""Fill ``tensor`` with the scalar value 0.

    >>> zeros_(torch.empty(2)).tolist()
    [0.0, 0.0]
    """
    with torch.no_grad():
        return tensor.zero_()


@_torch_function
def eye_(tensor: Tensor) -> Tensor:
    r"""Fill the 2-D ``tensor`` with the identity matrix (as many inputs kept as possible).

    >>> eye_(torch.empty(2, 3)).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    if tensor.ndimension() != 2:
        raise ValueError(
            f"eye_: tensor of shape {tuple(tensor.shape)} is not valid; allowed: only "
            "tensors with 2 dimensions are supported."
        )
    with torch.no_grad():
        if tensor.is_meta:
            return tensor
        tensor.copy_(torch.eye(*tensor.shape, dtype=tensor.dtype, device=tensor.device))
    return tensor


@_torch_function
def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    r"""Fill the {3, 4, 5}-D ``tensor`` with the Dirac delta: the convolution keeps its input.

    ``W[g * out_per_group + d, d, centre] = 1`` for ``d < min(out_per_group, in)``, else 0.

    >>> w = dirac_(torch.empty(4, 2, 3), groups=2)
    >>> int(w.sum())
    4
    """
    dims = tensor.ndimension()
    if dims not in (3, 4, 5):
        raise ValueError(
            f"dirac_: tensor of shape {tuple(tensor.shape)} is not valid; allowed: only "
            "tensors with 3, 4, or 5 dimensions are supported."
        )
    if isinstance(groups, bool) or not isinstance(groups, int):  # torch: range() of a float
        raise TypeError(f"dirac_: groups={groups!r} is not valid; allowed: an int >= 1.")
    if groups == 0:  # torch: modulo by zero
        raise ZeroDivisionError(f"dirac_: groups={groups!r} is not valid; allowed: an int >= 1.")
    if groups < 0:  # torch silently writes zeros
        raise ValueError(f"dirac_: groups={groups!r} is not valid; allowed: an int >= 1.")
    sizes = tensor.shape
    if sizes[0] % groups != 0:
        raise ValueError(
            f"dirac_: dim 0 must be divisible by groups; got dim 0 = {sizes[0]}, groups={groups}."
        )
    if tensor.is_meta:
        return tensor
    per_group = sizes[0] // groups
    d = torch.arange(min(per_group, sizes[1]), device=tensor.device)
    rows = (torch.arange(groups, device=tensor.device)[:, None] * per_group + d).reshape(-1)
    cols = d.repeat(groups)
    centre = tuple(s // 2 for s in sizes[2:])
    with torch.no_grad():
        tensor.zero_()
        tensor[(rows, cols, *centre)] = 1
    return tensor


def _variance_scaled_std(tensor: Tensor, gain: float, mode: str) -> float:
    return _shape_std(tensor.shape, gain, mode)  # torch.Size: a tuple, hashed as one


@functools.lru_cache(maxsize=4096, typed=True)
def _shape_std(shape: tuple[int, ...], gain: float, mode: str) -> float:
    """The variance-scaling std of a tensor shape (cached: models repeat their shapes).

    Raises torch's exception types: ValueError under 2 dimensions, ZeroDivisionError for a
    zero fan, RuntimeError for a negative or NaN gain (torch's sampler refuses that std).
    """
    fans = compute_fans(shape)
    if select_fan(fans, mode) == 0:
        raise ZeroDivisionError(
            f"tensor of shape {tuple(shape)} is not valid: {mode} = 0 (a zero-size dimension) and "
            "the std divides by it; allowed: a tensor with no zero-size dimension."
        )
    if not gain >= 0:
        raise RuntimeError(f"gain={gain!r} is not valid; allowed: a real number >= 0.")
    return VarianceScaling(1.0, mode, "normal", gain).std(fans)


@_torch_function
def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Xavier/Glorot uniform: :math:`\mathcal{U}(-b, b)`,
    :math:`b = \text{gain} \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}`.

    >>> w = xavier_uniform_(torch.empty(30, 20))
    >>> bool(w.abs().max() <= math.sqrt(6 / 50))
    True
    """
    std = _variance_scaled_std(tensor, gain, "fan_avg")
    bound = math.sqrt(3.0) * std
    if _fast(tensor, generator):  # floating dtypes only
        return _fast_fill(tensor, "uniform", -bound, 2.0 * bound)
    _check_floating(tensor, "xavier_uniform_")
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


@_torch_function
def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Xavier/Glorot normal: :math:`\mathcal{N}(0, \sigma^2)`,
    :math:`\sigma = \text{gain} \sqrt{2 / (\text{fan\_in} + \text{fan\_out})}`.

    >>> xavier_normal_(torch.empty(30, 20)).shape
    torch.Size([30, 20])
    """
    std = _variance_scaled_std(tensor, gain, "fan_avg")
    if _fast(tensor, generator):  # floating dtypes only
        return _fast_fill(tensor, "normal", 0.0, std)
    _check_floating(tensor, "xavier_normal_")
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    try:
        return _kaiming_shape_std(tensor.shape, a, mode, nonlinearity)
    except TypeError:  # an unhashable nonlinearity (a callable): no cache
        return _kaiming_shape_std.__wrapped__(tensor.shape, a, mode, nonlinearity)


@functools.lru_cache(maxsize=4096, typed=True)
def _kaiming_shape_std(shape: tuple[int, ...], a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(
            f"mode={mode!r} is not valid; allowed: 'fan_in', 'fan_out' "
            "(use initlab.init or initlab.schemes for 'fan_avg')."
        )
    return _shape_std(shape, calculate_gain(nonlinearity, a), mode)


@_torch_function
def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: _FanMode = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""He/Kaiming uniform: :math:`\mathcal{U}(-b, b)`,
    :math:`b = \text{gain} \sqrt{3 / \text{fan\_mode}}`, gain from ``nonlinearity`` and ``a``.

    Warns "Initializing zero-element tensors is a no-op" on a zero-element tensor, as torch.

    >>> w = kaiming_uniform_(torch.empty(64, 50), nonlinearity="relu")
    >>> bool(w.abs().max() <= math.sqrt(6 / 50))
    True
    """
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    if _fast(tensor, generator):  # floating dtypes only
        return _fast_fill(tensor, "uniform", -bound, 2.0 * bound)
    _check_floating(tensor, "kaiming_uniform_")
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


@_torch_function
def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: _FanMode = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""He/Kaiming normal: :math:`\mathcal{N}(0, \sigma^2)`,
    :math:`\sigma = \text{gain} / \sqrt{\text{fan\_mode}}` (``2 / fan_in`` variance for ReLU).

    >>> w = kaiming_normal_(torch.empty(256, 512), nonlinearity="relu")
    >>> bool(abs(w.std() - math.sqrt(2 / 512)) < 0.002)
    True
    """
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return tensor
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if _fast(tensor, generator):  # floating dtypes only
        return _fast_fill(tensor, "normal", 0.0, std)
    _check_floating(tensor, "kaiming_normal_")
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


@_torch_function
def orthogonal_(
    tensor: Tensor, gain: float = 1, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill with a (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2013).

    The tensor is viewed as ``(dim 0, rest)``; QR of a standard normal matrix, signs of R's
    diagonal moved into Q. bfloat16 and float16 are computed in float32 (torch raises).

    >>> w = orthogonal_(torch.empty(4, 6))
    >>> bool(torch.allclose(w @ w.T, torch.eye(4), atol=1e-5))
    True
    """
    if tensor.ndimension() < 2:
        raise ValueError(
            f"orthogonal_: tensor of shape {tuple(tensor.shape)} is not valid; allowed: only "
            "tensors with 2 or more dimensions are supported."
        )
    _check_floating(tensor, "orthogonal_")
    if tensor.numel() == 0 or tensor.is_meta:
        return tensor
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    work = torch.float32 if tensor.dtype in _LOW_PRECISION else tensor.dtype
    flat = torch.empty((rows, cols), dtype=work, device=tensor.device)
    if _fast(flat, generator):
        _fast_fill(flat, "normal", 0.0, 1.0)
    else:
        flat.normal_(0, 1, generator=generator)
    if rows < cols:
        flat.t_()
    q, r = torch.linalg.qr(flat)
    q *= torch.diag(r, 0).sign()
    if rows < cols:
        q.t_()
    with torch.no_grad():
        tensor.copy_(q.reshape(tensor.shape)).mul_(gain)
    return tensor


@_torch_function
def sparse_(
    tensor: Tensor,
    sparsity: float,
    std: float = 0.01,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the 2-D ``tensor`` as a sparse matrix: :math:`\mathcal{N}(0, \text{std}^2)` with
    ``ceil(sparsity * rows)`` zeros in each column (Martens 2010).

    With a ``torch.Generator`` or ``set_default_rng("torch")`` this is torch's own code (its
    zero pattern comes from torch's default generator, whatever ``generator``); with
    initlab's default generator, the zero pattern is one vectorized draw instead of a
    ``randperm`` per column. ``sparsity`` outside [0, 1] does what torch does
    (``[:ceil(sparsity * rows)]`` of a permutation: above 1 all zeros).

    >>> w = sparse_(torch.empty(10, 4), sparsity=0.3)
    >>> (w == 0).sum(0).tolist()
    [3, 3, 3, 3]
    """
    if tensor.ndimension() != 2:
        raise ValueError(
            f"sparse_: tensor of shape {tuple(tensor.shape)} is not valid; allowed: only "
            "tensors with 2 dimensions are supported."
        )
    _check_floating(tensor, "sparse_")
    if tensor.is_meta:
        return tensor
    if generator is not None or not _fast(tensor, generator):
        return _TORCH_SPARSE(tensor, sparsity, std, generator=generator)  # torch's numbers
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)  # sliced [:num_zeros] as torch does, even if < 0
    with torch.no_grad():
        tensor.normal_(0, std, generator=generator)
        keys = torch.rand((rows, cols), generator=generator, device=tensor.device)
        zero_rows = keys.argsort(dim=0)[:num_zeros]
        tensor.scatter_(0, zero_rows, 0.0)
    return tensor


# --------------------------------------------------------------------------------------
# torch.nn.init's deprecated spellings without the trailing underscore
# --------------------------------------------------------------------------------------


def _deprecated(fn: _F) -> _F:
    """``fn`` under its old name, with torch's FutureWarning (same message as torch)."""
    old, new = fn.__name__[:-1], fn.__name__

    @functools.wraps(fn)
    def deprecated_init(*args: Any, **kwargs: Any) -> Tensor:
        warnings.warn(
            f"`nn.init.{old}` is now deprecated in favor of `nn.init.{new}`.",
            FutureWarning,
            stacklevel=2,
        )
        return fn(*args, **kwargs)

    deprecated_init.__name__ = deprecated_init.__qualname__ = old
    deprecated_init.__doc__ = f"Deprecated (as in torch): use :func:`{new}`. Warns FutureWarning."
    return deprecated_init  # type: ignore[return-value]


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)

#: torch.nn.init's 11 deprecated names (no trailing underscore), each warning FutureWarning.
DEPRECATED = (
    "uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
    "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse",
)  # fmt: skip
