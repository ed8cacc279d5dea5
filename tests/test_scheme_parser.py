"""The scheme-string parser: one argument-order convention, and no silent argument."""

from __future__ import annotations

import pytest

from initlab.schemes import SCHEMES, get_scheme


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("he_normal(**x)", "'**x' unpacks"),
        ("he_normal(**{'a': 1})", "unpacks"),
        ("he_normal(*x)", "'*x' unpacks"),
        ("normal(std=1, std=2)", "'std' is given twice"),
        ("he_uniform(mode=fan_in, mode=fan_out)", "'mode' is given twice"),
        ("normal(0.02)", "unnamed"),  # would have been the mean: never silently
        ("random(0.02)", "unnamed"),
        ("uniform(-1, 1)", "unnamed"),
        ("normal(0.02, mean=0)", "unnamed"),
        ("trunc_normal(0, 1)", "unnamed"),
        ("constant(1, 2)", "unnamed"),
    ],
)
def test_parser_refuses_what_it_cannot_read_unambiguously(text, words):
    with pytest.raises(ValueError, match="scheme=") as error:
        get_scheme(text)
    assert words in str(error.value)
    assert "allowed" in str(error.value)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("constant(0.5)", "constant(value=0.5)"),
        ("Constant(0.5)", "constant(value=0.5)"),
        ("orthogonal(2.0)", "orthogonal(gain=2.0)"),
        ("dirac(2)", "dirac(groups=2)"),
        ("normal(std=0.02)", "normal(mean=0.0, std=0.02)"),
        ("random(std=0.02)", "random(mean=0.0, std=0.02)"),
        ("normal(mean=0.1, std=0.02)", "normal(mean=0.1, std=0.02)"),
    ],
)
def test_the_one_convention_named_arguments_or_a_single_value(text, name):
    assert get_scheme(text).name == name


def test_every_scheme_follows_the_convention():
    """One rule for all: a positional argument only for a one-parameter scheme (layout
    parameters such as orthogonal's column_axis do not count)."""
    import inspect

    for preset, factory in SCHEMES.items():
        params = [p for p in inspect.signature(factory).parameters if p != "column_axis"]
        if not params:
            continue
        value = 1 if params[0] == "groups" else 0.5
        text = f"{preset}({value})"
        if len(params) == 1:
            assert get_scheme(text) is not None
        else:
            with pytest.raises(ValueError, match="unnamed"):
                get_scheme(text)
