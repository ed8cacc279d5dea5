"""The options of :func:`initlab.init`: one frozen dataclass that validates itself.

Every argument is checked when :class:`InitOptions` is built, before the model is looked at:
a bad value raises ValueError or TypeError naming the argument, the value received and what
is allowed. Derived values (the model-wide scheme, the bias policy, resolved overrides, the
seed drawn for ``seed=None``) are computed once here.

>>> options = InitOptions(scheme="he_uniform", seed=3, bias="torch")
>>> type(options.model_scheme).__name__, options.bias_policy, options.seed
('VarianceScaling', 'torch', 3)
>>> InitOptions(atomic="always")
Traceback (most recent call last):
...
ValueError: atomic='always' is not valid; allowed: 'validate', 'snapshot'.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from initlab._validation import check_choice, check_int, choice_error
from initlab.fans import FAN_MODES
from initlab.schemes import DISTRIBUTIONS, Scheme, get_scheme, scheme_names
from initlab.torch.model.conventions import NORM_POLICIES
from initlab.torch.residual import residual_option
from initlab.torch.runtime import call_arguments, inputs_argument

__all__ = ["ATOMIC_MODES", "BIAS_POLICIES", "CUSTOM_POLICIES", "InitOptions", "patterns"]

BIAS_POLICIES = ("zeros", "keep", "torch")
ATOMIC_MODES = ("validate", "snapshot")
CUSTOM_POLICIES = ("init", "skip")

Override = str | Scheme | Callable[[torch.Tensor], Any]


def patterns(param: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Glob patterns from ``None``, one string or an iterable of strings.

    >>> patterns("exclude", "head.*"), patterns("exclude", ["a", "b"]), patterns("x", None)
    (('head.*',), ('a', 'b'), ())
    """
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(
            f"{param}={value!r} is not valid; allowed: a glob string or a list of them."
        ) from None
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{param}: {item!r} is not valid; allowed: glob strings.")
    return items


def _override(pattern: str, value: Any) -> Any:
    where = f"overrides[{pattern!r}]"
    if isinstance(value, Scheme) or (callable(value) and not isinstance(value, str)):
        return value
    if not isinstance(value, str):
        raise TypeError(
            f"{where}={value!r} is not valid; allowed: a scheme name, a Scheme, 'keep', 'auto' "
            "or a callable filling a tensor in place."
        )
    if value in ("keep", "skip"):
        return "keep"
    if value == "auto":
        return "auto"
    try:
        return get_scheme(value)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _model_scheme(scheme: Any) -> Scheme | None:
    if isinstance(scheme, str) and scheme == "auto":
        return None
    if isinstance(scheme, Scheme):
        return scheme
    if not isinstance(scheme, str):
        raise TypeError(
            f"scheme={scheme!r} is not valid; allowed: 'auto', a scheme name or a Scheme."
        )
    try:
        return get_scheme(scheme)
    except ValueError as error:
        if "is not valid; allowed:" in str(error) and "(" not in scheme:
            raise choice_error("scheme", scheme, ("auto", *scheme_names())) from None
        raise


def _bias_policy(bias: Any) -> str | Scheme:
    if isinstance(bias, str) and bias in BIAS_POLICIES:
        return bias
    try:
        resolved = get_scheme(bias)
    except (ValueError, TypeError):
        raise choice_error("bias", bias, (*BIAS_POLICIES, "a scheme without fans")) from None
    if resolved.uses_fans:
        raise ValueError(
            f"bias={bias!r} is not valid: it scales by fans, and a bias has none; allowed: "
            "'zeros', 'keep', 'torch' or a scheme without fans such as 'normal(std=0.01)'."
        )
    return resolved


def label(value: Any) -> str:
    """A scheme or policy as the report names it."""
    return value if isinstance(value, str) else getattr(value, "name", repr(value))


@dataclass(frozen=True)
class InitOptions:
    """Every argument of :func:`initlab.init` but the model, checked on construction.

    Derived fields (not arguments): ``model_scheme`` (None for ``"auto"``),
    ``bias_policy``, ``resolved_overrides`` (glob -> Scheme, ``"keep"``, ``"auto"`` or a
    callable), ``excluded`` (globs), ``seed`` drawn at random when None was given, and
    ``example_inputs`` from ``inputs=`` or ``example_inputs=`` (one name for the other).
    """

    scheme: str | Scheme = "auto"
    seed: int | None = None
    mode: str | None = None
    distribution: str | None = None
    bias: str | Scheme = "zeros"
    overrides: Mapping[str, Override] | None = None
    exclude: str | Iterable[str] | None = None
    example_inputs: Any = None
    dry_run: bool = False
    include_frozen: bool = False
    custom: str = "init"
    device: str | torch.device | None = None
    atomic: str = "validate"
    measure: bool = True
    progress: bool | None = None
    residual: str | Mapping[str, Any] | None = None
    inputs: Any = None
    norms: str = "auto"
    model_scheme: Scheme | None = field(init=False, default=None)
    bias_policy: str | Scheme = field(init=False, default="zeros")
    resolved_overrides: dict[str, Any] = field(init=False, default_factory=dict)
    excluded: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        derived = {"model_scheme": _model_scheme(self.scheme)}
        seed = secrets.randbelow(2**32) if self.seed is None else self.seed
        derived["seed"] = check_int("seed", seed, minimum=0)
        self._check_mode(derived["model_scheme"])
        derived["bias_policy"] = _bias_policy(self.bias)
        check_choice("custom", self.custom, CUSTOM_POLICIES)
        check_choice("atomic", self.atomic, ATOMIC_MODES)
        check_choice("norms", self.norms, NORM_POLICIES)
        for flag in ("dry_run", "include_frozen", "measure"):
            value = getattr(self, flag)
            if not isinstance(value, bool):
                raise TypeError(f"{flag}={value!r} is not valid; allowed: True or False.")
        if self.progress is not None and not isinstance(self.progress, bool):
            raise TypeError(f"progress={self.progress!r} is not valid; allowed: None, True, False.")
        if self.overrides is not None and not isinstance(self.overrides, Mapping):
            raise TypeError(
                f"overrides={self.overrides!r} is not valid; allowed: a dict of glob -> scheme."
            )
        derived["resolved_overrides"] = {
            str(k): _override(str(k), v) for k, v in (self.overrides or {}).items()
        }
        derived["excluded"] = patterns("exclude", self.exclude)
        derived["example_inputs"] = inputs_argument(self.inputs, self.example_inputs)
        if derived["example_inputs"] is not None:  # the one rule, checked before anything runs
            call_arguments(
                derived["example_inputs"],
                name="inputs" if self.inputs is not None else "example_inputs",
            )
        if self.residual is not None:
            residual_option(self.residual)  # checked now, planned with the rest
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    def _check_mode(self, model_scheme: Scheme | None) -> None:
        if self.mode is not None:
            check_choice("mode", self.mode, FAN_MODES)
        if self.distribution is not None:
            check_choice("distribution", self.distribution, DISTRIBUTIONS)
        given = "mode" if self.mode else "distribution" if self.distribution else None
        if model_scheme is not None and given and not hasattr(model_scheme, "mode"):
            raise ValueError(
                f"{given}={getattr(self, given)!r} is not valid with scheme="
                f"{label(self.scheme)!r}, which has no fans; allowed: 'auto' or a "
                "variance-scaling scheme."
            )

    @property
    def settings(self) -> dict[str, Any]:
        """The options the per-block rules read."""
        return {
            "mode": self.mode,
            "distribution": self.distribution,
            "bias": self.bias_policy,
            "custom": self.custom,
            "include_frozen": self.include_frozen,
        }
