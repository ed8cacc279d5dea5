"""Small fills checked once per kind: the same bits, the same errors, safe views and threads.

``PreparedFill`` (:mod:`initlab.fastrng.dispatch`) calls the kernel without :func:`fill`'s
per-call checks, and ``memory_view`` (:mod:`initlab.torch.fill`) remembers arrays over tensor
memory by address. Neither may change a value, a moment, an error, the version counter, or
what another thread draws.
"""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

import initlab.torch as init
from initlab.fastrng import dispatch
from initlab.fastrng.dispatch import PARALLEL_MIN, fill, prepare
from initlab.rng import Draw, Moments, Stream
from initlab.torch.fill import ENCODINGS, draw_, fill_, memory_view, numpy_view

KINDS = [
    ("uniform", {"loc": -0.5, "scale": 1.5}),
    ("normal", {"loc": 0.1, "scale": 0.7}),
    ("truncated_normal", {"low": -0.5, "high": 2.0, "clip": (-0.5, 2.0)}),
    ("truncated_normal", {"low": 12.0, "high": 13.0}),  # far tail: the double kernel
]
HOLDERS = {"float32": np.float32, "float64": np.float64, "float16": np.int16, "bfloat16": np.uint16}


def _moments(m: Moments) -> tuple:
    return m.count, m.total, m.squares


@pytest.mark.parametrize(("distribution", "kwargs"), KINDS)
@pytest.mark.parametrize("encoding", sorted(HOLDERS))
@pytest.mark.parametrize("precision", ["single", "double"])
def test_a_prepared_fill_writes_and_sums_what_fill_does(distribution, kwargs, encoding, precision):
    plan = prepare(distribution, encoding=encoding, precision=precision, **kwargs)
    assert plan.holder == np.dtype(HOLDERS[encoding])
    for size, offset in ((1, 0), (7, 3), (1000, 0), (257, 1_000_003)):
        ours, theirs = np.empty(size, plan.holder), np.empty(size, plan.holder)
        m_ours, m_theirs = Moments(), Moments()
        plan(ours, 11, offset, m_ours)
        fill(theirs, distribution, 11, offset=offset, encoding=encoding, precision=precision,
             moments=m_theirs, **kwargs)  # fmt: skip
        assert ours.tobytes() == theirs.tobytes()
        assert _moments(m_ours) == _moments(m_theirs)


def test_other_buffers_go_through_fills_checks():
    plan = prepare("normal", 0.0, 1.0, encoding="float32")
    strided = np.zeros(20, np.float32)[::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        plan(strided, 1)
    read_only = np.zeros(8, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        plan(read_only, 1)
    assert not read_only.any()
    with pytest.raises(ValueError, match="1-D"):
        plan(np.zeros((2, 4), np.float32), 1)
    with pytest.raises(TypeError, match="float64"):
        plan(np.zeros(8, np.float64), 1)
    for key in (-1, 1 << 64, 1.5):
        with pytest.raises(ValueError, match="key="):
            plan(np.zeros(8, np.float32), key)
    with pytest.raises(ValueError, match="offset="):
        plan(np.zeros(8, np.float32), 1, -1)
    big = np.empty(PARALLEL_MIN, np.float32)  # threads share it, through fill
    assert plan(big, 3).tobytes() == fill(np.empty_like(big), "normal", 3).tobytes()
    empty = Moments()
    plan(np.empty(0, np.float32), 3, 0, empty)
    assert empty.count == 0


def test_prepare_refuses_what_fill_refuses():
    with pytest.raises(ValueError, match="encoding"):
        prepare("normal", encoding="int8")
    with pytest.raises(ValueError, match="distribution"):
        prepare("cauchy")
    with pytest.raises(ValueError, match="precision"):
        prepare("normal", precision="half")


def test_threads_each_draw_their_own_keys():
    """The key words are per thread: a shared array would let one thread's key reach
    another's kernel (the kernels run without the GIL)."""
    plan = prepare("uniform", encoding="float32")
    keys = list(range(1, 401))
    expected = {k: fill(np.empty(1000, np.float32), "uniform", k).tobytes() for k in keys}

    def work(part: list[int]) -> bool:
        out = np.empty(1000, np.float32)
        return all(plan(out, k).tobytes() == expected[k] for k in part)

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, [keys[i::4] for i in range(4)]))


def test_memory_view_is_the_tensors_memory_and_a_write():
    t = torch.zeros(3, 4)
    view = memory_view(t)
    assert view.ctypes.data == t.data_ptr() and view.shape == (12,) and t._version == 1
    assert memory_view(t) is view and t._version == 2  # remembered
    half = torch.zeros(5, dtype=torch.bfloat16)
    bits = memory_view(half)
    bits[:] = 0x3F80  # 1.0 in bfloat16
    assert half.tolist() == [1.0] * 5
    p = nn.Parameter(torch.zeros(4))
    memory_view(p)[:] = 2.0
    assert p.grad_fn is None and p.requires_grad and p.tolist() == [2.0] * 4
    for dtype, encoding in ENCODINGS.items():  # the dtype each kind of fill writes directly
        assert memory_view(torch.zeros(3, dtype=dtype)).dtype == prepare("normal",
            encoding=encoding).holder  # fmt: skip
    assert memory_view(torch.zeros(3, dtype=torch.int32)) is None


