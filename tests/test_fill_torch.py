"""Filling torch tensors in place: fill_/draw_ (seeded, named streams) and the initlab.torch
drop-ins' generator=None fast path (keyed from torch's default generator)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.init as tinit
from scipy import stats
from tests.conftest import SRC

import initlab.torch as init
from initlab.fans import compute_fans
from initlab.rng import Draw, Stream
from initlab.schemes import get_scheme
from initlab.torch.fill import draw_, fill_

KS_P = 1e-4
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]


def _single_values(scheme: str, shape: tuple, seed: int, name: str) -> torch.Tensor:
    spec = get_scheme(scheme).draw_spec(shape, compute_fans(shape))
    n = math.prod(shape)
    return torch.from_numpy(Stream(seed, name).draw(spec, n, dtype=np.float32)).view(shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scheme", ["he_normal", "he_uniform", "HeNormal", "trunc_normal"])
def test_fill_writes_in_place_the_float32_values_rounded(dtype, scheme):
    shape = (96, 40)
    w = torch.full(shape, float("nan"), dtype=dtype)
    pointer = w.data_ptr()
    out = fill_(w, scheme, seed=3, name="layer.weight")
    assert out is w and w.data_ptr() == pointer
    expected = _single_values(scheme, shape, 3, "layer.weight")
    assert torch.equal(w, expected.to(dtype))


def test_double_precision_on_request():
    w = fill_(torch.empty(50, 20, dtype=torch.float64), "he_normal", seed=1, name="w",
              precision="double")  # fmt: skip
    spec = get_scheme("he_normal").draw_spec((50, 20))
    expected = Stream(1, "w").draw(spec, 1000, precision="double")
    assert np.array_equal(w.numpy().ravel(), expected)
    assert not torch.equal(w, w.float().double())  # 53-bit values


def test_fill_does_not_allocate_a_copy_of_the_tensor():
    """Peak resident memory while filling a 128 MB tensor stays within a few MB of it."""
    code = (
        "import resource, torch\n"
        "from initlab.torch.fill import fill_\n"
        "fill_(torch.empty(1000, 64), 'he_normal', seed=0)  # load kernels and pools first\n"
        "fill_(torch.empty(1000, 64, dtype=torch.bfloat16), 'he_normal', seed=0)\n"
        "w = torch.zeros(8192, 4096)\n"
        "b = torch.zeros(8192, 4096, dtype=torch.bfloat16)\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "fill_(w, 'he_normal', seed=0, name='w')\n"
        "fill_(b, 'trunc_normal(std=0.02)', seed=0, name='b')\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=600, check=True)  # fmt: skip
    grown_kib = int(result.stdout.split()[-1])
    assert grown_kib < 8 * 1024, f"peak RSS grew by {grown_kib} KiB while filling 192 MB"


def test_non_contiguous_requires_grad_meta_and_empty_tensors():
    dense = fill_(torch.empty(32, 64), "he_uniform", seed=0, name="w")
    strided = torch.empty(64, 32).t()  # (32, 64), not contiguous
    assert not strided.is_contiguous()
    fill_(strided, "he_uniform", seed=0, name="w")
    assert torch.equal(strided, dense)
    p = torch.nn.Parameter(torch.empty(32, 64))
    fill_(p, "he_uniform", seed=0, name="w")
    assert torch.equal(p.detach(), dense) and p.requires_grad and p.grad_fn is None
    meta = torch.empty(3, 4, device="meta")
    assert fill_(meta, "he_normal", seed=0) is meta and meta.is_meta
    empty = torch.empty(0, 4)
    assert fill_(empty, "normal", seed=0) is empty


def test_other_schemes_and_dtypes_still_work():
    q = fill_(torch.empty(8, 8, dtype=torch.float64), "orthogonal", seed=0)
    assert torch.allclose(q @ q.T, torch.eye(8, dtype=torch.float64), atol=1e-12)
    z = fill_(torch.ones(3, 3, dtype=torch.bfloat16), "zeros", seed=0)
    assert not z.any()
    c = fill_(torch.empty(5), "constant(value=0.25)", seed=0)
    assert torch.equal(c, torch.full((5,), 0.25))


def test_draw_into_row_slices_equals_the_whole_tensor():
    """Sharded init: each shard draws its own element range and gets the whole's values."""
    rows, cols = 100, 37
    spec = Draw("normal", scale=0.02)
    whole = draw_(torch.empty(rows, cols), spec, Stream(0, "emb"))
    sharded = torch.empty(rows, cols)
    for start, stop in [(0, 13), (13, 50), (50, 51), (51, 100)]:
        draw_(sharded[start:stop], spec, Stream(0, "emb"), offset=start * cols)
    assert torch.equal(whole, sharded)


def test_draw_rejects_integer_tensors():
    with pytest.raises(TypeError, match=r"tensor\.dtype=torch\.int64"):
        draw_(torch.empty(3, dtype=torch.int64), Draw("normal"), Stream(0))


# ---- initlab.torch drop-ins: where generator=None draws come from ------------------------


