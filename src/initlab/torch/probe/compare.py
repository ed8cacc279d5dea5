"""``compare``: the same architecture probed under several initialization schemes."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from torch import nn

from initlab._format import fit, natural_width
from initlab.torch.probe.measure import probe
from initlab.torch.probe.report import ProbeFiles, ProbeReport, _num, _pct
from initlab.torch.probe.schemes import SchemeLike, apply_scheme, check_scheme, scheme_label
from initlab.torch.probe.verdicts import Thresholds

__all__ = ["COMPARISON_FORMAT", "DEFAULT_SCHEMES", "ProbeComparison", "compare"]

COMPARISON_FORMAT = "initlab.probe.compare/1"
#: The seeds' comparison: zeros vs small random vs Xavier vs He.
DEFAULT_SCHEMES = ("zeros", "random", "xavier", "he")

_STYLE = {"healthy": "green", "vanishing": "yellow", "exploding": "red", "unmeasured": "dim"}


def _verdict_cell(status: str, where: str | None) -> Text:
    text = Text(status, style=_STYLE.get(status, ""))
    if where:
        text.append(f" @ {where}", style="dim")
    return text


@dataclass(frozen=True, eq=False)
class ProbeComparison(ProbeFiles):
    """Probe reports of one architecture under several schemes, keyed by label.

    Printing it shows a per-layer table side by side and a summary table; :meth:`save`
    writes JSON and the PNG plots; :meth:`to_dict` / :meth:`from_dict` round-trip it.
    """

    reports: dict[str, ProbeReport]

    def __getitem__(self, label: str) -> ProbeReport:
        if label not in self.reports:
            allowed = ", ".join(repr(k) for k in self.reports)
            raise KeyError(f"scheme={label!r} was not compared; allowed: {allowed}.")
        return self.reports[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self.reports)

    def __len__(self) -> int:
        return len(self.reports)

    # -- tables --------------------------------------------------------------------------
    def summary_table(self) -> Table:
        """One row per scheme: verdicts, model-level ratios, dead and saturated maxima."""
        table = Table(title="initlab probe: schemes compared", header_style="bold")
        for heading in (
            "scheme", "forward", "act std last/first", "backward", "grad norm first/last",
            "max dead", "max saturated", "symmetric layers",
        ):  # fmt: skip
            table.add_column(heading, justify="left" if heading in ("scheme",) else "right")
        for label, r in self.reports.items():
            f, b = r.forward, r.backward
            table.add_row(
                label,
                _verdict_cell(f.status, f.starts_at),
                _num(r.activation_std_ratio),
                _verdict_cell(b.status, b.starts_at),
                _num(r.gradient_norm_ratio),
                _pct(r.max_dead_fraction),
                _pct(r.max_saturated_fraction),
                str(len(r.symmetric_layers)),
            )
        return fit(table, numeric=(2, 4, 5, 6, 7))

    def layer_table(self, part: str = "all") -> Table:
        """Per layer, the activation std and the gradient norm under each scheme
        (``part="act"`` or ``"grad"``: one of the two, for a narrow terminal)."""
        titles = {"all": "activation std | gradient norm", "act": "activation std",
                  "grad": "gradient norm"}  # fmt: skip
        table = Table(title=f"{titles[part]}, per layer", header_style="bold")
        table.add_column("#", justify="right")
        table.add_column("layer")
        for kind in ("act", "grad"):
            if part in ("all", kind):
                for label in self.reports:
                    table.add_column(f"{kind} {label}", justify="right")
        reports = list(self.reports.values())
        depth = max(len(r.layers) for r in reports)
        for i in range(depth):
            first = next(r.layers[i] for r in reports if i < len(r.layers))
            acts = [_num(r.layers[i].act_std) if i < len(r.layers) else "" for r in reports]
            grads = [_num(r.layers[i].grad_norm) if i < len(r.layers) else "" for r in reports]
            cells = (acts if part != "grad" else []) + (grads if part != "act" else [])
            table.add_row(str(first.index), first.name, *cells)
        return fit(table)

    def __rich_console__(self, console: Console, options: Any) -> Any:
        table = self.layer_table()
        if natural_width(table) <= options.max_width:
            yield table
        else:  # a narrow terminal: activations, then gradients, numbers uncut
            yield self.layer_table("act")
            yield self.layer_table("grad")
        yield self.summary_table()
        yield self._verdict_lines()

    def _verdict_lines(self) -> Text:
        lines = Text()
        for label, r in self.reports.items():
            for verdict in (r.forward, r.backward):
                lines.append(f"{label} {verdict.direction}: ", style="bold")
                lines.append(verdict.message + "\n", style=_STYLE[verdict.status])
            if r.symmetric_layers:
                lines.append(f"{label}: ", style="bold")
                lines.append(
                    f"{len(r.symmetric_layers)} symmetric layer(s): all units identical, "
                    "identical gradients, they can never become different.\n",
                    style="red",
                )
        return lines

    # -- JSON and files ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"format": ..., "reports": {label: ProbeReport.to_dict()}}`` (strict JSON)."""
        return {
            "format": COMPARISON_FORMAT,
            "reports": {label: r.to_dict() for label, r in self.reports.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeComparison:
        """Inverse of :meth:`to_dict`."""
        if data.get("format") != COMPARISON_FORMAT:
            raise ValueError(
                f"format={data.get('format')!r} is not valid; allowed: {COMPARISON_FORMAT!r} "
                "(a dict written by ProbeComparison.to_dict)."
            )
        return cls({k: ProbeReport.from_dict(v) for k, v in data["reports"].items()})

    def plot_depth(self, path: str | Path) -> Path:
        """PNG: activation std and gradient norms against depth, a line per scheme."""
        from initlab.torch.probe.plots import plot_depth

        return plot_depth(self.reports, path)

    def plot_histograms(self, path: str | Path, *, depths: int = 5) -> Path:
        """PNG: histograms of activations and gradients at a few depths, a row per scheme."""
        from initlab.torch.probe.plots import plot_histograms

        return plot_histograms(self.reports, path, depths=depths)


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[str], None]]:
    if not enabled:
        yield lambda _: None
        return
    columns = (
        TextColumn("probing {task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=total)
        pending: list[str] = []

        def step(label: str) -> None:
            if pending:
                bar.advance(task)
            pending.append(label)
            bar.update(task, description=label)

        yield step
        bar.advance(task)


def _labelled(schemes: Sequence[SchemeLike] | Mapping[str, SchemeLike]) -> dict[str, SchemeLike]:
    if isinstance(schemes, Mapping):
        items = list(schemes.items())
    elif isinstance(schemes, (str, bytes)):
        raise TypeError(
            f"schemes={schemes!r} is not valid; allowed: a list of schemes, e.g. "
            "['zeros', 'he'], or a dict label -> scheme."
        )
    else:
        items = [(scheme_label(s), s) for s in schemes]
    labelled: dict[str, SchemeLike] = {}
    for label, scheme in items:
        if label in labelled:
            raise ValueError(f"schemes: {label!r} appears twice; allowed: distinct labels.")
        labelled[label] = scheme
    if not labelled:
        raise ValueError("schemes=[] is not valid; allowed: at least one scheme.")
    for scheme in labelled.values():  # fail on a misspelled name before probing anything
        check_scheme(scheme)
    return labelled


def compare(
    model: nn.Module | Callable[[], nn.Module],
    inputs: Any,
    schemes: Sequence[SchemeLike] | Mapping[str, SchemeLike] = DEFAULT_SCHEMES,
    *,
    seed: int = 0,
    target: Any = None,
    loss_fn: str | Callable[..., torch.Tensor] = "random_projection",
    thresholds: Thresholds | None = None,
    mode: str = "train",
    samples: int = 2048,
    progress: bool = False,
) -> ProbeComparison:
    """Probe one architecture under each scheme, on the same batch, side by side.

    ``model``: an ``nn.Module`` (deep-copied for each scheme: the original is never
    touched) or a factory returning a fresh one. ``schemes``: registry names (``"zeros"``,
    ``"random"``, ``"xavier"``, ``"he"``, ``"he_uniform(mode=fan_out)"``, ``"auto"``, ...),
    :class:`~initlab.schemes.Scheme` objects, ``"default"`` (the model's own
    initialization) or callables ``f(model)``; a dict gives them labels. Each is applied
    with ``initlab.init(model, scheme, seed=seed)``
    (:func:`~initlab.torch.probe.schemes.apply_scheme`; its warnings go to
    ``report.meta["init"]``), then probed
    with :func:`~initlab.torch.probe.probe` (``target``, ``loss_fn``, ``thresholds``,
    ``mode``, ``samples`` are passed on). ``progress``: a progress bar on stderr.

    >>> from initlab.torch.probe.models import mlp
    >>> result = compare(lambda: mlp(depth=8, width=32), torch.randn(64, 32), ["xavier", "he"])
    >>> [result[s].forward.status for s in result]
    ['healthy', 'healthy']
    >>> result["xavier"].activation_std_ratio < result["he"].activation_std_ratio
    True
    """
    labelled = _labelled(schemes)
    if isinstance(model, nn.Module):
        template = model

        def factory() -> nn.Module:
            return copy.deepcopy(template)

    elif callable(model):
        factory = model
    else:
        raise TypeError(
            f"model={type(model).__name__} is not valid; allowed: an nn.Module or a "
            "callable returning one."
        )
    reports: dict[str, ProbeReport] = {}
    with _progress(progress and len(labelled) > 1, len(labelled)) as step:
        for label, scheme in labelled.items():
            step(label)
            instance = factory()
            if not isinstance(instance, nn.Module):
                raise TypeError(
                    f"model factory returned {type(instance).__name__}; allowed: an nn.Module."
                )
            notes = apply_scheme(instance, scheme, seed=seed)
            reports[label] = probe(
                instance, inputs, target=target, loss_fn=loss_fn, thresholds=thresholds,
                mode=mode, samples=samples, seed=seed, label=label,
            )  # fmt: skip
            reports[label].meta["init"] = {
                "scheme": scheme_label(scheme),
                "seed": seed,
                "warnings": notes,
            }
    return ProbeComparison(reports)
