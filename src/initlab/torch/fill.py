"""Fill a torch tensor from a scheme and an initlab random stream.

The bridge between the framework-free core (schemes draw float64 values from a
:class:`~initlab.rng.Stream`) and torch tensors of any dtype, device or memory layout.
"""

from __future__ import annotations

import numpy as np
import torch

from initlab.fans import Fans
from initlab.rng import Stream
from initlab.schemes import Scheme, get_scheme

__all__ = ["fill_"]


def fill_(
    tensor: torch.Tensor,
    scheme: str | Scheme,
    *,
    seed: int,
    name: str = "",
    fans: Fans | None = None,
) -> torch.Tensor:
    """Fill ``tensor`` in place with ``scheme``'s values from the stream ``(seed, name)``.

    The values depend only on ``(seed, name)``, the shape and the fans, never on the tensor's
    dtype (they are rounded from float64), device or strides. Meta tensors are left as they
    are (they have no storage). Returns the tensor.

    >>> w = fill_(torch.empty(64, 32), "he_normal", seed=0, name="fc.weight")
    >>> bool(torch.equal(w, fill_(torch.empty(64, 32), "he_normal", seed=0, name="fc.weight")))
    True
    """
    resolved = get_scheme(scheme)
    shape = tuple(tensor.shape)
    resolved.check_shape(shape)
    if tensor.is_meta:
        return tensor
    values = resolved.sample(shape, Stream(seed, name), fans)
    source = torch.from_numpy(np.ascontiguousarray(values))
    with torch.no_grad():
        tensor.copy_(source.to(device=tensor.device, dtype=tensor.dtype))
    return tensor
