r"""Sharded tensors (``torch.distributed.tensor.DTensor``): each rank fills its own shard.

initlab's stream is counter-based and slice-invariant: value ``i`` of a parameter depends only
on ``(seed, name, i)``, with ``i`` the element's row-major index in the *global* tensor. So a
rank holding a shard of a DTensor (FSDP2's ``fully_shard``, tensor parallelism, any placement
on any mesh) can draw exactly the values its elements have in the unsharded tensor, with no
communication, and the gathered tensor equals a one-process fill, bit for bit.

How a rank finds its elements (:func:`shard_layout`): for every tensor dimension ``d`` the
global indices of the local positions, ``indices[d]`` (increasing integers), computed from the
placements the way ``distribute_tensor`` splits a tensor, mesh dimension by mesh dimension:

* ``Shard(d)``: ``torch.chunk`` semantics, chunk ``c`` of ``k`` (size ``ceil(n / k)``, the last
  ones shorter or empty), so dimensions not divisible by the mesh size work;
* ``_StridedShard(d, split_factor=s)`` (FSDP2 on top of tensor parallelism shards the same
  dimension "right to left"): the current indices in ``s`` chunks, chunk ``c`` of each, joined;
* ``Replicate()``: nothing (every rank of that mesh dimension holds the whole dimension);
* ``Partial()``: refused (the local values are addends of the global ones, not a part of it);
* a non-default ``shard_order`` (several mesh dimensions on one tensor dimension, in another
  order than left to right) is followed.

The local shard is then the Cartesian product of the ``indices[d]``: a set of contiguous runs
of the global tensor. Each run is drawn with ``offset =`` its global start
(:func:`initlab.torch.fill.draw_`); many short runs (a dimension other than the first
sharded) are drawn through a band buffer covering several of them, then gathered, which
costs at most a bounded factor more draws than the shard holds and saves the per-call
overhead.

Schemes that need the whole matrix (orthogonal, sparse, eye, dirac, and callable overrides
of ``initlab.init``) are computed whole on every rank from the same stream, deterministic,
and each rank keeps its shard: ``numel * 8`` bytes of float64 per rank for the moment of the
write, and the full QR on every rank (``O(rows * cols * min(rows, cols))``), so the time does
not shrink with the number of ranks. No communication either.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from initlab.rng import Draw, Stream

__all__ = [
    "META_DTENSOR",
    "ShardLayout",
    "draw_on_layout_",
    "fill_on_layout_",
    "is_dtensor",
    "placement_layout",
    "shard_layout",
]
# The hooks of fill_, the drop-ins and initlab.init (draw_sharded_, fill_sharded_,
# copy_global_, write_block_, run_on_whole_, local_region, unsupported_reason) take DTensors
# and are reached through those public entry points.

#: Elements of one band buffer (short runs drawn together, then gathered).
BAND = 1 << 20
#: Per-call overhead of one draw, in elements' worth of drawing: a band that draws fewer
#: extra elements than this per run it saves is drawn as one band.
CALL_COST = 4096


#: Why a DTensor on the meta device is not initialized (FSDP2 and tensor parallelism keep
#: references to their parameters: initlab writes them in place, it does not replace them).
META_DTENSOR = (
    "a DTensor on the meta device: materialize the sharded model first with "
    "model.to_empty(device=...), then call initlab.init"
)


def is_dtensor(tensor: Any) -> bool:
    """Whether ``tensor`` is a ``DTensor`` (without importing torch.distributed for plain ones).

    >>> is_dtensor(torch.zeros(2))
    False
    """
    module = sys.modules.get("torch.distributed.tensor")
    return module is not None and isinstance(tensor, module.DTensor)


@dataclass(frozen=True)
class ShardLayout:
    """Where a local shard sits in its global tensor.

    ``global_shape`` is the whole tensor's shape; ``indices[d]`` the increasing global indices,
    along dimension ``d``, of the local shard's positions ``0, 1, ...`` on that dimension. The
    local element at ``(i_0, ..., i_n)`` is the global element ``(indices[0][i_0], ...)``.

    >>> layout = ShardLayout((4, 3), (np.array([2, 3]), np.arange(3)))
    >>> layout.local_shape
    (2, 3)
    >>> [(int(s), int(n)) for s, n in zip(*layout.runs())]  # rows 2-3: one run of 6 elements
    [(6, 6)]
    """

    global_shape: tuple[int, ...]
    indices: tuple[np.ndarray, ...]

    @property
    def local_shape(self) -> tuple[int, ...]:
        """The local shard's shape."""
        return tuple(len(i) for i in self.indices)

    def rows(self, start: int, stop: int) -> tuple[slice, ShardLayout]:
        """The local positions of global rows ``[start, stop)`` (a slice of dimension 0) and
        the layout of that part within the block ``global[start:stop]``.

        >>> part, block = ShardLayout((6, 2), (np.arange(3, 6), np.arange(2))).rows(2, 4)
        >>> part, block.global_shape, block.indices[0].tolist()
        (slice(0, 1, None), (2, 2), [1])
        """
        first = self.indices[0]
        lo, hi = np.searchsorted(first, [start, stop])
        sub = (first[lo:hi] - start, *self.indices[1:])
        return slice(int(lo), int(hi)), ShardLayout((stop - start, *self.global_shape[1:]), sub)

    def runs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(starts, lengths)``: the shard as contiguous runs of the global tensor's row-major
        elements, in the local shard's own row-major order (int64 arrays)."""
        shape, idx = self.global_shape, self.indices
        if any(len(i) == 0 for i in idx):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if not shape:
            return np.zeros(1, np.int64), np.ones(1, np.int64)
        strides = [math.prod(shape[d + 1 :]) for d in range(len(shape))]
        t = len(shape) - 1
        while t >= 0 and len(idx[t]) == shape[t]:  # whole trailing dimensions fold in
            t -= 1
        if t < 0:
            return np.zeros(1, np.int64), np.array([math.prod(shape)], np.int64)
        along = idx[t].astype(np.int64)
        cut = np.flatnonzero(np.diff(along) != 1) + 1
        first = np.concatenate(([0], cut))
        run_starts = along[first] * strides[t]
        run_lengths = np.diff(np.concatenate((first, [len(along)]))) * strides[t]
        outer = np.zeros(1, np.int64)
        for d in range(t):
            outer = (outer[:, None] + idx[d].astype(np.int64)[None, :] * strides[d]).reshape(-1)
        starts = (outer[:, None] + run_starts[None, :]).reshape(-1)
        return starts, np.tile(run_lengths, len(outer))


