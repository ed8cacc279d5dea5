"""One rank of the distributed tests (tests/test_distributed.py starts 2 or 4 of them).

Run as ``python tests/_distributed_worker.py OUT_DIR`` with the torchrun variables set (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Every check gathers the sharded parameters
(``full_tensor()``, the tests' only collectives) and compares them with a one-process
``initlab.init`` of the same model; each rank writes ``rank{r}.json`` with the outcome of each
scenario, and rank 0 also saves the anchor tensors (``anchor.pt``) for the cross-layout test.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import initlab
import initlab.torch as init

SEED = 7


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.wq, self.wk = nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False)
        self.wv, self.wo = nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (w(x).view(b, t, self.heads, -1).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
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
    """A torchtitan-style Llama: odd vocabulary and hidden sizes (not divisible by 2 or 4)."""

    def __init__(self, vocab: int = 37, dim: int = 24, heads: int = 2, hidden: int = 50,
                 layers: int = 2) -> None:  # fmt: skip
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleDict({str(i): Block(dim, heads, hidden) for i in range(layers)})
        self.norm = nn.RMSNorm(dim)
        self.output = nn.Linear(dim, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.tok_embeddings(tokens)
        for layer in self.layers.values():
            h = layer(h)
        return self.output(self.norm(h))


class WithMHA(nn.Module):
    """nn.MultiheadAttention: q/k/v are row blocks of one parameter, each its own stream."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(18, 3, batch_first=True)
        self.fc = nn.Linear(18, 7)
        self.conv = nn.Conv1d(18, 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.attn(x, x, x)
        return self.fc(torch.relu(y)) + self.conv(y.transpose(1, 2)).mean()


def fsdp(model: nn.Module, mesh) -> nn.Module:
    from torch.distributed.fsdp import fully_shard

    for block in getattr(model, "layers", {}).values():
        fully_shard(block, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def tensor_parallel(model: Transformer, mesh) -> Transformer:
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


def gathered(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
        for n, p in model.named_parameters()
    }


def compare(sharded: dict, reference: dict) -> list[str]:
    problems = [f"{n}: missing" for n in reference if n not in sharded]
    for name, ref in reference.items():
        got = sharded.get(name)
        if got is not None and not torch.equal(got, ref):
            diff = (got.double() - ref.double()).abs().max().item()
            problems.append(f"{name}: differs (max |diff| {diff:.3g})")
    return problems


def placements(model: nn.Module) -> dict[str, str]:
    return {n: str(getattr(p, "placements", "plain")) for n, p in model.named_parameters()}


def reference(build, **kwargs) -> tuple[dict, object]:
    model = build()
    report = initlab.init(model, seed=SEED, **kwargs)
    return gathered(model), report


def fans(report) -> dict:
    return {(r.parameter, r.part): (r.fan_in, r.fan_out, r.rule, r.activation) for r in report.rows}


def sharded_init(build, parallelize, **kwargs) -> tuple[dict, object, nn.Module]:
    """meta -> parallelize -> to_empty -> initlab.init, the torchtitan recipe."""
    with torch.device("meta"):
        model = build()
    model = parallelize(model)
    model.to_empty(device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = initlab.init(model, seed=SEED, **kwargs)
    return gathered(model), report, model


def scenario_init(build, parallelize, **kwargs) -> dict:
    ref, ref_report = reference(build, **kwargs)
    got, report, model = sharded_init(build, parallelize, **kwargs)
    problems = compare(got, ref)
    if fans(report) != fans(ref_report):
        problems.append(f"report differs: {fans(report)} vs {fans(ref_report)}")
    if report.discovery != ref_report.discovery:
        problems.append(f"discovery {report.discovery!r} vs {ref_report.discovery!r}")
    return {"problems": problems, "placements": placements(model)}


def scenario_anchor(mesh) -> dict:
    """torch.nn.init and initlab's drop-in on the same DTensor, seeded the same way."""
    from torch.distributed.tensor import Shard, distribute_tensor

    out = {}
    for label, fn in (("torch", torch.nn.init.normal_), ("initlab", init.normal_)):
        weight = distribute_tensor(torch.empty(37, 24), mesh, [Shard(0)])
        torch.manual_seed(SEED)
        fn(weight)
        out[label] = weight.full_tensor()
    weight = distribute_tensor(torch.empty(24, 37), mesh, [Shard(1)])
    torch.manual_seed(SEED)
    out["initlab_orthogonal"] = init.orthogonal_(weight).full_tensor()
    try:  # torch has no DTensor orthogonal_ (no sharding rule for its QR steps)
        torch.nn.init.orthogonal_(weight)
        out["torch_orthogonal"] = "ran"
    except NotImplementedError as error:
        out["torch_orthogonal"] = f"NotImplementedError: {error}"
    return out


def run(out_dir: Path) -> None:
    from torch.distributed.device_mesh import init_device_mesh

    rank, world = dist.get_rank(), dist.get_world_size()
    results: dict[str, object] = {}

    def attempt(name: str, fn) -> None:
        start = time.perf_counter()
        try:
            results[name] = fn()
        except Exception:  # reported to the test, which shows it
            results[name] = {"problems": [traceback.format_exc()]}
        results[name]["seconds"] = round(time.perf_counter() - start, 2)

    mesh = init_device_mesh("cpu", (world,))
    attempt("fsdp", lambda: scenario_init(Transformer, lambda m: fsdp(m, mesh)))
    attempt("fsdp_mha", lambda: scenario_init(WithMHA, lambda m: fsdp(m, mesh)))
    attempt("fsdp_orthogonal", lambda: scenario_init(
        Transformer, lambda m: fsdp(m, mesh), scheme="orthogonal"))  # fmt: skip
    attempt("fsdp_residual", lambda: scenario_init(
        Transformer, lambda m: fsdp(m, mesh), residual="gpt2"))  # fmt: skip
    if world == 4:
        mesh2 = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))

        def fsdp_tp(m: Transformer) -> nn.Module:
            return fsdp(tensor_parallel(m, mesh2["tp"]), mesh2["dp"])

        attempt("fsdp_tp", lambda: scenario_init(Transformer, fsdp_tp))
        attempt("fsdp_tp_uniform", lambda: scenario_init(
            Transformer, fsdp_tp, distribution="truncated_normal"))  # fmt: skip

    def lsuv() -> dict:
        with torch.device("meta"):
            model = Transformer()
        model = fsdp(model, mesh)
        model.to_empty(device="cpu")
        try:
            initlab.lsuv(model, torch.zeros(2, 5, dtype=torch.long), seed=0)
        except NotImplementedError as error:
            return {"problems": [], "message": str(error)}
        return {"problems": ["lsuv did not raise NotImplementedError"]}

    attempt("lsuv", lsuv)
    anchor = scenario_anchor(mesh)
    if rank == 0:
        torch.save(anchor, out_dir / "anchor.pt")
    (out_dir / f"rank{rank}.json").write_text(json.dumps(results, indent=1))


def main() -> None:
    out_dir = Path(sys.argv[1])
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        run(out_dir)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    main()
