"""What :func:`initlab.lsuv` did: one row per layer, the passes it took, printable and JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from initlab._format import fit, num
from initlab.reporting import Report

__all__ = ["LSUVLayer", "LSUVReport"]

#: Status of a layer after LSUV.
STATUSES = {
    "ok": "output std within target +- tol",
    "tied": "weight shared with an earlier layer and rescaled once, there; std measured here",
    "off target": "std still outside target +- tol (max_iter or max_passes reached)",
    "zero output": "the layer's output is constant: no scale can reach the target",
    "not reached": "the forward pass never called the layer: left as pre-initialized",
}


@dataclass(frozen=True)
class LSUVLayer:
    """One rescaled layer.

    ``std_before`` is the output std at the layer's first call, before its rescale (after the
    orthogonal pre-initialization); ``std`` the final one; ``scale`` the factor the weight was
    multiplied by in total; ``iterations`` the rescale steps ``alpha <- alpha * target / std``
    taken; ``calls`` how often the final pass called it.
    """

    name: str
    kind: str
    weight: str
    calls: int
    std_before: float
    std: float
    scale: float
    iterations: int
    status: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (NaN for a layer never reached)."""
        return dataclasses.asdict(self)


#: Identifies the JSON of :meth:`LSUVReport.to_dict`. Version 2: a float that is not finite
#: (the std of a layer never reached) is the string "NaN"/"Infinity" (version 1, unnamed,
#: wrote null), as in every initlab report (:mod:`initlab.reporting`).
FORMAT = "initlab.lsuv/2"


@dataclass(frozen=True)
class LSUVReport(Report):
    """Layers in execution order, the number of forward passes, and why more than one was needed.

    ``layer_calls`` counts the calls of rescalable layers over all passes (the unit of work:
    the reference implementation makes ``O(L^2)`` of them for ``L`` layers).
    """

    layers: tuple[LSUVLayer, ...]
    passes: int
    layer_calls: int
    target_std: float
    tol: float
    seed: int | None
    orthogonal_first: bool
    bias_correction: bool
    reasons: tuple[str, ...] = field(default=())

    @property
    def method(self) -> str:
        """``"single pass"`` when every layer was rescaled inside one forward pass."""
        return "single pass" if self.passes == 1 else "repeated passes"

    @property
    def converged(self) -> bool:
        """Whether every layer reached ended within ``target_std +- tol``.

        Layers whose weight is tied to an earlier layer (status ``tied``) do not count: one
        weight has one scale, chosen at its first use.
        """
        return all(layer.status in ("ok", "tied") for layer in self.reached)

    @property
    def reached(self) -> tuple[LSUVLayer, ...]:
        """The layers the forward pass called."""
        return tuple(layer for layer in self.layers if layer.status != "not reached")

    def stds(self) -> dict[str, float]:
        """Final output std per layer name."""
        return {layer.name: layer.std for layer in self.layers}

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form, for JSON."""
        return {
            "format": FORMAT,
            "passes": self.passes,
            "method": self.method,
            "layer_calls": self.layer_calls,
            "target_std": self.target_std,
            "tol": self.tol,
            "seed": self.seed,
            "orthogonal_first": self.orthogonal_first,
            "bias_correction": self.bias_correction,
            "converged": self.converged,
            "reasons": list(self.reasons),
            "layers": [layer.to_dict() for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LSUVReport:
        """Inverse of :meth:`to_dict` (derived fields are recomputed)."""
        fields = {f.name for f in dataclasses.fields(LSUVLayer)}
        return cls(
            layers=tuple(LSUVLayer(**{k: v for k, v in d.items() if k in fields})
                         for d in data["layers"]),
            passes=data["passes"],
            layer_calls=data["layer_calls"],
            target_std=data["target_std"],
            tol=data["tol"],
            seed=data["seed"],
            orthogonal_first=data["orthogonal_first"],
            bias_correction=data["bias_correction"],
            reasons=tuple(data.get("reasons", ())),
        )  # fmt: skip

    def table(self) -> Table:
        """A rich table: one row per layer."""
        title = (
            f"LSUV: target std {self.target_std:g} +- {self.tol:g}, {self.passes} forward "
            f"pass{'es' if self.passes != 1 else ''} ({self.method}), "
            f"{self.layer_calls} layer calls"
        )
        table = Table(title=title)
        for column, justify in (
            ("#", "right"),
            ("layer", "left"),
            ("type", "left"),
            ("calls", "right"),
            ("std before", "right"),
            ("std after", "right"),
            ("scale", "right"),
            ("iters", "right"),
            ("status", "left"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for i, layer in enumerate(self.layers):
            style = "" if layer.status in ("ok", "tied") else "yellow"
            status = layer.status + (f" ({layer.note})" if layer.note else "")
            table.add_row(
                str(i),
                layer.name,
                layer.kind,
                str(layer.calls),
                num(layer.std_before, 4),
                num(layer.std, 4),
                num(layer.scale, 4),
                str(layer.iterations),
                status,
                style=style,
            )
        if self.reasons:
            table.caption = "extra passes: " + "; ".join(self.reasons)
        return fit(table)

    def __rich__(self) -> Table:
        return self.table()
