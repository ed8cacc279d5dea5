"""Studies that reproduce the classic claims about initialization, with numbers and plots.

=============  ==========================================================================
study          what it shows
=============  ==========================================================================
circles        zeros vs large random vs He (plus Xavier, small random) on make_circles:
               the classic exercise, in plain NumPy and in PyTorch
depth          He et al. 2015 figs 2-3 in miniature: plain ReLU MLPs of depth 10, 20, 30
               on digits; He trains at 30 layers, Xavier stalls
propagation    activation and gradient std through 100 layers for 7 activations and
               each scheme, against the mean-field prediction
=============  ==========================================================================

Each study is a function returning a :class:`~initlab.studies._common.StudyResult`
(``.to_dict()`` for JSON, ``.tables()`` for rich tables, ``.save(dir)`` for JSON + PNGs),
and a subcommand: ``initlab demo NAME``. The same seed gives bit-identical numbers.

>>> sorted(STUDIES)
['circles', 'depth', 'propagation']
"""

from __future__ import annotations

import importlib
from typing import Any

from initlab._validation import check_choice
from initlab.studies._common import Bars, StudyResult

__all__ = ["STUDIES", "Bars", "StudyResult", "run_study"]

#: study name -> (module, function, one-line description)
STUDIES: dict[str, tuple[str, str, str]] = {
    "circles": (
        "initlab.studies.circles",
        "run_circles",
        "zeros vs random vs He on make_circles, NumPy and PyTorch",
    ),
    "depth": (
        "initlab.studies.depth",
        "run_depth",
        "plain ReLU MLPs of depth 10/20/30 on digits: He vs Xavier (He et al. 2015)",
    ),
    "propagation": (
        "initlab.studies.propagation",
        "run_propagation",
        "activation and gradient std through 100 layers vs theory",
    ),
}


def run_study(
    name: str, *, quick: bool = True, seed: int = 0, bars: Bars | None = None, **options: Any
) -> StudyResult:
    """Run the study ``name`` (see :data:`STUDIES`); extra options go to its function.

    >>> run_study("circle")
    Traceback (most recent call last):
    ...
    ValueError: study='circle' is not valid; allowed: 'circles', 'depth', 'propagation'. Did you mean 'circles'?
    """  # noqa: E501
    check_choice("study", name, STUDIES)
    module, function, _ = STUDIES[name]
    run = getattr(importlib.import_module(module), function)
    return run(quick=quick, seed=seed, bars=bars, **options)
