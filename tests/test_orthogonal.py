"""Orthogonal and delta-orthogonal schemes: the properties that define them.

* (semi-)orthogonality ``W W^T = I`` (wide and square) or ``W^T W = I`` (tall) to 1e-5 in
  float32, through the tensor bridge :func:`initlab.torch.fill_` and the drop-in
  ``orthogonal_``;
* Haar distribution thanks to the sign correction (Mezzadri 2007), by a KS test that
  rejects QR without it;
* dynamical isometry of a deep linear network (Saxe et al. 2013): every singular value of
  the input-output Jacobian is 1, where a Gaussian init of the same variance spreads them
  over orders of magnitude;
* delta-orthogonal kernels (Xiao et al. 2018): an orthogonal centre tap, zeros elsewhere,
  a convolution stack that preserves the norm of any input.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import initlab
import initlab.torch as itorch
from initlab.rng import Stream
from initlab.schemes import DeltaOrthogonal, Orthogonal, get_scheme, orthogonal_matrix
from initlab.torch import fill_

SHAPES = {"square": (64, 64), "tall": (96, 32), "wide": (32, 96), "conv": (16, 8, 3, 3)}


def _gram_error(w: torch.Tensor, gain: float = 1.0) -> float:
    """max |G - gain^2 I| for the smaller Gram matrix of w flattened to (dim 0, rest)."""
    m = w.reshape(w.shape[0], -1).double()
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    eye = torch.eye(gram.shape[0], dtype=torch.float64)
    return float((gram - gain**2 * eye).abs().max())


@pytest.mark.parametrize("kind", list(SHAPES))
def test_fill_orthogonal_is_orthogonal_in_float32(kind):
    w = fill_(torch.empty(SHAPES[kind], dtype=torch.float32), "orthogonal", seed=3, name=kind)
    assert w.dtype == torch.float32
    assert _gram_error(w) < 1e-5


@pytest.mark.parametrize("kind", ["square", "tall", "wide"])
def test_wide_and_square_have_orthonormal_rows_tall_orthonormal_columns(kind):
    w = fill_(torch.empty(SHAPES[kind]), "orthogonal", seed=0, name="w").double()
    rows, cols = w.shape
    if rows <= cols:
        assert torch.allclose(w @ w.T, torch.eye(rows, dtype=torch.float64), atol=1e-5)
    if rows >= cols:
        assert torch.allclose(w.T @ w, torch.eye(cols, dtype=torch.float64), atol=1e-5)
    if rows != cols:  # the other Gram matrix is a projection, not the identity
        other = w.T @ w if rows < cols else w @ w.T
        assert not torch.allclose(other, torch.eye(other.shape[0], dtype=torch.float64))


@pytest.mark.parametrize("gain", [0.5, 2.0])
@pytest.mark.parametrize("kind", ["square", "tall", "wide"])
def test_gain_scales_the_gram_matrix(kind, gain):
    w = fill_(torch.empty(SHAPES[kind]), f"orthogonal(gain={gain})", seed=1, name="w")
    assert _gram_error(w, gain) < 1e-5 * gain**2


@pytest.mark.parametrize("kind", ["square", "tall", "wide"])
def test_drop_in_orthogonal_is_orthogonal_in_float32(kind):
    generator = torch.Generator().manual_seed(0)
    w = itorch.orthogonal_(torch.empty(SHAPES[kind]), gain=1.0, generator=generator)
    assert _gram_error(w) < 1e-5


def test_orthogonal_values_depend_on_name_and_seed_only():
    a = fill_(torch.empty(8, 8), "orthogonal", seed=0, name="layer.weight")
    b = fill_(torch.empty(8, 8, dtype=torch.float64), "orthogonal", seed=0, name="layer.weight")
    c = fill_(torch.empty(8, 8), "orthogonal", seed=0, name="other.weight")
    assert torch.equal(a, b.float())
    assert not torch.allclose(a, c)


def _unsigned_qr(normals: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(normals.reshape(3, 3))
    return q


def test_sign_correction_makes_q_haar_distributed():
    """For Q Haar on O(3), Q[0, 0] is uniform on [-1, 1] (Archimedes' hat-box theorem).

    KS test at p > 0.001 over 2000 matrices; plain QR (no sign correction) puts the mass of
    Q[0, 0] on one side and fails the same test, so the test has the power to fail.
    """
    draws = [Stream(7, f"q{i}").normal(9) for i in range(2000)]
    corrected = [orthogonal_matrix(3, 3, z)[0, 0] for z in draws]
    unsigned = [_unsigned_qr(z)[0, 0] for z in draws]
    assert stats.kstest(corrected, "uniform", args=(-1, 2)).pvalue > 1e-3
    assert stats.kstest(unsigned, "uniform", args=(-1, 2)).pvalue < 1e-6


def _deep_linear(depth: int, width: int, scheme: str) -> nn.Sequential:
    layers = [nn.Linear(width, width, bias=False) for _ in range(depth)]
    for i, layer in enumerate(layers):
        fill_(layer.weight, scheme, seed=11, name=f"{i}.weight")
    return nn.Sequential(*layers)


def _jacobian_singular_values(model: nn.Module, width: int) -> torch.Tensor:
    x = torch.randn(width, generator=torch.Generator().manual_seed(0))
    jac = torch.autograd.functional.jacobian(model, x)
    return torch.linalg.svdvals(jac.double())


def test_deep_linear_network_is_dynamically_isometric_under_orthogonal_init():
    """Saxe et al. 2013: a product of orthogonal matrices is orthogonal, all singular values 1."""
    sv = _jacobian_singular_values(_deep_linear(32, 48, "orthogonal"), 48)
    assert sv.shape == (48,)
    assert float((sv - 1).abs().max()) < 1e-4


def test_gaussian_init_of_the_same_variance_is_not_isometric():
    """The contrast: LeCun normal (variance 1/n, the same mean squared singular value) spreads
    the Jacobian's singular values over orders of magnitude at depth 32."""
    sv = _jacobian_singular_values(_deep_linear(32, 48, "lecun_normal"), 48)
    assert float(sv.max() / sv.min()) > 1e3


def test_orthogonal_gain_multiplies_every_singular_value():
    depth, gain = 8, 1.1
    sv = _jacobian_singular_values(_deep_linear(depth, 16, f"orthogonal(gain={gain})"), 16)
    assert torch.allclose(sv, torch.full_like(sv, gain**depth), rtol=1e-5)


# ---------------------------------------------------------------------------------------
# Delta-orthogonal
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [(8, 8, 3), (16, 8, 3, 3), (8, 4, 3, 3, 3), (12, 12, 5, 5), (9, 3, 1, 1)],
)
def test_delta_orthogonal_centre_is_orthogonal_and_the_rest_zero(shape):
    w = fill_(torch.empty(shape, dtype=torch.float32), "delta_orthogonal", seed=0, name="c")
    centre = tuple((k - 1) // 2 for k in shape[2:])
    q = w[(slice(None), slice(None), *centre)].double()
    eye = torch.eye(shape[1], dtype=torch.float64)
    assert float((q.T @ q - eye).abs().max()) < 1e-5
    rest = w.clone()
    rest[(slice(None), slice(None), *centre)] = 0
    assert int(torch.count_nonzero(rest)) == 0


def test_delta_orthogonal_even_kernel_uses_jax_centre():
    w = fill_(torch.empty(4, 4, 4, 4), "delta_orthogonal", seed=0, name="even")
    nonzero_taps = {tuple(i) for i in torch.nonzero(w)[:, 2:].tolist()}
    assert nonzero_taps == {(1, 1)}  # (k - 1) // 2 for k = 4


def test_delta_orthogonal_groups_are_orthogonal_blocks():
    groups, out, inp = 2, 8, 3
    w = fill_(torch.empty(out, inp, 3, 3), f"delta_orthogonal(groups={groups})", seed=0, name="g")
    centre = w[:, :, 1, 1].double()
    per = out // groups
    for g in range(groups):
        block = centre[g * per : (g + 1) * per]
        assert torch.allclose(block.T @ block, torch.eye(inp, dtype=torch.float64), atol=1e-6)
    # A single orthogonal (out, in) matrix would not give each group's block this property.
    single = fill_(torch.empty(out, inp, 3, 3), "delta_orthogonal", seed=0, name="g")
    block = single[:per, :, 1, 1].double()
    assert not torch.allclose(block.T @ block, torch.eye(inp, dtype=torch.float64), atol=1e-2)


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_delta_orthogonal_conv_stack_preserves_norm_and_is_isometric(padding_mode):
    """Xiao et al. 2018: a deep CNN under delta-orthogonal init has an isometric Jacobian."""
    channels = [3, 4, 4, 6, 6, 8]
    convs = [
        nn.Conv2d(a, b, 3, padding=1, bias=False, padding_mode=padding_mode)
        for a, b in itertools.pairwise(channels)
    ]
    for i, conv in enumerate(convs):
        fill_(conv.weight, "delta_orthogonal", seed=5, name=f"{i}.weight")
    model = nn.Sequential(*convs)
    x = torch.randn(1, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    jac = torch.autograd.functional.jacobian(model, x).reshape(8 * 25, 3 * 25).double()
    sv = torch.linalg.svdvals(jac)
    assert sv.shape == (75,)
    assert float((sv - 1).abs().max()) < 1e-5
    with torch.no_grad():
        assert math.isclose(float(model(x).norm()), float(x.norm()), rel_tol=1e-5)


def test_he_init_conv_stack_is_not_isometric():
    convs = [nn.Conv2d(4, 4, 3, padding=1, bias=False) for _ in range(5)]
    for i, conv in enumerate(convs):
        fill_(conv.weight, "lecun_normal", seed=5, name=f"{i}.weight")
    x = torch.randn(1, 4, 5, 5, generator=torch.Generator().manual_seed(1))
    jac = torch.autograd.functional.jacobian(nn.Sequential(*convs), x).reshape(100, 100)
    sv = torch.linalg.svdvals(jac.double())
    assert float(sv.max() / sv.min()) > 10


def test_delta_orthogonal_gain_and_names():
    for name in ("delta_orthogonal", "jax.delta_orthogonal", "delta_orthogonal_"):
        assert get_scheme(name) == DeltaOrthogonal()
    assert get_scheme("jax.delta_orthogonal(scale=2.0)") == DeltaOrthogonal(gain=2.0)
    w = fill_(torch.empty(6, 6, 3), "delta_orthogonal(gain=2.0)", seed=0, name="w")
    q = w[:, :, 1].double()
    assert torch.allclose(q.T @ q, 4 * torch.eye(6, dtype=torch.float64), atol=1e-5)
    assert "delta_orthogonal" in get_scheme("delta_orthogonal(gain=2.0)").name


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((4, 8, 3, 3), r"out_channels/groups >= in_channels/groups.*\(4, 8, 3, 3\)"),
        ((4, 4), r"3, 4 or 5-D .*\(4, 4\)"),
        ((4, 4, 3, 3, 3, 3), r"3, 4 or 5-D"),
    ],
)
def test_delta_orthogonal_refuses_shapes_it_cannot_fill(shape, match):
    with pytest.raises(ValueError, match=match):
        fill_(torch.empty(shape), "delta_orthogonal", seed=0, name="w")


