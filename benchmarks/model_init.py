"""Whole-model initialization: a GPT-style ~1.3B-parameter model, initlab against torch.

Three ways to get an initialized model, each timed in its own fresh process (so that each
peak memory is its own):

* ``torch``: ``GPT(config)`` on the CPU, torch's default construction (every ``nn.Linear``
  by ``kaiming_uniform_(a=sqrt(5))`` and a uniform bias, embeddings ``N(0, 1)``, LayerNorm
  ones and zeros), parameters allocated and initialized as the modules are built;
* ``initlab.init``: the model built under ``torch.device("meta")`` (no memory, no values),
  then ``initlab.init(model, seed=0)``: discovery of every layer's nonlinearity, then each
  parameter materialized on the CPU and filled in place by the counter-based kernels, then
  measured for the report (``measure=False`` skips that pass over every parameter);
* ``to_empty + fill_``: the meta model materialized by ``model.to_empty(device="cpu")`` and
  each parameter filled by ``initlab.torch.fill_`` (the kernels without discovery).

Reported: wall time (and its ratio to torch's), and peak resident memory growth during the
initialization (``ru_maxrss`` after minus before), against the parameters' own bytes: an
initializer that allocates nothing beyond the parameters stays near 1.0x.

    PYTHONPATH=src python benchmarks/model_init.py [--layers 24] [--width 2048] [--repeats 1]
        [--json out.json]

The GPT (nanoGPT's layout, GPT-3 XL's size): vocabulary 50304, context 2048, 24 blocks of
width 2048 with 16 heads, the language-model head tied to the token embedding: 1.32e9
parameters, 5.3 GB in float32.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from torch import nn
from torch.nn import functional as F

METHODS = ("torch", "initlab.init", "initlab.init(measure=False)", "to_empty + fill_")
TARGET_MEMORY = 1.1


@dataclass(frozen=True)
class GPTConfig:
    vocab: int = 50304
    context: int = 2048
    layers: int = 24
    width: int = 2048
    heads: int = 16


class Attention(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.qkv = nn.Linear(c.width, 3 * c.width)
        self.proj = nn.Linear(c.width, c.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(c.width)
        self.attn = Attention(c)
        self.ln2 = nn.LayerNorm(c.width)
        self.fc = nn.Linear(c.width, 4 * c.width)
        self.out = nn.Linear(4 * c.width, c.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(c.vocab, c.width)
        self.wpe = nn.Embedding(c.context, c.width)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.width)
        self.head = nn.Linear(c.width, c.vocab, bias=False)
        self.head.weight = self.wte.weight  # tied

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def _rss_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _fill_each(model: nn.Module, seed: int) -> None:
    from initlab.torch.fill import fill_

    for name, p in model.named_parameters():
        if isinstance(model.get_submodule(name.rpartition(".")[0]), nn.LayerNorm):
            scheme = "ones" if name.endswith("weight") else "zeros"
        elif name.endswith("bias"):
            scheme = "zeros"
        elif name.startswith(("wte", "wpe")):
            scheme = "normal(std=0.02)"
        else:
            scheme = "he_normal"
        fill_(p, scheme, seed=seed, name=name)


def child(method: str, config: GPTConfig) -> dict:
    """Run one method in this process; return its measurements."""
    import numpy as np

    import initlab
    from initlab import fastrng

    fastrng.fill(np.empty(1 << 20, np.float32), "normal", 0)  # load the kernels first
    with torch.device("meta"):
        shapes = GPT(config)
    params = {id(p): p for p in shapes.parameters()}.values()
    n_params = sum(p.numel() for p in params)
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    if method != "torch":
        model = shapes
    del shapes
    before = _rss_kib()
    start = time.perf_counter()
    if method == "torch":
        model = GPT(config)
    elif method == "initlab.init":
        initlab.init(model, seed=0)
    elif method == "initlab.init(measure=False)":
        initlab.init(model, seed=0, measure=False)
    else:
        model.to_empty(device="cpu")
        model.head.weight = model.wte.weight
        _fill_each(model, seed=0)
    seconds = time.perf_counter() - start
    peak = _rss_kib()
    assert not any(p.is_meta for p in model.parameters())
    return {
        "method": method, "seconds": seconds, "n_params": n_params,
        "param_bytes": param_bytes, "rss_before_bytes": before * 1024,
        "rss_growth_bytes": (peak - before) * 1024,
    }  # fmt: skip


def run_child(method: str, config: GPTConfig) -> dict:
    here = Path(__file__).resolve().parent
    paths = [str(here.parent / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    code = (
        f"import json, sys; sys.path.insert(0, {str(here)!r})\n"
        "import model_init as m\n"
        f"print(json.dumps(m.child({method!r}, m.GPTConfig(**{asdict(config)!r}))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=GPTConfig.layers)
    parser.add_argument("--width", type=int, default=GPTConfig.width)
    parser.add_argument("--repeats", type=int, default=1, help="runs per method (best kept)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    config = GPTConfig(layers=args.layers, width=args.width, heads=max(1, args.width // 128))
    console = Console()
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("initializing", total=args.repeats * len(METHODS))
        for _ in range(args.repeats):
            for method in METHODS:  # interleaved: load changes hit every method alike
                progress.update(task, description=f"{method}")
                r = run_child(method, config)
                if method not in results or r["seconds"] < results[method]["seconds"]:
                    results[method] = r
                progress.advance(task)
    load_after = os.getloadavg()
    base = results["torch"]["seconds"]
    first = next(iter(results.values()))
    title = (
        f"GPT {config.layers} x {config.width}: {first['n_params'] / 1e9:.2f}e9 parameters, "
        f"{first['param_bytes'] / 2**30:.2f} GiB float32; best of {args.repeats}; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    table = Table(title=title, title_justify="left")
    table.caption = ("speed-up: torch's seconds / these; memory: peak resident growth, and "
                     "its ratio to the parameters' bytes")
    table.caption_justify = "left"
    for col in ("method", "seconds", "speed-up", "memory", "/ params"):
        table.add_column(col, justify="right")
    for method, r in results.items():
        growth = r["rss_growth_bytes"] / r["param_bytes"]
        style = "green" if growth <= TARGET_MEMORY else "red"
        table.add_row(
            method, f"{r['seconds']:.2f}", f"{base / r['seconds']:.2f}x",
            f"{r['rss_growth_bytes'] / 2**30:.2f} GiB", f"[{style}]{growth:.3f}x[/{style}]",
        )  # fmt: skip
    console.print(table)
    console.print(f"parameters: {first['n_params']:,}; memory target: growth <= "
                  f"{TARGET_MEMORY}x parameter bytes; {torch.get_num_threads()} torch threads, "
                  f"{os.cpu_count()} CPUs.")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"config": asdict(config), "results": results,
             "load": [load_before, load_after]}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
