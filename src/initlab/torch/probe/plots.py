"""PNG plots of probe reports: statistics against depth, and histograms at a few depths.

* :func:`plot_depth`: activation std, gradient norm ``||dL/dy||`` and weight-gradient norm
  against depth, log scale, one line per report (scheme); a cross marks where a verdict
  says trouble starts. Zeros cannot sit on a log axis: they are left out and the legend
  counts them.
* :func:`plot_histograms`: normalized histograms of activation values and of
  back-propagated gradients at a few depths, one row per scheme: the presentation of
  Glorot and Bengio (2010), figures 6 and 7.

Figures are drawn with matplotlib's object API on an Agg canvas: no pyplot, no global
backend change, safe in scripts, notebooks and servers alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from initlab._format import num

if TYPE_CHECKING:  # for annotations only: the reports import this module, not the reverse
    from initlab.torch.probe.report import LayerStats, ProbeReport

__all__ = ["plot_depth", "plot_histograms", "select_depths"]

_PANELS = (
    ("act_std", "activation std", "forward"),
    ("grad_norm", "gradient norm ||dL/dy|| (layer output)", "backward"),
    ("weight_grad_norm", "weight-gradient norm ||dL/dW||", None),
)


def select_depths(count: int, depths: int) -> list[int]:
    """Up to ``depths`` positions spread evenly over ``count`` layers, first and last included.

    >>> select_depths(30, 5)
    [0, 7, 14, 22, 29]
    >>> select_depths(2, 5)
    [0, 1]
    """
    if count <= 0 or depths <= 0:
        return []
    picks = np.linspace(0, count - 1, min(depths, count)).round().astype(int)
    return sorted({int(p) for p in picks})


def _series(layers: tuple[LayerStats, ...], key: str) -> tuple[np.ndarray, np.ndarray, int]:
    depth = np.array([s.index for s in layers], dtype=float)
    raw = [getattr(s, key) for s in layers]
    values = np.array([np.nan if v is None else v for v in raw], dtype=float)
    plottable = np.isfinite(values) & (values > 0)
    dropped = int(np.sum(~plottable & np.array([v is not None for v in raw])))
    return depth, np.where(plottable, values, np.nan), dropped


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png")
    return path


def plot_depth(reports: Mapping[str, ProbeReport], path: str | Path) -> Path:
    """Write the depth plot of ``reports`` (label -> report) to ``path`` (PNG); returns it."""
    if not reports:
        raise ValueError("reports={} is not valid; allowed: at least one report to plot.")
    fig = Figure(figsize=(16, 4.8), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(_PANELS))
    colors = [f"C{i % 10}" for i in range(len(reports))]
    for ax, (key, title, direction) in zip(axes, _PANELS, strict=True):
        for color, (label, report) in zip(colors, reports.items(), strict=True):
            depth, values, dropped = _series(report.layers, key)
            note = f" ({dropped} zero/non-finite not drawn)" if dropped else ""
            ax.plot(depth, values, marker="o", markersize=3, color=color, label=label + note)
            verdict = {"forward": report.forward, "backward": report.backward}.get(direction)
            if verdict is not None and verdict.starts_at_index is not None:
                i = verdict.starts_at_index - 1
                y = values[i] if np.isfinite(values[i]) else np.nanmin(values) if np.any(
                    np.isfinite(values)) else None  # fmt: skip
                if y is not None and math.isfinite(y):
                    ax.plot([depth[i]], [y], marker="X", markersize=11, color=color,
                            markeredgecolor="black", linestyle="none")  # fmt: skip
        ax.set_yscale("log")
        ax.set_xlabel("layer (execution order)")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("initlab probe: signal against depth (X: where the verdict says trouble starts)")
    return _save(fig, path)


#: Above this spread of scales among the plotted depths, one linear axis would squash the
#: deep layers into a spike: the histograms are then drawn in units of each layer's std.
#: Exact zeros (ReLU outputs, gradients behind a ReLU) above this fraction are set apart.
ZERO_FRACTION = 0.05


def plot_histograms(
    reports: Mapping[str, ProbeReport], path: str | Path, *, depths: int = 5
) -> Path:
    """Write activation and gradient histograms at ``depths`` depths, a row per report.

    Every layer is drawn on one common linear value axis, as in Glorot and Bengio (2010),
    never rescaled by its own std: a vanishing signal shows as curves narrowing to a spike at
    0, an exploding one as curves spreading out; the legend gives each layer's std. Exact
    zeros above ``ZERO_FRACTION`` of the values are left out of the curve and counted in the
    legend.
    """
    if not reports:
        raise ValueError("reports={} is not valid; allowed: at least one report to plot.")
    rows = len(reports)
    fig = Figure(figsize=(12, 3.2 * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    for row, (label, report) in enumerate(reports.items()):
        picks = [report.layers[i] for i in select_depths(len(report.layers), depths)]
        for col, (key, std_key, what) in enumerate(
            (("act_hist", "act_std", "activation values"),
             ("grad_hist", "grad_std", "back-propagated gradients dL/dy"))
        ):  # fmt: skip
            _histogram_panel(axes[row, col], f"{label}: {what}", picks, key, std_key)
    fig.suptitle(
        "Histograms at a few depths, values unscaled (after Glorot & Bengio 2010, figs 6-7)"
    )
    return _save(fig, path)


def _histogram_panel(ax, title: str, picks: list[LayerStats], key: str, std_key: str) -> None:
    curves = [(s, getattr(s, key), getattr(s, std_key)) for s in picks]
    curves = [(s, h, std) for s, h, std in curves if h is not None and h.total > 0]
    drawn = 0
    for k, (stats, hist, std) in enumerate(curves):
        zero_share = hist.zeros / hist.total
        apart = zero_share > ZERO_FRACTION
        x = hist.centres()  # the values themselves: a shrinking std stays visible
        legend = f"layer {stats.index} ({stats.name}), std {num(std)}"
        if apart:
            legend += f", {100 * zero_share:.0f}% exactly 0 not drawn"
        if apart and hist.zeros == hist.total:
            ax.plot([], [], color=f"C{k}", label=f"layer {stats.index}: all values 0")
            continue
        ax.plot(x, hist.density(without_zeros=apart), color=f"C{k}", label=legend)
        drawn += 1
    ax.set_title(title)
    ax.set_xlabel("value (one axis for every layer: narrowing = vanishing)")
    ax.set_ylabel("fraction of values")
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(fontsize=7)
    if not drawn:
        ax.text(0.5, 0.5, "nothing to draw", ha="center", va="center", transform=ax.transAxes)
