r"""He et al. (2015), figures 2 and 3 in miniature: deep plain ReLU networks, He vs Xavier.

Plain multilayer perceptrons (Linear + ReLU, no residual connections, no normalization) of
``depth`` Linear layers learn scikit-learn's handwritten digits (8x8 images, 10 classes,
shipped with scikit-learn: no download). Every scheme gets the same optimizer, learning rate,
batches and epochs; only the initial weights differ:

* ``he``: N(0, 2 / fan_in), biases 0 (He et al. 2015);
* ``xavier``: N(0, 2 / (fan_in + fan_out)), biases 0: for the square hidden layers
  ``Var[w] = 1 / n``, which halves the signal's variance at every ReLU layer;
* ``random``: N(0, 0.01^2), biases 0;
* ``torch_default``: the layers as ``nn.Linear`` builds them (weights U(+-1/sqrt(3 n)),
  biases U(+-1/sqrt(n))).

The paper's claim: at 22 layers both train (He faster); at 30 layers He trains while Xavier
"stalls completely". The study records, per epoch and seed, the training loss and the
training and test accuracy.

>>> result = run_depth(quick=True, depths=(4,), schemes=("he",), epochs=2, seeds=1, width=16)
>>> curves = result.data["results"]["4"]["he"]["per_seed"][0]
>>> len(curves["train_loss"]), bool(curves["train_loss"][-1] < curves["train_loss"][0])
(3, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from initlab._validation import check_choice, check_int, check_real
from initlab.rng import Stream
from initlab.studies._common import (
    Bars,
    Stopwatch,
    StudyResult,
    new_figure,
    save_figure,
    summarize,
    torch_threads,
)
from initlab.studies._torch_init import TORCH_DEFAULT

__all__ = ["SCHEMES", "DepthResult", "load_data", "plain_mlp", "run_depth"]

#: Scheme rows: short name -> initlab scheme.
SCHEMES: dict[str, str] = {
    "he": "he_normal",
    "xavier": "xavier_normal",
    "random": "random(std=0.01)",
    "torch_default": TORCH_DEFAULT,
}
DEPTHS = (10, 20, 30)
WIDTH = 64
BATCH = 64
LEARNING_RATE = 0.005
MOMENTUM = 0.9
#: (epochs, seeds) per mode.
MODES = {"quick": (20, 3), "full": (60, 5)}
#: A run "trains" when its final training loss is below this fraction of ln(10), the loss of
#: a network that outputs the same scores for every class.
TRAINED_FRACTION = 0.5


def load_data() -> tuple[Any, Any, Any, Any]:
    """Digits as float32 tensors ``(X_train, y_train, X_test, y_test)``: 1,437 / 360 images.

    The split is fixed (stratified, the same for every seed); pixels are standardized with
    the training set's mean and std.

    >>> X, y, Xt, yt = load_data()
    >>> tuple(X.shape), tuple(Xt.shape), int(y.max())
    ((1437, 64), (360, 64), 9)
    """
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=360, random_state=0, stratify=digits.target
    )
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1.0
    return (
        torch.tensor((X_train - mean) / std, dtype=torch.float32),
        torch.tensor(y_train, dtype=torch.long),
        torch.tensor((X_test - mean) / std, dtype=torch.float32),
        torch.tensor(y_test, dtype=torch.long),
    )


def plain_mlp(depth: int, width: int = WIDTH, n_in: int = 64, n_out: int = 10) -> Any:
    """``depth`` Linear layers with a ReLU after each but the last; no residuals, no norms.

    >>> net = plain_mlp(3, 8)
    >>> [type(m).__name__ for m in net]
    ['Linear', 'ReLU', 'Linear', 'ReLU', 'Linear']
    """
    from torch import nn

    sizes = [n_in] + [width] * (depth - 1) + [n_out]
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < depth - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _evaluate(net: Any, data: tuple) -> tuple[float, float, float]:
    import torch

    X, y, Xt, yt = data
    with torch.no_grad():
        logits = net(X)
        loss = float(torch.nn.functional.cross_entropy(logits, y))
        train_acc = float((logits.argmax(1) == y).double().mean())
        test_acc = float((net(Xt).argmax(1) == yt).double().mean())
    if not math.isfinite(loss):
        loss = float("inf")
    return loss, train_acc, test_acc


def train_one(
    depth: int,
    scheme: str,
    seed: int,
    *,
    data: tuple,
    epochs: int,
    width: int = WIDTH,
    learning_rate: float = LEARNING_RATE,
    task: Any = None,
) -> dict[str, list[float]]:
    """Train one network; returns per-epoch curves (index 0: before training).

    SGD with momentum, minibatches of 64 in an order drawn from the initlab stream
    ``(seed, "depth.shuffle.<epoch>")``: the same order for every scheme.
    """
    import torch

    from initlab.studies._torch_init import apply_scheme, build_model

    X, y = data[0], data[1]
    net = build_model(partial(plain_mlp, depth, width), seed=seed)
    apply_scheme(net, scheme, seed=seed)
    optimizer = torch.optim.SGD(net.parameters(), lr=learning_rate, momentum=MOMENTUM)
    curves: dict[str, list[float]] = {"train_loss": [], "train_accuracy": [], "test_accuracy": []}

    def record() -> None:
        loss, train_acc, test_acc = _evaluate(net, data)
        curves["train_loss"].append(loss)
        curves["train_accuracy"].append(train_acc)
        curves["test_accuracy"].append(test_acc)

    record()
    n = len(X)
    for epoch in range(epochs):
        order = np.argsort(Stream(seed, f"depth.shuffle.{epoch}").uniform(n), kind="stable")
        order = torch.from_numpy(order)
        for start in range(0, n, BATCH):
            batch = order[start : start + BATCH]
            loss = torch.nn.functional.cross_entropy(net(X[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        record()
        if task is not None:
            task.advance()
    return curves


def run_depth(
    *,
    quick: bool = False,
    seed: int = 0,
    depths: Sequence[int] = DEPTHS,
    schemes: Sequence[str] = tuple(SCHEMES),
    epochs: int | None = None,
    seeds: int | None = None,
    width: int = WIDTH,
    learning_rate: float = LEARNING_RATE,
    bars: Bars | None = None,
) -> DepthResult:
    """Train plain ReLU MLPs of each depth under each scheme, over several seeds.

    Quick: 15 epochs, 3 seeds; full: 60 epochs, 5 seeds (``seed, seed + 1, ...``).
    """
    seed = check_int("seed", seed, minimum=0)
    depths = [check_int("depths[]", d, minimum=2) for d in depths]
    for name in schemes:
        check_choice("scheme", name, SCHEMES)
    e, s = MODES["quick" if quick else "full"]
    epochs = e if epochs is None else check_int("epochs", epochs, minimum=1)
    n_seeds = s if seeds is None else check_int("seeds", seeds, minimum=1)
    width = check_int("width", width, minimum=1)
    learning_rate = check_real("learning_rate", learning_rate, minimum=0.0, strict_minimum=True)
    watch = Stopwatch()
    bars = bars or Bars(enabled=False)
    data = load_data()
    results: dict[str, dict[str, Any]] = {}
    jobs = len(depths) * len(schemes) * n_seeds
    with torch_threads(), bars.task("depth", jobs) as overall:
        for depth in depths:
            results[str(depth)] = {}
            for short in schemes:
                per_seed = []
                for k in range(n_seeds):
                    label = f"  depth {depth} {short} seed {seed + k}"
                    with bars.task(label, epochs) as task:
                        per_seed.append(
                            train_one(
                                depth,
                                SCHEMES[short],
                                seed + k,
                                data=data,
                                epochs=epochs,
                                width=width,
                                learning_rate=learning_rate,
                                task=task,
                            )
                        )
                    overall.advance()
                results[str(depth)][short] = {
                    "scheme": SCHEMES[short],
                    "per_seed": per_seed,
                    **_summary(per_seed),
                }
    config = {
        "data": "scikit-learn load_digits: 1437 train / 360 test, standardized",
        "depths": depths,
        "width": width,
        "activation": "relu",
        "optimizer": f"SGD(lr={learning_rate}, momentum={MOMENTUM}), batch {BATCH}",
        "epochs": epochs,
        "seeds": [seed + k for k in range(n_seeds)],
        "quick": quick,
        "schemes": {short: SCHEMES[short] for short in schemes},
        "trained_if": f"final train loss < {TRAINED_FRACTION} * ln(10)",
    }
    return DepthResult("depth", config, {"results": results}, seconds=watch.seconds)


def _summary(per_seed: list[dict[str, list[float]]]) -> dict[str, Any]:
    final_loss = [run["train_loss"][-1] for run in per_seed]
    threshold = TRAINED_FRACTION * math.log(10)
    return {
        "final_train_loss": summarize(final_loss),
        "final_train_accuracy": summarize([run["train_accuracy"][-1] for run in per_seed]),
        "final_test_accuracy": summarize([run["test_accuracy"][-1] for run in per_seed]),
        "seeds_trained": sum(loss < threshold for loss in final_loss),
        "first_epoch_below_threshold": [
            _first_below(run["train_loss"], threshold) for run in per_seed
        ],
    }


def _first_below(curve: list[float], threshold: float) -> int | None:
    return next((i for i, v in enumerate(curve) if v < threshold), None)


@dataclass
class DepthResult(StudyResult):
    """Per-epoch training curves of plain deep ReLU MLPs (see :func:`run_depth`)."""

    def tables(self) -> list[Table]:
        results = self.data["results"]
        n_seeds = len(self.config["seeds"])
        table = Table(
            title=(
                f"depth: plain ReLU MLPs (width {self.config['width']}) on digits, "
                f"{self.config['optimizer']}, {self.config['epochs']} epochs, {n_seeds} seeds"
            )
        )
        table.add_column("depth", justify="right")
        table.add_column("init")
        table.add_column("final train loss", justify="right")
        table.add_column("train acc", justify="right")
        table.add_column("test acc [min-max]", justify="right")
        table.add_column("seeds trained", justify="right")
        for depth, rows in results.items():
            for short, row in rows.items():
                acc = row["final_test_accuracy"]
                table.add_row(
                    depth,
                    short,
                    f"{row['final_train_loss']['mean']:.3g}",
                    f"{row['final_train_accuracy']['mean']:.1%}",
                    f"{acc['mean']:.1%} [{100 * acc['min']:.0f}-{100 * acc['max']:.0f}]",
                    f"{row['seeds_trained']}/{n_seeds}",
                )
        return [table]

    def findings(self) -> list[str]:
        results = self.data["results"]
        n_seeds = len(self.config["seeds"])
        lines = []
        for depth, rows in results.items():
            parts = [f"{short} {row['seeds_trained']}/{n_seeds}" for short, row in rows.items()]
            lines.append(
                f"depth {depth}: seeds whose loss fell below half of ln 10: {', '.join(parts)}."
            )
        return lines

    def plot(self, out_dir: Path) -> list[Path]:
        results = self.data["results"]
        depths = list(results)
        fig = new_figure(4.2 * len(depths), 7.0)
        for column, depth in enumerate(depths):
            for row_index, (key, label) in enumerate(
                (("train_loss", "training loss"), ("test_accuracy", "test accuracy"))
            ):
                ax = fig.add_subplot(2, len(depths), row_index * len(depths) + column + 1)
                for color_index, (short, row) in enumerate(results[depth].items()):
                    curves = np.asarray([run[key] for run in row["per_seed"]], dtype=np.float64)
                    epochs = np.arange(curves.shape[1])
                    color = f"C{color_index}"
                    mean = curves.mean(axis=0)
                    style = "--" if short == "random" else "-"  # random and torch_default overlap
                    ax.plot(epochs, mean, color=color, label=short, lw=1.8, ls=style)
                    ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0),
                                    color=color, alpha=0.2, lw=0)  # fmt: skip
                if key == "train_loss":
                    ax.set_yscale("log")
                    ax.axhline(math.log(10), color="grey", ls=":", lw=1)
                    ax.set_title(f"{depth} layers", fontsize=11)
                else:
                    ax.set_ylim(0, 1)
                    ax.set_xlabel("epoch")
                if column == 0:
                    ax.set_ylabel(label)
                if column == 0 and row_index == 0:
                    ax.legend(fontsize=8)
        fig.suptitle(
            f"plain ReLU MLPs on digits: mean over {len(self.config['seeds'])} seeds, "
            "band = min..max (dotted: ln 10)"
        )
        return [save_figure(fig, Path(out_dir) / "depth.png")]