def test_memory_view_is_none_for_what_is_not_one_block_of_cpu_memory():
    square = torch.zeros(4, 4)
    memory_view(square)  # remembered: same address and size as .t()
    transposed = square.t()
    version = transposed._version
    assert memory_view(transposed) is None
    assert transposed._version == version  # nothing written, nothing bumped
    assert memory_view(torch.zeros(4, device="meta")) is None
    torch.manual_seed(1)
    init.normal_(transposed)  # written through a contiguous copy, in the tensor's own order
    torch.manual_seed(1)
    expected = init.normal_(torch.empty(4, 4))
    assert torch.equal(square.t(), expected)


def test_memory_view_refuses_inference_tensors_on_every_call():
    with torch.inference_mode():
        t = torch.zeros(6)
        memory_view(t)  # allowed in inference mode, as in torch
    with pytest.raises(RuntimeError, match="inference tensor"):
        memory_view(t)  # the address is remembered: still refused


def test_memory_view_of_reused_memory_writes_the_new_tensor():
    """An address freed and reused: the remembered array describes the new tensor's elements."""
    addresses = set()
    for _ in range(20):
        t = torch.zeros(10, 100)
        addresses.add(t.data_ptr())
        init.normal_(t)
        assert t.abs().sum() > 0 and (t == t).all()
        del t
        gc.collect()
    u = torch.zeros(1000)
    torch.manual_seed(3)
    init.uniform_(u)
    torch.manual_seed(3)
    key = int(torch.empty((), dtype=torch.int64).random_())
    expected = Stream.from_key(key).draw(Draw("uniform"), 1000, dtype=np.float32)
    assert np.array_equal(u.numpy(), expected)


def test_a_tensor_given_other_memory_is_written_there():
    t = torch.zeros(1000)
    init.normal_(t)  # its address is remembered
    first = t.clone()
    other = torch.zeros(1000)
    t.set_(other)  # the same tensor object, another storage
    init.normal_(t)
    assert (other != 0).all() and not torch.equal(t, first)
    p = nn.Parameter(torch.zeros(10, 100))
    init.kaiming_uniform_(p)
    p.data = torch.zeros(10, 100, dtype=torch.float64)  # another storage and dtype
    init.kaiming_uniform_(p)
    assert p.dtype == torch.float64 and (p != 0).all()


def test_negative_bit_and_memoryless_tensors_take_numpy_views_errors():
    base = torch.zeros(10, 100)
    init.normal_(base)  # its address is remembered
    negative = torch._neg_view(base)
    with pytest.raises(RuntimeError, match="negative bit"):
        memory_view(negative)
    with pytest.raises(RuntimeError, match="negative bit"):
        numpy_view(negative)
    with pytest.raises(RuntimeError, match="negative bit"):
        init.normal_(negative)
    with pytest.raises(RuntimeError, match="ZeroTensor"):
        memory_view(torch._efficientzerotensor(4))


def test_a_remembered_view_still_bumps_the_version_for_autograd():
    w = nn.Parameter(torch.randn(10, 100))
    init.kaiming_normal_(w)  # remembered now
    y = (w * w).sum()
    before = w._version
    init.kaiming_normal_(w)
    assert w._version > before
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("uniform_", {"a": -0.5, "b": 2.0}),
        ("normal_", {"mean": 0.1, "std": 0.7}),
        ("trunc_normal_", {"std": 0.5}),
        ("xavier_uniform_", {}),
        ("xavier_normal_", {}),
        ("kaiming_uniform_", {"nonlinearity": "relu"}),
        ("kaiming_normal_", {"mode": "fan_out"}),
    ],
)
def test_drop_ins_direct_and_checked_fills_give_the_same_bits(name, kwargs, dtype, monkeypatch):
    """Three fills of one tensor (its view remembered) against the checked path of fill."""

    def three_fills() -> list[torch.Tensor]:
        torch.manual_seed(21)
        w = torch.empty(10, 100, dtype=dtype)
        return [getattr(init, name)(w, **kwargs).clone() for _ in range(3)]

    direct = three_fills()
    monkeypatch.setattr(dispatch, "PARALLEL_MIN", 0)  # every plan call through fill
    checked = three_fills()
    for a, b in zip(direct, checked, strict=True):
        assert torch.equal(a.view(-1).view(torch.uint8), b.view(-1).view(torch.uint8))
    assert not torch.equal(direct[0], direct[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fill_with_moments_direct_and_checked_agree(dtype, monkeypatch):
    def fill_with_moments() -> tuple[torch.Tensor, tuple]:
        m = Moments()
        w = fill_(torch.empty(33, 31, dtype=dtype), "he_normal", seed=4, name="w", moments=m)
        return w, _moments(m)

    direct = fill_with_moments()
    monkeypatch.setattr(dispatch, "PARALLEL_MIN", 0)
    checked = fill_with_moments()
    assert torch.equal(direct[0], checked[0]) and direct[1] == checked[1]
    spec = Draw("normal", 0.0, 0.25)
    threads = draw_(torch.empty(33, 31, dtype=dtype), spec, Stream(4, "w"), threads=1)
    assert torch.equal(threads, draw_(torch.empty(33, 31, dtype=dtype), spec, Stream(4, "w")))
