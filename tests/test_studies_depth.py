"""The depth study: at 30 plain ReLU layers He trains and Xavier stalls, over several seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from initlab.studies._torch_init import apply_scheme, build_model
from initlab.studies.depth import plain_mlp, run_depth

LN10 = math.log(10)


@pytest.fixture(scope="module")
def study():
    """The quick study's settings (20 epochs, 3 seeds) at depths 10 and 30."""
    return run_depth(quick=True, seed=0, depths=(10, 30), schemes=("he", "xavier", "random"))


def _final(study, depth, scheme, key="train_loss"):
    return [run[key][-1] for run in study.data["results"][str(depth)][scheme]["per_seed"]]


def test_every_run_starts_near_chance(study):
    for rows in study.data["results"].values():
        for row in rows.values():
            assert len(row["per_seed"]) == 3
            for run in row["per_seed"]:
                assert len(run["train_loss"]) == 21
                assert 0.5 * LN10 < run["train_loss"][0] < 3 * LN10
                assert run["test_accuracy"][0] < 0.3


def test_he_trains_at_depth_30(study):
    # Depth-30 training oscillates: a seed at 0.3 can spike to 1.3 in its last epoch (with
    # either random generator, issue 7), so each seed's best of its last 3 epochs is judged.
    runs = study.data["results"]["30"]["he"]["per_seed"]
    assert max(min(run["train_loss"][-3:]) for run in runs) < 0.5 * LN10
    assert np.mean([max(run["test_accuracy"][-3:]) for run in runs]) > 0.7


def test_xavier_stalls_at_depth_30(study):
    losses = _final(study, 30, "xavier")
    assert min(losses) > 0.85 * LN10
    assert max(_final(study, 30, "xavier", "test_accuracy")) < 0.3


def test_both_train_at_depth_10_and_he_is_not_slower(study):
    for scheme in ("he", "xavier"):
        assert max(_final(study, 10, scheme)) < 0.2 * LN10
        assert min(_final(study, 10, scheme, "test_accuracy")) > 0.85
    he = study.data["results"]["10"]["he"]["first_epoch_below_threshold"]
    xavier = study.data["results"]["10"]["xavier"]["first_epoch_below_threshold"]
    assert np.mean(he) <= np.mean(xavier)


def test_small_random_never_leaves_chance(study):
    for depth in (10, 30):
        assert min(_final(study, depth, "random")) > 0.95 * LN10


def test_torch_default_leaves_the_modules_as_built():
    built = build_model(lambda: plain_mlp(3, 8), seed=5)
    again = build_model(lambda: plain_mlp(3, 8), seed=5)
    apply_scheme(again, "torch_default", seed=5)
    for a, b in zip(built.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert built[0].bias.abs().sum() > 0  # nn.Linear's own bias init, untouched


def test_build_model_does_not_touch_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(lambda: plain_mlp(3, 8), seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_schemes_are_applied_to_every_linear_layer():
    net = build_model(lambda: plain_mlp(4, 200), seed=0)
    apply_scheme(net, "he_normal", seed=0)
    hidden = net[2].weight.detach()
    assert abs(float(hidden.std()) / math.sqrt(2 / 200) - 1) < 0.02
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert all(float(m.bias.detach().abs().sum()) == 0 for m in linears)


def test_run_depth_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scheme='hee'"):
        run_depth(schemes=("hee",))
    with pytest.raises(ValueError, match=r"depths\[\]=1"):
        run_depth(depths=(1,))
    with pytest.raises(ValueError, match="learning_rate=0"):
        run_depth(learning_rate=0)
