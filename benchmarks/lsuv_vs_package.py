"""initlab.lsuv against the reference ``lsuv`` package (0.3.0), side by side on the same models.

For each model both implementations start from the same weights and the same batch; the
table reports forward passes of the whole model, calls of the rescaled layers (the unit of
work: ``O(L)`` for initlab, ``O(L^2)`` for the reference), the best wall time of a few runs
and the ratio measured in this run, and the largest deviation of any layer's output std from
the target, on the batch used and on a fresh batch (measured by separate hooks, not read
from either implementation's own bookkeeping).

Two settings: ``full`` includes the orthogonal pre-initialization (initlab draws it from its
Philox streams in NumPy, the reference calls ``torch.nn.init.orthogonal_``); ``rescale`` skips
it on both sides, which isolates the rescaling algorithms.

    pip install "initlab[bench]"    # or: pip install --no-deps lsuv==0.3.0
    PYTHONPATH=src python benchmarks/lsuv_vs_package.py [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from threadpoolctl import threadpool_limits
from torch import nn

from initlab.torch.lsuv import lsuv
from initlab.torch.lsuv.layers import find_targets

try:
    import lsuv as reference
except ImportError:  # pragma: no cover - the bench extra is not installed
    reference = None


def relu_mlp(depth: int = 30, width: int = 128, d_in: int = 32) -> nn.Sequential:
    """A ``depth``-layer ReLU MLP (``depth`` Linear layers)."""
    layers: list[nn.Module] = [nn.Linear(d_in, width), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def small_cnn() -> nn.Sequential:
    """Six convolutions (one grouped, one transposed) and a linear head."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1, stride=2, groups=2),
        nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 2, stride=2),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "ReLU MLP": (relu_mlp, (512, 32)),
    "small CNN": (small_cnn, (64, 3, 32, 32)),
}


class Counter:
    """Counts whole-model forward passes and calls of the rescalable layers."""

    def __init__(self, model: nn.Module) -> None:
        self.passes = 0
        self.layer_calls = 0
        self.handles = [model.register_forward_pre_hook(self._pass)]
        for target in find_targets(model):
            self.handles.append(target.module.register_forward_pre_hook(self._layer))

    def _pass(self, module, args) -> None:
        self.passes += 1

    def _layer(self, module, args) -> None:
        self.layer_calls += 1

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def max_deviation(model: nn.Module, x: torch.Tensor, target: float = 1.0) -> float:
    """Largest |std - target| over the rescalable layers' outputs, by separate hooks."""
    stds: list[float] = []

    def hook(module, args, output):
        y = output[0] if isinstance(output, tuple) else output
        stds.append(float(y.float().std()))

    handles = [t.module.register_forward_hook(hook) for t in find_targets(model)]
    was = model.training
    model.eval()
    with torch.no_grad():
        model(x)
    model.train(was)
    for handle in handles:
        handle.remove()
    return max(abs(s - target) for s in stds)


def run_ours(model: nn.Module, x: torch.Tensor, ortho: bool) -> None:
    lsuv(model, x, seed=0, orthogonal_first=ortho)


def run_reference(model: nn.Module, x: torch.Tensor, ortho: bool) -> None:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        reference.lsuv_with_singlebatch(model, x, verbose=False, do_orthonorm=ortho)


def measure(
    name: str, ortho: bool, repeats: int, progress: Progress, task
) -> dict[str, dict[str, float]]:
    build, shape = MODELS[name]
    torch.manual_seed(0)
    base = build()
    gen = torch.Generator().manual_seed(1)
    x, fresh = torch.randn(*shape, generator=gen), torch.randn(*shape, generator=gen)
    row: dict[str, dict[str, float]] = {}
    times: dict[str, list[float]] = {"initlab": [], "lsuv 0.3.0": []}
    runners = {"initlab": run_ours, "lsuv 0.3.0": run_reference}
    for who in runners:  # warm-up, untimed: first-call allocations and lazy imports
        runners[who](copy.deepcopy(base), x, ortho)
    for rep in range(repeats):
        # Alternate the order so that neither side always runs on a warmer cache.
        order = list(runners) if rep % 2 == 0 else list(reversed(runners))
        for who in order:
            model = copy.deepcopy(base)
            counter = Counter(model)
            start = time.perf_counter()
            runners[who](model, x, ortho)
            times[who].append(time.perf_counter() - start)
            counter.remove()
            row[who] = {
                "passes": counter.passes,
                "layer_calls": counter.layer_calls,
                "dev_seen": max_deviation(model, x),
                "dev_fresh": max_deviation(model, fresh),
            }
            progress.advance(task)
    for who, ts in times.items():
        row[who]["seconds"] = min(ts)
        row[who]["seconds_median"] = statistics.median(ts)
    row["layers"] = {"n": len(find_targets(base))}
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell (best)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch and BLAS threads for both (default 1)"
    )
    args = parser.parse_args(argv)
    # Same thread limits for both sides: torch's pool and NumPy's BLAS (initlab's QR) would
    # otherwise oversubscribe the cores and turn timings into noise on a shared machine.
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    console = Console()
    if reference is None:
        console.print("[red]the lsuv package is missing: pip install --no-deps lsuv==0.3.0")
        return 1
    settings = [(name, ortho) for name in MODELS for ortho in (True, False)]
    results = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("LSUV runs", total=len(settings) * args.repeats * 2)
        for name, ortho in settings:
            results.append((name, ortho, measure(name, ortho, args.repeats, progress, task)))

    table = Table(
        title=f"initlab.lsuv vs lsuv 0.3.0, target std 1 +- 0.1 (torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, best of {args.repeats})"
    )
    for column in (
        "model",
        "setting",
        "L",
        "passes",
        "layer calls",
        "time ours",
        "time ref",
        "ref/ours",
        "dev seen",
        "dev fresh",
    ):
        table.add_column(column, justify="left" if column in ("model", "setting") else "right")
    payload = []
    for name, ortho, row in results:
        ours, ref = row["initlab"], row["lsuv 0.3.0"]
        ratio = ref["seconds"] / ours["seconds"]
        table.add_row(
            name,
            "full" if ortho else "rescale",
            str(row["layers"]["n"]),
            f"{ours['passes']} / {ref['passes']}",
            f"{ours['layer_calls']} / {ref['layer_calls']}",
            f"{ours['seconds'] * 1e3:.0f} ms",
            f"{ref['seconds'] * 1e3:.0f} ms",
            f"{ratio:.1f}x",
            f"{ours['dev_seen']:.3f} / {ref['dev_seen']:.3f}",
            f"{ours['dev_fresh']:.3f} / {ref['dev_fresh']:.3f}",
        )
        payload.append(
            {"model": name, "orthogonal_first": ortho, "layers": row["layers"]["n"],
             "initlab": ours, "lsuv_0_3_0": ref, "time_ratio_ref_over_ours": ratio}
        )  # fmt: skip
    console.print(table)
    console.print(
        "Pairs read initlab / lsuv 0.3.0. passes: whole-model forward calls; layer calls: "
        "calls of the L rescaled layers over all passes; dev: max over layers of |std - 1| "
        "on the batch used (seen) and on a fresh batch; full: with the orthogonal "
        "pre-initialization, rescale: without it. Times: the best of the runs (the least "
        "disturbed by other load); the JSON has the medians too."
    )
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
