"""initlab.init's report takes its measured std and mean from the fill's own sums.

The figures must be those of the final values (what torch.var_mean of each block gives),
whatever wrote last: padding rows zeroed after the fill, a residual policy that zeroes or
scales, blocks (q/k/v) of one parameter, bfloat16 parameters; and the report must not read
the weights again (checked by counting var_mean calls).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab.torch.model import api


def _expected(values: torch.Tensor) -> tuple[float, float]:
    var, mean = torch.var_mean(values.detach().double(), correction=0)
    return float(var.sqrt()), float(mean)


class Tiny(nn.Module):
    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16, padding_idx=3, dtype=dtype)
        self.attn = nn.MultiheadAttention(16, 2, dtype=dtype)
        self.fc = nn.Linear(16, 32, dtype=dtype)
        self.norm = nn.LayerNorm(32, dtype=dtype)
        self.out = nn.Linear(32, 4, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        h = self.attn(h, h, h)[0]
        return self.out(self.norm(torch.relu(self.fc(h))))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_report_figures_are_those_of_the_final_values(dtype, monkeypatch):
    calls = []
    measure = api._measure
    monkeypatch.setattr(api, "_measure", lambda view: calls.append(1) or measure(view))
    model = Tiny(dtype)
    report = initlab.init(model, "he", seed=0)
    params = dict(model.named_parameters())
    checked = 0
    for row in report.rows:
        if row.action != "initialized" or row.measured_std is None:
            continue
        values = params[row.parameter]
        if row.rows is not None:
            values = values[row.rows[0] : row.rows[1]]
        std, mean = _expected(values)
        # float32 partial sums (at most five values a lane) before the float64 ones
        assert row.measured_std == pytest.approx(std, rel=1e-6, abs=1e-12), row.parameter
        assert row.measured_mean == pytest.approx(mean, abs=1e-6 * std + 1e-12), row.parameter
        checked += 1
    assert checked >= 8
    assert calls == []  # every figure came from the fill's sums
    assert float(params["emb.weight"].detach()[3].abs().sum()) == 0.0  # padding row zeroed


def test_values_written_after_the_fill_are_measured_again():
    from tests.test_residual import ResMLP

    model = ResMLP(blocks=2)
    report = initlab.init(model, "he", seed=3, residual="fixup")
    w = model.blocks[0].fc1.weight
    assert report["blocks.0.fc1.weight"].measured_std == pytest.approx(_expected(w)[0])
    assert report["blocks.0.fc2.weight"].measured_std == 0.0