def test_default_is_fast_and_reproducible_with_manual_seed():
    assert init.get_default_rng() == "initlab"
    torch.manual_seed(0)
    a = init.kaiming_normal_(torch.empty(64, 64))
    torch.manual_seed(0)
    b = init.kaiming_normal_(torch.empty(64, 64))
    assert torch.equal(a, b)
    torch.manual_seed(0)
    assert not torch.equal(a, tinit.kaiming_normal_(torch.empty(64, 64)))  # not torch's numbers


def test_fast_path_key_is_one_draw_of_the_default_generator():
    torch.manual_seed(5)
    w = init.normal_(torch.empty(300, dtype=torch.bfloat16), std=0.5)
    after = torch.rand(3)
    torch.manual_seed(5)
    key = int(torch.empty((), dtype=torch.int64).random_())
    assert torch.equal(after, torch.rand(3))  # consumed exactly one int64 draw
    expected = Stream.from_key(key).draw(Draw("normal", 0.0, 0.5), 300, dtype=np.float32)
    assert torch.equal(w, torch.from_numpy(expected).to(torch.bfloat16))


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("uniform_", {"a": -0.5, "b": 2.0}),
        ("normal_", {"mean": 0.1, "std": 0.7}),
        ("xavier_uniform_", {}),
        ("xavier_normal_", {}),
        ("kaiming_uniform_", {"nonlinearity": "relu"}),
        ("kaiming_normal_", {"mode": "fan_out"}),
    ],
)
def test_a_passed_generator_or_torch_mode_is_bitwise_torch(name, kwargs):
    for dtype in (torch.float32, torch.bfloat16):
        ours = getattr(init, name)(
            torch.empty(30, 20, dtype=dtype), generator=torch.Generator().manual_seed(3), **kwargs
        )
        theirs = getattr(tinit, name)(
            torch.empty(30, 20, dtype=dtype), generator=torch.Generator().manual_seed(3), **kwargs
        )
        assert torch.equal(ours, theirs)
    previous = init.set_default_rng("torch")
    try:
        torch.manual_seed(1)
        ours = getattr(init, name)(torch.empty(30, 20), **kwargs)
        torch.manual_seed(1)
        assert torch.equal(ours, getattr(tinit, name)(torch.empty(30, 20), **kwargs))
    finally:
        init.set_default_rng(previous)


def test_environment_variable_chooses_torch_mode():
    code = (
        "import torch, initlab.torch as init\n"
        "torch.manual_seed(0); a = init.kaiming_uniform_(torch.empty(9, 9))\n"
        "torch.manual_seed(0); b = torch.nn.init.kaiming_uniform_(torch.empty(9, 9))\n"
        "print(init.get_default_rng(), bool(torch.equal(a, b)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "INITLAB_TORCH_RNG": "torch"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=600, check=True)  # fmt: skip
    assert result.stdout.split() == ["torch", "True"]
    with pytest.raises(ValueError, match="kind='numpy'"):
        init.set_default_rng("numpy")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_drop_ins_have_torch_distributions(seed):
    torch.manual_seed(seed)
    shape = (500, 400)
    fan_in, fan_out = 400, 500
    cases = [
        (init.uniform_(torch.empty(shape), -0.5, 2.0), stats.uniform(-0.5, 2.5)),
        (init.normal_(torch.empty(shape), 0.1, 0.7), stats.norm(0.1, 0.7)),
        (init.xavier_normal_(torch.empty(shape)), stats.norm(0, math.sqrt(2 / (fan_in + fan_out)))),
        (init.kaiming_normal_(torch.empty(shape), nonlinearity="relu"),
         stats.norm(0, math.sqrt(2 / fan_in))),
        (init.kaiming_uniform_(torch.empty(shape), a=math.sqrt(5)),
         stats.uniform(-1 / math.sqrt(fan_in), 2 / math.sqrt(fan_in))),
        (init.trunc_normal_(torch.empty(shape), 0.2, 1.5, -1.0, 3.0),
         stats.truncnorm((-1.0 - 0.2) / 1.5, (3.0 - 0.2) / 1.5, loc=0.2, scale=1.5)),
    ]  # fmt: skip
    for values, dist in cases:
        v = values.double().numpy().ravel()
        assert stats.kstest(v, dist.cdf).pvalue > KS_P, dist.dist.name


def test_trunc_normal_bounds_and_far_interval_fallback():
    w = init.trunc_normal_(torch.empty(100_000), mean=0.0, std=1.0, a=-0.5, b=0.5)
    assert w.min() >= -0.5 and w.max() <= 0.5
    with pytest.warns(UserWarning, match="mean is more than 2 std"):
        far = init.trunc_normal_(torch.empty(100), mean=0.0, std=1.0, a=50.0, b=60.0)
    assert far.min() >= 50.0 and far.max() <= 60.0


def test_fast_path_respects_views_grad_and_meta():
    base = torch.zeros(10, 10)
    init.normal_(base[:, 3])  # a non-contiguous column view: only it changes
    assert (base[:, 3] != 0).all() and (base[:, :3] == 0).all() and (base[:, 4:] == 0).all()
    p = torch.nn.Parameter(torch.empty(20, 10))
    init.kaiming_uniform_(p)
    assert p.grad_fn is None and p.requires_grad
    meta = torch.empty(4, 4, device="meta")
    assert init.xavier_uniform_(meta) is meta
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_normal_(torch.empty(0, 3))
