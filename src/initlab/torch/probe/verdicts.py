r"""Verdicts: is the signal healthy, vanishing or exploding, and where does trouble start?

Forward, the signal at layer :math:`l` is the std of its activation, :math:`s_l` (the
layer's output when no nonlinearity follows it), in execution order. Backward, it is the
norm of the gradient with respect to the layer's output over the whole batch,
:math:`g_l = \lVert \partial L / \partial y_l \rVert_2`, in reverse order. Each direction
is judged against its own reference, the first layer the signal passes through (forward:
the first layer; backward: the last):

.. math::  r_l = s_l / s_{\mathrm{ref}}

* **vanishing** at the first layer where :math:`r_l < \mathrm{vanishing}` (default
  :math:`10^{-2}`), or where the reference itself is zero;
* **exploding** at the first layer where :math:`r_l > \mathrm{exploding}` (default
  :math:`10^{2}`), or where the signal is no longer finite (inf or NaN);
* **healthy** when no layer crosses either threshold.

The named layer is where the signal has first moved more than the threshold away from the
reference: where trouble has started. The verdict also states the model-level ratio (last
over first forward, first over last backward) and the average factor per layer,
:math:`(r_{\mathrm{end}})^{1/(n-1)}`, which says how fast the signal drifts.

Why these signals. He initialization (fan_in) keeps the forward *per-unit* variance
constant, and it keeps the backward *total* squared norm constant through dense layers of
any widths: :math:`E\lVert W^\top \delta \rVert^2 = n_{in}\, n_{out} \cdot
\tfrac{2}{n_{in}} \cdot \tfrac12\, E[\delta^2] = \lVert\delta\rVert^2`. A per-element
gradient measure would instead shrink by ``n_out / n_in`` at every narrowing (a 10-unit head
after 256 units) and by ``n`` at a global average pool over ``n`` positions, where the norm
shrinks by ``sqrt(n)`` only. The gradient with respect to layer outputs is used rather than
the weight gradients: in a homogeneous network the weight-gradient norms stay level across
depth even while the back-propagated gradients vanish (Glorot and Bengio 2010, section 4.2);
they are reported beside it. Two orders of magnitude by default leave room for what an
architecture does by design while catching depth-driven drift: a depth-30 ReLU MLP under
Xavier ends near ``2^-14.5 ~ 4e-5``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from initlab._validation import check_choice, check_real

__all__ = ["DIRECTIONS", "STATUSES", "Thresholds", "Verdict", "judge"]

DIRECTIONS = ("forward", "backward")
STATUSES = ("healthy", "vanishing", "exploding", "unmeasured")


@dataclass(frozen=True)
class Thresholds:
    """Limits of a healthy signal, relative to the reference layer; and the saturation level.

    ``vanishing`` in (0, 1), ``exploding`` > 1: a layer whose signal ratio leaves
    ``[vanishing, exploding]`` gets the verdict. ``saturation`` in (0, 1): a bounded
    activation is saturated beyond that fraction of its half-range (0.99: ``|tanh| >= 0.99``).

    >>> Thresholds()
    Thresholds(vanishing=0.01, exploding=100.0, saturation=0.99)
    >>> Thresholds(vanishing=2.0)
    Traceback (most recent call last):
    ...
    ValueError: vanishing=2.0 is not valid; allowed: a real number > 0.0 and <= 1.0.
    """

    vanishing: float = 1e-2
    exploding: float = 1e2
    saturation: float = 0.99

    def __post_init__(self) -> None:
        check_real("vanishing", self.vanishing, minimum=0.0, maximum=1.0, strict_minimum=True)
        check_real("exploding", self.exploding, minimum=1.0)
        check_real("saturation", self.saturation, minimum=0.0, maximum=1.0, strict_minimum=True)
        object.__setattr__(self, "vanishing", float(self.vanishing))
        object.__setattr__(self, "exploding", float(self.exploding))
        object.__setattr__(self, "saturation", float(self.saturation))

    def to_dict(self) -> dict[str, float]:
        """The thresholds as a plain dict (JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """The judgement of one direction.

    ``status``: healthy, vanishing, exploding, or unmeasured (no layer had the signal, e.g.
    no gradient reached any layer). ``ratio``: last over first forward, first over last
    backward (NaN when undefined). ``starts_at`` / ``starts_at_index``: the layer (name and
    1-based depth) where trouble starts, ``None`` when healthy. ``ratio_at_start``: the
    signal ratio there. ``per_layer``: the average factor per layer. ``message``: one
    sentence for people.
    """

    direction: str
    status: str
    ratio: float
    starts_at: str | None = None
    starts_at_index: int | None = None
    ratio_at_start: float | None = None
    per_layer: float | None = None
    message: str = ""

    @property
    def healthy(self) -> bool:
        """Whether the status is ``healthy``."""
        return self.status == "healthy"


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def judge(
    direction: str,
    names: Sequence[str],
    depths: Sequence[int],
    signal: Sequence[float | None],
    thresholds: Thresholds,
) -> Verdict:
    """Judge one direction from the per-layer signal, ordered the way the signal flows.

    ``names`` and ``depths`` label the layers; ``signal`` holds one value per layer (None where
    it was not measured). Forward, pass the layers in execution order; backward, reversed.

    >>> t = Thresholds()
    >>> judge("forward", ["a", "b", "c"], [1, 2, 3], [1.0, 0.5, 0.001], t).starts_at
    'c'
    >>> judge("forward", ["a", "b", "c"], [1, 2, 3], [1.0, 1.2, 0.9], t).status
    'healthy'
    """
    check_choice("direction", direction, DIRECTIONS)
    what = "activation std" if direction == "forward" else "gradient norm"
    measured = [(n, d, v) for n, d, v in zip(names, depths, signal, strict=True) if v is not None]
    if not measured:
        return Verdict(direction, "unmeasured", math.nan, message=f"no layer had a {what}.")
    ref_name, ref_depth, ref = measured[0]
    last = measured[-1][2]
    ratio = last / ref if ref != 0 and math.isfinite(ref) else math.nan
    steps = len(measured) - 1
    per_layer = None
    if steps and math.isfinite(ratio) and ratio > 0:
        per_layer = ratio ** (1.0 / steps)
    trend = ""
    if per_layer is not None:
        trend = f"; x{_fmt(per_layer)} per layer on average"

    def verdict(status: str, name: str, depth: int, at: float | None, why: str) -> Verdict:
        where = f"layer {depth} '{name}'"
        message = f"{status}: {why} at {where}{trend}."
        return Verdict(direction, status, ratio, name, depth, at, per_layer, message)

    if not math.isfinite(ref):
        return verdict("exploding", ref_name, ref_depth, None, f"the {what} is {ref}")
    if ref == 0:
        return verdict("vanishing", ref_name, ref_depth, None, f"the {what} is already 0")
    for name, depth, value in measured[1:]:
        if not math.isfinite(value):
            return verdict("exploding", name, depth, None, f"the {what} becomes {value}")
        r = value / ref
        if r < thresholds.vanishing:
            why = f"the {what} falls to {_fmt(r)} x the reference (< {_fmt(thresholds.vanishing)})"
            return verdict("vanishing", name, depth, r, why)
        if r > thresholds.exploding:
            why = f"the {what} grows to {_fmt(r)} x the reference (> {_fmt(thresholds.exploding)})"
            return verdict("exploding", name, depth, r, why)
    span = "last/first" if direction == "forward" else "first/last"
    message = (
        f"healthy: the {what} stays within [{_fmt(thresholds.vanishing)}, "
        f"{_fmt(thresholds.exploding)}] x the reference; {span} = {_fmt(ratio)}{trend}."
    )
    return Verdict(direction, "healthy", ratio, per_layer=per_layer, message=message)
