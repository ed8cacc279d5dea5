"""What every study shares: the result type, progress bars, JSON, figures, determinism."""

from __future__ import annotations

import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

__all__ = [
    "Bars",
    "StudyResult",
    "jsonable",
    "mean_std",
    "save_figure",
    "summarize",
    "torch_threads",
    "write_json",
]

#: Threads torch uses inside a study. A fixed count makes every reduction run in the same
#: order on any machine, so the same seed gives bit-identical numbers; one thread is also the
#: fastest for networks this small.
STUDY_THREADS = 1


@contextmanager
def torch_threads(n: int = STUDY_THREADS) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``; restore the previous count after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Bars:
    """Progress bars for a study: one for the study, one for each training run.

    A run's bar is removed when the run ends, so the screen shows the study's overall bar
    and the run in progress. ``enabled=False`` (tests, ``--quiet``) draws nothing.
    """

    def __init__(self, console: Console | None = None, *, enabled: bool = True) -> None:
        self.progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=True,
        )

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[_Task]:
        """A bar for one piece of work of ``total`` steps; removed when the block ends."""
        task_id = self.progress.add_task(description, total=total)
        try:
            yield _Task(self.progress, task_id)
        finally:
            self.progress.remove_task(task_id)


@dataclass
class _Task:
    progress: Progress
    task_id: Any

    def update(self, completed: int) -> None:
        """Set the steps done so far."""
        self.progress.update(self.task_id, completed=completed)

    def advance(self, steps: int = 1) -> None:
        """Add ``steps`` to the steps done."""
        self.progress.advance(self.task_id, steps)


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays turned into Python ones and non-finite floats
    into strings ("inf", "-inf", "nan"), so that the JSON is standard.

    >>> jsonable({"a": np.float64(1.5), "b": [np.inf, 2], "c": np.arange(2)})
    {'a': 1.5, 'b': ['inf', 2], 'c': [0, 1]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (floats exact, non-finite as strings); returns path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(data), indent=1) + "\n")
    return path


def save_figure(figure: Any, path: Path) -> Path:
    """Save a matplotlib Figure as a small PNG; returns the path.

    Rendered through the Agg canvas (no pyplot, no global backend change), then stored as
    a 256-colour palette PNG (plots have few colours: a third of the size, no visible loss),
    without metadata that would change between runs.
    """
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    buffer.seek(0)
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        palette.save(path, format="PNG", optimize=True)
    return path


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure not registered with pyplot (safe in any thread or backend)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation of ``values``.

    >>> mean_std([1.0, 3.0])
    (2.0, 1.0)
    """
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std())


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Mean, (population) std, min and max of ``values``, for tables and JSON.

    >>> summarize([1.0, 3.0])
    {'mean': 2.0, 'std': 1.0, 'min': 1.0, 'max': 3.0}
    """
    array = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(array.mean()),
        "std": float(array.std()),
        "min": float(array.min()),
        "max": float(array.max()),
    }


@dataclass
class StudyResult(ABC):
    """The outcome of a study: its configuration and every number it measured.

    ``data`` is JSON-ready; :meth:`tables` renders the summary, :meth:`plot` writes PNGs.
    """

    name: str
    config: dict[str, Any]
    data: dict[str, Any]
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Everything measured, as JSON-ready Python objects (no timings: reproducible)."""
        return jsonable({"study": self.name, "config": self.config, **self.data})

    @abstractmethod
    def tables(self) -> list[Table]:
        """Rich tables summarising the study."""

    @abstractmethod
    def plot(self, out_dir: Path) -> list[Path]:
        """Write the study's figures as PNG files under ``out_dir``; returns their paths."""

    def findings(self) -> list[str]:
        """One-line conclusions drawn from the numbers (printed under the tables)."""
        return []

    def save(self, out_dir: Path) -> list[Path]:
        """Write ``<name>.json`` and the figures under ``out_dir``; returns the paths."""
        out_dir = Path(out_dir)
        paths = [write_json(out_dir / f"{self.name}.json", self.to_dict())]
        paths += self.plot(out_dir)
        self.files = paths
        return paths


class Stopwatch:
    """Wall-clock seconds since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
