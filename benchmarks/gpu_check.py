"""One script for a GPU machine: the torch backend's bit identity on CUDA, then its speed.

    python3 benchmarks/gpu_check.py            # from the repository root; ~1-3 minutes

1. Environment: python, torch, CUDA device, and whether numba, scipy, rich, pytest import.
2. Bit identity: ``draw_(..., backend="torch")`` on the GPU against the CPU reference (the
   numba kernels if numba imports, else the torch backend on the CPU) for uniform, normal and
   four truncated normals, in float32, bfloat16 and float16, at an odd offset and far into
   the stream, with the Philox rounds compiled (the default off the CPU) and eager
   (``INITLAB_TORCH_COMPILE=0``); ``fill_`` of three schemes with ``backend="auto"`` on CUDA
   against the CPU; and the moments the GPU fill returns against the CPU's.
3. ``tests/test_philox_torch.py`` under pytest (its CUDA tests included), if pytest imports.
4. ``benchmarks/device.py``: the speed table against torch's generator.

Each part runs on its own: a failure is printed with its traceback and the next part runs.
Everything printed also goes to ``$OUT/gpu_check.txt`` when ``OUT`` is set (and the device
figures to ``$OUT/device.json``). Exit status 0 only if every part passed.
"""

from __future__ import annotations

import importlib
import io
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
OUT = os.environ.get("OUT")
_LOG = io.StringIO()


def say(*parts: object) -> None:
    text = " ".join(str(p) for p in parts)
    print(text, flush=True)
    _LOG.write(text + "\n")


def part(title: str, results: dict[str, bool]):
    def wrap(fn):
        say(f"\n=== {title} ===")
        start = time.perf_counter()
        try:
            ok = fn()
        except Exception:
            say(traceback.format_exc())
            ok = False
        say(f"--- {title}: {'PASS' if ok else 'FAIL'} ({time.perf_counter() - start:.1f} s)")
        results[title] = bool(ok)
        return fn

    return wrap


def _importable(name: str) -> str:
    try:
        module = importlib.import_module(name)
    except Exception as error:
        return f"missing ({type(error).__name__})"
    return getattr(module, "__version__", "yes")


def environment() -> bool:
    import torch

    say("python", platform.python_version(), "| torch", torch.__version__, "| cuda",
        torch.version.cuda, "| available", torch.cuda.is_available())  # fmt: skip
    if torch.cuda.is_available():
        say("device:", torch.cuda.get_device_name(0))
    for name in ("numpy", "scipy", "numba", "rich", "pytest", "triton"):
        say(f"  {name}: {_importable(name)}")
    say("cpus:", os.cpu_count(), "| load average:", os.getloadavg())
    return True


