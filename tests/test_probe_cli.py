"""``initlab probe``: table on stdout, a valid non-trivial PNG and JSON that round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_cli
from initlab.torch.probe import ProbeComparison


def _assert_real_png(path):
    with Image.open(path) as image:
        image.verify()  # a valid PNG, not truncated
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"))
    assert width >= 800 and height >= 300
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # not all one colour
    assert (pixels.min(axis=2) < 128).mean() > 0.005  # dark ink: lines, text, axes


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe")
    result = run_cli(
        "probe", "--model", "mlp", "--depth", "12", "--width", "64", "--activation", "relu",
        "--schemes", "zeros,random,xavier,he", "--batch-size", "64", "--out", str(out),
    )  # fmt: skip
    return result, out


def test_cli_prints_the_table_and_verdicts(mlp_run):
    result, _ = mlp_run
    assert result.returncode == 0, result.stderr
    for text in ("fc1", "fc12", "zeros", "random", "xavier", "he", "vanishing", "healthy",
                 "symmetric"):  # fmt: skip
        assert text in result.stdout


def test_cli_writes_real_pngs(mlp_run):
    _, out = mlp_run
    _assert_real_png(out / "probe_depth.png")
    _assert_real_png(out / "probe_histograms.png")


def test_cli_json_round_trips(mlp_run):
    _, out = mlp_run
    data = json.loads((out / "probe.json").read_text())
    comparison = ProbeComparison.from_dict(data)
    assert list(comparison) == ["zeros", "random", "xavier", "he"]
    assert comparison.to_dict() == data
    assert comparison["random"].forward.status == "vanishing"
    assert comparison["he"].forward.status == "healthy"
    assert len(comparison["zeros"].symmetric_layers) == 12


def test_cli_user_factory_with_input_shape(tmp_path):
    (tmp_path / "my_models.py").write_text(
        "import torch.nn as nn\n\n"
        "def small():\n"
        "    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.Tanh(), nn.Flatten(),\n"
        "                         nn.Linear(4 * 6 * 6, 3))\n"
    )
    out = tmp_path / "out"
    result = run_cli(
        "probe", "--model", "my_models:small", "--input-shape", "2,8,8", "--schemes",
        "xavier,he_uniform(mode=fan_out)", "--batch-size", "8", "--out", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    comparison = ProbeComparison.from_json(out / "probe.json")
    assert list(comparison) == ["xavier", "he_uniform(mode=fan_out)"]
    assert comparison["xavier"].layer("0").activation == "tanh"
    assert comparison["xavier"].layer("0").saturated_fraction is not None


def test_cli_errors_name_the_problem(tmp_path):
    result = run_cli("probe", "--model", "mlpp", "--out", str(tmp_path), cwd=ROOT)
    assert result.returncode == 2
    assert "--model='mlpp' is not valid" in result.stderr and "mlp, cnn" in result.stderr
    result = run_cli("probe", "--model", "os:getcwd", "--out", str(tmp_path))
    assert result.returncode == 2 and "--input-shape is required" in result.stderr
    result = run_cli("probe", "--schemes", "zeros,hee", "--depth", "2", "--width", "4",
                     "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 2 and "Did you mean 'he'" in result.stderr
