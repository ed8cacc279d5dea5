"""The one base of every report: plain data, JSON both ways, one text rendering.

A report (``InitReport``, ``ProbeReport``, ``LSUVReport``, ``ResidualReport``, ...) defines
``to_dict()`` (its public JSON fields), ``from_dict()`` and ``__rich__()`` or
``__rich_console__()`` (what a terminal shows); :class:`Report` adds the rest the same way for
all of them:

* ``to_json(path=None, *, indent=2)``: strict JSON text (also written to ``path``);
* ``from_json(text_or_path)``: the report back;
* ``str(report)``: the rich rendering as plain text at the terminal's width, or wide enough
  that nothing wraps when the output is not a terminal (:func:`initlab._format.to_text`).

One policy for floats that are not finite (a layer never reached, a diverged model): JSON has
no token for them, so they are written as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` (:func:`encode_floats`) and read back as floats (:func:`decode_floats`).

>>> encode_floats({"a": [1.0, float("inf"), float("nan")]})
{'a': [1.0, 'Infinity', 'NaN']}
>>> decode_floats(["Infinity", 2.0])
[inf, 2.0]
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from initlab._format import to_text

__all__ = ["Report", "decode_floats", "encode_floats"]


def encode_floats(value: Any) -> Any:
    """A structure made strict-JSON safe: non-finite floats become NaN/Infinity strings,
    tuples become lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: encode_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_floats(v) for v in value]
    return value


_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def decode_floats(value: Any) -> Any:
    """Inverse of :func:`encode_floats` (lists stay lists)."""
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    if isinstance(value, dict):
        return {k: decode_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_floats(v) for v in value]
    return value


class Report:
    """Mixin for reports that define ``to_dict``, ``from_dict`` and ``__rich__``."""

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every report defines it
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:  # pragma: no cover
        raise NotImplementedError

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 2) -> str:
        """Strict JSON text (non-finite floats as strings); also written to ``path``."""
        text = json.dumps(encode_floats(self.to_dict()), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> Any:
        """The report from JSON text or from a file path."""
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text(encoding="utf-8")
        return cls.from_dict(decode_floats(json.loads(text)))

    def __str__(self) -> str:
        return to_text(self)
