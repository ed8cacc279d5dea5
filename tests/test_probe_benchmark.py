"""The overhead benchmark runs (a smoke run on a tiny model; no timing is asserted)."""

from __future__ import annotations

import importlib.util
import sys

from conftest import ROOT


def test_overhead_benchmark_smoke(capsys, monkeypatch):
    path = ROOT / "benchmarks" / "probe_overhead.py"
    spec = importlib.util.spec_from_file_location("probe_overhead", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "probe_overhead", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "probe / plain" in out and "MLP relu" in out
