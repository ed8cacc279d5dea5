r"""How the signal's scale travels through a deep plain network, measured against theory.

A stack of ``depth`` layers ``y_l = W_l x_{l-1} + b_l``, ``x_l = f(y_l)``, all ``width``
wide, gets a batch ``x_0 ~ N(0, 1)``; the loss ``sum(y_L * r)`` with a fixed ``r ~ N(0, 1)``
sends a unit-variance gradient back from the top. For each activation ``f`` and each
scheme the study records, at every layer, the std of the pre-activations ``y_l``, of their
gradients ``dL/dy_l`` and of the weight gradients ``dL/dW_l``.

Theory (the infinite-width, mean-field recursion; He et al. 2015, eqs. 7-14, in general form)
with ``q_l = Var[y_l]``, ``G_l = Var[dL/dy_l]`` and zero-mean weights of variance
``sigma_w^2``, biases of variance ``sigma_b^2``:

.. math::

    q_1 = n \sigma_w^2 \mathbb{E}[x_0^2] + \sigma_b^2, \qquad
    q_{l+1} = n \sigma_w^2\, \mathbb{E}_z[f(\sqrt{q_l}\, z)^2] + \sigma_b^2

    G_L = 1, \qquad G_l = n \sigma_w^2\, \mathbb{E}_z[f'(\sqrt{q_l}\, z)^2]\, G_{l+1}

with ``z ~ N(0, 1)`` (expectations by piecewise Gauss-Legendre quadrature). For ReLU
``E[f(sqrt(q) z)^2] = q / 2`` and ``E[f'^2] = 1/2``, so the forward recursion is He's
``Var[y_L] = Var[y_1] * prod_{l=2}^{L} (n_l Var[w_l] / 2)``: He's ``Var[w] = 2 / n`` keeps it
constant, Xavier's ``1 / n`` (square layers) halves it at every layer.

>>> result = run_propagation(quick=True, activations=("relu",), schemes=("he", "xavier"),
...                          depth=20, width=64, batch=64)
>>> he = result.data["results"]["relu"]["he"]
>>> bool(0.5 < he["measured"]["forward_ratio"] < 2), round(he["theory"]["forward_ratio"], 6)
(True, 1.0)
>>> round(result.data["results"]["relu"]["xavier"]["theory"]["forward_ratio"] ** 2, 8)
1.91e-06
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table
from scipy import special

from initlab._validation import check_choice, check_int
from initlab.fans import Fans
from initlab.gains import second_moment
from initlab.schemes import Normal, VarianceScaling, get_scheme
from initlab.studies._common import (
    Bars,
    Stopwatch,
    StudyResult,
    new_figure,
    save_figure,
    torch_threads,
)
from initlab.studies._torch_init import TORCH_DEFAULT

__all__ = [
    "ACTIVATIONS",
    "SCHEMES",
    "PropagationResult",
    "run_propagation",
    "theory",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_LEAKY_SLOPE = 0.01
_PRELU_SLOPE = 0.25


def _leaky(a: float) -> tuple[Callable, Callable]:
    return (lambda z: np.where(z > 0, z, a * z), lambda z: np.where(z > 0, 1.0, a))


def _selu(z: np.ndarray) -> np.ndarray:
    return _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(np.minimum(z, 0.0)))


def _selu_prime(z: np.ndarray) -> np.ndarray:
    return _SELU_SCALE * np.where(z > 0, 1.0, _SELU_ALPHA * np.exp(np.minimum(z, 0.0)))


def _gelu(z: np.ndarray) -> np.ndarray:
    return z * special.ndtr(z)


def _gelu_prime(z: np.ndarray) -> np.ndarray:
    return special.ndtr(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _sigmoid_prime(z: np.ndarray) -> np.ndarray:
    s = special.expit(z)
    return s * (1.0 - s)


#: Activation -> (f, f') in NumPy, for the theory. Leaky ReLU's slope is 0.01 (torch's
#: default), PReLU's initial slope 0.25 (torch's default).
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "relu": _leaky(0.0),
    "leaky_relu": _leaky(_LEAKY_SLOPE),
    "prelu": _leaky(_PRELU_SLOPE),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (special.expit, _sigmoid_prime),
    "selu": (_selu, _selu_prime),
    "gelu": (_gelu, _gelu_prime),
}

#: Scheme rows: short name -> initlab scheme. ``he`` is He with ReLU's gain whatever the
#: activation; ``auto`` is ``initlab.init``'s per-layer choice (He with the activation's own
#: gain before the ReLU family, Xavier before tanh/sigmoid, LeCun before SELU, the numeric
#: gain before GELU); ``torch_default``: the modules as constructed, weights U(+-1/sqrt(3 n))
#: from kaiming_uniform(a=sqrt(5)), biases U(+-1/sqrt(n)).
SCHEMES: dict[str, str] = {
    "he": "he_normal",
    "auto": "auto",
    "xavier": "xavier_normal",
    "random": "random(std=0.01)",
    "torch_default": TORCH_DEFAULT,
}


#: (depth, width, batch, seeds) per mode.
SIZES = {"quick": (100, 256, 32, 1), "full": (100, 512, 32, 4)}


def _variances(scheme: str, width: int, weight_std: float | None = None) -> tuple[float, float]:
    """(Var[w], Var[b]) of a ``width x width`` layer under ``scheme`` (``weight_std``, when
    given, is the std the layers were given: ``auto`` states it per layer in its report)."""
    if weight_std is not None:
        return weight_std**2, 0.0
    if scheme == TORCH_DEFAULT:
        # nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) -> bound 1/sqrt(n), and
        # bias U(-1/sqrt(n), 1/sqrt(n)); a uniform on [-b, b] has variance b^2 / 3.
        return 1.0 / (3.0 * width), 1.0 / (3.0 * width)
    resolved = get_scheme(scheme)
    if isinstance(resolved, VarianceScaling):
        return resolved.std(Fans(width, width)) ** 2, 0.0
    if isinstance(resolved, Normal):
        return resolved.std**2 + resolved.mean**2, 0.0
    raise ValueError(
        f"scheme={scheme!r} has no variance formula here; allowed: variance-scaling or "
        f"normal schemes, or {TORCH_DEFAULT!r}."
    )


def theory(
    activation: str,
    scheme: str,
    *,
    depth: int,
    width: int,
    input_second_moment: float = 1.0,
    weight_std: float | None = None,
) -> dict[str, list[float]]:
    r"""Mean-field prediction of ``std(y_l)`` and ``std(dL/dy_l)`` for ``l = 1..depth``.

    See the module docstring for the recursion. The backward pass starts from
    ``Var[dL/dy_L] = 1``. ``weight_std`` overrides the scheme's std (zero biases).

    >>> t = theory("relu", "he_normal", depth=3, width=100)
    >>> [round(v, 12) for v in t["activation_std"]], [round(v, 12) for v in t["gradient_std"]]
    ([1.414213562373, 1.414213562373, 1.414213562373], [1.0, 1.0, 1.0])
    >>> [round(v, 6) for v in theory("relu", "xavier_normal", depth=3, width=100)["gradient_std"]]
    [0.5, 0.707107, 1.0]
    """
    check_choice("activation", activation, ACTIVATIONS)
    f, f_prime = ACTIVATIONS[activation]
    var_w, var_b = _variances(scheme, width, weight_std)
    gain = width * var_w
    q = [gain * input_second_moment + var_b]
    for _ in range(depth - 1):
        root = math.sqrt(q[-1])
        q.append(gain * second_moment(lambda z, r=root: f(r * z)) + var_b)
    g = [1.0]
    for layer in range(depth - 1, 0, -1):  # G_l from G_{l+1}, l = depth-1 .. 1
        root = math.sqrt(q[layer - 1])
        g.append(gain * second_moment(lambda z, r=root: f_prime(r * z)) * g[-1])
    return {
        "activation_std": [math.sqrt(v) for v in q],
        "gradient_std": [math.sqrt(v) for v in reversed(g)],
    }


def _torch_activation(name: str) -> Any:
    from torch import nn

    return {
        "relu": lambda: nn.ReLU(),
        "leaky_relu": lambda: nn.LeakyReLU(_LEAKY_SLOPE),
        "prelu": lambda: nn.PReLU(init=_PRELU_SLOPE),
        "tanh": lambda: nn.Tanh(),
        "sigmoid": lambda: nn.Sigmoid(),
        "selu": lambda: nn.SELU(),
        "gelu": lambda: nn.GELU(),
    }[name]()


def plain_net(activation: str, depth: int, width: int) -> Any:
    """``depth`` x (Linear(width, width), activation) as an ``nn.Sequential`` (float64)."""
    from torch import nn

    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), _torch_activation(activation)]
    return nn.Sequential(*layers).double()


def measure(net: Any, inputs: Any, upstream: Any) -> dict[str, list[float]]:
    """Per-layer std of ``y_l``, ``dL/dy_l`` and ``dL/dW_l`` for ``L = sum(y_L * upstream)``."""
    import torch
    from torch import nn

    linears = [m for m in net if isinstance(m, nn.Linear)]
    net.zero_grad(set_to_none=True)
    pre: list[torch.Tensor] = []
    x = inputs
    for module in net:
        x = module(x)
        if isinstance(module, nn.Linear):
            x.retain_grad()
            pre.append(x)
    (pre[-1] * upstream).sum().backward()
    return {
        "activation_std": [float(y.detach().std(unbiased=False)) for y in pre],
        "gradient_std": [float(y.grad.std(unbiased=False)) for y in pre],
        "weight_gradient_std": [float(m.weight.grad.std(unbiased=False)) for m in linears],
    }


def _root_mean_square(rows: list[list[float]]) -> list[float]:
    """Per layer, ``sqrt(mean over seeds of std^2)``: the std whose square estimates the
    variance averaged over random weights, which is what the theory predicts."""
    return np.sqrt(np.mean(np.square(np.asarray(rows, dtype=np.float64)), axis=0)).tolist()


def run_propagation(
    *,
    quick: bool = False,
    seed: int = 0,
    activations: Sequence[str] = tuple(ACTIVATIONS),
    schemes: Sequence[str] = tuple(SCHEMES),
    depth: int | None = None,
    width: int | None = None,
    batch: int | None = None,
    seeds: int | None = None,
    bars: Bars | None = None,
) -> PropagationResult:
    """Measure activation and gradient std per layer for each activation and scheme.

    Quick: depth 100, width 256, batch 32, one seed; full: width 512, batch 32, seeds
    ``seed .. seed + 3`` (curves: root mean square over seeds). Width matters more than
    batch: the samples share the weights, and the finite-width spread of the signal's scale
    grows like ``exp(5 depth / width)`` (Hanin & Rolnick 2018). Float64, so that vanishing
    signals (1e-90 and below) are measured rather than flushed to zero.
    """
    import torch

    from initlab.studies._torch_init import apply_scheme, build_model

    seed = check_int("seed", seed, minimum=0)
    for name in activations:
        check_choice("activation", name, ACTIVATIONS)
    for name in schemes:
        check_choice("scheme", name, SCHEMES)
    d, w, b, s = SIZES["quick" if quick else "full"]
    depth = d if depth is None else check_int("depth", depth, minimum=2)
    width = w if width is None else check_int("width", width, minimum=1)
    batch = b if batch is None else check_int("batch", batch, minimum=2)
    n_seeds = s if seeds is None else check_int("seeds", seeds, minimum=1)
    watch = Stopwatch()
    bars = bars or Bars(enabled=False)
    results: dict[str, dict[str, Any]] = {}
    total = len(activations) * len(schemes) * n_seeds
    with torch_threads(), bars.task("propagation", total) as overall:
        for activation in activations:
            results[activation] = {}
            for short in schemes:
                scheme = SCHEMES[short]
                per_seed = []
                stds: set[float] = set()
                for k in range(n_seeds):
                    run_seed = seed + k
                    gen = torch.Generator().manual_seed(run_seed)
                    inputs = torch.randn(batch, width, generator=gen, dtype=torch.float64)
                    upstream = torch.randn(batch, width, generator=gen, dtype=torch.float64)
                    net = build_model(partial(plain_net, activation, depth, width), seed=run_seed)
                    applied = apply_scheme(net, scheme, seed=run_seed)
                    stds.update(v for v in applied.values() if isinstance(v, float))
                    per_seed.append(measure(net, inputs, upstream))
                    # initlab.init leaves a reference cycle that holds the model until the
                    # garbage collector runs: free the weights now (to the meta device), or a
                    # run keeps several 100-layer nets alive (1.3 GB instead of 0.4).
                    net.zero_grad(set_to_none=True)
                    net.to("meta")
                    overall.advance()
                measured = {
                    key: _root_mean_square([m[key] for m in per_seed]) for key in per_seed[0]
                }
                weight_std = None
                if scheme == "auto":  # every layer is width x width: one std
                    (weight_std,) = stds
                predicted = theory(
                    activation, scheme, depth=depth, width=width, weight_std=weight_std
                )
                results[activation][short] = {
                    "scheme": scheme,
                    "weight_std": weight_std
                    if weight_std is not None
                    else _scheme_std(scheme, width),
                    "measured": {**measured, **_ratios(measured)},
                    "theory": {**predicted, **_ratios(predicted)},
                    "per_seed": per_seed,
                }
    config = {
        "depth": depth,
        "width": width,
        "batch": batch,
        "seeds": [seed + k for k in range(n_seeds)],
        "quick": quick,
        "dtype": "float64",
        "activations": {
            "leaky_relu": {"negative_slope": _LEAKY_SLOPE},
            "prelu": {"init": _PRELU_SLOPE},
            "names": list(activations),
        },
        "schemes": {short: SCHEMES[short] for short in schemes},
        "inputs": "x_0 ~ N(0, 1); loss sum(y_L * r), r ~ N(0, 1)",
        "curves": "per layer, sqrt(mean over seeds of std^2); per_seed holds each seed",
    }
    return PropagationResult("propagation", config, {"results": results}, seconds=watch.seconds)


def _scheme_std(scheme: str, width: int) -> float:
    return math.sqrt(_variances(scheme, width)[0])


def _ratios(curves: dict[str, list[float]]) -> dict[str, float]:
    """forward: std(y_L) / std(y_1); backward: std(dL/dy_1) / std(dL/dy_L)."""
    act, grad = curves["activation_std"], curves["gradient_std"]
    return {
        "forward_ratio": act[-1] / act[0] if act[0] > 0 else float("nan"),
        "backward_ratio": grad[0] / grad[-1] if grad[-1] > 0 else float("nan"),
    }


@dataclass
class PropagationResult(StudyResult):
    """Per-layer std curves, measured and predicted (see :func:`run_propagation`)."""

    def tables(self) -> list[Table]:
        results = self.data["results"]
        schemes = list(next(iter(results.values())))
        depth = self.config["depth"]
        tables = []
        for key, title in (
            ("forward_ratio", f"activation std ratio std(y_{depth}) / std(y_1)"),
            ("backward_ratio", f"gradient std ratio std(dL/dy_1) / std(dL/dy_{depth})"),
        ):
            table = Table(
                title=f"propagation: {title}, measured (theory); width {self.config['width']}"
            )
            table.add_column("activation")
            for short in schemes:
                table.add_column(short, justify="right")
            for activation, rows in results.items():
                table.add_row(
                    activation,
                    *(
                        f"{rows[s]['measured'][key]:.2g} ({rows[s]['theory'][key]:.2g})"
                        for s in schemes
                    ),
                )
            tables.append(table)
        return tables

    def findings(self) -> list[str]:
        results = self.data["results"]
        lines = []
        if "relu" in results:
            relu = results["relu"]
            parts = [f"{s} {rows['measured']['forward_ratio']:.2g}" for s, rows in relu.items()]
            lines.append(
                f"ReLU, activation std after {self.config['depth']} layers relative to the "
                f"first: {', '.join(parts)}."
            )
        worst = 0.0
        for rows in results.values():
            for row in rows.values():
                m, t = row["measured"]["forward_ratio"], row["theory"]["forward_ratio"]
                if m > 0 and t > 0:
                    worst = max(worst, abs(math.log10(m / t)))
        lines.append(
            f"Measured vs mean-field theory, forward ratio: within a factor {10**worst:.2g} "
            "in every cell."
        )
        return lines

    def plot(self, out_dir: Path) -> list[Path]:
        out_dir = Path(out_dir)
        paths = []
        for activation, rows in self.data["results"].items():
            fig = new_figure(11, 5.6)  # room for the legends under the axes
            for index, (key, label) in enumerate(
                (
                    ("activation_std", "std of pre-activations y_l (forward)"),
                    ("gradient_std", "std of gradients dL/dy_l (backward)"),
                )
            ):
                ax = fig.add_subplot(1, 2, index + 1)
                low, high = _y_range(rows, key)
                for color_index, (short, row) in enumerate(rows.items()):
                    layers = np.arange(1, len(row["measured"][key]) + 1)
                    color = f"C{color_index}"
                    measured = _positive(row["measured"][key])
                    # wider first: a curve equal to a later one (he and auto) still shows
                    ax.plot(layers, measured, color=color, lw=max(5.0 - 0.8 * color_index, 2.0),
                            alpha=0.45, label=short + _off_axis(measured, low, high))  # fmt: skip
                    ax.plot(layers, _positive(row["theory"][key]), color=color, ls="--", lw=1.2)
                ax.set_yscale("log")
                ax.set_ylim(low, high)
                ax.set_xlabel("layer l")
                ax.set_ylabel("std (log scale)")
                ax.set_title(label, fontsize=10)
                ax.legend(fontsize=8, title="thick: measured, dashed: theory", title_fontsize=8,
                          loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)  # fmt: skip
            fig.suptitle(
                f"{activation}: {self.config['depth']} layers of width {self.config['width']}"
            )
            paths.append(save_figure(fig, out_dir / f"propagation_{activation}.png"))
        return paths


#: The curves that set a propagation plot's y range: the schemes meant to keep the signal
#: (and torch's default, the baseline people use); the others may leave the axis.
RANGE_SCHEMES = ("he", "auto", "torch_default")


def _y_range(rows: dict, key: str) -> tuple[float, float]:
    """Log-axis limits holding every measured and theory value of the RANGE_SCHEMES curves
    (all curves but ``random`` when none is there), with a decade of margin at least."""
    chosen = [r for name, r in rows.items() if name in RANGE_SCHEMES] or [
        r for name, r in rows.items() if name != "random"
    ] or list(rows.values())  # fmt: skip
    values = np.concatenate(
        [_positive(r[part][key]) for r in chosen for part in ("measured", "theory")]
    )
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 1e-3, 1e3
    low, high = float(values.min()), float(values.max())
    middle = math.sqrt(low * high)
    span = max(high / low, 100.0)  # at least two decades on the axis
    margin = max(span**0.06, 3.0)  # 6% of the decades shown on each side, at least x3
    return middle / math.sqrt(span) / margin, middle * math.sqrt(span) * margin


def _off_axis(values: np.ndarray, low: float, high: float) -> str:
    """A legend suffix for a curve that leaves the axis: how far it goes."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return " (all 0: off the axis)"
    if finite.min() < low:
        return f" (leaves the axis, down to {finite.min():.0e})"
    if finite.max() > high:
        return f" (leaves the axis, up to {finite.max():.0e})"
    return ""


def _positive(values: list[float]) -> np.ndarray:
    """Values for a log axis: zeros (a fully vanished signal) become NaN gaps."""
    array = np.asarray(values, dtype=np.float64)
    return np.where(array > 0, array, np.nan)
