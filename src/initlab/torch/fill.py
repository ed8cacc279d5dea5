"""Fill a torch tensor from a scheme and an initlab random stream, in place.

The bridge between the framework-free core and torch tensors of any dtype, device or memory
layout. Elementwise schemes (variance scaling, normal, uniform, truncated normal, random,
constant) go straight to the counter-based kernel, which writes into the tensor's own memory
through a NumPy view: bfloat16 and float16 are rounded as they are stored, so initializing a
tensor allocates nothing of its size. Other schemes (orthogonal, sparse, eye, dirac) build
their float64 values with :meth:`~initlab.schemes.Scheme.sample` and copy them in.

Two backends compute the same stream, bit for bit (``backend=``): ``"numba"``, the CPU
kernels of :mod:`initlab.fastrng`, and ``"torch"``, the same Philox and transforms in torch
tensor operations (:mod:`initlab.torch.philox`), which run on the tensor's own device.
``"auto"`` (the default) takes numba for CPU tensors and torch for the others, so a GPU tensor
is filled on the GPU and holds the same values as on the CPU. Where a backend cannot write
directly, the values go through a bounded buffer: the numba backend fills a tensor on another
device chunk by chunk on the CPU and copies it over (double precision, which the torch
backend does not implement), a non-contiguous tensor goes through a contiguous copy.

Every fill can also report the count, sum and sum of squares of what it wrote
(``moments=``, an :class:`initlab.rng.Moments`), added up by the kernels as they write, so a
report's measured mean and std cost no second pass over the weights.

A ``DTensor`` (FSDP2, tensor parallelism) gets this rank's shard of the values the whole
tensor would get, drawn by the shard's global element offsets with no communication
(:mod:`initlab.torch.distributed`, docs/distributed.md).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
from typing import TYPE_CHECKING

import numpy as np
import torch

from initlab._validation import check_choice
from initlab.fans import Fans
from initlab.rng import Draw, Moments, Stream
from initlab.schemes import Scheme, get_scheme
from initlab.torch.distributed import draw_sharded_, fill_sharded_, is_dtensor, use_local_fill
from initlab.torch.finite import check_fill

if TYPE_CHECKING:
    from initlab.fastrng.dispatch import PreparedFill

__all__ = ["BACKENDS", "ENCODINGS", "draw_", "fill_", "numpy_view", "resolve_backend"]

#: The ``backend=`` choices of :func:`draw_` and :func:`fill_`.
BACKENDS = ("auto", "numba", "torch")

#: The kernels' name for each torch dtype they write.
ENCODINGS = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
}
#: Elements per chunk when a tensor is filled through a CPU buffer (another device).
CHUNK = 1 << 22


def numpy_view(tensor: torch.Tensor) -> np.ndarray:
    """The flat NumPy view of a contiguous CPU tensor's memory (half types as their bits),
    for writing: the write is made visible to autograd as torch's in-place ops make theirs.

    A write through NumPy bypasses torch, so this does what an in-place op does first: it
    refuses an inference tensor outside inference mode (RuntimeError, torch's message) and
    bumps the tensor's version counter (shared with its views and ``detach()``), so that a
    graph that saved the old values raises "modified by an inplace operation" at backward
    instead of silently using the new ones.

    >>> t = torch.zeros(2, 2, dtype=torch.bfloat16)
    >>> numpy_view(t).dtype, numpy_view(t).shape, t._version
    (dtype('int16'), (4,), 2)
    """
    _before_write(tensor)
    plain = tensor.detach() if tensor.requires_grad else tensor
    if tensor.dtype in (torch.float16, torch.bfloat16):
        plain = plain.view(torch.int16)
    return plain.numpy().reshape(-1)


def _before_write(tensor: torch.Tensor) -> None:
    """What an in-place op does first (see :func:`numpy_view`)."""
    if tensor.is_inference() and not torch.is_inference_mode_enabled():
        raise RuntimeError(
            "Inplace update to inference tensor outside InferenceMode is not allowed. "
            "You can make a clone to get a normal tensor before doing inplace update."
        )
    torch._C._increment_version((tensor,))  # as an in-place op does, in any mode
    # (what torch.autograd.graph.increment_version does, less a third of its cost)


#: The NumPy dtype the kernels write each torch dtype as (``PreparedFill.holder``).
_VIEW_DTYPES = {
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.float16: np.dtype(np.int16),  # the bits
    torch.bfloat16: np.dtype(np.uint16),  # the bits
}
#: Arrays over CPU memory by (address, elements, dtype): see :func:`memory_view`.
_VIEWS: dict[tuple[int, int, np.dtype], np.ndarray] = {}
_VIEWS_MAX = 4096


def memory_view(tensor: torch.Tensor) -> np.ndarray | None:
    """:func:`numpy_view` for a write right now: a contiguous CPU ``tensor``'s memory as a
    flat array of the dtype the kernels write its dtype as (float16 as int16 bits, bfloat16
    as uint16 bits: :attr:`initlab.fastrng.dispatch.PreparedFill.holder`), the same checks
    and version bump first, in half the time for an address seen before (0.9x the time for
    a new tensor, 0.7x for a parameter, which ``numpy()`` must detach first). None, and no
    version bump, for a tensor that is not one contiguous block of CPU memory of those
    dtypes: the caller writes that one another way.

    Why: for a 1000-element tensor :func:`numpy_view` costs a quarter of the whole fill. The
    arrays are remembered by (address, element count, dtype) and own nothing: an array never
    keeps memory alive, and one found for an address is exactly the target's elements, since
    no other live allocation can hold them (a stale entry whose memory was freed and then
    reused by this tensor describes this tensor's memory). So the view is valid only while
    the caller holds ``tensor``. Tensors whose memory does not read back as written (the
    negative bit of ``torch._neg_view``), nested tensors and tensors without memory (zero
    tensors, fake tensors) take :func:`numpy_view`, and its errors.

    >>> t = torch.zeros(2, 3)
    >>> memory_view(t)[4] = 1.0
    >>> t[1, 1].item(), t._version, memory_view(t.t())
    (1.0, 1, None)
    """
    dtype = _VIEW_DTYPES.get(tensor.dtype)
    if dtype is None or not (tensor.is_cpu and tensor.is_contiguous()):
        return None
    address = tensor.data_ptr()  # raises for a tensor without storage (mkldnn)
    if address == 0 or tensor.is_neg() or tensor.is_nested:
        return numpy_view(tensor).view(dtype)
    _before_write(tensor)
    place = (address, tensor.numel(), dtype)
    view = _VIEWS.get(place)
    if view is None:
        if len(_VIEWS) >= _VIEWS_MAX:
            _VIEWS.clear()
        view = _VIEWS[place] = _array_at(*place)
    return view


def _array_at(address: int, count: int, dtype: np.dtype) -> np.ndarray:
    """A writeable array of ``count`` elements of ``dtype`` at ``address`` that owns nothing
    (through a ctypes buffer: twice as fast as ``__array_interface__``)."""
    memory = (ctypes.c_char * (count * dtype.itemsize)).from_address(address)
    return np.frombuffer(memory, dtype)


@functools.lru_cache(maxsize=4096)
def prepared_fill(
    distribution: str,
    loc: float,
    scale: float,
    low: float,
    high: float,
    clip: tuple[float, float] | None,
    dtype: torch.dtype,
    precision: str = "single",
) -> PreparedFill:
    """The numba kernels' fill of this draw into a tensor of ``dtype``, checked once: see
    :class:`initlab.fastrng.dispatch.PreparedFill` (numba loads on the first call).

    >>> d = Draw("normal", scale=0.02)
    >>> fill = prepared_fill(d.distribution, d.loc, d.scale, d.low, d.high, d.clip, torch.bfloat16)
    >>> w = torch.empty(3, 4, dtype=torch.bfloat16)
    >>> _ = fill(memory_view(w), Stream(0, "w").key)
    >>> bool(torch.equal(w, draw_(torch.empty_like(w), d, Stream(0, "w"), threads=1)))
    True
    """
    from initlab.fastrng.dispatch import prepare

    return prepare(distribution, loc, scale, low, high, clip, encoding=ENCODINGS[dtype],
                   precision=precision)  # fmt: skip


def resolve_backend(backend: str, device: torch.device, draw: Draw, precision: str) -> str:
    """The backend that fills: ``"numba"`` or ``"torch"``.

    ``"auto"`` takes numba on the CPU (torch if numba is not installed) and torch elsewhere;
    a draw the torch backend does not compute (``precision="double"``, or a truncated normal
    far enough in a tail to need double precision) goes to numba under ``"auto"`` and is an
    error under ``"torch"``.

    >>> resolve_backend("auto", torch.device("cpu"), Draw("normal"), "single")
    'numba'
    """
    if backend not in BACKENDS:
        check_choice("backend", backend, BACKENDS)
    if backend == "numba" or (backend == "auto" and device.type == "cpu" and _numba_available()):
        return "numba"
    torch_can = precision == "single" and _single_precision(draw)
    if backend == "torch":
        if not torch_can:
            raise ValueError(
                f"backend='torch' is not valid for precision={precision!r} and {draw!r}: the "
                "torch backend computes single precision only; allowed: backend='numba' or "
                "'auto'."
            )
        return "torch"
    return "torch" if torch_can else "numba"


@functools.cache
def _numba_available() -> bool:
    """numba is a dependency; a bare GPU machine may still lack it (found, not imported)."""
    return importlib.util.find_spec("numba") is not None


def _single_precision(draw: Draw) -> bool:
    """Whether ``draw`` stays in single precision (a far-tail truncated normal does not)."""
    if draw.distribution != "truncated_normal":
        return True
    from initlab.draw_params import kernel_params

    precision, _ = kernel_params(draw.distribution, "single", 0.0, 1.0, draw.low, draw.high)
    return precision == "single"


def draw_(
    tensor: torch.Tensor,
    draw: Draw,
    stream: Stream,
    *,
    offset: int = 0,
    precision: str = "single",
    threads: int | None = None,
    backend: str = "auto",
    moments: Moments | None = None,
) -> torch.Tensor:
    """Fill ``tensor`` in place with ``draw``'s values ``[offset, offset + numel)`` of ``stream``.

    ``value = draw.loc + draw.scale * X`` (see :class:`~initlab.rng.Draw`), in the tensor's
    row-major element order: the values of ``stream.fill`` on a NumPy buffer, float32 values
    (``precision="single"``) rounded to the tensor's dtype, or float64 values. A contiguous CPU
    tensor is written through a view of its memory, nothing of its size allocated; a
    ``requires_grad`` leaf is written as under ``no_grad``. Meta tensors are left alone.
    ``backend``: ``"auto"``, ``"numba"`` or ``"torch"`` (see :func:`resolve_backend`): the
    same bits either way. ``moments`` receives the count, sum and sum of squares of the values
    written.

    >>> w = draw_(torch.empty(3, 4, dtype=torch.bfloat16), Draw("normal", scale=0.02), Stream(0))
    >>> w.dtype, bool(w.abs().max() < 0.2)
    (torch.bfloat16, True)
    >>> t = draw_(torch.empty(3, 4, dtype=torch.bfloat16), Draw("normal", scale=0.02), Stream(0),
    ...           backend="torch")
    >>> bool(torch.equal(t, w))
    True
    """
    if is_dtensor(tensor):  # issue 14: this rank's shard, drawn by its global offsets
        return draw_sharded_(tensor, draw, stream, offset=offset, precision=precision,
                             threads=threads, backend=backend)  # fmt: skip
    if tensor.is_meta or tensor.numel() == 0:
        return tensor
    encoding = ENCODINGS.get(tensor.dtype)
    if encoding is None:
        raise TypeError(
            f"tensor.dtype={tensor.dtype} is not valid; allowed: a floating-point tensor "
            "(float16, bfloat16, float32, float64)."
        )
    if draw.distribution == "constant":
        return _constant(tensor, draw, backend, moments)
    if resolve_backend(backend, tensor.device, draw, precision) == "torch":
        return _draw_torch(tensor, draw, stream, offset, moments)
    if threads is None:  # the common case: the kind of draw checked once, the memory viewed
        fill = prepared_fill(draw.distribution, draw.loc, draw.scale, draw.low, draw.high,
                             draw.clip, tensor.dtype, precision)  # fmt: skip
        view = memory_view(tensor)
        if view is not None:
            fill(view, stream.key, offset, moments)
            return tensor
    if tensor.is_cpu and tensor.is_contiguous():
        stream.fill(
            numpy_view(tensor),
            draw,
            offset=offset,
            encoding=encoding,
            precision=precision,
            threads=threads,
            moments=moments,
        )
        return tensor
    dense = (
        tensor
        if tensor.is_contiguous()
        else torch.empty_like(tensor, memory_format=torch.contiguous_format)
    )
    if dense.is_cpu:
        stream.fill(
            numpy_view(dense),
            draw,
            offset=offset,
            encoding=encoding,
            precision=precision,
            threads=threads,
            moments=moments,
        )
    else:  # another device: fill a CPU buffer chunk by chunk and copy each chunk over
        n = dense.numel()
        flat = dense.detach().view(-1)
        buffer = torch.empty(min(n, CHUNK), dtype=dense.dtype)
        for start in range(0, n, CHUNK):
            part = buffer[: min(CHUNK, n - start)]
            stream.fill(
                numpy_view(part),
                draw,
                offset=offset + start,
                encoding=encoding,
                precision=precision,
                threads=threads,
                moments=moments,
            )
            flat[start : start + part.numel()].copy_(part)
    if dense is not tensor:
        with torch.no_grad():
            tensor.copy_(dense)
    return tensor


def _draw_torch(
    tensor: torch.Tensor, draw: Draw, stream: Stream, offset: int, moments: Moments | None
) -> torch.Tensor:
    """The torch backend, on the tensor's device (a non-contiguous one through a copy)."""
    from initlab.torch.philox import philox_fill

    dense = (
        tensor
        if tensor.is_contiguous()
        else torch.empty_like(tensor, memory_format=torch.contiguous_format)
    )
    philox_fill(
        dense,
        draw.distribution,
        stream.key,
        offset=offset,
        loc=draw.loc,
        scale=draw.scale,
        low=draw.low,
        high=draw.high,
        clip=draw.clip,
        moments=moments,
    )
    if dense is not tensor:
        with torch.no_grad():
            tensor.copy_(dense)
    return tensor


def _constant(
    tensor: torch.Tensor, draw: Draw, backend: str, moments: Moments | None
) -> torch.Tensor:
    """Every element ``draw.loc`` (as the tensor's dtype rounds it), by torch on any device."""
    check_choice("backend", backend, BACKENDS)
    with torch.no_grad():
        tensor.fill_(draw.loc)
    if moments is not None:
        stored = float(tensor.detach().reshape(-1)[0])
        n = tensor.numel()
        moments.add(n, n * stored, n * stored * stored)
    return tensor


def _add_moments(moments: Moments, tensor: torch.Tensor) -> None:
    """Count, sum and sum of squares of a tensor's values, in float64 (one pass)."""
    with torch.no_grad():
        values = tensor.detach().reshape(-1).to(torch.float64)
        moments.add(values.numel(), float(values.sum()), float(values.square().sum()))


def fill_(
    tensor: torch.Tensor,
    scheme: str | Scheme,
    *,
    seed: int,
    name: str = "",
    fans: Fans | None = None,
    precision: str = "single",
    backend: str = "auto",
    moments: Moments | None = None,
) -> torch.Tensor:
    """Fill ``tensor`` in place with ``scheme``'s values from the stream ``(seed, name)``.

    The values depend only on ``(seed, name)``, the shape and the fans, never on the dtype
    (they are float32 numbers, rounded to bfloat16/float16 and exact in float64; with
    ``precision="double"`` elementwise schemes draw float64 values instead), the device, the
    strides, the thread count or the sharding (a DTensor gets its shard of the whole
    tensor's values). Elementwise schemes are drawn straight into the tensor's memory
    (:func:`draw_`, by the ``backend`` it picks: the same bits either way); the others are
    sampled in float64 and copied. Meta tensors are left as they are (they have no storage).
    ``moments``, if given, receives the count, sum and sum of squares of the values written
    (from the kernels for elementwise schemes). Returns the tensor.

    >>> w = fill_(torch.empty(64, 32), "he_normal", seed=0, name="fc.weight")
    >>> bool(torch.equal(w, fill_(torch.empty(64, 32), "he_normal", seed=0, name="fc.weight")))
    True
    >>> half = torch.empty(64, 32, dtype=torch.bfloat16)
    >>> half = fill_(half, "he_normal", seed=0, name="fc.weight")
    >>> bool(torch.equal(half, w.to(torch.bfloat16)))
    True
    """
    if backend not in BACKENDS:
        check_choice("backend", backend, BACKENDS)
    resolved = _resolve(scheme) if isinstance(scheme, str) else get_scheme(scheme)
    if is_dtensor(tensor):  # issue 14: this rank's shard of the whole tensor's values
        return fill_sharded_(tensor, resolved, seed=seed, name=name, fans=fans,
                             precision=precision)  # fmt: skip
    shape = tuple(tensor.shape)
    spec = _spec(resolved, shape, fans, tensor.dtype, precision)
    if tensor.is_meta:
        return tensor
    if spec is not None:
        return draw_(
            tensor,
            spec,
            Stream(seed, name),
            precision=precision,
            backend=backend,
            moments=moments,
        )
    values = resolved.sample(shape, Stream(seed, name), fans)
    source = torch.from_numpy(np.ascontiguousarray(values))
    with torch.no_grad():
        tensor.copy_(source.to(device=tensor.device, dtype=tensor.dtype))
    if moments is not None:
        _add_moments(moments, tensor)
    return tensor


@functools.lru_cache(maxsize=256)
def _resolve(name: str) -> Scheme:
    """``get_scheme`` of a spelling, parsed once (schemes are immutable)."""
    return get_scheme(name)


def _spec(
    scheme: Scheme,
    shape: tuple[int, ...],
    fans: Fans | None,
    dtype: torch.dtype,
    precision: str,
) -> Draw | None:
    """Everything checked before a write (the shape; no inf written, ever), then the kernel's
    draw (None: not elementwise, or a dtype the kernels do not write). Cached: models repeat
    shapes, and small tensors pay this on every call."""
    try:
        return _cached_spec(scheme, shape, fans, dtype, precision)
    except TypeError:  # an unhashable user-defined scheme
        return _cached_spec.__wrapped__(scheme, shape, fans, dtype, precision)


@functools.lru_cache(maxsize=4096)
def _cached_spec(
    scheme: Scheme,
    shape: tuple[int, ...],
    fans: Fans | None,
    dtype: torch.dtype,
    precision: str,
) -> Draw | None:
    scheme.check_shape(shape)
    check_fill(scheme, shape, fans, dtype, precision)
    return scheme.draw_spec(shape, fans) if dtype in ENCODINGS else None


use_local_fill(draw_, ENCODINGS)  # the shards of a DTensor are drawn by the same code
