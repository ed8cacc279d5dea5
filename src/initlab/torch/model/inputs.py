"""Inputs for a model that nobody gave any: read from what the model says it takes.

Discovery needs one forward pass to see the data flow of a model that torch.fx cannot trace
(every transformers model). When the caller gives no ``example_inputs``, :func:`find_inputs`
makes a recipe for them, tried in this order:

1. **a transformers config** (``model.config`` and ``model.main_input_name``): token ids for
   text models (``input_ids``, 8 tokens below ``vocab_size``), ``pixel_values`` of
   ``(2, num_channels, image_size, image_size)`` for vision models, ``input_features`` of
   ``(2, num_mel_bins, frames)`` for speech models, ``input_values`` for raw audio; an
   encoder-decoder also gets ``decoder_input_ids``;
2. **an image model's input size**: an attribute ``input_size`` / ``img_size`` /
   ``image_size`` (or timm's ``default_cfg["input_size"]``) with the first convolution's
   channels;
3. **the first layer's shape**: the first layer in registration order says what it takes: a
   convolution ``(2, in_channels, 32, ...)``, a linear layer ``(1, in_features)``, an
   embedding 8 token ids, a recurrent layer a sequence of 8 steps.

A recipe is shapes and dtypes, not tensors: :func:`build_inputs` creates them under the fake
tensor mode that runs the forward, so that even a 70B-parameter model on the meta device costs
no memory and no compute.

>>> import torch
>>> recipe = find_inputs(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU()))
>>> recipe.source, recipe.tensors["0"].shape
("first layer '0' (Conv2d)", (2, 3, 32, 32))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["InputRecipe", "TensorRecipe", "build_inputs", "find_inputs"]

#: Batch (2: batch norm in train mode needs more than one value per channel), tokens in a
#: made-up sequence, and the side of a made-up image when nothing says more.
BATCH = 2
SEQUENCE = 8
IMAGE_SIDE = 32


@dataclass(frozen=True)
class TensorRecipe:
    """One input tensor to create: its shape, dtype, and for token ids the vocabulary size
    (values ``arange(n) % high``)."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    high: int | None = None


@dataclass(frozen=True)
class InputRecipe:
    """Inputs to call a model with: ``tensors`` by keyword (or by position when
    ``positional``), and where the recipe came from (``source``, for reports)."""

    tensors: dict[str, TensorRecipe]
    source: str
    positional: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _get(config: Any, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def _sub_config(config: Any, *names: str) -> Any:
    for name in names:
        sub = getattr(config, name, None)
        if sub is not None:
            return sub
    return config


def _ids(config: Any, length: int = SEQUENCE) -> TensorRecipe | None:
    text = _sub_config(config, "text_config", "decoder")
    vocab = _get(text, "vocab_size") or _get(config, "vocab_size")
    if not isinstance(vocab, int) or vocab <= 0:
        return None
    positions = _get(text, "max_position_embeddings", "n_positions", "max_target_positions")
    if isinstance(positions, int) and positions > 0:
        length = min(length, positions)
    return TensorRecipe((BATCH, length), torch.long, vocab)


def _side(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int) and value > 0:
        return value, value
    if isinstance(value, (tuple, list)) and len(value) >= 2 and all(
        isinstance(v, int) and v > 0 for v in value[-2:]
    ):
        return int(value[-2]), int(value[-1])
    return None


def _transformers(model: nn.Module) -> InputRecipe | None:
    config = getattr(model, "config", None)
    name = getattr(model, "main_input_name", None)
    if config is None or not isinstance(name, str):
        return None
    tensors: dict[str, TensorRecipe] = {}
    if name in ("input_ids", "decoder_input_ids"):
        ids = _ids(config)
        if ids is None:
            return None
        tensors[name] = ids
    elif name in ("pixel_values", "pixel_values_videos"):
        vision = _sub_config(config, "vision_config")
        side = _side(_get(vision, "image_size", "input_size", "img_size"))
        channels = _get(vision, "num_channels", "in_channels", "in_chans") or 3
        if side is None:
            return None
        tensors[name] = TensorRecipe((BATCH, int(channels), *side))
    elif name == "input_features":
        bins = _get(config, "num_mel_bins", "feature_size", "input_feat_per_channel")
        if not isinstance(bins, int):
            return None
        frames = _get(config, "max_source_positions")
        # Whisper's encoder halves the frames once (conv2 has stride 2) and wants them all.
        length = 2 * frames if isinstance(frames, int) else 2 * SEQUENCE
        layout = (BATCH, bins, length) if "whisper" in type(config).__name__.lower() else (
            BATCH, length, bins)  # fmt: skip
        tensors[name] = TensorRecipe(layout)
    elif name == "input_values":
        tensors[name] = TensorRecipe((BATCH, 16000))
    else:
        return None
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" not in tensors:
        ids = _ids(config)
        if ids is not None:
            tensors["decoder_input_ids"] = ids
    shown = ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items())
    return InputRecipe(tensors, f"transformers config ({type(config).__name__}: {shown})")


def _first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    for path, module in model.named_modules():
        if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear, nn.Bilinear, nn.Embedding,
                               nn.EmbeddingBag, nn.RNNBase, nn.MultiheadAttention)):
            return path, module  # fmt: skip
    return None


def _image_size(model: nn.Module) -> tuple[int, int] | None:
    for attr in ("input_size", "img_size", "image_size"):
        side = _side(getattr(model, attr, None))
        if side is not None:
            return side
    cfg = getattr(model, "default_cfg", None) or getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, dict):
        return _side(cfg.get("input_size"))
    return None


def _layer_input(path: str, module: nn.Module, side: tuple[int, int] | None) -> TensorRecipe:
    if isinstance(module, nn.modules.conv._ConvNd):
        dims = len(module.kernel_size)
        channels = module.in_channels
        spatial = side if side is not None and dims == 2 else (IMAGE_SIDE,) * dims
        return TensorRecipe((BATCH, channels, *spatial))
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return TensorRecipe((BATCH, SEQUENCE), torch.long, module.num_embeddings)
    if isinstance(module, nn.RNNBase):
        batch_first = module.batch_first
        return TensorRecipe((BATCH, SEQUENCE, module.input_size) if batch_first else (
            SEQUENCE, 1, module.input_size))  # fmt: skip
    if isinstance(module, nn.MultiheadAttention):
        return TensorRecipe((BATCH, SEQUENCE, module.embed_dim) if module.batch_first else (
            SEQUENCE, 1, module.embed_dim))  # fmt: skip
    if isinstance(module, nn.Bilinear):
        return TensorRecipe((BATCH, module.in1_features))
    return TensorRecipe((BATCH, module.in_features))


def find_inputs(model: nn.Module) -> InputRecipe | None:
    """A recipe for inputs ``model`` takes (see the module docstring), or None when the model
    says nothing that could be read."""
    found = _transformers(model)
    if found is not None:
        return found
    first = _first_layer(model)
    if first is None:
        return None
    path, module = first
    side = _image_size(model)
    tensor = _layer_input(path, module, side)
    if isinstance(module, nn.Bilinear):
        second = TensorRecipe((BATCH, module.in2_features))
        return InputRecipe({path: tensor, f"{path}#2": second},
                           f"first layer '{path}' (Bilinear)", positional=True)  # fmt: skip
    source = f"first layer '{path}' ({type(module).__name__})"
    if side is not None and isinstance(module, nn.modules.conv._ConvNd):
        source = f"the model's input size {side} and {source}"
    return InputRecipe({path: tensor}, source, positional=True)


def build_inputs(recipe: InputRecipe, device: torch.device) -> tuple[tuple, dict]:
    """``(args, kwargs)`` for ``model(*args, **kwargs)``: the recipe's tensors on ``device``
    (call it under a fake tensor mode to allocate nothing)."""
    made: dict[str, torch.Tensor] = {}
    for name, t in recipe.tensors.items():
        if t.high is not None:
            count = 1
            for n in t.shape:
                count *= n
            made[name] = (torch.arange(count, device=device) % t.high).reshape(t.shape)
        else:
            made[name] = torch.zeros(t.shape, dtype=t.dtype, device=device)
    if recipe.positional:
        return tuple(made.values()), dict(recipe.extra)
    return (), {**made, **recipe.extra}
