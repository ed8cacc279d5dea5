"""Verdict rules, statistics helpers, the report's JSON round trip, tables and plots."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from initlab.torch.probe import (
    Histogram,
    ProbeComparison,
    ProbeReport,
    Thresholds,
    apply_scheme,
    compare,
    probe,
    random_projection,
)
from initlab.torch.probe.models import cnn, mlp
from initlab.torch.probe.recorder import dead_fraction, moments, units_identical
from initlab.torch.probe.verdicts import judge

T = Thresholds()


def _judge(signal, direction="forward", thresholds=T):
    names = [f"l{i}" for i in range(1, len(signal) + 1)]
    return judge(direction, names, list(range(1, len(signal) + 1)), signal, thresholds)


@pytest.mark.parametrize(
    ("signal", "status", "start"),
    [
        ([1.0, 0.8, 1.3, 0.5, 2.0], "healthy", None),
        ([1.0, 0.5, 0.02, 0.009, 1e-5], "vanishing", "l4"),
        ([1.0, 3.0, 50.0, 101.0, 1e4], "exploding", "l4"),
        ([1.0, 2.0, math.inf], "exploding", "l3"),
        ([1.0, math.nan, 1.0], "exploding", "l2"),
        ([0.0, 0.0, 0.0], "vanishing", "l1"),
        ([None, 2.0, 0.01], "vanishing", "l3"),  # the reference is the first measured layer
        ([1.0, 0.5, 0.0], "vanishing", "l3"),
    ],
)
def test_verdict_rules(signal, status, start):
    verdict = _judge(signal)
    assert verdict.status == status
    assert verdict.starts_at == start
    assert status in verdict.message


def test_verdict_ratio_per_layer_and_unmeasured():
    verdict = _judge([1.0, 0.5, 0.25, 0.125])
    assert verdict.ratio == 0.125 and verdict.per_layer == pytest.approx(0.5)
    assert verdict.status == "healthy"
    assert _judge([1.0, 0.5, 0.25, 0.125], thresholds=Thresholds(vanishing=0.2)).starts_at == "l4"
    assert _judge([None, None]).status == "unmeasured"
    assert math.isnan(_judge([0.0, 1.0]).ratio)


def test_thresholds_are_validated():
    with pytest.raises(ValueError, match=r"exploding=0\.5 is not valid"):
        Thresholds(exploding=0.5)
    with pytest.raises(ValueError, match=r"saturation=1\.5 is not valid"):
        Thresholds(saturation=1.5)
    with pytest.raises(ValueError, match="direction='sideways' is not valid"):
        judge("sideways", [], [], [], T)


@pytest.mark.parametrize("scale", [1e-40, 1e-30, 1e-3, 1.0, 1e20, 1e36])
def test_moments_are_exact_at_any_scale(scale):
    values = torch.randn(4096, generator=torch.Generator().manual_seed(0)) * scale + 0.5 * scale
    reference = values.double().numpy()
    mean, std, largest = moments(values).tolist()
    assert mean == pytest.approx(reference.mean(), rel=1e-4)
    assert std == pytest.approx(reference.std(), rel=1e-4)
    assert largest == pytest.approx(np.abs(reference).max(), rel=1e-6)
    # What a plain float32 sum of squares would give at the extremes: 0 or inf.
    if scale in (1e-30, 1e36):
        naive = torch.linalg.vector_norm(values).item()
        assert naive == 0.0 or math.isinf(naive)


def test_dead_fraction_and_symmetry_helpers():
    a = torch.zeros(4, 3, 2, 2)
    a[:, 1] = 1.0
    assert dead_fraction(a, 1).item() == pytest.approx(2 / 3)
    assert bool(units_identical(torch.ones(5, 4) * 3.0, 1))
    assert not bool(units_identical(torch.randn(5, 4), 1))


def test_histograms_vectorized_equal_one_by_one():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=500), np.maximum(rng.normal(size=500), 0), np.full(500, 2.0),
              np.r_[rng.normal(size=498), np.inf, np.nan], None, rng.uniform(size=7)]  # fmt: skip
    many = Histogram.many(arrays, bins=25)
    for array, hist in zip(arrays, many, strict=True):
        assert hist == (None if array is None else Histogram.of(array, bins=25))
    relu = many[1]
    assert relu.zeros == int((arrays[1] == 0).sum()) and relu.total == 500
    assert relu.density(without_zeros=True).sum() == pytest.approx(1.0)
    assert many[3].nonfinite == 2


@pytest.fixture(scope="module")
def reports():
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    return compare(lambda: mlp(12, 32), x, ["zeros", "xavier", "he", "normal"], seed=0)


def test_json_round_trip(reports, tmp_path):
    for report in reports.reports.values():
        text = report.to_json()
        data = json.loads(text)  # strict JSON: NaN and inf are strings
        assert "NaN" not in text.replace('"NaN"', "")
        again = ProbeReport.from_json(text)
        assert again.to_dict() == report.to_dict() == data
        assert again.forward == report.forward and again.backward == report.backward
    path = tmp_path / "cmp.json"
    reports.to_json(path)
    assert ProbeComparison.from_json(path).to_dict() == reports.to_dict()
    assert ProbeComparison.from_json(path.read_text())["zeros"].symmetric_layers
    with pytest.raises(ValueError, match="format="):
        ProbeReport.from_dict({"format": "something else"})


def test_zeros_ratio_is_nan_and_survives_json(reports):
    zeros = reports["zeros"]
    assert math.isnan(zeros.activation_std_ratio)
    assert zeros.to_dict()["summary"]["activation_std_ratio"] == "NaN"
    assert math.isnan(ProbeReport.from_dict(zeros.to_dict()).activation_std_ratio)


def test_rejudging_with_other_thresholds(reports):
    xavier = reports["xavier"]
    assert xavier.forward.status == "healthy"  # depth 12: 2^-5.5 = 0.022
    strict = xavier.with_thresholds(Thresholds(vanishing=0.1))
    assert strict.forward.status == "vanishing"
    assert strict.layers is xavier.layers


def test_tables_name_layers_and_verdicts(reports):
    text = str(reports["normal"])
    assert "fc1" in text and "fc12" in text and "exploding" in text
    summary = str(reports)
    for label in ("zeros", "xavier", "he", "normal"):
        assert label in summary
    assert "symmetric" in summary
    with pytest.raises(KeyError, match="scheme='lecun' was not compared"):
        reports["lecun"]
    with pytest.raises(KeyError, match="name='fc99' is not a probed layer"):
        reports["he"].layer("fc99")


def _check_png(path, min_size=(400, 300)):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        pixels = np.asarray(image.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 50  # lines, text and axes, not a blank canvas
    assert (pixels.min(axis=2) < 128).mean() > 0.005  # some dark ink


def test_plots_are_real_images(reports, tmp_path):
    paths = reports.save(tmp_path / "out", depths=4)
    _check_png(paths["depth"])
    _check_png(paths["histograms"])
    single = reports["he"].save(tmp_path / "one", stem="he")
    assert single["json"].name == "he.json"
    _check_png(single["depth"])


def test_compare_leaves_the_given_model_untouched():
    model = mlp(3, 8)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    x = torch.randn(16, 8)
    result = compare(model, x, {"mine": "default", "z": "zeros", "custom": _halve})
    for k, v in model.state_dict().items():
        assert torch.equal(before[k], v)
    assert list(result) == ["mine", "z", "custom"]
    assert result["z"].symmetric_layers and not result["mine"].symmetric_layers
    w = before["fc1.weight"]
    assert result["custom"].layer("fc1").weight_std == pytest.approx(
        (w / 2).std(unbiased=False).item(), rel=1e-5
    )
    with pytest.raises(ValueError, match="appears twice"):
        compare(model, x, ["he", "he"])
    with pytest.raises(TypeError, match="schemes='he' is not valid"):
        compare(model, x, "he")
    with pytest.raises(ValueError, match="scheme='hee' is not valid"):
        compare(model, x, ["hee"])


def _halve(model: nn.Module) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)


def test_schemes_are_applied_with_initlab_init():
    import initlab

    net, reference = cnn(depth=2, width=4), cnn(depth=2, width=4)
    assert apply_scheme(net, "he", seed=3) == []
    initlab.init(reference, "he", seed=3)
    for (name, p), q in zip(net.named_parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q), name
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the symmetry warning is returned, not raised
        notes = apply_scheme(mlp(2, 4), "zeros", seed=0)
    assert notes and "symmetry" in notes[0]
    result = compare(lambda: mlp(2, 4), torch.randn(3, 4), ["zeros"])
    assert result["zeros"].meta["init"] == {"scheme": "zeros", "seed": 0, "warnings": notes}


def test_probe_report_is_available_from_the_top_level():
    import initlab

    report = initlab.probe(nn.Sequential(nn.Linear(4, 4)), torch.randn(3, 4))
    assert isinstance(report, initlab.ProbeReport)
    assert initlab.compare is compare and initlab.probe is probe


@pytest.mark.parametrize("scale", [1e-30, 1e-3, 1e25])
def test_weight_statistics_at_any_scale(scale):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.Identity(), nn.Linear(64, 4))
    with torch.no_grad():
        model[2].weight.mul_(scale)  # layer 0's gradient scales with it: 1e-31 .. 1e24
    x = torch.randn(16, 64)
    report = probe(model, x)
    w = model[2].weight.detach().double()
    assert report.layer("2").weight_std == pytest.approx(w.std(unbiased=False).item(), rel=1e-4)
    # Reference gradient in float64: the same loss (the probe's seeded random projection).
    reference = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 4)).double()
    reference.load_state_dict({k.replace("2.", "1."): v.double()
                               for k, v in model.state_dict().items()})  # fmt: skip
    random_projection(reference(x.double()), seed=0).backward()
    expected = reference[0].weight.grad.norm().item()
    assert report.layer("0").weight_grad_norm == pytest.approx(expected, rel=1e-4)
