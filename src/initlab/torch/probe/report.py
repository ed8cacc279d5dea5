"""ProbeReport: what a probe measured, per layer and over the model; table, JSON and plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from initlab._format import fit, natural_width, num, pct
from initlab.reporting import Report, decode_floats, encode_floats
from initlab.torch.probe.verdicts import Thresholds, Verdict, judge

__all__ = ["FORMAT", "Histogram", "LayerStats", "ProbeReport", "decode_floats", "encode_floats"]

#: Identifies the JSON written by :meth:`ProbeReport.to_dict`.
FORMAT = "initlab.probe/1"

_STYLE = {"healthy": "green", "vanishing": "yellow", "exploding": "red", "unmeasured": "dim"}


class ProbeFiles(Report):
    """The report base (:class:`initlab.reporting.Report`: JSON both ways, text) and the
    saved files of a probe report or comparison.

    For a class that has ``to_dict`` / ``from_dict``, ``plot_depth`` and ``plot_histograms``.
    """

    def save(self, folder: str | Path, *, stem: str = "probe", depths: int = 5) -> dict[str, Path]:
        """Write ``{stem}.json``, ``{stem}_depth.png`` and ``{stem}_histograms.png`` (at
        ``depths`` depths); returns the paths by kind."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        json_path = folder / f"{stem}.json"
        self.to_json(json_path)
        return {
            "json": json_path,
            "depth": self.plot_depth(folder / f"{stem}_depth.png"),
            "histograms": self.plot_histograms(folder / f"{stem}_histograms.png", depths=depths),
        }


@dataclass(frozen=True)
class Histogram:
    """Counts of sampled values in ``bins`` equal bins over ``[low, high]``.

    ``total`` counts the finite samples; ``nonfinite`` those left out (inf, NaN); ``zeros``
    the finite samples exactly 0 (they are in the counts too: ReLU outputs and gradients
    hold many, which plots may set apart).

    >>> h = Histogram.of(np.array([0.0, 0.5, 1.0, 1.0]), bins=2)
    >>> h.counts, h.low, h.high
    ((1, 3), 0.0, 1.0)
    """

    low: float
    high: float
    counts: tuple[int, ...]
    total: int
    nonfinite: int = 0
    zeros: int = 0

    @classmethod
    def of(cls, values: np.ndarray, bins: int = 40) -> Histogram:
        """The histogram of ``values`` over their finite range (a point widens to +-0.5)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        finite = values[np.isfinite(values)]
        nonfinite = int(values.size - finite.size)
        if finite.size == 0:
            return cls(0.0, 0.0, (0,) * bins, 0, nonfinite)
        low, high = float(finite.min()), float(finite.max())
        if low == high:
            pad = 0.5 * abs(low) if low else 0.5
            low, high = low - pad, high + pad
        counts, _ = np.histogram(finite, bins=bins, range=(low, high))
        zeros = int(np.count_nonzero(finite == 0))
        return cls(low, high, tuple(int(c) for c in counts), int(finite.size), nonfinite, zeros)

    @classmethod
    def many(cls, arrays: Sequence[np.ndarray | None], bins: int = 40) -> list[Histogram | None]:
        """:meth:`of` for many arrays at once (vectorized over arrays of equal length).

        >>> [h.counts for h in Histogram.many([np.array([0.0, 1.0]), np.array([2.0, 2.0])], 2)]
        [(1, 1), (0, 2)]
        """
        out: list[Histogram | None] = [None] * len(arrays)
        by_size: dict[int, list[int]] = {}
        for i, a in enumerate(arrays):
            if a is not None:
                by_size.setdefault(int(np.asarray(a).size), []).append(i)
        for size, positions in by_size.items():
            block = np.stack([np.asarray(arrays[i], dtype=np.float64).ravel() for i in positions])
            finite = np.isfinite(block)
            total = finite.sum(axis=1)
            zeros = (block == 0).sum(axis=1)
            low = np.where(finite, block, np.inf).min(axis=1, initial=np.inf)
            high = np.where(finite, block, -np.inf).max(axis=1, initial=-np.inf)
            empty = total == 0
            low[empty], high[empty] = 0.0, 0.0
            point = (low == high) & ~empty
            pad = np.where(low != 0, 0.5 * np.abs(low), 0.5)
            low, high = np.where(point, low - pad, low), np.where(point, high + pad, high)
            width = np.where(high > low, high - low, 1.0)
            with np.errstate(invalid="ignore", over="ignore"):
                index = np.floor((block - low[:, None]) / width[:, None] * bins)
            index = np.clip(np.nan_to_num(index, nan=0.0), 0, bins - 1).astype(np.int64)
            flat = (np.arange(len(positions))[:, None] * bins + index)[finite]
            counts = np.bincount(flat, minlength=len(positions) * bins).reshape(-1, bins)
            for row, i in enumerate(positions):
                out[i] = cls(
                    float(low[row]), float(high[row]), tuple(int(c) for c in counts[row]),
                    int(total[row]), int(size - total[row]), int(zeros[row]),
                )  # fmt: skip
        return out

    def centres(self) -> np.ndarray:
        """Bin centres."""
        edges = np.linspace(self.low, self.high, len(self.counts) + 1)
        return (edges[:-1] + edges[1:]) / 2.0

    def density(self, *, without_zeros: bool = False) -> np.ndarray:
        """Counts as fractions of the finite samples (a normalized histogram).

        ``without_zeros``: exact zeros taken out of the bin holding 0 and out of the total.

        >>> Histogram.of(np.array([0.0, 0.0, 0.1, 1.0]), bins=2).density(without_zeros=True)
        array([0.5, 0.5])
        """
        counts = np.asarray(self.counts, dtype=np.float64)
        total = self.total
        if without_zeros and self.zeros and self.low <= 0.0 <= self.high:
            width = (self.high - self.low) / len(counts)
            k = min(int((0.0 - self.low) / width), len(counts) - 1)
            counts[k] = max(counts[k] - self.zeros, 0.0)
            total -= self.zeros
        return counts / max(total, 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON)."""
        return {**asdict(self), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "counts": tuple(data["counts"])})