# --------------------------------------------------------------------------------------
# Placements -> layout
# --------------------------------------------------------------------------------------


def _chunk(index: np.ndarray, chunks: int, which: int) -> np.ndarray:
    """``torch.chunk(index, chunks)[which]``, empty where torch gives fewer chunks."""
    size = -(-len(index) // chunks) if len(index) else 0
    return index[min(which * size, len(index)) : min((which + 1) * size, len(index))]


def _strided(index: np.ndarray, chunks: int, which: int, split_factor: int) -> np.ndarray:
    """``_StridedShard``: ``split_factor`` chunks of ``index``, chunk ``which`` of each, joined."""
    parts = [_chunk(_chunk(index, split_factor, j), chunks, which) for j in range(split_factor)]
    return np.concatenate(parts) if parts else index[:0]


def placement_layout(
    global_shape: tuple[int, ...],
    mesh_shape: tuple[int, ...],
    coordinate: tuple[int, ...],
    placements: tuple[Any, ...],
    shard_order: tuple[tuple[int, tuple[int, ...]], ...] | None = None,
) -> ShardLayout:
    """The layout of the shard at mesh ``coordinate`` (see the module docstring).

    ``placements`` are torch placements, one per mesh dimension; ``shard_order`` (optional),
    ``((tensor_dim, (mesh_dim, ...)), ...)``, the order in which mesh dimensions split a
    tensor dimension when it is not left to right. Raises ValueError on ``Partial``.

    >>> from torch.distributed.tensor import Shard, Replicate
    >>> layout = placement_layout((5, 4), (2, 2), (1, 0), (Shard(0), Replicate()))
    >>> layout.indices[0].tolist(), layout.local_shape  # chunk 1 of 2 of 5 rows
    ([3, 4], (2, 4))
    """
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    indices = [np.arange(n, dtype=np.int64) for n in global_shape]
    order: list[tuple[int, int]] = []  # (mesh_dim, tensor_dim) in the order they split
    strided = any(isinstance(p, _StridedShard) for p in placements)
    for mesh_dim, placement in enumerate(placements):
        if isinstance(placement, Replicate):
            continue
        if not isinstance(placement, Shard | _StridedShard):
            raise ValueError(
                f"placement {placement!r} on mesh dimension {mesh_dim} is not valid; allowed: "
                "Shard, _StridedShard or Replicate (a Partial tensor holds addends of the "
                "values, not a part of them: redistribute it first)."
            )
        dim = placement.dim % len(global_shape)
        order.append((mesh_dim, dim))
    if shard_order and not strided:
        order = [(m, int(entry[0])) for entry in shard_order for m in entry[1]]
    for mesh_dim, dim in order:
        placement = placements[mesh_dim]
        chunks, which = int(mesh_shape[mesh_dim]), int(coordinate[mesh_dim])
        if isinstance(placement, _StridedShard):
            factor = int(placement._split_factor_int())
            indices[dim] = _strided(indices[dim], chunks, which, factor)
        else:
            indices[dim] = _chunk(indices[dim], chunks, which)
    return ShardLayout(tuple(int(n) for n in global_shape), tuple(indices))


def shard_layout(tensor: Any) -> ShardLayout:
    """The layout of this rank's shard of the DTensor ``tensor`` (its global shape, and the
    global indices of its local positions along each dimension); checked against the local
    tensor's shape. It needs a process group, so its example runs in tests/test_distributed.py
    (the same arithmetic without one: :func:`placement_layout`)::

        w = distribute_tensor(torch.empty(37, 24), mesh, [Shard(0)])  # on 4 ranks
        shard_layout(w).indices[0]  # on rank 3: array([30, 31, 32, 33, 34, 35, 36])
    """
    spec = tensor._spec
    mesh = spec.mesh
    coordinate = mesh.get_coordinate()
    shape = tuple(tensor.shape)
    if coordinate is None:  # this rank is not in the mesh: it holds nothing
        return ShardLayout(shape, tuple(np.zeros(0, np.int64) for _ in shape))
    order = getattr(spec, "shard_order", None)
    entries = tuple((e.tensor_dim, tuple(e.mesh_dims)) for e in order) if order else None
    layout = placement_layout(shape, tuple(mesh.shape), tuple(coordinate), spec.placements,
                              entries)  # fmt: skip
    local = tuple(tensor._local_tensor.shape)
    if layout.local_shape != local:
        raise RuntimeError(
            f"initlab: the shard layout computed for placements {spec.placements} on mesh "
            f"{tuple(mesh.shape)} at {tuple(coordinate)} has shape {layout.local_shape}, but "
            f"the local tensor has shape {local}; nothing was written."
        )
    return layout


def unsupported_reason(tensor: Any) -> str | None:
    """Why initlab cannot write this DTensor's shard (None when it can)."""
    if tensor.is_meta:
        return META_DTENSOR
    try:
        shard_layout(tensor)
    except (ValueError, RuntimeError) as error:
        return str(error)
    return None


def local_region(
    tensor: Any, rows: tuple[int, int] | None = None
) -> tuple[torch.Tensor, ShardLayout]:
    """This rank's local tensor (or its part in global rows ``[start, stop)``) and its layout.

    The local tensor is the DTensor's own storage: writing it writes the DTensor.
    """
    layout = shard_layout(tensor)
    local = tensor._local_tensor.detach()
    if rows is not None:
        if local.dim() == 0:
            raise ValueError("rows of a 0-d tensor are not valid; allowed: rows=None.")
        part, layout = layout.rows(*rows)
        local = local[part]
    return local, layout


# --------------------------------------------------------------------------------------
# Writing a shard
# --------------------------------------------------------------------------------------


#: How a plain (local) tensor is drawn: :func:`initlab.torch.fill.draw_` and the dtypes its
#: kernels write. ``initlab.torch.fill`` imports this module and hands them over when it loads
#: (:func:`use_local_fill`), so that the two modules do not import each other.
_LOCAL: dict[str, Any] = {}


def use_local_fill(draw: Any, encodings: Any) -> None:
    """Set the drawer of plain tensors and its dtypes (called by ``initlab.torch.fill``)."""
    _LOCAL["draw"], _LOCAL["encodings"] = draw, encodings


def _draw_runs(
    flat: torch.Tensor, layout: ShardLayout, draw: Draw, stream: Stream, **kwargs: Any
) -> None:
    """Fill the flat contiguous local ``flat`` with the values of its global elements."""
    draw_ = _LOCAL["draw"]
    offset = kwargs.pop("offset", 0)
    starts, lengths = layout.runs()
    position = 0
    j, n = 0, len(starts)
    while j < n:
        # the longest band of runs from j spanning at most BAND elements
        end = int(np.searchsorted(starts, starts[j] + BAND - 1, side="right"))
        end = max(end, j + 1)
        while end > j + 1 and starts[end - 1] + lengths[end - 1] - starts[j] > BAND:
            end -= 1
        span = int(starts[end - 1] + lengths[end - 1] - starts[j])
        total = int(lengths[j:end].sum())
        if end - j > 1 and span - total < (end - j - 1) * CALL_COST:
            band = torch.empty(span, dtype=flat.dtype, device=flat.device)
            draw_(band, draw, stream, offset=offset + int(starts[j]), **kwargs)
            rel = starts[j:end] - starts[j]
            before = np.cumsum(lengths[j:end]) - lengths[j:end]
            gather = np.arange(total, dtype=np.int64) + np.repeat(rel - before, lengths[j:end])
            index = torch.from_numpy(gather).to(flat.device)
            flat[position : position + total].copy_(band[index])
            position += total
        else:
            for k in range(j, end):
                length = int(lengths[k])
                part = flat[position : position + length]
                draw_(part, draw, stream, offset=offset + int(starts[k]), **kwargs)
                position += length
        j = end


def draw_on_layout_(
    local: torch.Tensor, layout: ShardLayout, draw: Draw, stream: Stream, **kwargs: Any
) -> torch.Tensor:
    """Fill ``local`` (shaped ``layout.local_shape``) with ``draw``'s values of its global
    elements: value ``offset + g`` of ``stream`` for the element of global flat index ``g``.

    >>> from torch.distributed.tensor import Shard
    >>> from initlab.torch.fill import draw_
    >>> draw, stream = Draw("normal", scale=0.02), Stream(0, "w")
    >>> whole = draw_(torch.empty(6, 4), draw, stream)
    >>> layout = placement_layout((6, 4), (2,), (1,), (Shard(1),))  # columns 2-3
    >>> part = draw_on_layout_(torch.empty(6, 2), layout, draw, stream)
    >>> bool(torch.equal(part, whole[:, 2:]))
    True
    """
    if local.numel() == 0:
        return local
    if draw.distribution == "constant":
        with torch.no_grad():
            local.fill_(draw.loc)
        return local
    dense = (
        local
        if local.is_contiguous()
        else torch.empty_like(local, memory_format=torch.contiguous_format)
    )
    _draw_runs(dense.detach().view(-1), layout, draw, stream, **kwargs)
    if dense is not local:
        with torch.no_grad():
            local.copy_(dense)
    return local


def draw_sharded_(tensor: Any, draw: Draw, stream: Stream, **kwargs: Any) -> Any:
    """:func:`initlab.torch.fill.draw_` for a DTensor: this rank's shard, by global offsets.

    No communication; the gathered tensor equals ``draw_`` on the whole tensor.
    """
    if tensor.is_meta:
        return tensor
    local, layout = local_region(tensor)
    draw_on_layout_(local, layout, draw, stream, **kwargs)
    return tensor


def _take(values: torch.Tensor, layout: ShardLayout) -> torch.Tensor:
    """The local shard of the whole ``values`` (shaped ``layout.global_shape``)."""
    for d, index in enumerate(layout.indices):
        if len(index) != values.shape[d]:
            values = values.index_select(d, torch.from_numpy(index).to(values.device))
    return values


def copy_on_layout_(local: torch.Tensor, layout: ShardLayout, values: Any) -> torch.Tensor:
    """Copy the local part of the whole ``values`` (array or tensor) into ``local``."""
    if local.numel() == 0:  # nothing here (an uneven shard's last ranks, a rank off the mesh)
        return local
    if not isinstance(values, torch.Tensor):
        values = torch.from_numpy(np.ascontiguousarray(values))
    if tuple(values.shape) != layout.global_shape:
        raise ValueError(
            f"values of shape {tuple(values.shape)} are not valid; allowed: the global shape "
            f"{layout.global_shape}."
        )
    with torch.no_grad():
        local.copy_(_take(values, layout).to(device=local.device, dtype=local.dtype))
    return local


def copy_global_(tensor: Any, values: Any) -> Any:
    """Copy this rank's part of the whole ``values`` (global shape) into the DTensor."""
    if tensor.is_meta:
        return tensor
    local, layout = local_region(tensor)
    copy_on_layout_(local, layout, values)
    return tensor


def fill_on_layout_(
    local: torch.Tensor,
    layout: ShardLayout,
    scheme: Any,
    *,
    seed: int,
    name: str,
    fans: Any = None,
    precision: str = "single",
) -> torch.Tensor:
    """:func:`initlab.torch.fill.fill_` of the block ``layout.global_shape`` restricted to the
    local part ``local``: elementwise schemes draw their elements by global index, the others
    are sampled whole (float64) and the local part copied.

    >>> from torch.distributed.tensor import Shard
    >>> from initlab.schemes import get_scheme
    >>> from initlab.torch.fill import fill_
    >>> whole = fill_(torch.empty(4, 6), "orthogonal", seed=0, name="w")
    >>> layout = placement_layout((4, 6), (2,), (0,), (Shard(0),))  # rows 0-1
    >>> part = fill_on_layout_(torch.empty(2, 6), layout, get_scheme("orthogonal"), seed=0,
    ...                        name="w")
    >>> bool(torch.equal(part, whole[:2]))
    True
    """
    shape = layout.global_shape
    scheme.check_shape(shape)
    spec = scheme.draw_spec(shape, fans) if local.dtype in _LOCAL["encodings"] else None
    if spec is not None:
        return draw_on_layout_(local, layout, spec, Stream(seed, name), precision=precision)
    values = scheme.sample(shape, Stream(seed, name), fans)
    return copy_on_layout_(local, layout, values)


def fill_sharded_(tensor: Any, scheme: Any, **kwargs: Any) -> Any:
    """:func:`initlab.torch.fill.fill_` for a DTensor: this rank's shard of the values the
    whole tensor would get (``scheme`` a resolved :class:`~initlab.schemes.Scheme`)."""
    if tensor.is_meta:
        scheme.check_shape(tuple(tensor.shape))
        return tensor
    local, layout = local_region(tensor)
    fill_on_layout_(local, layout, scheme, **kwargs)
    return tensor


def write_block_(
    tensor: Any,
    rows: tuple[int, int] | None,
    *,
    scheme: Any = None,
    seed: int = 0,
    name: str = "",
    fans: Any = None,
    values: Any = None,
    zero_rows: tuple[int, ...] = (),
) -> None:
    """Write one block of a DTensor on this rank (``initlab.init``'s write phase): global rows
    ``rows`` of ``tensor`` (all of it for None) get ``scheme``'s values from the stream
    ``(seed, name)`` indexed within the block, or the whole block's ``values``; then the
    global rows ``zero_rows`` of the whole tensor are zeroed."""
    local, layout = local_region(tensor, rows)
    if values is not None:
        copy_on_layout_(local, layout, values)
    elif scheme is not None:
        fill_on_layout_(local, layout, scheme, seed=seed, name=name, fans=fans)
    if zero_rows:
        whole, full = local_region(tensor)
        with torch.no_grad():
            for row in zero_rows:
                part, _ = full.rows(row, row + 1)
                whole[part].zero_()


def run_on_whole_(fn: Any, tensor: Any, arguments: dict[str, Any]) -> Any:
    """Run the tensor function ``fn`` (e.g. ``orthogonal_``) on a whole plain tensor of the
    DTensor's global shape and copy this rank's shard out of it: every rank computes the
    same whole matrix (same key, same generator state) and keeps its part."""
    if tensor.is_meta:
        return tensor
    whole = torch.empty(tuple(tensor.shape), dtype=tensor.dtype, device=tensor._local_tensor.device)
    fn(**{**arguments, "tensor": whole})
    return copy_global_(tensor, whole)
