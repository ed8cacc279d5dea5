"""Fill speed: initlab's counter-based generator against torch.nn.init, side by side.

For every tensor size (1e3 ... 6.4e7 float32 elements, shape (n / cols, cols)) and every
initializer, the same preallocated tensor is filled by

* ``torch``: ``torch.nn.init.<name>`` (torch's CPU generator; the baseline),
* ``initlab``: the drop-in ``initlab.torch.<name>`` (generator=None: the fast path, keyed from
  torch's default generator),
* ``fill_``: ``initlab.torch.fill_(tensor, scheme, seed=, name=)`` (a named, seeded stream),

and ``tensor.zero_()`` gives the memory-bandwidth limit. A last table times the default
``initlab.init(linear, "he", seed=0)`` (its report's measured std and mean included) on an
``nn.Linear`` with the largest size's weight, against ``torch.nn.init.kaiming_normal_`` of that
weight. The four calls are interleaved
round-robin and repeated; a figure is the best (smallest) time, the usual estimator when
noise only ever adds time, as G elements/s; ratios are initlab / torch of those speeds,
from the same run. The machine's load average is printed: on a shared machine other
people's work moves every figure (torch's and initlab's alike), so compare ratios, not
absolute speeds.

    PYTHONPATH=src python benchmarks/fill.py [--sizes 1e3,1e4,...] [--repeats 5] [--json out]
        [--dtype float32|bfloat16] [--threads N] [--skip-orthogonal]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numba
import torch
import torch.nn.init as tinit
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import initlab
import initlab.torch as init
from initlab.fastrng.threads import available_threads
from initlab.torch.fill import fill_

DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000, 64_000_000)
ORTHOGONAL_MAX = 10_000_000  # QR of larger tensors takes seconds per call


@dataclass(frozen=True)
class Family:
    """One initializer: torch's call, initlab's drop-in, and the fill_ scheme."""

    title: str
    torch_fn: Callable[[torch.Tensor], object]
    initlab_fn: Callable[[torch.Tensor], object]
    scheme: str


FAMILIES = [
    Family("kaiming_normal_", tinit.kaiming_normal_, init.kaiming_normal_,
           "he_normal(nonlinearity='leaky_relu')"),
    Family("kaiming_uniform_", tinit.kaiming_uniform_, init.kaiming_uniform_,
           "he_uniform(nonlinearity='leaky_relu')"),
    Family("trunc_normal_", tinit.trunc_normal_, init.trunc_normal_, "trunc_normal"),
    Family("orthogonal_", tinit.orthogonal_, init.orthogonal_, "orthogonal"),
]  # fmt: skip


def shape_for(n: int) -> tuple[int, int]:
    cols = min(1000, max(1, n // 10))
    return n // cols, cols


def repeats_for(n: int, base: int) -> int:
    """More repeats for small tensors (cheap, noisy), ``base`` for the largest."""
    return max(base, min(200, int(base * 2e6 / max(n, 1))))


def measure(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each call, run round-robin ``repeats`` times (after one warm-up)."""
    best = dict.fromkeys(calls, math.inf)
    for call in calls.values():
        call()
    for _ in range(repeats):
        for key, call in calls.items():
            start = time.perf_counter()
            call()
            best[key] = min(best[key], time.perf_counter() - start)
    return best


def run(sizes, repeats: int, dtype: torch.dtype, skip_orthogonal: bool, progress) -> list[dict]:
    rows = []
    families = [f for f in FAMILIES if not (skip_orthogonal and f.title == "orthogonal_")]
    task = progress.add_task("filling", total=len(sizes) * len(families))
    for n in sizes:
        shape = shape_for(n)
        numel = math.prod(shape)
        x = torch.zeros(shape, dtype=dtype)  # touched: page faults are not measured
        reps = repeats_for(numel, repeats)
        for family in families:
            progress.update(task, description=f"{family.title} {numel:.0e}")
            if family.title == "orthogonal_" and numel > ORTHOGONAL_MAX:
                progress.advance(task)
                continue
            calls = {
                "zero": x.zero_,
                "torch": lambda f=family, x=x: f.torch_fn(x),
                "initlab": lambda f=family, x=x: f.initlab_fn(x),
                "fill_": lambda f=family, x=x: fill_(x, f.scheme, seed=0, name="w"),
            }
            r = reps if family.title != "orthogonal_" else max(1, min(reps, 3))
            best = measure(calls, r)
            rows.append({
                "family": family.title, "n": numel, "shape": list(shape), "repeats": r,
                **{f"{k}_gps": numel / v / 1e9 for k, v in best.items()},
                **{f"{k}_seconds": v for k, v in best.items()},
            })  # fmt: skip
            progress.advance(task)
    return rows


