"""Moved to :mod:`initlab.draw_params` (numba-free, shared with the torch backend)."""

from initlab.draw_params import Truncation, plan_truncation

__all__ = ["Truncation", "plan_truncation"]
