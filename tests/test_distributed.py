"""Sharded initialization on torch.distributed (gloo, CPU): 2 and 4 ranks started here.

Each world runs ``tests/_distributed_worker.py`` once per rank with the variables torchrun
sets; the worker builds models on the meta device, shards them (FSDP2 on a 1-D mesh, FSDP2
plus tensor parallelism on a 2x2 mesh), materializes them with ``to_empty``, runs
``initlab.init`` and compares the gathered weights with a one-process ``initlab.init``, bit for
bit. The single-process tests below check the shard arithmetic itself against torch's own
splitting of an index tensor, for every placement on 1-D and 2-D meshes.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.distributed.tensor import Partial, Replicate, Shard
from torch.distributed.tensor.placement_types import _StridedShard

import initlab.torch as init
from conftest import ROOT, SRC
from initlab.torch.distributed import ShardLayout, placement_layout

WORKER = ROOT / "tests" / "_distributed_worker.py"
TIMEOUT = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world: int, out_dir) -> dict[int, dict]:
    """Run the worker on ``world`` ranks (torchrun's environment), return each rank's JSON."""
    port = _free_port()
    base = {
        **os.environ,
        "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(world),
        "OMP_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
    }
    procs = []
    try:
        for rank in range(world):
            env = {**base, "RANK": str(rank), "LOCAL_RANK": str(rank)}
            procs.append(subprocess.Popen(
                [sys.executable, str(WORKER), str(out_dir)], env=env, cwd=ROOT,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            ))  # fmt: skip
        outputs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
    finally:
        for p in procs:  # on a timeout or error: no rank left behind
            if p.poll() is None:
                p.kill()
                p.wait()
    for rank, (p, text) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"rank {rank} of {world} exited {p.returncode}:\n{text[-4000:]}"
    return {r: json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(world)}


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[int, tuple[dict, dict]]:
    """The worker's results and rank 0's anchor tensors, for 2 and 4 ranks."""
    out = {}
    for world in (2, 4):
        folder = tmp_path_factory.mktemp(f"world{world}")
        results = launch(world, folder)
        out[world] = (results, torch.load(folder / "anchor.pt"))
    return out


SCENARIOS = [
    (2, "fsdp"), (2, "fsdp_mha"), (2, "fsdp_orthogonal"), (2, "fsdp_residual"), (2, "lsuv"),
    (4, "fsdp"), (4, "fsdp_mha"), (4, "fsdp_orthogonal"), (4, "fsdp_residual"), (4, "lsuv"),
    (2, "meta_plan"), (4, "meta_plan"), (4, "fsdp_tp"), (4, "fsdp_tp_snapshot"), (4, "hsdp"),
]  # fmt: skip


@pytest.mark.parametrize(("world", "scenario"), SCENARIOS)
def test_sharded_init_equals_one_process(worlds, world, scenario):
    results, _ = worlds[world]
    for rank, result in results.items():
        assert scenario in result, f"rank {rank}: scenario {scenario} did not run"
        assert result[scenario]["problems"] == [], f"rank {rank}: {result[scenario]}"


def test_layouts_really_are_sharded(worlds):
    """The scenarios test what they claim: uneven FSDP shards, strided FSDP+TP shards."""
    results, _ = worlds[4]
    fsdp = results[0]["fsdp"]["placements"]
    assert fsdp["tok_embeddings.weight"] == "(Shard(dim=0),)"  # 37 rows on 4 ranks: 10,10,10,7
    both = results[0]["fsdp_tp"]["placements"]
    assert "_StridedShard" in both["layers.0.attention.wq.weight"]  # FSDP over TP on dim 0
    assert both["layers.0.attention.wo.weight"] == "(Shard(dim=0), Shard(dim=1))"
    hybrid = results[0]["hsdp"]["placements"]  # HSDP: replicated on one mesh dimension
    assert hybrid["output.weight"] == "(Replicate(), Shard(dim=0))"


def test_lsuv_refuses_clearly(worlds):
    message = worlds[2][0][0]["lsuv"]["message"]
    assert "DTensor" in message and "initlab.init" in message


def test_anchor_torch_differs_across_layouts_initlab_does_not(worlds):
    """torch.nn.init on DTensors gives other weights on 2 and 4 ranks (PyTorch #168058);
    initlab's drop-ins, seeded the same way, and ``fill_`` give the one-process values on
    both (column shards, float32 and bfloat16)."""
    torch.manual_seed(7)
    single = init.normal_(torch.empty(37, 24))
    torch.manual_seed(7)
    single_orthogonal = init.orthogonal_(torch.empty(24, 37))
    two, four = worlds[2][1], worlds[4][1]
    assert not torch.equal(two["torch"], four["torch"])
    # on a CPU mesh torch draws the same numbers into every shard (torchtitan #3106's symptom)
    assert torch.equal(four["torch"][:10], four["torch"][10:20])
    assert two["torch_orthogonal"].startswith("NotImplementedError")  # no DTensor QR in torch
    assert torch.equal(two["initlab"], single) and torch.equal(four["initlab"], single)
    assert torch.equal(two["initlab_orthogonal"], single_orthogonal)
    assert torch.equal(four["initlab_orthogonal"], single_orthogonal)
    for scheme, dtype in (("he_uniform", torch.float32), ("trunc_normal", torch.bfloat16)):
        whole = init.fill_(torch.empty(37, 24, dtype=dtype), scheme, seed=7, name="w")
        assert torch.equal(two[f"fill_{scheme}"], whole), scheme  # columns 12 + 12
        assert torch.equal(four[f"fill_{scheme}"], whole), scheme  # columns 6, 6, 6, 6


# --------------------------------------------------------------------------------------
# The shard arithmetic, one process: against torch's own splitting of an index tensor
# --------------------------------------------------------------------------------------


def _torch_shard(shape, mesh_shape, coordinate, placements) -> np.ndarray:
    """What ``distribute_tensor`` puts on ``coordinate``: each mesh dimension's split, left
    to right, of the global element indices (torch's ``_split_tensor``)."""
    t = torch.arange(int(np.prod(shape))).reshape(shape)
    for mesh_dim, placement in enumerate(placements):
        if not isinstance(placement, Replicate):
            shards, _ = placement._split_tensor(t, mesh_shape[mesh_dim], with_padding=False)
            t = shards[coordinate[mesh_dim]]
    return t.numpy()


@pytest.mark.parametrize("shape", [(7,), (7, 3), (8, 8), (6, 5, 4)])
@pytest.mark.parametrize("mesh_shape", [(3,), (4,), (2, 2), (2, 3)])
def test_layout_matches_torch_split(shape, mesh_shape):
    options = [Replicate()] + [Shard(d) for d in range(len(shape))]
    options += [_StridedShard(d, split_factor=f) for d in range(len(shape)) for f in (2, 3)]
    index = np.arange(int(np.prod(shape))).reshape(shape)
    for placements in itertools.product(options, repeat=len(mesh_shape)):
        for coordinate in itertools.product(*map(range, mesh_shape)):
            expected = _torch_shard(shape, mesh_shape, coordinate, placements)
            layout = placement_layout(shape, mesh_shape, coordinate, placements)
            assert layout.local_shape == expected.shape, (placements, coordinate)
            assert np.array_equal(index[np.ix_(*layout.indices)], expected)
            starts, lengths = layout.runs()
            runs = [np.arange(s, s + n) for s, n in zip(starts, lengths, strict=True)]
            flat = np.concatenate(runs) if runs else np.zeros(0, int)
            assert np.array_equal(flat, expected.reshape(-1)), (placements, coordinate)


def test_layout_follows_shard_order():
    """Two mesh dimensions on one tensor dimension, the right one first (torch's shard_order)."""
    layout = placement_layout((8,), (2, 2), (0, 1), (Shard(0), Shard(0)), ((0, (1, 0)),))
    assert layout.indices[0].tolist() == [4, 5]  # mesh dim 1 halves first: rows 4-7, then 4-5


def test_partial_is_refused_by_name():
    with pytest.raises(ValueError, match="Partial"):
        placement_layout((4,), (2,), (0,), (Partial(),))


def test_block_rows_of_a_layout():
    layout = ShardLayout((12, 2), (np.arange(4, 8), np.arange(2)))  # rows 4-7 of 12
    part, block = layout.rows(6, 10)  # the block of rows 6-9: local rows 2-3 are its rows 0-1
    assert part == slice(2, 4) and block.indices[0].tolist() == [0, 1]
    assert block.global_shape == (4, 2)


# --------------------------------------------------------------------------------------
# Writing a shard, one process: a local tensor filled from its layout equals the same
# elements of the whole fill (both drawing strategies, half precision, non-contiguous)
# --------------------------------------------------------------------------------------

LAYOUTS = [
    ((300, 50), (2, 2), (1, 0), (Shard(0), Shard(1))),  # rows of 25 of 50: band buffer
    ((300, 50), (4,), (3,), (Shard(0),)),  # 75 whole rows: one run
    ((64, 40, 3), (2, 2), (0, 1), (_StridedShard(0, split_factor=2), Shard(0))),
    ((7, 9000), (3,), (2,), (Shard(1),)),  # long runs far apart: one draw per run
    ((37, 24), (2, 2), (1, 1), (Replicate(), Shard(0))),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", LAYOUTS)
def test_draw_on_layout_equals_whole_fill(case, dtype, monkeypatch):
    from initlab.rng import Draw, Stream
    from initlab.torch import distributed
    from initlab.torch.fill import draw_

    shape, mesh_shape, coordinate, placements = case
    layout = placement_layout(shape, mesh_shape, coordinate, placements)
    draw, stream = Draw("truncated_normal", scale=0.5, low=-2.0, high=2.0), Stream(3, "w")
    whole = draw_(torch.empty(shape, dtype=dtype), draw, stream)
    expected = whole[np.ix_(*layout.indices)]
    for call_cost in (0, 1 << 30):  # never / always worth a band buffer
        monkeypatch.setattr(distributed, "CALL_COST", call_cost)
        local = torch.empty(layout.local_shape, dtype=dtype)
        distributed.draw_on_layout_(local, layout, draw, stream)
        assert torch.equal(local, expected), call_cost
    if len(shape) >= 2:  # a non-contiguous local tensor (a transposed buffer)
        local = torch.empty(layout.local_shape[::-1], dtype=dtype).transpose(0, -1)
        local = local if local.shape == expected.shape else torch.empty_like(expected)
        distributed.draw_on_layout_(local, layout, draw, stream)
        assert torch.equal(local, expected)


def test_whole_matrix_schemes_keep_their_part():
    """Orthogonal: every rank computes the whole matrix from the same stream, keeps its rows."""
    from initlab.schemes import get_scheme
    from initlab.torch import distributed
    from initlab.torch.fill import fill_

    whole = fill_(torch.empty(12, 20), "orthogonal", seed=1, name="w")
    parts = []
    for c in range(3):
        layout = placement_layout((12, 20), (3,), (c,), (Shard(1),))
        local = torch.empty(layout.local_shape)
        distributed.fill_on_layout_(local, layout, get_scheme("orthogonal"), seed=1, name="w")
        parts.append(local)
    assert torch.equal(torch.cat(parts, dim=1), whole)
