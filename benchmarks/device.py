"""The torch backend on a device: initlab's stream filled on the GPU against torch's generator.

For each size and distribution the same preallocated tensor on the device is filled by

* ``torch``: torch's own generator on the device (``normal_``, ``uniform_``,
  ``torch.nn.init.trunc_normal_``): the baseline;
* ``initlab``: ``initlab.torch.fill.draw_`` with ``backend="torch"``: the counter-based stream
  computed on the device, the same bits as the CPU kernels;
* ``via CPU``: ``backend="numba"``: the CPU kernels into a host buffer, copied over (what a
  non-CPU tensor got before the torch backend existed; smallest size only, it is slow);

timed with the device synchronized, best of round-robin repeats, as G elements/s, with the
ratios initlab / torch from the same run. It also checks, once per distribution, that the
device values equal the CPU kernel's bit for bit (``same bits`` column).

Without a GPU it says so and runs the comparison on the CPU (torch backend against the numba
kernels and torch's CPU generator), which is a correctness run, not the measurement.

    PYTHONPATH=src python benchmarks/device.py [--sizes 1e6,1.6e7,6.4e7] [--repeats 5]
        [--device cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable

import torch
from rich.console import Console
from rich.table import Table

from initlab.rng import Draw, Stream
from initlab.torch.fill import draw_

DRAWS = {
    "normal": (Draw("normal", scale=0.02), lambda t: t.normal_(0.0, 0.02)),
    "uniform": (Draw("uniform", loc=-0.1, scale=0.2), lambda t: t.uniform_(-0.1, 0.1)),
    "trunc_normal": (
        Draw("truncated_normal", scale=0.02, low=-2.0, high=2.0, clip=(-0.04, 0.04)),
        lambda t: torch.nn.init.trunc_normal_(t, std=0.02, a=-0.04, b=0.04),
    ),
}
GPU_SIZES = (1_000_000, 16_000_000, 64_000_000)
CPU_SIZES = (100_000, 1_000_000)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(calls: dict[str, Callable[[], object]], repeats: int, device) -> dict[str, float]:
    """Best wall time of each call (device synchronized), round-robin, after a warm-up."""
    best = dict.fromkeys(calls, math.inf)
    for call in calls.values():
        call()
    _sync(device)
    for _ in range(repeats):
        for key, call in calls.items():
            _sync(device)
            start = time.perf_counter()
            call()
            _sync(device)
            best[key] = min(best[key], time.perf_counter() - start)
    return best


def same_bits(draw: Draw, device: torch.device, n: int = 1 << 20) -> bool:
    """The device fill equals the CPU kernels' (numba) bit for bit, at an odd offset."""
    stream = Stream(0, "check")
    on_device = draw_(torch.empty(n, device=device), draw, stream, offset=12345, backend="torch")
    try:
        reference = draw_(torch.empty(n), draw, stream, offset=12345, backend="numba")
    except ImportError:  # no numba here: the torch backend on the CPU is the reference
        reference = draw_(torch.empty(n), draw, stream, offset=12345, backend="torch")
    return bool(torch.equal(on_device.cpu().view(torch.int32), reference.view(torch.int32)))


def run(sizes: list[int], repeats: int, device: torch.device, console: Console) -> list[dict]:
    rows = []
    for name, (draw, torch_fill) in DRAWS.items():
        identical = same_bits(draw, device)
        for i, n in enumerate(sizes):
            x = torch.zeros(n, device=device)
            stream = Stream(0, "w")
            calls = {
                "torch": lambda x=x, f=torch_fill: f(x),
                "initlab": lambda x=x, d=draw, s=stream: draw_(x, d, s, backend="torch"),
            }
            if i == 0 and device.type != "cpu":
                calls["via_cpu"] = lambda x=x, d=draw, s=stream: draw_(x, d, s, backend="numba")
            best = measure(calls, repeats if n < 1e7 else max(2, repeats // 2), device)
            row = {"distribution": name, "n": n, "same_bits": identical}
            row.update({f"{k}_gps": n / v / 1e9 for k, v in best.items()})
            rows.append(row)
            console.log(f"{name} {n:.1e}: " + ", ".join(f"{k} {n / v / 1e9:.3f} G/s"
                                                       for k, v in best.items()))  # fmt: skip
            del x
    return rows


def table(rows: list[dict], device: torch.device) -> Table:
    t = Table(title=f"fill on {device}: G elements/s, float32", title_justify="left")
    for col in ("dist", "elements", "torch", "initlab", "ratio", "via CPU", "same bits"):
        t.add_column(col, justify="right")
    for r in rows:
        ratio = r["initlab_gps"] / r["torch_gps"]
        style = "green" if ratio >= 1.0 else "red"
        via = f"{r['via_cpu_gps']:.4f}" if "via_cpu_gps" in r else "-"
        t.add_row(r["distribution"], f"{r['n']:.1e}", f"{r['torch_gps']:.3f}",
                  f"{r['initlab_gps']:.3f}", f"[{style}]{ratio:.2f}x[/{style}]", via,
                  "yes" if r["same_bits"] else "[red]NO[/red]")  # fmt: skip
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="comma-separated element counts")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    console = Console(width=max(80, Console().width))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        console.print(
            "[yellow]No GPU here: comparing on the CPU instead (the torch backend against "
            "torch's CPU generator). This checks the backend; it is not the GPU "
            "measurement, and on a CPU initlab's default is the numba kernels.[/yellow]"
        )
    default = GPU_SIZES if device.type != "cpu" else CPU_SIZES
    sizes = [int(float(s)) for s in args.sizes.split(",")] if args.sizes else list(default)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    console.print(
        f"[bold]torch backend on {name}[/bold]: torch {torch.__version__}, "
        f"INITLAB_TORCH_COMPILE={os.environ.get('INITLAB_TORCH_COMPILE', '1')}, load average "
        f"{os.getloadavg()[0]:.2f}; best of round-robin repeats, synchronized."
    )
    rows = run(sizes, args.repeats, device, console)
    console.print(table(rows, device))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": str(device), "name": name, "rows": rows}, fh, indent=2)
        console.print(f"figures written to {args.json}")
    return 0 if all(r["same_bits"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
