"""Run PyTorch's own ``test/nn/test_init.py`` against ``initlab.torch``.

PyTorch's wheel does not ship its tests, and initlab does not copy them: pass the file from
a PyTorch source checkout of the installed version (``test/nn/test_init.py``, e.g. from
https://github.com/pytorch/pytorch/blob/v2.13.0/test/nn/test_init.py)::

    python scripts/torch_test_init.py path/to/test_init.py

Every public function of ``torch.nn.init`` (the 15 and the 11 deprecated names) is replaced
by initlab's, then the file's tests run twice, each in a fresh process:

* ``set_default_rng("torch")``: every test must pass;
* initlab's default generator: every test but ``test_trunc_normal_generator`` must pass.
  That test compares ``trunc_normal_`` with a ``torch.Generator`` against
  ``torch.manual_seed`` + ``generator=None``: the documented difference of the default
  (``generator=None`` draws from initlab's faster generator, keyed by torch's seed, with
  the same distribution but not torch's numbers).

The test file imports ``torch.testing._internal``, which needs ``expecttest``; when it is not
installed, a stand-in (``unittest.TestCase``) is used, as no test of this file uses it.
Exit status 0 when both runs give exactly the expected result.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import types
import unittest
from pathlib import Path

#: The one test expected to fail with initlab's default generator (see the docstring).
DEFAULT_RNG_FAILURES = {"test_trunc_normal_generator"}


def patch_torch_nn_init() -> list[str]:
    """Replace torch.nn.init's public functions by initlab.torch's; returns their names."""
    import torch.nn.init as torch_init

    import initlab.torch as ours

    names = [
        n for n in dir(torch_init)
        if not n.startswith("_") and callable(getattr(torch_init, n)) and hasattr(ours, n)
        and getattr(getattr(torch_init, n), "__module__", "") == "torch.nn.init"
    ]  # fmt: skip
    for name in names:
        setattr(torch_init, name, getattr(ours, name))
    return names


def run_child(path: Path, rng: str) -> dict:
    """Run the tests in this process with torch.nn.init patched; returns the outcome."""
    if importlib.util.find_spec("expecttest") is None:
        stand_in = types.ModuleType("expecttest")
        stand_in.TestCase = unittest.TestCase  # type: ignore[attr-defined]
        sys.modules["expecttest"] = stand_in
    import initlab.torch

    patched = patch_torch_nn_init()
    initlab.torch.set_default_rng(rng)
    spec = importlib.util.spec_from_file_location("test_init", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["test_init"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=1).run(suite)

    def name(test: unittest.TestCase) -> str:
        return test.id().rsplit(".", 1)[-1]

    return {
        "rng": rng,
        "patched": len(patched),
        "run": result.testsRun,
        "failed": sorted(name(t) for t, _ in result.failures + result.errors),
        "skipped": sorted(name(t) for t, _ in result.skipped),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("test_file", type=Path, help="PyTorch's test/nn/test_init.py")
    parser.add_argument("--child", choices=("initlab", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.test_file.is_file():
        print(f"error: test_file={str(args.test_file)!r} is not a file; allowed: the path of "
              "PyTorch's test/nn/test_init.py", file=sys.stderr)  # fmt: skip
        return 2
    if args.child:
        print(json.dumps(run_child(args.test_file, args.child)))
        return 0
    outcomes = []
    for rng in ("torch", "initlab"):
        done = subprocess.run(
            [sys.executable, __file__, str(args.test_file), "--child", rng],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTORCH_TEST_WITH_SLOW": "1"},  # @slowTest ones too
        )
        if done.returncode != 0 or not done.stdout.strip():
            print(done.stderr, file=sys.stderr)
            return 1
        outcomes.append(json.loads(done.stdout.strip().splitlines()[-1]))
    ok = True
    for outcome in outcomes:
        expected = set() if outcome["rng"] == "torch" else DEFAULT_RNG_FAILURES
        good = set(outcome["failed"]) == expected
        ok &= good
        passed = outcome["run"] - len(outcome["failed"]) - len(outcome["skipped"])
        print(
            f"set_default_rng({outcome['rng']!r}): {outcome['run']} tests, {passed} passed, "
            f"{len(outcome['failed'])} failed {outcome['failed']}, "
            f"{len(outcome['skipped'])} skipped {outcome['skipped']} "
            f"({outcome['patched']} torch.nn.init functions patched) -> "
            f"{'as expected' if good else 'NOT as expected'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
