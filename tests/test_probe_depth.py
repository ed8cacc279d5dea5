"""Must-show: signal propagation through a depth-30 ReLU MLP and a depth-20 tanh MLP.

Every claim is checked against numbers computed here independently of the probe's hooks
(a plain forward pass layer by layer), and the verdicts against the issue's thresholds.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from initlab.torch.probe import apply_scheme, compare, probe
from initlab.torch.probe.models import mlp

DEPTH, WIDTH, BATCH = 30, 256, 256


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.randn(BATCH, WIDTH, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def relu30(batch):
    schemes = ["zeros", "random", "xavier", "he", "normal"]
    return compare(lambda: mlp(DEPTH, WIDTH, "relu"), batch, schemes, seed=0)


def _manual_forward(model: nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every child's output by name, computed without hooks."""
    outputs = {}
    with torch.no_grad():
        for name, child in model.named_children():
            x = child(x)
            outputs[name] = x
    return outputs


def test_he_is_healthy_both_ways(relu30):
    he = relu30["he"]
    assert he.forward.status == "healthy" and he.backward.status == "healthy"
    assert he.forward.starts_at is None
    assert 0.5 < he.activation_std_ratio < 4.0  # measured 1.61 (seed 0)
    assert 0.5 < he.gradient_norm_ratio < 2.0  # measured 0.894
    assert 0.9 < he.forward.per_layer < 1.1


@pytest.mark.parametrize("scheme", ["random", "xavier"])
def test_random_and_xavier_vanish(relu30, scheme):
    report = relu30[scheme]
    assert report.forward.status == "vanishing"
    assert report.activation_std_ratio < 1e-3  # random 5.8e-28, xavier 6.9e-5 (seed 0)
    assert report.backward.status == "vanishing"
    assert report.gradient_norm_ratio < 1e-3


def test_xavier_decays_by_sqrt_half_per_layer(relu30):
    # Xavier on square layers has Var(w) = 1/n: ReLU halves the second moment at each layer.
    assert relu30["xavier"].forward.per_layer == pytest.approx(2**-0.5, rel=0.05)
    assert relu30["xavier"].backward.per_layer == pytest.approx(2**-0.5, rel=0.05)
    # N(0, 0.01^2): std factor 0.01 * sqrt(256 / 2) = 0.113 per layer.
    assert relu30["random"].forward.per_layer == pytest.approx(0.01 * (WIDTH / 2) ** 0.5, rel=0.05)


def test_standard_normal_explodes(relu30):
    report = relu30["normal"]
    assert report.forward.status == "exploding" and report.backward.status == "exploding"
    assert report.activation_std_ratio > 1e20  # measured 5.8e30
    assert report.forward.per_layer == pytest.approx((WIDTH / 2) ** 0.5, rel=0.05)


def test_trouble_starts_where_the_ratio_first_leaves_the_band(relu30):
    for scheme in ("random", "xavier", "normal"):
        report = relu30[scheme]
        stds = [s.act_std for s in report.layers]
        ratios = [s / stds[0] for s in stds]
        first = next(i for i, r in enumerate(ratios) if not 1e-2 <= r <= 1e2)
        assert report.forward.starts_at_index == first + 1
        assert report.forward.starts_at == report.layers[first].name
    # x 2^-1/2 per layer crosses 1e-2 after 13 to 14 steps: fc14 at seed 0 (0.0094).
    assert relu30["xavier"].forward.starts_at in ("fc14", "fc15")


def test_statistics_match_a_plain_forward(batch):
    model = mlp(DEPTH, WIDTH, "relu")
    apply_scheme(model, "he", seed=0)
    report = compare(model, batch, ["default"])["default"]
    outputs = _manual_forward(model, batch)
    for i in (1, 15, 29):
        stats = report.layer(f"fc{i}")
        pre, act = outputs[f"fc{i}"].double(), outputs[f"act{i}"].double()
        assert stats.pre_std == pytest.approx(pre.std(unbiased=False).item(), rel=1e-4)
        assert stats.pre_mean == pytest.approx(pre.mean().item(), rel=1e-3, abs=1e-6)
        assert stats.act_std == pytest.approx(act.std(unbiased=False).item(), rel=1e-4)
        dead = (act == 0).all(dim=0).double().mean().item()
        assert stats.dead_fraction == pytest.approx(dead, abs=1e-12)
    last = report.layer(f"fc{DEPTH}")
    assert last.activation is None and last.act_std == last.pre_std