def bit_identity() -> bool:
    import torch

    from initlab.rng import Draw, Moments, Stream
    from initlab.torch import philox
    from initlab.torch.fill import draw_, fill_

    has_numba = not _importable("numba").startswith("missing")
    reference_backend = "numba" if has_numba else "torch"
    say(f"reference: backend={reference_backend!r} on the CPU")
    draws = [
        Draw("uniform", loc=-0.3, scale=0.6),
        Draw("normal", loc=0.01, scale=0.02),
        Draw("truncated_normal", scale=0.02, low=-2.0, high=2.0, clip=(-0.04, 0.04)),
        Draw("truncated_normal", low=0.5, high=4.0),
        Draw("truncated_normal", low=-math.inf, high=-2.5),
        Draw("truncated_normal", low=3.0, high=6.0),
    ]
    ints = {4: torch.int32, 2: torch.int16}
    all_ok = True
    for mode in ("1", "0"):
        os.environ["INITLAB_TORCH_COMPILE"] = mode
        philox._COMPILED.clear()
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            for draw in draws:
                for n, offset in ((1 << 22, 12_345), (1 << 16, 2**40 + 7)):
                    s = Stream(11, "gpu.check")
                    gpu = draw_(torch.empty(n, dtype=dtype, device="cuda"), draw, s,
                                offset=offset, backend="torch")  # fmt: skip
                    cpu = draw_(torch.empty(n, dtype=dtype), draw, s, offset=offset,
                                backend=reference_backend)  # fmt: skip
                    a, b = gpu.cpu().view(ints[dtype.itemsize]), cpu.view(ints[dtype.itemsize])
                    bad = int((a != b).sum())
                    ok = bad == 0
                    all_ok &= ok
                    label = f"{draw.distribution}[{draw.low},{draw.high}]"
                    verdict = "same bits" if ok else f"{bad} DIFFER"
                    say(f"  compile={mode} {dtype!s:15} {label:34} n={n:>8} "
                        f"offset={offset:>14}: {verdict}")  # fmt: skip
    os.environ.pop("INITLAB_TORCH_COMPILE", None)
    philox._COMPILED.clear()
    for scheme in ("he_normal", "he_uniform", "trunc_normal(std=0.02)"):
        for dtype in (torch.float32, torch.bfloat16):
            gpu = fill_(torch.empty(1024, 768, dtype=dtype, device="cuda"), scheme, seed=1,
                        name="w")  # fmt: skip
            cpu = fill_(torch.empty(1024, 768, dtype=dtype), scheme, seed=1, name="w",
                        backend=reference_backend)  # fmt: skip
            ok = torch.equal(gpu.cpu(), cpu)
            all_ok &= ok
            say(f"  fill_ auto on cuda {scheme:24} {dtype!s:15}: "
                f"{'same bits' if ok else 'DIFFER'}")  # fmt: skip
    mg, mc = Moments(), Moments()
    draw_(torch.empty(3_000_001, device="cuda"), draws[1], Stream(5), backend="torch",
          moments=mg)  # fmt: skip
    draw_(torch.empty(3_000_001), draws[1], Stream(5), backend=reference_backend, moments=mc)
    ok = mg.count == mc.count and math.isclose(mg.std, mc.std, rel_tol=1e-6)
    all_ok &= ok
    say(f"  moments cuda std {mg.std!r} mean {mg.mean!r} / cpu std {mc.std!r} mean {mc.mean!r}")
    return all_ok


def _run(command: list[str], timeout: float) -> bool:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired as error:
        say((error.stdout or b"")[-6000:] if isinstance(error.stdout, str) else "")
        say(f"TIMEOUT after {timeout} s: {' '.join(command)}")
        return False
    say(done.stdout[-12000:])
    if done.stderr.strip():
        say("stderr:", done.stderr[-4000:])
    return done.returncode == 0


def main() -> int:
    results: dict[str, bool] = {}
    part("environment", results)(environment)
    import torch

    if torch.cuda.is_available():
        part("bit identity on CUDA", results)(bit_identity)
    else:
        say("\nno CUDA device: the bit-identity part is skipped (FAIL in the summary)")
        results["bit identity on CUDA"] = False
    if not _importable("pytest").startswith("missing"):
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        part("pytest tests/test_philox_torch.py", results)(
            lambda: _run([*pytest, "tests/test_philox_torch.py"], 150)
        )
    if OUT:  # device.py writes its figures there before the summary does
        Path(OUT).mkdir(parents=True, exist_ok=True)
    device_json = [f"--json={Path(OUT) / 'device.json'}"] if OUT else []
    part("benchmarks/device.py", results)(
        lambda: _run([sys.executable, "benchmarks/device.py", *device_json], 180)
    )
    say("\n=== summary ===")
    for title, ok in results.items():
        say(f"  {title}: {'PASS' if ok else 'FAIL'}")
    if OUT:
        Path(OUT).mkdir(parents=True, exist_ok=True)
        (Path(OUT) / "gpu_check.txt").write_text(_LOG.getvalue())
    return 0 if results and all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