@dataclass(frozen=True)
class LayerStats:
    """One layer call's measurements (``None``: not measured).

    ``index``: 1-based execution order. ``pre_*``: the layer's output. ``act_*``: the
    nonlinearity's output (``activation`` names it), or the layer's output when none follows.
    ``dead_fraction``: units zero for the whole batch. ``saturated_fraction``: values beyond
    the saturation level of a bounded activation (tanh, sigmoid, ...). ``symmetric``: all units
    identical. ``grad_std`` / ``grad_norm``: the std (per element) and the 2-norm
    ``||dL/dy||_2`` (over the whole batch) of the gradient with respect to the layer's output.
    ``weight_std`` / ``weight_grad_norm``: the std of the weight named ``weight_name`` and
    the 2-norm of its gradient.
    """

    index: int
    name: str
    kind: str
    shape: tuple[int, ...]
    activation: str | None
    pre_mean: float
    pre_std: float
    act_mean: float
    act_std: float
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    symmetric: bool = False
    grad_std: float | None = None
    grad_norm: float | None = None
    weight_name: str | None = None
    weight_std: float | None = None
    weight_grad_norm: float | None = None
    act_hist: Histogram | None = field(default=None, repr=False)
    grad_hist: Histogram | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON); histograms nested."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["shape"] = list(self.shape)
        for key in ("act_hist", "grad_hist"):
            data[key] = None if data[key] is None else data[key].to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerStats:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["shape"] = tuple(data["shape"])
        for key in ("act_hist", "grad_hist"):
            if data.get(key) is not None:
                data[key] = Histogram.from_dict(data[key])
        return cls(**data)


def _num(x: float | None, digits: int = 3) -> str:
    return num(x, digits)  # initlab._format: never more than 8 characters, never cut


def _pct(x: float | None) -> str:
    return pct(x)


