"""Fill a torch tensor from a scheme and an initlab random stream, in place.

The bridge between the framework-free core and torch tensors of any dtype, device or memory
layout. Elementwise schemes (variance scaling, normal, uniform, truncated normal, random,
constant) go straight to the counter-based kernel, which writes into the tensor's own memory
through a NumPy view: bfloat16 and float16 are rounded as they are stored, so initializing a
tensor allocates nothing of its size. Other schemes (orthogonal, sparse, eye, dirac) build
their float64 values with :meth:`~initlab.schemes.Scheme.sample` and copy them in.

Where the kernel cannot write directly, the values go through a bounded buffer: a tensor on
another device is filled chunk by chunk on the CPU and copied over, a non-contiguous one
through a contiguous copy of itself.

A ``DTensor`` (FSDP2, tensor parallelism) gets this rank's shard of the values the whole
tensor would get, drawn by the shard's global element offsets with no communication
(:mod:`initlab.torch.distributed`, docs/distributed.md).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from initlab.fans import Fans
from initlab.rng import Draw, Stream
from initlab.schemes import Scheme, get_scheme
from initlab.torch.distributed import is_dtensor  # issue 14
from initlab.torch.finite import check_fill

__all__ = ["ENCODINGS", "draw_", "fill_", "numpy_view"]

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
    if tensor.is_inference() and not torch.is_inference_mode_enabled():
        raise RuntimeError(
            "Inplace update to inference tensor outside InferenceMode is not allowed. "
            "You can make a clone to get a normal tensor before doing inplace update."
        )
    torch.autograd.graph.increment_version(tensor)  # as an in-place op does, in any mode
    plain = tensor.detach() if tensor.requires_grad else tensor
    if tensor.dtype in (torch.float16, torch.bfloat16):
        plain = plain.view(torch.int16)
    return plain.numpy().reshape(-1)


def draw_(
    tensor: torch.Tensor,
    draw: Draw,
    stream: Stream,
    *,
    offset: int = 0,
    precision: str = "single",
    threads: int | None = None,
) -> torch.Tensor:
    """Fill ``tensor`` in place with ``draw``'s values ``[offset, offset + numel)`` of ``stream``.

    ``value = draw.loc + draw.scale * X`` (see :class:`~initlab.rng.Draw`), in the tensor's
    row-major element order: the values of ``stream.fill`` on a NumPy buffer, float32 values
    (``precision="single"``) rounded to the tensor's dtype, or float64 values. A contiguous CPU
    tensor is written through a view of its memory, nothing of its size allocated; a
    ``requires_grad`` leaf is written as under ``no_grad``. Meta tensors are left alone.

    >>> w = draw_(torch.empty(3, 4, dtype=torch.bfloat16), Draw("normal", scale=0.02), Stream(0))
    >>> w.dtype, bool(w.abs().max() < 0.2)
    (torch.bfloat16, True)
    """
    if is_dtensor(tensor):  # issue 14: this rank's shard, drawn by its global offsets
        from initlab.torch.distributed import draw_sharded_

        return draw_sharded_(tensor, draw, stream, offset=offset, precision=precision,
                             threads=threads)  # fmt: skip
    if tensor.is_meta or tensor.numel() == 0:
        return tensor
    encoding = ENCODINGS.get(tensor.dtype)
    if encoding is None:
        raise TypeError(
            f"tensor.dtype={tensor.dtype} is not valid; allowed: a floating-point tensor "
            "(float16, bfloat16, float32, float64)."
        )
    if tensor.is_cpu and tensor.is_contiguous():
        stream.fill(
            numpy_view(tensor),
            draw,
            offset=offset,
            encoding=encoding,
            precision=precision,
            threads=threads,
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
        )
    else:  # another device: fill a CPU buffer chunk by chunk and copy each chunk over
        n = dense.numel()
        flat = dense.detach().view(-1)
        buffer = torch.empty(min(n, CHUNK), dtype=dense.dtype)
        for start in range(0, n, CHUNK):
            part = buffer[: min(CHUNK, n - start)]
            stream.fill(
                numpy_view(part), draw, offset=offset + start, encoding=encoding, threads=threads
            )
            flat[start : start + part.numel()].copy_(part)
    if dense is not tensor:
        with torch.no_grad():
            tensor.copy_(dense)
    return tensor


def fill_(
    tensor: torch.Tensor,
    scheme: str | Scheme,
    *,
    seed: int,
    name: str = "",
    fans: Fans | None = None,
    precision: str = "single",
) -> torch.Tensor:
    """Fill ``tensor`` in place with ``scheme``'s values from the stream ``(seed, name)``.

    The values depend only on ``(seed, name)``, the shape and the fans, never on the dtype
    (they are float32 numbers, rounded to bfloat16/float16 and exact in float64; with
    ``precision="double"`` elementwise schemes draw float64 values instead), the device, the
    strides, the thread count or the sharding (a DTensor gets its shard of the whole
    tensor's values). Elementwise schemes are drawn straight into the tensor's memory
    (:func:`draw_`); the others are sampled in float64 and copied. Meta tensors are left as
    they are (they have no storage). Returns the tensor.

    >>> w = fill_(torch.empty(64, 32), "he_normal", seed=0, name="fc.weight")
    >>> bool(torch.equal(w, fill_(torch.empty(64, 32), "he_normal", seed=0, name="fc.weight")))
    True
    >>> half = torch.empty(64, 32, dtype=torch.bfloat16)
    >>> half = fill_(half, "he_normal", seed=0, name="fc.weight")
    >>> bool(torch.equal(half, w.to(torch.bfloat16)))
    True
    """
    resolved = _resolve(scheme) if isinstance(scheme, str) else get_scheme(scheme)
    if is_dtensor(tensor):  # issue 14: this rank's shard of the whole tensor's values
        from initlab.torch.distributed import fill_sharded_

        return fill_sharded_(tensor, resolved, seed=seed, name=name, fans=fans,
                             precision=precision)  # fmt: skip
    shape = tuple(tensor.shape)
    resolved.check_shape(shape)
    check_fill(resolved, shape, fans, tensor.dtype, precision)  # no inf written, ever
    spec = _spec(resolved, shape, fans) if tensor.dtype in ENCODINGS else None
    if tensor.is_meta:
        return tensor
    if spec is not None:
        if spec.distribution == "constant":
            with torch.no_grad():
                tensor.fill_(spec.loc)
            return tensor
        return draw_(tensor, spec, Stream(seed, name), precision=precision)
    values = resolved.sample(shape, Stream(seed, name), fans)
    source = torch.from_numpy(np.ascontiguousarray(values))
    with torch.no_grad():
        tensor.copy_(source.to(device=tensor.device, dtype=tensor.dtype))
    return tensor


@functools.lru_cache(maxsize=256)
def _resolve(name: str) -> Scheme:
    """``get_scheme`` of a spelling, parsed once (schemes are immutable)."""
    return get_scheme(name)


def _spec(scheme: Scheme, shape: tuple[int, ...], fans: Fans | None) -> Draw | None:
    """``scheme.draw_spec(shape, fans)`` after its shape check, cached: models repeat shapes."""
    try:
        return _cached_spec(scheme, shape, fans)
    except TypeError:  # an unhashable user-defined scheme
        scheme.check_shape(shape)
        return scheme.draw_spec(shape, fans)


@functools.lru_cache(maxsize=4096)
def _cached_spec(scheme: Scheme, shape: tuple[int, ...], fans: Fans | None) -> Draw | None:
    scheme.check_shape(shape)
    return scheme.draw_spec(shape, fans)