def test_dead_units_are_reported(relu30):
    for scheme in ("random", "xavier", "he", "normal"):
        fractions = [s.dead_fraction for s in relu30[scheme].layers]
        assert all(f is not None and 0.0 <= f <= 1.0 for f in fractions)
    # Zero-bias ReLU nets are positively homogeneous: which units are dead does not depend on
    # the weights' scale, so the four schemes (same seed, same directions) agree exactly.
    reference = [s.dead_fraction for s in relu30["he"].layers]
    for scheme in ("random", "xavier", "normal"):
        assert [s.dead_fraction for s in relu30[scheme].layers] == reference
    assert relu30["he"].max_dead_fraction > 0.1  # deep ReLU nets collapse: 36.7% at seed 0
    assert all(s.dead_fraction == 1.0 for s in relu30["zeros"].layers)


def test_zeros_is_flagged_symmetric(relu30):
    zeros = relu30["zeros"]
    assert zeros.symmetric_layers == [f"fc{i}" for i in range(1, DEPTH + 1)]
    assert zeros.forward.status == "vanishing" and zeros.forward.starts_at == "fc1"
    assert "symmetric" in str(zeros)
    for scheme in ("random", "xavier", "he", "normal"):
        assert relu30[scheme].symmetric_layers == []


def test_constant_weights_with_distinct_biases_are_not_symmetric(batch):
    model = mlp(3, 16)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.1)
            nn.init.constant_(m.bias, 0.0)
    ones = compare(model, batch[:, :16], ["default"])["default"]
    assert ones.symmetric_layers == ["fc1", "fc2", "fc3"]
    with torch.no_grad():
        model.fc1.bias.copy_(torch.linspace(-1, 1, 16))
    broken = compare(model, batch[:, :16], ["default"])["default"]
    assert "fc1" not in broken.symmetric_layers


@pytest.fixture(scope="module")
def tanh20(batch):
    return compare(lambda: mlp(20, WIDTH, "tanh"), batch, ["xavier", "he", "normal"], seed=0)


def test_tanh_saturation_is_reported(tanh20):
    for scheme in ("xavier", "he", "normal"):
        report = tanh20[scheme]
        hidden, last = report.layers[:-1], report.layers[-1]
        assert all(s.activation == "tanh" for s in hidden)
        assert all(s.saturated_fraction is not None for s in hidden)
        assert last.saturated_fraction is None
    xavier, he, normal = (tanh20[s] for s in ("xavier", "he", "normal"))
    # He's larger weights (gain sqrt(2)) push more units to |tanh| >= 0.99 than Xavier's.
    assert he.layers[0].saturated_fraction > xavier.layers[0].saturated_fraction
    assert he.max_saturated_fraction > xavier.max_saturated_fraction
    # N(0, 1) weights saturate almost everything beyond the first layer.
    assert min(s.saturated_fraction for s in normal.layers[1:-1]) > 0.8
    assert xavier.forward.status == "healthy"


def test_saturation_matches_its_definition(batch):
    model = mlp(20, WIDTH, "tanh")
    apply_scheme(model, "he", seed=0)
    report = compare(model, batch, ["default"])["default"]
    outputs = _manual_forward(model, batch)
    for i in (1, 10):
        a = outputs[f"act{i}"]
        expected = (a.abs() >= 0.99).double().mean().item()
        assert report.layer(f"fc{i}").saturated_fraction == pytest.approx(expected, abs=1e-7)


def test_sum_of_squares_couples_the_passes(batch):
    """Why the default loss is a random projection: with L = sum y^2 the gradient fed back
    is 2y, which overflows (N(0,1) weights) or underflows (N(0, 0.01^2)) in float32."""
    exploding = mlp(DEPTH, WIDTH)
    apply_scheme(exploding, "normal", seed=0)
    report = probe(exploding, batch, loss_fn="sum_of_squares")
    assert report.layers[0].grad_norm == float("inf")
    vanishing = mlp(DEPTH, WIDTH)
    apply_scheme(vanishing, "random", seed=0)
    assert probe(vanishing, batch, loss_fn="sum_of_squares").layers[0].grad_norm == 0.0
    # The default measures both: finite, non-zero, and the theory's factor per layer.
    assert probe(vanishing, batch).backward.per_layer == pytest.approx(0.113, rel=0.05)
