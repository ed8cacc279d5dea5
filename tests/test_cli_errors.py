"""Every bad command-line argument: one line ``error: ...`` on stderr, status 2, no
traceback, nothing written, before any work."""

from __future__ import annotations

import pytest

from conftest import run_cli
from initlab.cli import main


def _run(argv, capsys):
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


PROBE_SMALL = ["probe", "--depth", "2", "--width", "4", "--batch-size", "4"]

BAD_PROBE = [
    (["--depth", "0"], "--depth=0"),
    (["--depth", "x"], "--depth: invalid int value: 'x'"),
    (["--width", "-1"], "--width=-1"),
    (["--batch-size", "0"], "--batch-size=0"),
    (["--depths", "0"], "--depths=0"),
    (["--seed", "-1"], "--seed=-1"),
    (["--vanishing", "2"], "--vanishing=2.0"),
    (["--exploding", "0.5"], "--exploding=0.5"),
    (["--saturation", "0"], "--saturation=0.0"),
    (["--activation", "foo"], "--activation='foo'"),
    (["--schemes", "he,hee"], "Did you mean 'he'"),
    (["--schemes", "normal(0.02)"], "unnamed"),
    (["--schemes", ","], "--schemes is empty"),
    (["--model", "mlpp"], "--model='mlpp' is not valid"),
    (["--model", "os:getcwd"], "--input-shape is required"),
    (["--model", "os:getcwd", "--input-shape", "3"], "not a torch.nn.Module"),
    (["--model", "no_such_module_x:f", "--input-shape", "3"], "cannot import"),
    (["--model", "os:no_such_function", "--input-shape", "3"], "has no attribute"),
    (["--input-shape", "5"], "--input-shape=(5,) is not valid for --model='mlp'"),
    (["--input-shape", "20,x"], "--input-shape='20,x' is not valid"),
    (["--input-shape", "3,,2"], "--input-shape='3,,2' is not valid"),
    (["--input-shape", "0,3"], "positive sizes"),
    (["--mode", "foo"], "--mode: invalid choice"),
    (["--loss", "foo"], "--loss: invalid choice"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_PROBE)
def test_probe_bad_argument(extra, message, capsys, tmp_path):
    out = tmp_path / "out"
    status, stdout, stderr = _run([*PROBE_SMALL, "--out", str(out), *extra], capsys)
    assert status == 2
    assert message in stderr, stderr
    assert "error: " in stderr and "Traceback" not in stderr
    assert stdout == ""
    assert not out.exists()  # checked before any work: nothing written


def test_probe_out_is_an_existing_file(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    status, stdout, stderr = _run([*PROBE_SMALL, "--out", str(blocker)], capsys)
    assert status == 2 and stderr.startswith(f"error: --out={str(blocker)!r} is a file")
    assert stdout == "" and blocker.read_text() == "keep"


@pytest.mark.parametrize("where", ["/proc/initlab-out", "file/sub"])
def test_probe_out_cannot_be_written(where, capsys, tmp_path):
    (tmp_path / "file").write_text("")
    path = where if where.startswith("/") else str(tmp_path / where)
    status, stdout, stderr = _run([*PROBE_SMALL, "--out", path], capsys)
    assert status == 2 and stderr.startswith("error: --out=") and "cannot be written" in stderr
    assert stdout == ""


def test_probe_factory_that_raises_is_a_usage_error(tmp_path):
    (tmp_path / "broken_models.py").write_text(
        "def broken():\n    raise RuntimeError('no weights here')\n"
    )
    result = run_cli(
        "probe", "--model", "broken_models:broken", "--input-shape", "3",
        "--out", str(tmp_path / "out"), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "RuntimeError: no weights here" in result.stderr
    assert result.stderr.startswith("error: --model='broken_models:broken'")
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_probe_wrong_input_shape_for_a_factory(tmp_path, capsys):
    (tmp_path / "shape_models.py").write_text(
        "import torch.nn as nn\n\ndef small():\n    return nn.Linear(6, 2)\n"
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        status, _, stderr = _run(
            ["probe", "--model", "shape_models:small", "--input-shape", "5",
             "--out", str(tmp_path / "out")],
            capsys,
        )  # fmt: skip
    finally:
        sys.path.remove(str(tmp_path))
    assert status == 2 and "--input-shape=5 failed" in stderr and "Traceback" not in stderr


BAD_DEMO = [
    (["demo", "circl"], "NAME='circl' is not valid"),
    (["demo", "--seed", "-1"], "--seed='-1' is not valid"),
    (["demo", "--seed", "x"], "--seed='x' is not valid"),
    (["demo", "--quick", "--full"], "not allowed with argument"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_DEMO)
def test_demo_bad_argument(argv, message, capsys):
    status, stdout, stderr = _run(argv, capsys)
    assert status == 2 and message in stderr and "error: " in stderr and stdout == ""


def test_demo_out_is_checked_first_and_reported_on_stderr(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, stdout, stderr = _run(["demo", "circles", "--out", str(blocker)], capsys)
    assert status == 2 and stderr.startswith("error: --out=") and stdout == ""


def test_unknown_command_and_scheme_options(capsys):
    status, _, stderr = _run(["nosuch"], capsys)
    assert status == 2 and "error: " in stderr
    status, _, stderr = _run(["schemes", "--bad"], capsys)
    assert status == 2 and "unrecognized arguments: --bad" in stderr


def test_schemes_piped_shows_every_value_whole(capsys):
    from initlab.cli.schemes import scheme_rows

    assert main(["schemes"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    for row in scheme_rows():
        assert row["resolves_to"] in out and row["formula"] in out
        assert ", ".join(row["names"]) in out


def test_probe_json_and_wide_modes_for_machines(capsys, tmp_path):
    import json

    argv = [*PROBE_SMALL, "--schemes", "xavier,he", "--out", str(tmp_path / "o")]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert list(data["reports"]) == ["xavier", "he"] and "wrote" in captured.err
    assert main([*argv, "--wide"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and "act xavier" in out and "grad he" in out
