"""Training from initlab's "auto" init against each model's own init, on real architectures.

Four transformers models built from small configs (no download), each trained from three
initializations, with three seeds each:

* ``own``: the model as transformers builds it (its ``_init_weights``: GPT-2 and Llama
  ``N(0, 0.02)`` everywhere, GPT-2's residual projections scaled by ``1/sqrt(2 n_layer)``;
  ViT truncated ``N(0, 0.02)``; ResNet Kaiming (fan_out) convolutions);
* ``auto``: ``initlab.init(model, seed=seed)``, without example inputs;
* ``he``: ``initlab.init(model, "he", seed=seed)``, He normal for every weight.

Tasks (each a few seconds per run on 2 CPU cores):

* **copy** (GPT-2 and Llama): sequences ``x_1..x_8 SEP x_1..x_8`` of random tokens from a
  vocabulary of 64; the causal LM is trained to predict the second half; final loss: cross
  entropy on the second half of 512 held-out sequences;
* **digits** (ViT and ResNet): scikit-learn's 8x8 handwritten digits (1797 images, shipped
  with scikit-learn), 1437 for training, 360 held out; final loss: held-out cross entropy.

AdamW, learning rate 1e-3, batch 32, 300 steps (the same data order for every init of a
seed). Reported per model and init: mean final loss over the seeds and its range (min..max),
and the same for the loss at step 0 (before any update).

    PYTHONPATH=src python benchmarks/real_models.py [--steps 300] [--seeds 0 1 2]
        [--markdown docs-table.md] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import transformers as tf
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sklearn.datasets import load_digits
from torch.nn import functional as F

import initlab

INITS = ("own", "auto", "he")
VOCAB, HALF = 64, 8
LR, BATCH = 1e-3, 32


# ---- models ------------------------------------------------------------------------------


def gpt2() -> torch.nn.Module:
    return tf.GPT2LMHeadModel(tf.GPT2Config(
        vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=2 * HALF + 1,
        bos_token_id=0, eos_token_id=0))  # fmt: skip


def llama() -> torch.nn.Module:
    return tf.LlamaForCausalLM(tf.LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, intermediate_size=128, max_position_embeddings=2 * HALF + 1,
        bos_token_id=0, eos_token_id=0, pad_token_id=None))  # fmt: skip


def vit() -> torch.nn.Module:
    return tf.ViTForImageClassification(tf.ViTConfig(
        image_size=8, patch_size=2, num_channels=1, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=128, num_labels=10,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))  # fmt: skip


def resnet() -> torch.nn.Module:
    return tf.ResNetForImageClassification(tf.ResNetConfig(
        num_channels=1, embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1],
        layer_type="basic", num_labels=10, downsample_in_first_stage=False))  # fmt: skip


# ---- tasks --------------------------------------------------------------------------------


@dataclass
class Task:
    name: str
    model: str
    build: Callable[[], torch.nn.Module]
    batches: Callable[[int, int], list[tuple[torch.Tensor, torch.Tensor]]]
    held_out: tuple[torch.Tensor, torch.Tensor]
    loss: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def copy_sequences(n: int, g: torch.Generator) -> torch.Tensor:
    tokens = torch.randint(2, VOCAB, (n, HALF), generator=g)
    sep = torch.ones(n, 1, dtype=torch.long)
    return torch.cat([tokens, sep, tokens], 1)


def copy_batches(steps: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1000 + seed)
    return [(x, x) for x in (copy_sequences(BATCH, g) for _ in range(steps))]


def copy_loss(model: torch.nn.Module, x: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=x).logits[:, HALF:-1]  # predicts x[HALF+1:], the copy
    return F.cross_entropy(logits.reshape(-1, VOCAB), x[:, HALF + 1 :].reshape(-1))


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = (images - images.mean()) / images.std()
    labels = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train, test = order[:1437], order[1437:]
    return images[train], labels[train], images[test], labels[test]


def digit_batches(x: torch.Tensor, y: torch.Tensor) -> Callable:
    def make(steps: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(2000 + seed)
        out = []
        for _ in range(steps):
            idx = torch.randint(0, len(y), (BATCH,), generator=g)
            out.append((x[idx], y[idx]))
        return out

    return make


def image_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(pixel_values=x).logits, y)


def tasks() -> list[Task]:
    held = copy_sequences(512, torch.Generator().manual_seed(99))
    xtr, ytr, xte, yte = digits()
    return [
        Task("copy", "GPT-2", gpt2, copy_batches, (held, held), copy_loss),
        Task("copy", "Llama", llama, copy_batches, (held, held), copy_loss),
        Task("digits", "ViT", vit, digit_batches(xtr, ytr), (xte, yte), image_loss),
        Task("digits", "ResNet", resnet, digit_batches(xtr, ytr), (xte, yte), image_loss),
    ]


# ---- training -----------------------------------------------------------------------------


def evaluate(task: Task, model: torch.nn.Module) -> float:
    model.eval()
    with torch.no_grad():
        value = float(task.loss(model, *task.held_out))
    model.train()
    return value


def run(task: Task, init: str, seed: int, steps: int) -> tuple[float, float]:
    torch.manual_seed(seed)
    model = task.build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if init == "auto":
            initlab.init(model, seed=seed, measure=False)
        elif init == "he":
            initlab.init(model, "he", seed=seed, measure=False)
    start = evaluate(task, model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    model.train()
    for x, y in task.batches(steps, seed):
        loss = task.loss(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    end = evaluate(task, model)
    return start, end if math.isfinite(end) else float("inf")


@dataclass
class Result:
    model: str
    task: str
    init: str
    start: list[float]
    final: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.final)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--markdown", help="also write the table as Markdown to this file")
    parser.add_argument("--json", help="also write the numbers as JSON to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread per run: steadier on a shared machine
    results: list[Result] = []
    todo = [(t, i) for t in tasks() for i in INITS]
    began = time.perf_counter()
    with Progress(transient=True) as bar:
        job = bar.add_task("training", total=len(todo) * len(args.seeds))
        for task, init in todo:
            result = Result(task.model, task.name, init, [], [])
            for seed in args.seeds:
                start, final = run(task, init, seed, args.steps)
                result.start.append(start)
                result.final.append(final)
                bar.advance(job)
            results.append(result)
    elapsed = time.perf_counter() - began
    show(results, args, elapsed)


def _span(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} ({min(values):.3f}..{max(values):.3f})"


def verdicts(results: list[Result]) -> dict[str, str]:
    """Per model: whether auto's mean final loss is at most the model's own init's."""
    out = {}
    for model in dict.fromkeys(r.model for r in results):
        by = {r.init: r for r in results if r.model == model}
        ok = by["auto"].mean <= by["own"].mean
        out[model] = "yes" if ok else "NO"
    return out


def show(results: list[Result], args: argparse.Namespace, elapsed: float) -> None:
    table = Table(title=f"final held-out loss after {args.steps} steps, {len(args.seeds)} seeds")
    for column in ("model", "task", "init", "loss at step 0", "final loss: mean (min..max)"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(r.model, r.task, r.init, f"{statistics.fmean(r.start):.2f}", _span(r.final))
    console = Console()
    console.print(table)
    ok = verdicts(results)
    console.print("auto at least as good as the model's own init: " + ", ".join(
        f"{m} {v}" for m, v in ok.items()) + f"  ({elapsed:.0f} s)")  # fmt: skip
    if args.markdown:
        lines = [
            "| model | task | init | loss at step 0 | final loss: mean (min..max) |",
            "|---|---|---|---:|---:|",
        ]
        for r in results:
            lines.append(f"| {r.model} | {r.task} | {r.init} | {statistics.fmean(r.start):.2f} "
                         f"| {_span(r.final)} |")  # fmt: skip
        with open(args.markdown, "w") as fh:
            fh.write("\n".join(lines) + "\n")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"steps": args.steps, "seeds": args.seeds, "verdicts": ok,
                       "results": [asdict(r) for r in results]}, fh, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
