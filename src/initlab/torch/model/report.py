"""What :func:`initlab.init` did to every parameter, and why: the :class:`InitReport`.

One :class:`ParamRow` per separately initialized block: a whole parameter, or one of the q, k,
v matrices of an attention ``in_proj``, or one gate of a recurrent weight. Printing a report
shows a rich table; :meth:`InitReport.to_dict` and :meth:`InitReport.to_json` give plain data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from initlab._format import fit, natural_width, num
from initlab.reporting import Report
from initlab.torch.residual import ResidualReport

__all__ = ["InitReport", "ParamRow"]


@dataclass(frozen=True)
class ParamRow:
    """One block of one parameter.

    ``action``: ``"initialized"``, ``"planned"`` (dry run) or ``"skipped"`` (``reason`` says
    why). ``activation``: the nonlinearity found after the layer (None: none), ``follows``:
    what the output reaches, in words, ``found_by``: the discovery method. ``rule``: the row
    of the ``"auto"`` table, or ``"model-wide"``, ``"override"``, ``"bias"``, ``"norm"``,
    ``"embedding"``, ``"recurrent"``. ``gain``, ``std``, ``bound``: the scheme's numbers for
    this block's fans. ``measured_std`` / ``measured_mean``: of the values written.
    """

    parameter: str
    part: str
    rows: tuple[int, int] | None
    shape: tuple[int, ...]
    dtype: str
    layer: str
    layer_type: str
    kind: str
    action: str
    reason: str = ""
    activation: str | None = None
    follows: str | None = None
    found_by: str | None = None
    rule: str | None = None
    scheme: str | None = None
    formula: str | None = None
    fan_in: int | None = None
    fan_out: int | None = None
    gain: float | None = None
    std: float | None = None
    bound: float | None = None
    stream: str | None = None
    aliases: tuple[str, ...] = ()
    symmetric: bool = False
    note: str = ""
    measured_std: float | None = None
    measured_mean: float | None = None

    @property
    def key(self) -> str:
        """``parameter`` or ``parameter[part]``."""
        return f"{self.parameter}[{self.part}]" if self.part else self.parameter

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParamRow:
        """Inverse of :meth:`to_dict`."""
        data = {k: v for k, v in data.items() if k != "key"}
        data["rows"] = None if data["rows"] is None else tuple(data["rows"])
        data["shape"] = tuple(data["shape"])
        data["aliases"] = tuple(data["aliases"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (tuples as lists) for JSON."""
        out = asdict(self)
        out["rows"] = None if self.rows is None else list(self.rows)
        out["shape"] = list(self.shape)
        out["aliases"] = list(self.aliases)
        out["key"] = self.key
        return out


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return num(value, digits)  # initlab._format: at most 8 characters, never cut


#: Identifies the JSON of :meth:`InitReport.to_dict`.
FORMAT = "initlab.init/1"


