"""`initlab demo`: tables, JSON and PNGs on disk; the same seed gives the same bits."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli
from initlab.studies import run_study
from initlab.studies.propagation import run_propagation

SMALL = {
    "circles": {"iterations": 300, "replicates": 1, "torch_replicates": 1},
    "depth": {"depths": (4,), "epochs": 2, "seeds": 2, "width": 16},
    "propagation": {"depth": 10, "width": 32, "batch": 8, "seeds": 2},
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = run_cli("demo", "propagation", "--out", str(out), "--seed", "3", "--no-progress")
    return result, out


def test_demo_prints_tables_and_writes_json_and_pngs(demo):
    result, out = demo
    assert result.returncode == 0, result.stderr
    assert "activation std ratio" in result.stdout and "gelu" in result.stdout
    data = json.loads((out / "propagation.json").read_text())
    assert data["study"] == "propagation" and data["config"]["seeds"] == [3]
    assert set(data["results"]) == {
        "relu", "leaky_relu", "prelu", "tanh", "sigmoid", "selu", "gelu"
    }  # fmt: skip
    for activation in data["results"]:
        png = (out / f"propagation_{activation}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    index = json.loads((out / "demo.json").read_text())
    assert index["mode"] == "quick"
    assert index["studies"]["propagation"]["files"][0] == "propagation.json"


def test_demo_json_equals_the_in_process_run_bit_for_bit(demo):
    _, out = demo
    on_disk = (out / "propagation.json").read_text()
    again = run_propagation(quick=True, seed=3).to_dict()
    assert json.loads(on_disk) == json.loads(json.dumps(again))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_same_bits_whatever_the_thread_count(name):
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        first = json.dumps(run_study(name, seed=4, **SMALL[name]).to_dict())
        torch.set_num_threads(2)
        second = json.dumps(run_study(name, seed=4, **SMALL[name]).to_dict())
        assert torch.get_num_threads() == 2  # the study restored the caller's setting
    finally:
        torch.set_num_threads(previous)
    assert first == second
    other = json.dumps(run_study(name, seed=5, **SMALL[name]).to_dict())
    assert other != first


def test_studies_save_every_file(tmp_path):
    for name, options in SMALL.items():
        paths = run_study(name, seed=0, **options).save(tmp_path / name)
        assert paths[0].name == f"{name}.json"
        assert all(p.exists() and p.stat().st_size > 0 for p in paths)
        assert any(p.suffix == ".png" for p in paths)


@pytest.mark.parametrize(
    "args, message",
    [
        (("demo", "circl"), "NAME='circl' is not valid"),
        (("demo", "--seed", "-1"), "--seed='-1' is not valid"),
        (("demo", "--quick", "--full"), "not allowed with argument"),
    ],
)
def test_demo_rejects_bad_arguments(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_demo_reports_an_output_folder_it_cannot_create(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli("demo", "circles", "--out", str(blocker / "sub"), "--no-progress")
    assert result.returncode == 2
    assert result.stderr.startswith("error: --out=") and "cannot be written" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
