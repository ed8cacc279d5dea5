r"""The ``"auto"`` rule and what every kind of parameter gets.

Every weight gets ``std = gain * sqrt(1 / n)``, ``n`` the fan that ``mode`` names (fan_in by
default) or, before tanh and sigmoid, ``(fan_in + fan_out) / 2``:

====================================================  ========================  ==================
what the layer's output reaches first                 scheme                    gain
====================================================  ========================  ==================
ReLU, Leaky ReLU(a), PReLU(a), RReLU, ReLU6           He (``mode``)             sqrt(2 / (1 + a^2))
tanh, sigmoid                                         Xavier (fan_avg)          5/3, 1 (torch's)
SELU                                                  LeCun (``mode``)          1
GELU, SiLU, Mish, ELU, Softplus, ..., any             He form (``mode``)        1 / sqrt(E[f(z)^2])
elementwise function
nothing: the output, a residual add, attention        LeCun form (``mode``)     1
logits, a product of signals, the next layer
====================================================  ========================  ==================

A weight whose output goes through a normalization first (conv then BatchNorm) takes its
row with ``mode="fan_out"`` unless ``mode`` is given: the norm fixes the forward scale, so
the weight is sized for the backward pass (:func:`initlab.torch.model.known.normalized_next`).

Parts that are not a layer's weight:

=========================================  ==============================================
parameter                                  gets
=========================================  ==============================================
MultiheadAttention in_proj                 three matrices q, k, v, each by the rule with its
                                           own (E, E) fans; nothing follows them: gain 1
RNN / LSTM / GRU input weights             per gate, by the rule for the gate's nonlinearity
                                           (LSTM i, f, o and GRU r, z: sigmoid; g, n: tanh)
RNN / LSTM / GRU recurrent weights         per gate, orthogonal (gain 1), as Keras does
Embedding                                  std 1/sqrt(d) (d its width); padding row zero
norm weight / bias                         1 / 0
PReLU slope                                its ``init`` value
biases                                     ``bias=``: zeros by default
=========================================  ==============================================

A model-wide scheme (``"he"``, ``"xavier_uniform"``, ``"zeros"``, ...) replaces the rule for
every weight (each MultiheadAttention and recurrent gate block with its own fans); norms,
PReLU slopes and biases are as above.

>>> from initlab.torch.model.activations import make_activation
>>> choice = weight_choice(make_activation("leaky_relu", 0.2), "fan_in", "normal")
>>> choice.rule, round(choice.gain, 4)
('he', 1.3868)
>>> weight_choice(None, "fan_in", "normal").rule
'linear'
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from initlab.fans import Fans
from initlab.schemes import Constant, Normal, Orthogonal, Scheme, Uniform, VarianceScaling
from initlab.torch.model.activations import Activation

__all__ = ["AUTO_RULES", "Choice", "bias_scheme", "effective_gain", "weight_choice"]

#: The "auto" table as data: (what follows, scheme, gain), for docs and reports.
AUTO_RULES: tuple[tuple[str, str, str], ...] = (
    ("ReLU, Leaky ReLU(a), PReLU(a), RReLU, ReLU6", "He (mode)", "sqrt(2 / (1 + a^2))"),
    ("tanh, sigmoid", "Xavier (fan_avg)", "5/3, 1"),
    ("SELU", "LeCun (mode)", "1"),
    ("GELU, SiLU, Mish, ELU, ..., any elementwise function", "He form (mode)",
     "1 / sqrt(E[f(z)^2])"),
    ("no nonlinearity: output, residual add, attention logits, next layer", "LeCun form (mode)",
     "1"),
)  # fmt: skip


@dataclass(frozen=True)
class Choice:
    """A scheme for one block and why: ``rule`` names the row of the table that chose it."""

    scheme: Scheme
    rule: str
    gain: float | None


def weight_choice(activation: Activation | None, mode: str, distribution: str) -> Choice:
    """The ``"auto"`` scheme for a weight whose output reaches ``activation`` (None: no
    nonlinearity)."""
    if activation is None:
        return Choice(VarianceScaling(1.0, mode, distribution, 1.0), "linear", 1.0)
    if activation.family == "relu":
        return Choice(VarianceScaling(1.0, mode, distribution, activation.gain), "he",
                      activation.gain)  # fmt: skip
    if activation.family == "xavier":
        return Choice(VarianceScaling(1.0, "fan_avg", distribution, activation.gain), "xavier",
                      activation.gain)  # fmt: skip
    if activation.family == "selu":
        return Choice(VarianceScaling(1.0, mode, distribution, 1.0), "lecun", 1.0)
    return Choice(VarianceScaling(1.0, mode, distribution, activation.gain), "numeric",
                  activation.gain)  # fmt: skip


def effective_gain(scheme: Scheme) -> float | None:
    """``gain * sqrt(scale)`` of a variance-scaling scheme (``std = that / sqrt(n)``).

    >>> round(effective_gain(VarianceScaling(2.0, "fan_in", "normal")), 6)
    1.414214
    """
    if isinstance(scheme, VarianceScaling):
        return scheme.gain * math.sqrt(scheme.scale)
    if isinstance(scheme, Orthogonal):
        return scheme.gain
    return None


def with_mode(scheme: Scheme, mode: str | None, distribution: str | None) -> Scheme:
    """A model-wide variance-scaling scheme with the caller's ``mode`` / ``distribution``."""
    if not isinstance(scheme, VarianceScaling):
        return scheme
    changes = {}
    if mode is not None:
        changes["mode"] = mode
    if distribution is not None:
        changes["distribution"] = distribution
    return dataclasses.replace(scheme, **changes) if changes else scheme


ZEROS = Constant(0.0, "zeros")
ONES = Constant(1.0, "ones")
EMBEDDING = Normal(0.0, 1.0)  # torch's default; "auto" uses known.embedding_scheme
RECURRENT = Orthogonal(1.0)


def bias_scheme(policy: str | Scheme, fans: Fans | None) -> Scheme | None:
    """The scheme for a bias under ``policy``: ``"zeros"``, ``"torch"`` (torch's default,
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``), a fan-free scheme, or None for ``"keep"``.

    >>> bias_scheme("torch", Fans(4, 2)).statistics(None)
    {'low': -0.5, 'high': 0.5}
    """
    if isinstance(policy, Scheme):
        return policy
    if policy == "zeros":
        return ZEROS
    if policy == "keep":
        return None
    if policy == "torch":
        if fans is None or fans.fan_in <= 0:
            raise ValueError(
                "bias='torch' needs the layer's fan_in (U(-1/sqrt(fan_in), 1/sqrt(fan_in))), "
                "and this bias belongs to no weight it can be read from; use bias='zeros' or "
                "an override for it."
            )
        bound = 1.0 / math.sqrt(fans.fan_in)
        return Uniform(-bound, bound)
    raise AssertionError(policy)  # validated by init()
