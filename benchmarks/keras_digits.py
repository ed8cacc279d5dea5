"""A Keras model initialized by ``initlab.keras.init`` against Keras's default glorot_uniform,
trained on scikit-learn's digits (shipped with scikit-learn, nothing downloaded).

Three MLPs on the 64 pixels: a shallow ReLU one (2 hidden layers of 64), a deep one (10 hidden
ReLU layers of 64) where the initialization matters, and a deep tanh one (10 x 64). Each is
built once per seed, its weights set either by initlab's ``"auto"`` rule (He before ReLU,
Xavier before tanh, LeCun form for the logits) or left at Keras's defaults (glorot_uniform
kernels, zero biases), then trained with the same SGD (lr 0.01, momentum 0.9, batch 32) on the
same 70% split. The table shows the mean over the seeds of the training loss after the first
epoch and after the last, and the accuracy on the held-out 30%.

    KERAS_BACKEND=torch PYTHONPATH=src python benchmarks/keras_digits.py [--seeds 3] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import initlab.keras

ARCHITECTURES = {
    "relu 2x64": ("relu", 2),
    "relu 10x64": ("relu", 10),
    "tanh 10x64": ("tanh", 10),
}


def build(activation: str, depth: int) -> keras.Model:
    layers = [keras.Input((64,))]
    layers += [keras.layers.Dense(64, activation=activation) for _ in range(depth)]
    layers.append(keras.layers.Dense(10))
    return keras.Sequential(layers)


def run(activation: str, depth: int, init: str, seed: int, epochs: int, data) -> dict:
    x_train, x_test, y_train, y_test = data
    keras.utils.set_random_seed(seed)
    model = build(activation, depth)
    if init == "initlab auto":
        initlab.keras.init(model, seed=seed)
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    return {"first": history.history["loss"][0], "last": history.history["loss"][-1],
            "accuracy": accuracy}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    x, y = load_digits(return_X_y=True)
    data = train_test_split((x / 16.0).astype("float32"), y, test_size=0.3, random_state=0)
    table = Table(title=f"digits, SGD, {args.epochs} epochs, mean of {args.seeds} seeds")
    for name in ("model", "init", "loss ep. 1", f"loss ep. {args.epochs}", "test acc."):
        table.add_column(name, justify="left" if name in ("model", "init") else "right")
    console = Console(width=80)
    with console.status("training...") as status:
        for label, (activation, depth) in ARCHITECTURES.items():
            for init in ("keras default", "initlab auto"):
                status.update(f"training {label}, {init}")
                runs = [run(activation, depth, init, s, args.epochs, data)
                        for s in range(args.seeds)]  # fmt: skip
                mean = {k: statistics.fmean(r[k] for r in runs) for k in runs[0]}
                table.add_row(label, init, f"{mean['first']:.3f}", f"{mean['last']:.3f}",
                              f"{mean['accuracy']:.3f}")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
