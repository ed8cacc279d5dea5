"""One report base under every report: JSON both ways, one non-finite policy, one text."""

from __future__ import annotations

import dataclasses
import json
import math

import torch
from torch import nn

import initlab
from initlab.reporting import Report, decode_floats, encode_floats
from initlab.torch.lsuv import LSUVReport, lsuv
from initlab.torch.model import InitReport
from initlab.torch.probe import ProbeComparison, ProbeReport, probe
from initlab.torch.residual import ResidualReport, apply_residual_policy


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), Block(), Block(), nn.Linear(8, 2))


def reports() -> list[Report]:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    return [
        initlab.init(model(), seed=0, residual="fixup"),
        lsuv(model(), x, seed=0),
        probe(model(), x),
        apply_residual_policy(model(), "zero_last", dry_run=True),
    ]


def plain(data):
    return json.loads(json.dumps(encode_floats(data), allow_nan=False))


def test_every_report_round_trips_through_json_and_prints(tmp_path):
    kinds = (InitReport, LSUVReport, ProbeReport, ResidualReport)
    for report, kind in zip(reports(), kinds, strict=True):
        assert isinstance(report, Report)
        text = report.to_json()
        assert "NaN" not in text.replace('"NaN"', "")  # strict JSON: no bare NaN tokens
        again = kind.from_json(text)
        assert plain(again.to_dict()) == plain(report.to_dict())
        path = tmp_path / f"{kind.__name__}.json"
        report.to_json(path)
        assert plain(kind.from_json(path).to_dict()) == plain(report.to_dict())
        assert str(report).strip()


def test_one_policy_for_non_finite_floats():
    report = reports()[1]
    layer = report.layers[0]
    broken = dataclasses.replace(report, layers=(dataclasses.replace(layer, std=math.nan),))
    data = json.loads(broken.to_json())
    assert data["layers"][0]["std"] == "NaN" and data["format"] == "initlab.lsuv/2"
    assert math.isnan(LSUVReport.from_json(broken.to_json()).layers[0].std)
    assert decode_floats(encode_floats([math.inf, -math.inf])) == [math.inf, -math.inf]


def test_comparison_is_a_report():
    assert issubclass(ProbeComparison, Report)