def run_init(n: int, repeats: int, dtype: torch.dtype) -> dict:
    """``initlab.init`` (report included) on a Linear of ``n`` weights vs kaiming_normal_."""
    side = math.isqrt(n)
    layer = torch.nn.Linear(side, n // side, dtype=dtype)
    layer.weight.data.zero_()  # touched: page faults are not measured
    calls = {
        "zero": layer.weight.data.zero_,
        "torch": lambda: tinit.kaiming_normal_(layer.weight),
        "initlab.init": lambda: initlab.init(layer, "he", seed=0),
    }
    best = measure(calls, repeats)
    numel = layer.weight.numel()
    return {"n": numel, "shape": list(layer.weight.shape),
            **{f"{k}_gps": numel / v / 1e9 for k, v in best.items()}}  # fmt: skip


def _ratio(value: float) -> str:
    style = "green" if value >= 1.0 else "red"
    return f"[{style}]{value:.2f}x[/{style}]"


def table(rows: list[dict], family: str, title: str) -> Table:
    """One family's rows, 75 columns wide: each ratio right of the speed it divides by
    torch's (``initlab / torch``, ``fill_ / torch``); ``/zero_`` is initlab's share of the
    memory-fill speed."""
    t = Table(title=title, title_justify="left", caption_justify="left",
              caption="ratio: the speed on its left / torch's; /zero_: initlab / zero_")
    for col in ("elements", "zero_", "torch", "initlab", "ratio", "fill_", "ratio", "/zero_"):
        t.add_column(col, justify="right")
    for r in (r for r in rows if r["family"] == family):
        t.add_row(
            f"{r['n']:.1e}", f"{r['zero_gps']:.2f}", f"{r['torch_gps']:.4f}",
            f"{r['initlab_gps']:.4f}", _ratio(r["initlab_gps"] / r["torch_gps"]),
            f"{r['fill__gps']:.4f}", _ratio(r["fill__gps"] / r["torch_gps"]),
            f"{r['initlab_gps'] / r['zero_gps']:.1%}",
        )  # fmt: skip
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(f"{s:.1e}" for s in DEFAULT_SIZES))
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the largest size")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=None, help="torch and initlab threads")
    parser.add_argument("--skip-orthogonal", action="store_true")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        os.environ["INITLAB_THREADS"] = str(args.threads)
    dtype = getattr(torch, args.dtype)
    console = Console()
    load_before = os.getloadavg()
    with Progress(console=console, transient=True) as progress:
        rows = run(sizes, args.repeats, dtype, args.skip_orthogonal, progress)
        init_row = run_init(max(sizes), args.repeats, dtype)
    load_after = os.getloadavg()
    context = {
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "initlab_threads": available_threads(), "torch": torch.__version__,
        "numba": numba.__version__, "python": platform.python_version(),
        "dtype": args.dtype, "load_before": load_before, "load_after": load_after,
    }  # fmt: skip
    console.print(
        f"[bold]fill speed[/bold], {args.dtype}: {context['cpus']} CPUs, torch "
        f"{context['torch']} on {context['torch_threads']} threads, initlab on "
        f"{context['initlab_threads']} threads; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after. Best of round-robin repeats; ratios from this run."
    )
    for family in FAMILIES:
        if any(r["family"] == family.title for r in rows):
            title = (f"{family.title}: G elements/s, tensors (n / cols, cols), cols = "
                     f"min(1000, n / 10); fill_: '{family.scheme}'")  # fmt: skip
            console.print(table(rows, family.title, title))
    t = Table(title="initlab.init(linear, 'he', seed=0), report included: G elements/s",
              title_justify="left")  # fmt: skip
    for col in ("elements", "zero_", "kaiming_normal_", "initlab.init", "ratio"):
        t.add_column(col, justify="right")
    r = init_row
    ratio = _ratio(r["initlab.init_gps"] / r["torch_gps"])
    t.add_row(f"{r['n']:.1e}", f"{r['zero_gps']:.2f}", f"{r['torch_gps']:.4f}",
              f"{r['initlab.init_gps']:.4f}", ratio)  # fmt: skip
    console.print(t)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"context": context, "rows": rows, "init": init_row}, fh, indent=2)
        console.print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
