"""What :func:`initlab.keras.init` did to every variable, and why: the :class:`KerasInitReport`.

The same kind of report as the torch side's (one row per variable: the activation found after
its layer, how it was found, the rule of the ``"auto"`` table that chose the scheme, the
scheme's std/bound for the layer's fans and the std of the values written), without any
framework import. It is an :class:`initlab.reporting.Report` like every report: strict JSON
both ways (``to_json(path=None)``, ``from_json``), one policy for non-finite floats, and
``str(report)`` at the terminal's width.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table

from initlab._format import fit, num
from initlab.reporting import Report

__all__ = ["KerasInitReport", "KerasRow"]


@dataclass(frozen=True)
class KerasRow:
    """One variable of a Keras model.

    ``action``: ``"initialized"`` or ``"skipped"`` (``reason`` says why). ``activation``: the
    nonlinearity found after the layer (None: none); ``follows``: what the output reaches, in
    words; ``found_by``: ``"activation argument"``, ``"graph"`` (the layer's outbound nodes)
    or ``"order"`` (the next layer of a Sequential). ``rule``: the row of the ``"auto"`` table
    (``"he"``, ``"xavier"``, ``"lecun"``, ``"numeric"``, ``"linear"``), or ``"model-wide"``,
    ``"bias"``, ``"norm"``. ``measured_std``: of the values written.
    """

    parameter: str
    layer: str
    layer_type: str
    shape: tuple[int, ...]
    action: str
    reason: str = ""
    activation: str | None = None
    follows: str | None = None
    found_by: str | None = None
    rule: str | None = None
    scheme: str | None = None
    formula: str | None = None
    fan_in: float | None = None
    fan_out: float | None = None
    gain: float | None = None
    std: float | None = None
    bound: float | None = None
    measured_std: float | None = None
    measured_mean: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists for tuples)."""
        data = asdict(self)
        data["shape"] = list(self.shape)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KerasRow:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "shape": tuple(data["shape"])})


def _num(value: float | None) -> str:
    return "" if value is None else num(value)


@dataclass
class KerasInitReport(Report):
    """Rows of :func:`initlab.keras.init`, one per variable, and the seed that drew them.

    >>> row = KerasRow("dense/kernel", "dense", "Dense", (4, 3), "initialized", rule="he")
    >>> report = KerasInitReport([row], seed=0, scheme="auto")
    >>> report["dense/kernel"].rule, report.to_dict()["seed"]
    ('he', 0)
    """

    rows: list[KerasRow]
    seed: int
    scheme: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def parameters(self) -> tuple[str, ...]:
        """Variable paths, in model order."""
        return tuple(r.parameter for r in self.rows)

    def __getitem__(self, parameter: str) -> KerasRow:
        for row in self.rows:
            if row.parameter == parameter:
                return row
        raise KeyError(f"parameter={parameter!r} is not in the report; allowed: {self.parameters}")

    def __len__(self) -> int:
        return len(self.rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{"seed", "scheme", "rows": [...]}``."""
        return {"seed": self.seed, "scheme": self.scheme, "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KerasInitReport:
        """Inverse of :meth:`to_dict`.

        >>> row = KerasRow("d/kernel", "d", "Dense", (4, 3), "initialized", std=float("nan"))
        >>> back = KerasInitReport.from_json(KerasInitReport([row], 0, "auto").to_json())
        >>> back["d/kernel"].shape, back.seed
        ((4, 3), 0)
        """
        rows = [KerasRow.from_dict(r) for r in data["rows"]]
        return cls(rows, seed=data["seed"], scheme=data["scheme"])

    def table(self) -> Table:
        """A rich table: variable, shape, follows, rule, std, measured (numbers never cut)."""
        table = Table(title=f"initlab.keras.init (scheme={self.scheme!r}, seed={self.seed})")
        for name in ("variable", "shape", "follows", "rule"):
            table.add_column(name, overflow="fold")
        for name in ("std", "measured"):
            table.add_column(name, justify="right", no_wrap=True)
        for r in self.rows:
            table.add_row(
                r.parameter,
                "x".join(map(str, r.shape)),
                r.follows or "",
                r.rule or r.reason or r.action,
                _num(r.std),
                _num(r.measured_std),
            )
        return fit(table)

    def __rich__(self) -> Table:
        return self.table()