@dataclass(frozen=True, eq=False)
class ProbeReport(ProbeFiles):
    """The result of :func:`initlab.probe`: per-layer statistics and the model's verdicts.

    Printing it shows a rich table; :meth:`to_dict` / :meth:`to_json` and
    :meth:`from_dict` / :meth:`from_json` round-trip it; :meth:`save` writes JSON and PNG
    plots. ``forward`` and ``backward`` are recomputed from the layers and ``thresholds``
    (:meth:`with_thresholds` re-judges without probing again).
    """

    layers: tuple[LayerStats, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    label: str | None = None
    loss: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # -- model-level numbers -----------------------------------------------------------
    @cached_property
    def forward(self) -> Verdict:
        """Forward verdict (activation std in execution order)."""
        return judge(
            "forward",
            [s.name for s in self.layers],
            [s.index for s in self.layers],
            [s.act_std for s in self.layers],
            self.thresholds,
        )

    @cached_property
    def backward(self) -> Verdict:
        """Backward verdict (gradient norm ``||dL/dy||``, from the last layer back)."""
        back = self.layers[::-1]
        return judge(
            "backward",
            [s.name for s in back],
            [s.index for s in back],
            [s.grad_norm for s in back],
            self.thresholds,
        )

    @property
    def activation_std_ratio(self) -> float:
        """Last layer's activation std over the first's (NaN when the first is 0)."""
        return self.forward.ratio

    @property
    def gradient_norm_ratio(self) -> float:
        """First layer's gradient norm ``||dL/dy||`` over the last's (NaN when undefined)."""
        return self.backward.ratio

    @property
    def symmetric_layers(self) -> list[str]:
        """Names of the layers whose units are all identical."""
        return [s.name for s in self.layers if s.symmetric]

    @property
    def max_dead_fraction(self) -> float | None:
        """The largest dead-unit fraction over the layers (None when none was measured)."""
        values = [s.dead_fraction for s in self.layers if s.dead_fraction is not None]
        return max(values) if values else None

    @property
    def max_saturated_fraction(self) -> float | None:
        """The largest saturated fraction over layers with a bounded activation."""
        values = [s.saturated_fraction for s in self.layers if s.saturated_fraction is not None]
        return max(values) if values else None

    def layer(self, name: str) -> LayerStats:
        """The statistics of the layer called ``name``."""
        for stats in self.layers:
            if stats.name == name:
                return stats
        names = ", ".join(repr(s.name) for s in self.layers)
        raise KeyError(f"name={name!r} is not a probed layer; allowed: {names}.")

    def with_thresholds(self, thresholds: Thresholds) -> ProbeReport:
        """The same measurements judged under other thresholds."""
        return ProbeReport(self.layers, thresholds, self.label, self.loss, dict(self.meta))

    def summary(self) -> dict[str, Any]:
        """The model-level numbers and verdicts (also inside :meth:`to_dict`)."""
        return {
            "layers": len(self.layers),
            "activation_std_ratio": self.activation_std_ratio,
            "gradient_norm_ratio": self.gradient_norm_ratio,
            "forward": asdict(self.forward),
            "backward": asdict(self.backward),
            "symmetric_layers": self.symmetric_layers,
            "max_dead_fraction": self.max_dead_fraction,
            "max_saturated_fraction": self.max_saturated_fraction,
        }

    # -- JSON --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything as plain, strict-JSON-safe data (non-finite floats as strings)."""
        return encode_floats(
            {
                "format": FORMAT,
                "label": self.label,
                "loss": self.loss,
                "thresholds": self.thresholds.to_dict(),
                "meta": self.meta,
                "summary": self.summary(),
                "layers": [s.to_dict() for s in self.layers],
            }
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeReport:
        """Rebuild a report from :meth:`to_dict` (the summary is recomputed, not trusted)."""
        if data.get("format") != FORMAT:
            raise ValueError(
                f"format={data.get('format')!r} is not valid; allowed: {FORMAT!r} "
                "(a dict written by ProbeReport.to_dict)."
            )
        data = decode_floats(data)
        return cls(
            layers=tuple(LayerStats.from_dict(d) for d in data["layers"]),
            thresholds=Thresholds(**data["thresholds"]),
            label=data.get("label"),
            loss=data.get("loss"),
            meta=dict(data.get("meta") or {}),
        )

    # -- output ------------------------------------------------------------------------
    #: The per-layer columns: (heading, justify, part); part "both" columns are in both
    #: halves when the table is split to fit a narrow terminal.
    COLUMNS = (
        ("#", "right", "both"), ("layer", "left", "both"), ("kind", "left", "forward"),
        ("act", "left", "forward"), ("pre mean", "right", "forward"),
        ("pre std", "right", "forward"), ("act mean", "right", "forward"),
        ("act std", "right", "forward"), ("dead", "right", "forward"),
        ("sat", "right", "forward"), ("grad std", "right", "backward"),
        ("grad norm", "right", "backward"), ("|dW|", "right", "backward"),
        ("W std", "right", "backward"), ("flags", "left", "both"),
    )  # fmt: skip

    def table(self, part: str = "all") -> Table:
        """The per-layer rich table; ``part="forward"`` or ``"backward"`` gives half of it
        (what a narrow terminal shows, one above the other)."""
        title = "initlab probe" + (f": {self.label}" if self.label else "")
        if part != "all":
            title += f" ({part})"
        table = Table(title=title, show_lines=False, header_style="bold")
        keep = [i for i, c in enumerate(self.COLUMNS) if part == "all" or c[2] in (part, "both")]
        for i in keep:
            heading, justify, _ = self.COLUMNS[i]
            table.add_column(heading, justify=justify, no_wrap=True)
        marks = {}
        for verdict in (self.forward, self.backward):
            if verdict.starts_at is not None:
                arrow = "->" if verdict.direction == "forward" else "<-"
                marks.setdefault(verdict.starts_at, []).append(f"{arrow} {verdict.status}")
        for s in self.layers:
            flags = list(marks.get(s.name, []))
            if s.symmetric:
                flags.append("symmetric")
            cells = (
                str(s.index), s.name, s.kind, s.activation or "-",
                _num(s.pre_mean), _num(s.pre_std), _num(s.act_mean), _num(s.act_std),
                _pct(s.dead_fraction), _pct(s.saturated_fraction),
                _num(s.grad_std), _num(s.grad_norm), _num(s.weight_grad_norm),
                _num(s.weight_std), ", ".join(flags),
            )  # fmt: skip
            table.add_row(*(cells[i] for i in keep))
        return fit(table)

    def verdict_text(self) -> Text:
        """The verdict lines under the table."""
        text = Text()
        for verdict in (self.forward, self.backward):
            text.append(f"{verdict.direction:>8}: ", style="bold")
            text.append(verdict.message + "\n", style=_STYLE[verdict.status])
        if self.symmetric_layers:
            shown = ", ".join(self.symmetric_layers[:6])
            more = len(self.symmetric_layers) - 6
            shown += f" and {more} more" if more > 0 else ""
            text.append("symmetric: ", style="bold")
            text.append(
                f"{len(self.symmetric_layers)} layer(s) with all units identical ({shown}): "
                "they get identical gradients and can never become different.\n",
                style="red",
            )
        return text

    def __rich_console__(self, console: Console, options: Any) -> Any:
        table = self.table()
        if natural_width(table) <= options.max_width:
            yield table
        else:  # a narrow terminal: forward columns, then backward ones, numbers uncut
            yield self.table("forward")
            yield self.table("backward")
        yield self.verdict_text()

    def plot_depth(self, path: str | Path) -> Path:
        """PNG of activation std and gradient norms against depth (log scale)."""
        from initlab.torch.probe.plots import plot_depth

        return plot_depth({self.label or "model": self}, path)

    def plot_histograms(self, path: str | Path, *, depths: int = 5) -> Path:
        """PNG of activation and gradient histograms at a few depths (Glorot & Bengio 2010)."""
        from initlab.torch.probe.plots import plot_histograms

        return plot_histograms({self.label or "model": self}, path, depths=depths)


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass
