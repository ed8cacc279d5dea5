"""Argument checks shared by every layer of initlab.

Every bad argument gets a message that names the parameter, shows the value that came in
and says what is allowed; a near-miss among a fixed set of choices suggests the closest.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from numbers import Real
from typing import Any


def closest(value: str, allowed: Iterable[str]) -> str | None:
    """Return the allowed string closest to ``value``, or None when nothing is close.

    >>> closest("he_normla", ["he_normal", "xavier_normal"])
    'he_normal'
    """
    matches = difflib.get_close_matches(str(value).lower(), [a.lower() for a in allowed], n=1)
    if not matches:
        return None
    by_lower = {a.lower(): a for a in allowed}
    return by_lower[matches[0]]


def choice_error(
    param: str, value: Any, allowed: Iterable[str], exc: type[Exception] = ValueError
) -> Exception:
    """Build the error for ``value`` not being one of ``allowed``.

    >>> str(choice_error("mode", "fan_inn", ["fan_in", "fan_out"]))
    "mode='fan_inn' is not valid; allowed: 'fan_in', 'fan_out'. Did you mean 'fan_in'?"
    """
    allowed = list(allowed)
    listed = ", ".join(repr(a) for a in allowed)
    message = f"{param}={value!r} is not valid; allowed: {listed}."
    if isinstance(value, str):
        suggestion = closest(value, allowed)
        if suggestion is not None:
            message += f" Did you mean {suggestion!r}?"
    return exc(message)


def check_choice(param: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ValueError naming ``param``.

    >>> check_choice("mode", "fan_out", ("fan_in", "fan_out"))
    'fan_out'
    """
    allowed = tuple(allowed)
    if value not in allowed:
        raise choice_error(param, value, allowed)
    return value


def check_real(
    param: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
) -> float:
    """Return ``value`` as a float after checking it is a finite real number in range.

    Booleans are refused: ``True`` is an ``int`` to Python but never a meant number here.

    >>> check_real("std", 0.5, minimum=0.0)
    0.5
    >>> check_real("std", -1.0, minimum=0.0)
    Traceback (most recent call last):
    ...
    ValueError: std=-1.0 is not valid; allowed: a real number >= 0.0.
    """
    lo = "" if minimum is None else (f"> {minimum}" if strict_minimum else f">= {minimum}")
    hi = "" if maximum is None else f"<= {maximum}"
    allowed = "a real number" + (f" {lo}" if lo else "") + (f" and {hi}" if lo and hi else "")
    if not lo and hi:
        allowed += f" {hi}"
    bad = isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value)
    if not bad and minimum is not None:
        bad = value <= minimum if strict_minimum else value < minimum
    if not bad and maximum is not None:
        bad = value > maximum
    if bad:
        raise ValueError(f"{param}={value!r} is not valid; allowed: {allowed}.")
    return float(value)


def check_int(param: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) at least ``minimum``.

    >>> check_int("groups", 2, minimum=1)
    2
    """
    bad = isinstance(value, bool) or not isinstance(value, int)
    if not bad and minimum is not None:
        bad = value < minimum
    if bad:
        allowed = "an integer" + ("" if minimum is None else f" >= {minimum}")
        raise ValueError(f"{param}={value!r} is not valid; allowed: {allowed}.")
    return int(value)