def test_delta_orthogonal_refuses_bad_arguments():
    with pytest.raises(ValueError, match=r"groups=3 does not divide"):
        DeltaOrthogonal(groups=3).check_shape((8, 2, 3))
    with pytest.raises(ValueError, match=r"groups=0 is not valid"):
        DeltaOrthogonal(groups=0)
    with pytest.raises(ValueError, match=r"gain='x' is not valid"):
        DeltaOrthogonal(gain="x")


def test_orthogonal_scheme_needs_two_dimensions():
    with pytest.raises(ValueError, match=r"at least 2 dimensions"):
        Orthogonal().check_shape((5,))


def test_initlab_init_uses_delta_orthogonal_by_name():
    """A CNN initialized through initlab.init with delta-orthogonal convolutions (by name, JAX
    spelling too) is an isometry on its convolution stack."""
    convs = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False),
        nn.Conv2d(6, 6, 3, padding=1, bias=False),
        nn.Conv2d(6, 8, 3, padding=1, bias=False),
    )
    model = nn.Sequential(convs, nn.Flatten(), nn.Linear(8 * 16, 2))
    overrides = {"0.0.weight": "delta_orthogonal", "0.[12].weight": "jax.delta_orthogonal"}
    report = initlab.init(model, seed=0, overrides=overrides)
    assert {report[f"0.{i}.weight"].scheme for i in range(3)} == {"delta_orthogonal"}
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = convs(x)
    assert torch.allclose(y.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), rtol=1e-5)
