"""Probe a model at initialization: per-layer activation and gradient statistics, verdicts.

``probe(model, inputs)`` runs one forward and one backward pass with hooks and returns a
:class:`ProbeReport`; ``compare(model, inputs, schemes)`` does so under several
initialization schemes side by side (:class:`ProbeComparison`).

>>> import initlab
>>> initlab.probe is probe and initlab.compare is compare
True
"""

from initlab.torch.probe.compare import DEFAULT_SCHEMES, ProbeComparison, compare
from initlab.torch.probe.measure import probe, random_projection, sum_of_squares
from initlab.torch.probe.report import Histogram, LayerStats, ProbeReport
from initlab.torch.probe.schemes import apply_scheme
from initlab.torch.probe.verdicts import Thresholds, Verdict

__all__ = [
    "DEFAULT_SCHEMES",
    "Histogram",
    "LayerStats",
    "ProbeComparison",
    "ProbeReport",
    "Thresholds",
    "Verdict",
    "apply_scheme",
    "compare",
    "probe",
    "random_projection",
    "sum_of_squares",
]
