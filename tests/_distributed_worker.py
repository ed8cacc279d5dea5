"""One rank of the distributed tests (tests/test_distributed.py starts 2 or 4 of them).

Run as ``python tests/_distributed_worker.py OUT_DIR`` with the torchrun variables set (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Every check gathers the sharded parameters
(``full_tensor()``, the tests' only collectives) and compares them with a one-process
``initlab.init`` of the same model; each rank writes ``rank{r}.json`` with the outcome of each
scenario, and rank 0 also saves the anchor tensors (``anchor.pt``) for the cross-layout test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import initlab
import initlab.torch as init
from initlab.torch import fill_
from initlab.torch.model import InitError

SEED = 7


def _benchmark():
    """The torchtitan-style model and its parallelization, from the benchmark (one copy)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "distributed_init.py"
    spec = importlib.util.spec_from_file_location("distributed_init", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["distributed_init"] = module
    spec.loader.exec_module(module)
    return module


_BENCH = _benchmark()
fsdp, tensor_parallel = _BENCH.fsdp, _BENCH.tensor_parallel


def Transformer() -> nn.Module:
    """Odd sizes (37 tokens, width 24, hidden 50: not divisible by 4), a padding row."""
    return _BENCH.Transformer(vocab=37, dim=24, heads=2, hidden=50, layers=2, padding_idx=5)


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


class Collectives(TorchDispatchMode):
    """Records every collective (c10d) operator dispatched while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if "c10d" in str(func):
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


def sharded_init(build, parallelize, **kwargs) -> tuple[dict, object, nn.Module, list]:
    """meta -> parallelize -> to_empty -> initlab.init, the torchtitan recipe."""
    with torch.device("meta"):
        model = build()
    model = parallelize(model)
    model.to_empty(device="cpu")
    with warnings.catch_warnings(), Collectives() as collectives:
        warnings.simplefilter("ignore")
        report = initlab.init(model, seed=SEED, **kwargs)
    return gathered(model), report, model, collectives.seen


def scenario_init(build, parallelize, **kwargs) -> dict:
    ref, ref_report = reference(build, **kwargs)
    got, report, model, collectives = sharded_init(build, parallelize, **kwargs)
    problems = compare(got, ref)
    if collectives:
        problems.append(f"initlab.init communicated: {sorted(set(collectives))}")
    if fans(report) != fans(ref_report):
        problems.append(f"report differs: {fans(report)} vs {fans(ref_report)}")
    if report.discovery != ref_report.discovery:
        problems.append(f"discovery {report.discovery!r} vs {ref_report.discovery!r}")
    return {"problems": problems, "placements": placements(model)}


def scenario_meta_plan(mesh) -> dict:
    """Planning on the sharded model still on the meta device: global shapes and fans, fx
    discovery through FSDP2; writing it is refused with the recipe, nothing changed."""
    _, ref_report = reference(Transformer)
    with torch.device("meta"):
        model = fsdp(Transformer(), mesh)
    report = initlab.init(model, seed=SEED, dry_run=True)
    problems = []
    if fans(report) != fans(ref_report):
        problems.append(f"dry-run report differs: {fans(report)} vs {fans(ref_report)}")
    shapes = {r.parameter: r.shape for r in report.rows}
    if shapes["tok_embeddings.weight"] != (37, 24):
        problems.append(f"report shape {shapes['tok_embeddings.weight']}, not global (37, 24)")
    try:
        initlab.init(model, seed=SEED)
        problems.append("init of a meta sharded model did not raise")
    except InitError as error:
        message = str(error)
        if "to_empty" not in message:
            problems.append(f"unclear message: {message}")
    if not all(p.is_meta for p in model.parameters()):
        problems.append("a failed init changed the model")
    return {"problems": problems, "message": message}


def scenario_anchor(mesh) -> dict:
    """torch.nn.init and initlab's drop-in on the same DTensor, seeded the same way."""
    from torch.distributed.tensor import Shard, distribute_tensor

    out = {}
    for label, fn in (("torch", torch.nn.init.normal_), ("initlab", init.normal_)):
        weight = distribute_tensor(torch.empty(37, 24), mesh, [Shard(0)])
        torch.manual_seed(SEED)
        fn(weight)
        out[label] = weight.full_tensor()
    for scheme, dtype in (("he_uniform", torch.float32), ("trunc_normal", torch.bfloat16)):
        weight = distribute_tensor(torch.empty(37, 24, dtype=dtype), mesh, [Shard(1)])
        out[f"fill_{scheme}"] = fill_(weight, scheme, seed=SEED, name="w").full_tensor()
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
    attempt("fsdp_mha", lambda: scenario_init(
        WithMHA, lambda m: fsdp(m, mesh), overrides={"fc.weight": torch.nn.init.eye_}))  # fmt: skip
    attempt("meta_plan", lambda: scenario_meta_plan(mesh))
    attempt("fsdp_orthogonal", lambda: scenario_init(
        Transformer, lambda m: fsdp(m, mesh), scheme="orthogonal"))  # fmt: skip
    attempt("fsdp_residual", lambda: scenario_init(
        Transformer, lambda m: fsdp(m, mesh), residual="gpt2"))  # fmt: skip
    if world == 4:
        mesh2 = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))

        def fsdp_tp(m: Transformer) -> nn.Module:
            return fsdp(tensor_parallel(m, mesh2["tp"]), mesh2["dp"])

        attempt("fsdp_tp", lambda: scenario_init(Transformer, fsdp_tp))
        attempt("hsdp", lambda: scenario_init(Transformer, lambda m: fsdp(m, mesh2)))
        attempt("fsdp_tp_snapshot", lambda: scenario_init(
            Transformer, fsdp_tp, distribution="truncated_normal", atomic="snapshot",
            residual="zero_last"))  # fmt: skip

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
