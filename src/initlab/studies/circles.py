r"""The classic exercise: zeros vs large random vs He on two concentric circles.

A ``[2, 10, 5, 1]`` network (ReLU, ReLU, sigmoid) learns scikit-learn's
``make_circles(noise=0.05)``: 300 training points, 100 test points, full-batch gradient
descent, learning rate 0.01, 15,000 iterations. Only the initialization changes between
rows (biases always start at zero):

* ``zeros``: every unit of a layer computes the same thing and gets the same gradient; with
  ReLU the gradients of all hidden weights are exactly zero. The cost stays at
  ``ln 2 = 0.6931`` and the network predicts one class: 50% accuracy.
* ``random``: N(0, 10^2), the classic *large* random init. The sigmoid saturates, the first
  cost is in the hundreds, and training ends well below He.
* ``he``: N(0, 2 / fan_in). Reaches 95%+ test accuracy.
* ``xavier`` (N(0, 2 / (fan_in + fan_out))) and ``small_random`` (N(0, 0.01^2)) as extra rows.

The network is written twice: in plain NumPy (:mod:`initlab.studies.numpy_net`, the
course's forward/backward/update spelled out) and in PyTorch (:func:`torch_circles_net`,
``torch.optim.SGD``). Both draw their initial weights from initlab under the same stream
names, so for a given seed they start from the same weights and, in float64, follow the
same trajectory: the study reports how far apart they end.

>>> result = run_circles(quick=True, seed=0, initializations=("zeros",), iterations=200,
...                      replicates=1, torch_replicates=1)
>>> row = result.data["summary"]["numpy"]["zeros"]
>>> round(row["final_cost"]["mean"], 4), row["test_accuracy"]["mean"]
(0.6931, 0.5)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from initlab._validation import check_int
from initlab.rng import derive_key
from initlab.studies import numpy_net
from initlab.studies._common import (
    Bars,
    Stopwatch,
    StudyResult,
    new_figure,
    save_figure,
    summarize,
    torch_threads,
)

__all__ = ["INITIALIZATIONS", "CirclesResult", "make_data", "run_circles", "torch_circles_net"]

#: Rows of the study, in order: the seeds' three, then two extra.
INITIALIZATIONS: tuple[str, ...] = ("zeros", "random", "he", "xavier", "small_random")
LAYER_DIMS = (2, 10, 5, 1)
LEARNING_RATE = 0.01
ITERATIONS = 15_000
N_TRAIN, N_TEST, NOISE = 300, 100, 0.05
RECORD_EVERY = 100
#: Replicate seeds (data and weights) per mode: NumPy runs, PyTorch runs.
REPLICATES = {"quick": (3, 1), "full": (10, 3)}
IMPLEMENTATIONS = ("numpy", "torch")


def make_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, Y_train, X_test, Y_test)`` in the course's layout: ``X`` is ``(2, m)``,
    ``Y`` is ``(1, m)`` float64. Both sets are drawn from ``make_circles(noise=0.05)`` with
    random states derived from ``seed`` (train and test independently).

    >>> X, Y, Xt, Yt = make_data(0)
    >>> X.shape, Y.shape, Xt.shape, float(Y.mean())
    ((2, 300), (1, 300), (2, 100), 0.5)
    """
    from sklearn.datasets import make_circles

    def draw(n: int, part: str) -> tuple[np.ndarray, np.ndarray]:
        state = derive_key(seed, f"circles.{part}") % 2**32
        x, y = make_circles(n_samples=n, noise=NOISE, random_state=state)
        return x.T.astype(np.float64), y[None, :].astype(np.float64)

    return (*draw(N_TRAIN, "train"), *draw(N_TEST, "test"))


def torch_circles_net() -> Any:
    """The PyTorch twin of the NumPy network: Linear-ReLU-Linear-ReLU-Linear (float64).

    The output is a logit; the sigmoid is inside ``BCEWithLogitsLoss``. Layers are named
    ``layer1..layer3`` like the NumPy streams, so the same seed gives the same weights.

    >>> [name for name, _ in torch_circles_net().named_parameters()][:2]
    ['layer1.weight', 'layer1.bias']
    """
    from torch import nn

    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i in range(1, len(LAYER_DIMS)):
        layers[f"layer{i}"] = nn.Linear(LAYER_DIMS[i - 1], LAYER_DIMS[i])
        if i < len(LAYER_DIMS) - 1:
            layers[f"relu{i}"] = nn.ReLU()
    return nn.Sequential(layers).double()


