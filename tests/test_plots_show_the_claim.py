"""Plots that show the claim at a glance: labelled axes, ranges set by the curves that
matter, no data hidden by a rescaling or by another curve."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from initlab.studies import circles, propagation
from initlab.studies.circles import CirclesResult
from initlab.studies.propagation import PropagationResult
from initlab.torch.probe import compare, plots
from initlab.torch.probe.models import mlp


@pytest.fixture
def captured(monkeypatch):
    """Capture the matplotlib figures instead of writing PNGs."""
    figures = []

    def keep(fig, path):
        figures.append(fig)
        return path

    monkeypatch.setattr(propagation, "save_figure", keep)
    monkeypatch.setattr(circles, "save_figure", keep)
    monkeypatch.setattr(plots, "_save", keep)
    return figures


def _curve(values):
    return {"activation_std": list(values), "gradient_std": list(values[::-1])}


def test_propagation_range_is_set_by_he_and_torch_default_not_random(captured, tmp_path):
    depth = 50
    layers = np.arange(depth)
    rows = {
        "he": {"measured": _curve(np.ones(depth)), "theory": _curve(np.ones(depth))},
        "torch_default": {"measured": _curve(0.3 ** (layers / 10)),
                          "theory": _curve(0.3 ** (layers / 10))},
        "random": {"measured": _curve(1e-2 ** layers), "theory": _curve(1e-2 ** layers)},
    }  # fmt: skip
    result = PropagationResult("propagation", {"depth": depth, "width": 8},
                               {"results": {"relu": rows}})  # fmt: skip
    result.plot(tmp_path)
    (fig,) = captured
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    for ax in fig.axes:
        assert ax.get_ylabel() and ax.get_xlabel() == "layer l"
        low, high = ax.get_ylim()
        assert low < 0.3**4.9 and high > 1.0  # the curves that matter are inside
        assert low > 1e-10  # random (down to 1e-98) does not stretch the axis
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(t.startswith("random (leaves the axis, down to") for t in labels)
        # the legend sits below the axes: it hides no curve
        legend_box = ax.get_legend().get_window_extent(renderer)
        assert legend_box.y1 <= ax.get_window_extent(renderer).y0 + 1


def test_histograms_keep_values_unscaled_so_vanishing_shows(captured, tmp_path):
    factory = lambda: mlp(depth=10, width=32)  # noqa: E731
    result = compare(factory, torch.randn(64, 32), ["random"], seed=0)
    plots.plot_histograms(result.reports, tmp_path / "h.png", depths=3)
    (fig,) = captured
    ax = fig.axes[0]  # random: activation values
    assert "narrowing = vanishing" in ax.get_xlabel() and ax.get_ylabel()
    first, *_, last = [line for line in ax.get_lines() if len(line.get_xdata())]
    stds = [r.act_std for r in result.reports["random"].layers]
    # drawn at their own scale: the last layer's values span ~its (vanished) std, not ~1
    assert np.abs(last.get_xdata()).max() < 100 * stds[-1] < np.abs(first.get_xdata()).max()


def test_circles_cost_zeros_is_not_hidden_under_small_random(captured, tmp_path):
    costs = [0.6931] * 11
    runs = [
        {"implementation": "numpy", "initialization": init, "costs": costs}
        for init in ("zeros", "small_random")
    ]
    data = {"summary": {"numpy": {"zeros": {}, "small_random": {}}}, "runs": runs}
    result = CirclesResult("circles", {"iterations": 1000}, data)
    result._plot_costs(tmp_path / "c.png")
    (fig,) = captured
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    zeros, small = lines["zeros"], lines["small_random"]
    assert zeros.get_linewidth() > 2 * small.get_linewidth()  # wide underneath
    assert zeros.get_zorder() < small.get_zorder() and small.get_linestyle() == "--"
    assert ax.get_ylabel() and ax.get_xlabel()