@dataclass
class InitReport(Report):
    """The result of :func:`initlab.init`: every parameter, what it got and why.

    ``seed`` is the seed used (drawn at random and recorded when none was given), so that
    ``initlab.init(model, scheme, seed=report.seed)`` reproduces the weights bit for bit.
    ``report["fc.weight"]`` is that parameter's row (``"attn.in_proj_weight[q]"`` for a block);
    :meth:`rows_for` gives all blocks of one parameter.
    """

    rows: list[ParamRow]
    seed: int
    scheme: str
    mode: str | None
    bias: str
    dry_run: bool
    discovery: str
    discovery_notes: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    symmetric_layers: tuple[str, ...] = ()
    materialized: str | None = None
    #: The residual-aware policy's report (``initlab.init(..., residual=...)``), else None.
    residual: Any = None

    # ---- access ---------------------------------------------------------------------
    @property
    def parameters(self) -> tuple[str, ...]:
        """Every parameter named in the report, in the model's order."""
        return tuple(dict.fromkeys(r.parameter for r in self.rows))

    def rows_for(self, parameter: str) -> list[ParamRow]:
        """All blocks of ``parameter`` (one row unless it is split into q/k/v or gates)."""
        found = [r for r in self.rows if r.parameter == parameter or parameter in r.aliases]
        if not found:
            raise KeyError(self._missing(parameter))
        return found

    def __getitem__(self, key: str) -> ParamRow:
        for row in self.rows:
            if row.key == key or (not row.part and key in (row.parameter, *row.aliases)):
                return row
        parts = [r.key for r in self.rows if r.parameter == key]
        if parts:
            raise KeyError(f"{key!r} is split into blocks; ask for one of {parts}")
        raise KeyError(self._missing(key))

    def _missing(self, key: str) -> str:
        from initlab._validation import closest

        message = f"no parameter {key!r} in this report"
        suggestion = closest(key, [r.key for r in self.rows])
        return message + (f"; did you mean {suggestion!r}?" if suggestion else "")

    def __iter__(self) -> Iterator[ParamRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def initialized(self) -> tuple[str, ...]:
        """Parameters whose every block was written (or would be, in a dry run)."""
        done = {r.parameter for r in self.rows if r.action != "skipped"}
        return tuple(p for p in self.parameters if p in done)

    @property
    def skipped(self) -> tuple[str, ...]:
        """Parameters left as they were."""
        return tuple(
            p for p in self.parameters if all(r.action == "skipped" for r in self.rows_for(p))
        )

    # ---- plain data -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything in the report as JSON-ready data."""
        return {
            "format": FORMAT,
            "seed": self.seed,
            "scheme": self.scheme,
            "mode": self.mode,
            "bias": self.bias,
            "dry_run": self.dry_run,
            "discovery": self.discovery,
            "discovery_notes": list(self.discovery_notes),
            "warnings": list(self.warnings),
            "symmetric_layers": list(self.symmetric_layers),
            "materialized": self.materialized,
            "residual": None if self.residual is None else self.residual.to_dict(),
            "rows": [r.to_dict() for r in self.rows],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InitReport:
        """Inverse of :meth:`to_dict`."""
        residual = data.get("residual")
        return cls(
            rows=[ParamRow.from_dict(r) for r in data["rows"]],
            seed=data["seed"],
            scheme=data["scheme"],
            mode=data["mode"],
            bias=data["bias"],
            dry_run=data["dry_run"],
            discovery=data["discovery"],
            discovery_notes=tuple(data.get("discovery_notes", ())),
            warnings=list(data.get("warnings", ())),
            symmetric_layers=tuple(data.get("symmetric_layers", ())),
            materialized=data.get("materialized"),
            residual=None if residual is None else ResidualReport.from_dict(residual),
        )

    # ---- people ---------------------------------------------------------------------
    #: The columns of :meth:`table` (name, justify); ``narrow`` keeps those in _NARROW.
    _COLUMNS = (
        ("parameter", "left"), ("shape", "left"), ("layer", "left"), ("fans in/out", "right"),
        ("followed by", "left"), ("found by", "left"), ("rule", "left"), ("gain", "right"),
        ("std", "right"), ("bound", "right"),
    )  # fmt: skip
    _NARROW = ("parameter", "fans in/out", "followed by", "rule", "gain", "std")

    def table(self, narrow: bool = False, width: int = 80) -> Table:
        """A rich table, one row per block; ``narrow``: the columns a reader needs first
        (parameter, fans, what follows, rule, gain, std) for a terminal ``width`` wide."""
        title = (
            f"initlab.init: scheme={self.scheme!r}, seed={self.seed}"
            f"{', dry run' if self.dry_run else ''}; discovery: {self.discovery}"
        )
        table = Table(title=title, title_justify="left", header_style="bold")
        keep = [not narrow or name in self._NARROW for name, _ in self._COLUMNS]
        for (column, justify), kept in zip(self._COLUMNS, keep, strict=True):
            if kept:
                table.add_column(column, justify=justify, overflow="fold")
        names = []
        for r in self.rows:
            cells = self._cells(r)
            names.append(len(str(cells[0])))
            table.add_row(*(c for c, kept in zip(cells, keep, strict=True) if kept))
        numeric = tuple(i for i, (n, j) in enumerate(c for c, k in zip(self._COLUMNS, keep,
                        strict=True) if k) if j == "right")  # fmt: skip
        fit(table, numeric=numeric)
        if narrow:  # parameter names stay readable: fold other text first
            table.columns[0].width = min(max(names, default=9), width * 3 // 10)
        return table

    def _cells(self, r: ParamRow) -> tuple[Any, ...]:
        fans = "" if r.fan_in is None else f"{r.fan_in}/{r.fan_out}"
        name = r.key + (f" (= {', '.join(r.aliases)})" if r.aliases else "")
        if r.action == "skipped":
            rule = Text(f"skipped: {r.reason}", style="yellow")
        else:
            label = r.rule or ""
            if r.rule == "model-wide":
                label = f"model-wide: {self.scheme}"
            elif r.rule in ("override", "bias") and r.scheme:
                short = r.scheme if len(r.scheme) <= 28 else r.scheme[:27] + "..."
                label = f"{r.rule}: {short}"
            rule = Text(label, style="red" if r.symmetric else "")
        std = _num(r.std)
        if r.std is None and r.formula:
            std = r.formula
        text = (
            name,
            "x".join(map(str, r.shape)) if r.shape else "scalar",
            r.layer_type,
            fans,
            r.follows or "",
            r.found_by or "",
        )
        return (*(Text(c) for c in text), rule, _num(r.gain), Text(std), _num(r.bound))

    def __rich_console__(self, console: Console, options: Any) -> Any:
        table = self.table()
        narrow = natural_width(table) > options.max_width
        yield self.table(narrow=True, width=options.max_width) if narrow else table
        if narrow:
            yield Text(
                "(narrow terminal: shape, layer, found by and bound left out; a wider "
                "terminal, report.table() or report.to_json() has every column)",
                style="dim",
            )
        if self.residual is not None:
            yield self.residual.table()
        for message in self.warnings:
            yield Text(f"warning: {message}", style="bold red")
        for note in self.discovery_notes:
            yield Text(f"note: {note}", style="dim")

    def __repr__(self) -> str:
        done = sum(1 for r in self.rows if r.action != "skipped")
        return (
            f"InitReport(scheme={self.scheme!r}, seed={self.seed}, blocks={len(self.rows)}, "
            f"written={done if not self.dry_run else 0}, skipped={len(self.rows) - done}, "
            f"dry_run={self.dry_run})"
        )