def _accuracy(predictions: np.ndarray, Y: np.ndarray) -> float:
    return float(np.mean(predictions == Y))


def _run_numpy(
    data: tuple, initialization: str, seed: int, iterations: int, bars: Bars, label: str
) -> dict[str, Any]:
    X, Y, Xt, Yt = data
    with bars.task(label, iterations) as task:
        parameters, costs = numpy_net.model(
            X, Y, LAYER_DIMS, learning_rate=LEARNING_RATE, num_iterations=iterations,
            initialization=initialization, seed=seed, record_every=RECORD_EVERY,
            callback=lambda i, _: task.update(i),
        )  # fmt: skip
    return {
        "train_accuracy": _accuracy(numpy_net.predict(X, parameters), Y),
        "test_accuracy": _accuracy(numpy_net.predict(Xt, parameters), Yt),
        "costs": costs,
        "_parameters": parameters,
    }


def _run_torch(
    data: tuple, initialization: str, seed: int, iterations: int, bars: Bars, label: str
) -> dict[str, Any]:
    import torch

    from initlab.studies._torch_init import apply_scheme, build_model

    X, Y, Xt, Yt = (torch.from_numpy(np.ascontiguousarray(a.T)) for a in data)
    net = build_model(torch_circles_net, seed=seed)
    applied = apply_scheme(net, numpy_net.scheme_for(initialization), seed=seed)
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    costs: list[float] = []
    with bars.task(label, iterations) as task:
        for i in range(iterations + 1):
            loss = loss_fn(net(X), Y)
            if i % RECORD_EVERY == 0 or i == iterations:
                costs.append(loss.item())
                task.update(i)
            if i == iterations:
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        train = _accuracy((net(X) > 0).double().numpy(), Y.numpy())
        test = _accuracy((net(Xt) > 0).double().numpy(), Yt.numpy())
    return {
        "train_accuracy": train,
        "test_accuracy": test,
        "costs": costs,
        "init_warnings": applied.get("warnings", []),
    }


METRICS = ("initial_cost", "final_cost", "train_accuracy", "test_accuracy")


def run_circles(
    *,
    quick: bool = False,
    seed: int = 0,
    initializations: Sequence[str] = INITIALIZATIONS,
    iterations: int = ITERATIONS,
    replicates: int | None = None,
    torch_replicates: int | None = None,
    bars: Bars | None = None,
) -> CirclesResult:
    """Run the circles study; returns every cost curve and accuracy.

    Replicate ``k`` uses seed ``seed + k`` for both the data and the weights. ``quick``
    runs 3 NumPy and 1 PyTorch replicates, the full study 10 and 3 (override with
    ``replicates`` / ``torch_replicates``). Every run is 15,000 iterations.
    """
    seed = check_int("seed", seed, minimum=0)
    iterations = check_int("iterations", iterations, minimum=1)
    for init in initializations:
        numpy_net.scheme_for(init)
    n_numpy, n_torch = REPLICATES["quick" if quick else "full"]
    n_numpy = n_numpy if replicates is None else check_int("replicates", replicates, minimum=1)
    n_torch = (
        n_torch if torch_replicates is None
        else check_int("torch_replicates", torch_replicates, minimum=0)
    )  # fmt: skip
    watch = Stopwatch()
    bars = bars or Bars(enabled=False)
    runs: list[dict[str, Any]] = []
    parameters: dict[str, Any] = {}
    jobs = [
        (impl, init, seed + k)
        for impl, count in (("numpy", n_numpy), ("torch", n_torch))
        for k in range(count)
        for init in initializations
    ]
    with torch_threads(), bars.task("circles", len(jobs)) as overall:
        data_cache: dict[int, tuple] = {}
        for impl, init, replicate_seed in jobs:
            data = data_cache.setdefault(replicate_seed, make_data(replicate_seed))
            label = f"  {impl} {init} seed {replicate_seed}"
            runner = _run_numpy if impl == "numpy" else _run_torch
            outcome = runner(data, init, replicate_seed, iterations, bars, label)
            if "_parameters" in outcome:
                params = outcome.pop("_parameters")
                if replicate_seed == seed:
                    parameters[init] = params
            runs.append(
                {
                    "implementation": impl,
                    "initialization": init,
                    "scheme": numpy_net.scheme_for(init),
                    "seed": replicate_seed,
                    "initial_cost": outcome["costs"][0],
                    "final_cost": outcome["costs"][-1],
                    **outcome,
                }
            )
            overall.advance()
    summary: dict[str, dict[str, Any]] = {}
    for impl in IMPLEMENTATIONS:
        for init in initializations:
            chosen = [
                r for r in runs if r["implementation"] == impl and r["initialization"] == init
            ]
            if chosen:
                summary.setdefault(impl, {})[init] = {
                    "scheme": chosen[0]["scheme"],
                    "seeds": [r["seed"] for r in chosen],
                    **{m: summarize([r[m] for r in chosen]) for m in METRICS},
                }
    agreement = _agreement(runs)
    config = {
        "layer_dims": list(LAYER_DIMS),
        "activations": ["relu"] * (len(LAYER_DIMS) - 2) + ["sigmoid"],
        "learning_rate": LEARNING_RATE,
        "iterations": iterations,
        "optimizer": "full-batch gradient descent",
        "data": f"make_circles(noise={NOISE}): {N_TRAIN} train, {N_TEST} test points",
        "record_every": RECORD_EVERY,
        "seed": seed,
        "quick": quick,
        "replicates": {"numpy": n_numpy, "torch": n_torch},
        "initializations": {init: numpy_net.scheme_for(init) for init in initializations},
    }
    result = CirclesResult(
        "circles",
        config,
        {"summary": summary, "numpy_vs_torch": agreement, "runs": runs},
        seconds=watch.seconds,
    )
    result.parameters = parameters
    result.seed_data = make_data(seed)
    return result


