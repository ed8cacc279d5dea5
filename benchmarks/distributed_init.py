"""Sharded initialization: per-rank time and memory of ``initlab.init`` on 1, 2 and 4 ranks.

A torchtitan-style Llama (token embedding, attention ``wq wk wv wo``, SwiGLU ``w1 w2 w3``,
RMSNorm, output head) is built on the meta device, sharded, materialized with
``to_empty(device="cpu")`` and initialized with ``initlab.init(model, seed=0)``, on gloo ranks
started here (one process per rank, torchrun's environment variables). Rows:

* ``1 process``: the same model without torch.distributed (meta -> to_empty -> init);
* ``FSDP2 xk``: ``fully_shard`` per block and at the root on a 1-D mesh of ``k`` ranks;
* ``FSDP2+TP 2x2``: tensor parallelism (Colwise/Rowwise) on the inner dimension of a 2x2
  mesh, FSDP2 on the outer one (strided shards).

Per rank: wall time of ``initlab.init`` (the slowest rank), CPU time (the mean rank), and the
peak resident memory growth during it (``ru_maxrss`` after minus before: the pages of the
shard, first written by the init, plus any buffers), against the shard's own bytes. Ratios are
to the one-process row, measured in the same run. Every process uses one thread; with more
ranks than cores (4 ranks on 2) the ranks share the cores, so their wall times include
waiting and the CPU time is the fairer measure of each rank's work.

    PYTHONPATH=src python benchmarks/distributed_init.py [--dim 1024] [--layers 4]
        [--vocab 32000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich import box
from rich.console import Console
from rich.table import Table
from torch import nn

ROWS = {  # name: (ranks, layout)
    "1 process": (1, "plain"),
    "FSDP2 x1": (1, "fsdp"),
    "FSDP2 x2": (2, "fsdp"),
    "FSDP2 x4": (4, "fsdp"),
    "FSDP2+TP 2x2": (4, "fsdp_tp"),
}


# --------------------------------------------------------------------------------------
# The model and its parallelization (also used by tests/_distributed_worker.py)
# --------------------------------------------------------------------------------------


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.wq, self.wk = nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False)
        self.wv, self.wo = nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (w(x).view(b, t, self.heads, -1).transpose(1, 2)
                   for w in (self.wq, self.wk, self.wv))  # fmt: skip
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(y.transpose(1, 2).reshape(b, t, -1))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.attention_norm, self.ffn_norm = nn.RMSNorm(dim), nn.RMSNorm(dim)
        self.attention = Attention(dim, heads)
        self.feed_forward = FeedForward(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x))
        return x + self.feed_forward(self.ffn_norm(x))


class Transformer(nn.Module):
    """torchtitan's Llama layout (names included), sizes as given."""

    def __init__(self, vocab: int = 37, dim: int = 24, heads: int = 2, hidden: int = 50,
                 layers: int = 2, padding_idx: int | None = None) -> None:  # fmt: skip
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab, dim, padding_idx=padding_idx)
        self.layers = nn.ModuleDict({str(i): Block(dim, heads, hidden) for i in range(layers)})
        self.norm = nn.RMSNorm(dim)
        self.output = nn.Linear(dim, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.tok_embeddings(tokens)
        for layer in self.layers.values():
            h = layer(h)
        return self.output(self.norm(h))


def fsdp(model: nn.Module, mesh) -> nn.Module:
    """FSDP2 as torchtitan applies it: each block, then the root."""
    from torch.distributed.fsdp import fully_shard

    for block in getattr(model, "layers", {}).values():
        fully_shard(block, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def tensor_parallel(model: Transformer, mesh) -> Transformer:
    """Megatron-style tensor parallelism: column-parallel in, row-parallel out."""
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    plan = {
        "attention.wq": ColwiseParallel(),
        "attention.wk": ColwiseParallel(),
        "attention.wv": ColwiseParallel(),
        "attention.wo": RowwiseParallel(),
        "feed_forward.w1": ColwiseParallel(),
        "feed_forward.w3": ColwiseParallel(),
        "feed_forward.w2": RowwiseParallel(),
    }
    for block in model.layers.values():
        parallelize_module(block, mesh, plan)
    parallelize_module(model, mesh, {"output": ColwiseParallel()})
    return model


# --------------------------------------------------------------------------------------
# One rank
# --------------------------------------------------------------------------------------


def _local_bytes(model: nn.Module) -> int:
    total = 0
    for p in model.parameters():
        local = p._local_tensor if hasattr(p, "_local_tensor") else p
        total += local.numel() * local.element_size()
    return total


def worker(layout: str, sizes: dict, out: Path) -> None:
    """Build, shard, materialize and time ``initlab.init`` on this rank; write JSON."""
    import initlab

    dist = None
    if layout != "plain":
        import torch.distributed as dist
        from torch.distributed.device_mesh import init_device_mesh

        dist.init_process_group("gloo")
        world = dist.get_world_size()
    with torch.device("meta"):
        model = Transformer(**sizes)
    if layout == "fsdp":
        model = fsdp(model, init_device_mesh("cpu", (world,)))
    elif layout == "fsdp_tp":
        mesh = init_device_mesh("cpu", (world // 2, 2), mesh_dim_names=("dp", "tp"))
        model = fsdp(tensor_parallel(model, mesh["tp"]), mesh["dp"])
    model.to_empty(device="cpu")
    initlab.init(Transformer(vocab=8, dim=4, heads=1, hidden=4, layers=1), seed=0)  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    initlab.init(model, seed=0, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    rank = dist.get_rank() if dist is not None else 0
    result = {"wall": wall, "cpu": cpu, "peak_mib": peak / 1024,
              "shard_mib": _local_bytes(model) / 2**20}  # fmt: skip
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    if dist is not None:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_row(ranks: int, layout: str, sizes: dict) -> list[dict]:
    """Start ``ranks`` processes (torchrun's environment) and collect each rank's JSON."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
               "WORLD_SIZE": str(ranks), "OMP_NUM_THREADS": "1",
               "NUMBA_NUM_THREADS": "1"}  # fmt: skip
        argv = [sys.executable, __file__, "--worker", layout, "--sizes", json.dumps(sizes),
                "--out", folder]  # fmt: skip
        procs = [
            subprocess.Popen(argv, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)})
            for r in range(ranks)
        ]
        try:
            codes = [p.wait(timeout=900) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        if any(codes):
            raise RuntimeError(f"a rank of {layout} x {ranks} failed (exit codes {codes})")
        return [json.loads((Path(folder) / f"rank{r}.json").read_text()) for r in range(ranks)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.worker, json.loads(args.sizes), args.out)
        return 0
    sizes = {"vocab": args.vocab, "dim": args.dim, "heads": max(1, args.dim // 128),
             "hidden": int(8 * args.dim / 3) // 64 * 64, "layers": args.layers}  # fmt: skip
    with torch.device("meta"):
        count = sum(p.numel() for p in Transformer(**sizes).parameters())
    console = Console()
    console.print(f"Llama-style model: {count / 1e6:.0f}M parameters, float32; sizes {sizes}")
    results = {name: run_row(ranks, layout, sizes) for name, (ranks, layout) in ROWS.items()}
    base = results["1 process"][0]
    table = Table(title="initlab.init per rank vs 1 process (1 thread each)", box=box.SIMPLE,
                  padding=(0, 1), pad_edge=False)  # fmt: skip
    for column in ("layout", "ranks", "wall s", "x 1", "CPU s", "x 1", "shard MiB",
                   "peak MiB", "x 1"):  # fmt: skip
        left = column == "layout"
        table.add_column(column, justify="left" if left else "right", no_wrap=left)
    rows = {}
    for name, ranks in results.items():
        wall = max(r["wall"] for r in ranks)
        cpu = sum(r["cpu"] for r in ranks) / len(ranks)
        shard = max(r["shard_mib"] for r in ranks)
        peak = max(r["peak_mib"] for r in ranks)
        rows[name] = {"ranks": len(ranks), "wall_s": wall, "cpu_s": cpu, "shard_mib": shard,
                      "peak_mib": peak, "per_rank": ranks}  # fmt: skip
        table.add_row(name, str(len(ranks)), f"{wall:.3f}", f"{wall / base['wall']:.2f}",
                      f"{cpu:.3f}", f"{cpu / base['cpu']:.2f}", f"{shard:.0f}", f"{peak:.0f}",
                      f"{peak / base['peak_mib']:.2f}")  # fmt: skip
    console.print(table)
    if args.json is not None:
        args.json.write_text(json.dumps({"sizes": sizes, "parameters": count, "rows": rows},
                                        indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
