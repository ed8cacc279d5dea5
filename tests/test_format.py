"""Output that reads well: numbers never cut, labelled columns, the terminal's width."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from rich.console import Console

import initlab
from initlab._format import num, to_text
from initlab.torch.probe import compare
from initlab.torch.probe.models import mlp


def test_num_is_at_most_8_characters_and_round_trips_to_3_digits():
    rng = np.random.default_rng(0)
    values = np.concatenate([10.0 ** rng.uniform(-300, 300, 2000), [1e-3, 9999.4, 1e4]])
    for v in np.concatenate([values, -values]):
        text = num(float(v))
        assert len(text) <= 8, text
        rel = 0.051 if 1e-99 < abs(v) < 1e99 else 0.51  # 3-digit exponents: 1-2 digits
        assert float(text) == pytest.approx(v, rel=rel), (v, text)


@pytest.fixture(scope="module")
def comparison():
    factory = lambda: mlp(depth=8, width=32)  # noqa: E731
    return compare(factory, torch.randn(32, 32), ["zeros", "random", "xavier", "he"], seed=0)


def _render(renderable, width):
    console = Console(width=width, file=io.StringIO(), color_system=None, force_terminal=True)
    console.print(renderable)
    return console.file.getvalue()


@pytest.mark.parametrize("width", [80, 100, 200])
def test_probe_tables_never_cut_a_number(comparison, width):
    text = _render(comparison, width) + _render(comparison["random"], width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for report in comparison.reports.values():
        for layer in report.layers:
            for value in (layer.act_std, layer.grad_norm):
                assert num(value) in text  # whole, on one line
    assert "flags" in _render(comparison["random"], width)  # no unlabelled column


def test_print_report_uses_the_terminal_width(monkeypatch):
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    report = initlab.init(model, seed=0)
    monkeypatch.setenv("COLUMNS", "80")
    narrow = str(report)
    assert max(len(line) for line in narrow.splitlines()) <= 80
    monkeypatch.setenv("COLUMNS", "200")
    wide = str(report)
    assert "0.weight" in wide and max(len(line) for line in wide.splitlines()) > 80
    monkeypatch.delenv("COLUMNS")  # not a terminal (pytest captures): nothing wraps
    assert "0.weight" in str(report) and "0.weight" in to_text(report.table())


def test_init_report_at_80_columns_keeps_names_and_every_number(monkeypatch):
    """A real model's report on a narrow terminal: the columns a reader needs first, every
    std and gain whole, no line over 80 columns (a GPT-2 built from a config)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64, bos_token_id=0,
                        eos_token_id=0)  # fmt: skip
    report = initlab.init(GPT2LMHeadModel(config), seed=0)
    monkeypatch.setenv("COLUMNS", "80")
    text = str(report)
    assert max(len(line) for line in text.splitlines()) <= 80
    header = next(line for line in text.splitlines() if "parameter" in line)
    assert header.split() == ["parameter", "fans", "in/out", "followed", "by", "rule", "gain",
                              "std"]  # fmt: skip
    for row in report.rows:
        if row.std is not None:
            assert num(row.std, 4) in text
    assert "narrow terminal" in text
