"""What a probe costs: ``initlab.probe`` against one plain forward and backward pass.

For each model the same batch goes through (a) a plain training step's forward and backward
(the random-projection loss the probe uses by default, gradients into ``.grad``), (b)
``initlab.probe`` with its defaults (hooks on every layer, statistics, histogram samples,
verdicts) and (c) the probe without histogram samples. The runs are interleaved and
repeated; the table gives ratios of the best (smallest) times, the usual estimator when noise
only ever adds time, and the ratio of medians beside it. CPU time of this process is the
primary measure (wall-clock time on a shared machine moves with other people's load; both
are shown). The target: a probe costs at most 3x the plain pass. On a machine shared with other
work (load average above the core count, printed in the title), ``--threads 1`` gives the
stable figure: several threads then spend their time waiting at barriers, which costs the
probe's many small reductions more than the plain pass's few large matmuls.

    PYTHONPATH=src python benchmarks/probe_overhead.py [--repeats 15] [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from torch import nn

from initlab.torch.probe import apply_scheme, probe
from initlab.torch.probe.models import cnn, mlp

TARGET = 3.0


@dataclass
class Case:
    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[torch.Generator], torch.Tensor]


def _transformer() -> nn.Module:
    layer = nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


def cases(quick: bool) -> list[Case]:
    if quick:
        return [
            Case("MLP relu, depth 4 x 32, batch 16", lambda: mlp(4, 32),
                 lambda g: torch.randn(16, 32, generator=g)),
        ]  # fmt: skip
    return [
        Case("MLP relu, depth 30 x 256, batch 256", lambda: mlp(30, 256, "relu"),
             lambda g: torch.randn(256, 256, generator=g)),
        Case("MLP tanh, depth 20 x 512, batch 256", lambda: mlp(20, 512, "tanh"),
             lambda g: torch.randn(256, 512, generator=g)),
        Case("CNN relu, 6 conv x 32 ch, batch 64, 3x32x32", lambda: cnn(6, 32, "relu"),
             lambda g: torch.randn(64, 3, 32, 32, generator=g)),
        Case("Transformer encoder, 2 x d128, batch 16 x 64 tokens", _transformer,
             lambda g: torch.randn(16, 64, 128, generator=g)),
    ]  # fmt: skip


def plain_step(model: nn.Module, x: torch.Tensor, r: torch.Tensor) -> None:
    """One training step's forward and backward (no optimizer step)."""
    model.zero_grad(set_to_none=True)
    out = model(x)
    (out * r).sum().backward()


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(case: Case, repeats: int) -> dict[str, dict[str, float]]:
    """Best (smallest) and median wall and CPU time of each variant, runs interleaved."""
    generator = torch.Generator().manual_seed(0)
    model = case.build()
    apply_scheme(model, "he", seed=0)
    x = case.inputs(generator)
    with torch.no_grad():
        r = torch.randn(model(x).shape, generator=generator)
    runs = {
        "plain": lambda: plain_step(model, x, r),
        "probe": lambda: probe(model, x),
        "probe_no_hist": lambda: probe(model, x, samples=0),
    }
    for fn in runs.values():  # warm-up
        fn()
        fn()
    walls: dict[str, list[float]] = {k: [] for k in runs}
    cpus: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):  # interleaved: load changes hit every variant alike
        for key, fn in runs.items():
            wall, cpu = timed(fn)
            walls[key].append(wall)
            cpus[key].append(cpu)
    return {
        "wall": {k: min(v) for k, v in walls.items()},
        "cpu": {k: min(v) for k, v in cpus.items()},
        "cpu_median": {k: statistics.median(v) for k, v in cpus.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="one tiny model (smoke run)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    if not console.is_terminal:
        console = Console(width=170)
    chosen = cases(args.quick)
    results = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("measuring", total=len(chosen))
        for case in chosen:
            progress.update(task, description=case.name)
            results.append((case, measure(case, args.repeats)))
            progress.advance(task)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    table = Table(
        title=f"probe overhead: best of {args.repeats} interleaved runs, "
        f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}; "
        f"load average {load:.1f} on {os.cpu_count()} cores",
        header_style="bold",
    )
    for heading in ("model", "plain fwd+bwd CPU ms", "probe / plain (CPU)",
                    "probe / plain (wall)", "no histograms / plain (CPU)",
                    "medians: probe / plain (CPU)", f"<= {TARGET:g}x"):  # fmt: skip
        table.add_column(heading, justify="left" if heading == "model" else "right")
    ok = True
    for case, t in results:
        cpu, wall, median = t["cpu"], t["wall"], t["cpu_median"]
        ratio = cpu["probe"] / cpu["plain"]
        ok &= ratio <= TARGET
        table.add_row(
            case.name,
            f"{1e3 * cpu['plain']:.1f}",
            f"{ratio:.2f}x",
            f"{wall['probe'] / wall['plain']:.2f}x",
            f"{cpu['probe_no_hist'] / cpu['plain']:.2f}x",
            f"{median['probe'] / median['plain']:.2f}x",
            "[green]yes[/]" if ratio <= TARGET else "[red]no[/]",
        )
    console.print(table)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