def _agreement(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """How far the PyTorch twin is from the NumPy network (same seed, same initial weights).

    Relative differences of the cost curves: rounding differences alone (1e-15) where
    training is smooth; larger where it is chaotic (std-10 weights make the first steps huge).
    """
    by_key = {(r["initialization"], r["seed"]): r for r in runs if r["implementation"] == "numpy"}
    pairs = []
    for r in runs:
        twin = by_key.get((r["initialization"], r["seed"]))
        if r["implementation"] == "torch" and twin is not None:
            mine, theirs = np.asarray(r["costs"]), np.asarray(twin["costs"])
            relative = np.abs(mine - theirs) / np.maximum(np.abs(theirs), 1e-300)
            pairs.append(
                {
                    "initialization": r["initialization"],
                    "seed": r["seed"],
                    "max_relative_cost_difference": float(relative.max()),
                    "final_relative_cost_difference": float(relative[-1]),
                    "same_test_accuracy": r["test_accuracy"] == twin["test_accuracy"],
                }
            )
    return {"pairs": pairs}


@dataclass
class CirclesResult(StudyResult):
    """Cost curves and accuracies of the circles study (see :func:`run_circles`)."""

    parameters: dict[str, Any] | None = None
    seed_data: tuple | None = None

    def tables(self) -> list[Table]:
        summary = self.data["summary"]
        reps = self.config["replicates"]
        table = Table(
            title=(
                f"circles: [2, 10, 5, 1] ReLU-ReLU-sigmoid, GD lr {LEARNING_RATE}, "
                f"{self.config['iterations']:,} iterations; NumPy, mean of {_seeds(reps['numpy'])}"
            )
        )
        table.add_column("init")
        table.add_column("weights")
        for column in ("cost at 0", "final cost", "train acc", "test acc [min-max]"):
            table.add_column(column, justify="right")
        if "torch" in summary:
            table.add_column(f"PyTorch test acc ({_seeds(reps['torch'])})", justify="right")
        for init, row in summary["numpy"].items():
            cells = [
                init,
                row["scheme"],
                f"{row['initial_cost']['mean']:.4g}",
                f"{row['final_cost']['mean']:.4g}",
                f"{row['train_accuracy']['mean']:.1%}",
                _fmt_acc(row["test_accuracy"]),
            ]
            if "torch" in summary:
                twin = summary["torch"].get(init)
                cells.append(f"{twin['test_accuracy']['mean']:.1%}" if twin else "-")
            table.add_row(*cells)
        return [table]

    def findings(self) -> list[str]:
        rows = self.data["summary"]["numpy"]
        lines = []
        if "zeros" in rows:
            z = rows["zeros"]
            lines.append(
                f"zeros: cost stays at {z['final_cost']['mean']:.4f} (ln 2 = {math.log(2):.4f}), "
                f"test accuracy {z['test_accuracy']['mean']:.0%}: symmetric units never separate."
            )
        if "random" in rows:
            r = rows["random"]
            lines.append(
                f"random (N(0, 10^2)): first cost {r['initial_cost']['mean']:.0f} on average "
                f"(saturated sigmoid), test accuracy {r['test_accuracy']['mean']:.0%}."
            )
        if "he" in rows:
            h = rows["he"]
            lines.append(
                f"he: test accuracy {h['test_accuracy']['mean']:.1%} on average "
                f"(min {h['test_accuracy']['min']:.0%})."
            )
        pairs = self.data["numpy_vs_torch"]["pairs"]
        if pairs:
            worst: dict[str, float] = {}
            for p in pairs:
                init = p["initialization"]
                worst[init] = max(worst.get(init, 0.0), p["max_relative_cost_difference"])
            listed = ", ".join(f"{init} {value:.1e}" for init, value in worst.items())
            lines.append(
                "PyTorch twin vs NumPy (same seeds, same initial weights), largest relative "
                f"cost difference along the curve: {listed}."
            )
        return lines

    def plot(self, out_dir: Path) -> list[Path]:
        out_dir = Path(out_dir)
        return [self._plot_costs(out_dir / "circles_cost.png"), self._plot_boundaries(out_dir)]

    def _plot_costs(self, path: Path) -> Path:
        fig = new_figure(7.5, 4.5)
        ax = fig.add_subplot()
        for index, init in enumerate(self.data["summary"]["numpy"]):
            color = COLORS.get(init, f"C{index}")
            runs = [
                r for r in self.data["runs"]
                if r["implementation"] == "numpy" and r["initialization"] == init
            ]  # fmt: skip
            # zeros and small_random both sit at ln 2: zeros is drawn wide underneath and
            # small_random dashed on top, so that neither hides the other
            wide = init == "zeros"
            for k, run in enumerate(runs):
                steps = np.arange(len(run["costs"])) * RECORD_EVERY
                steps[-1] = self.config["iterations"]
                ax.plot(
                    steps, run["costs"], color=color, alpha=(0.6 if wide else 1.0) if k == 0
                    else 0.3, lw=(5.0 if wide else 1.6) if k == 0 else 0.8,
                    ls="--" if init == "small_random" else "-", zorder=1 if wide else 2,
                    label=init if k == 0 else None,
                )  # fmt: skip
        ax.axhline(math.log(2), color="grey", ls=":", lw=1)
        ax.text(0, math.log(2) * 1.08, "ln 2", color="grey", fontsize=8)
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("cost (binary cross-entropy)")
        ax.set_title("circles: cost per initialization (NumPy; thin lines: other seeds)")
        ax.legend(loc="upper right", fontsize=8, ncol=2)
        return save_figure(fig, path)

    def _plot_boundaries(self, out_dir: Path) -> Path:
        params = self.parameters or {}
        inits = list(params)
        X, Y, _, _ = self.seed_data
        fig = new_figure(3.0 * max(len(inits), 1), 3.2)
        grid = np.linspace(-1.5, 1.5, 200)
        gx, gy = np.meshgrid(grid, grid)
        points = np.stack([gx.ravel(), gy.ravel()])
        for i, init in enumerate(inits):
            ax = fig.add_subplot(1, len(inits), i + 1)
            z = numpy_net.predict(points, params[init]).reshape(gx.shape)
            ax.contourf(gx, gy, z, levels=[-0.5, 0.5, 1.5], colors=["#c6dbef", "#f4c7c3"])
            ax.scatter(X[0], X[1], c=Y[0], cmap="coolwarm", s=6, edgecolors="none")
            row = next(
                r for r in self.data["runs"]
                if r["implementation"] == "numpy" and r["initialization"] == init
                and r["seed"] == self.config["seed"]
            )  # fmt: skip
            ax.set_title(f"{init}: test {row['test_accuracy']:.0%}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
        return save_figure(fig, out_dir / "circles_boundaries.png")


#: Plot colour of each row; other initializations cycle through matplotlib's defaults.
COLORS = {
    "zeros": "#7f7f7f",
    "random": "#d62728",
    "he": "#2ca02c",
    "xavier": "#1f77b4",
    "small_random": "#9467bd",
}


def _seeds(count: int) -> str:
    return f"{count} seed" if count == 1 else f"{count} seeds"


def _fmt_acc(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.1%} [{100 * stats['min']:.0f}-{100 * stats['max']:.0f}]"
