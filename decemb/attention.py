"""Attention modes as per-call inputs to an unmodified Hugging Face model.

A mode is a pure function ``(model, attention_mask_2d, dtype) -> forward kwargs``. ``causal`` hands the
2-D padding mask to the model, which builds its own causal masks. ``bidirectional`` builds the
padding-only masks with transformers' own ``masking_utils`` (so each attention implementation gets
the mask format it expects) and passes ``is_causal=False``, which the attention functions read.
No attention class is copied or subclassed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask, create_bidirectional_sliding_window_mask

from decemb.registry import Registry

AttentionFn = Callable[[PreTrainedModel, torch.Tensor, torch.dtype], dict[str, Any]]
ATTENTION_MODES: Registry[AttentionFn] = Registry("attention mode")


def _embeds_stub(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # masking_utils reads only batch size, length, dtype and device from the embeddings.
    batch, length = attention_mask.shape
    return torch.empty((batch, length, 1), dtype=dtype, device=attention_mask.device)


def _full(model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype) -> Any:
    embeds = _embeds_stub(attention_mask, dtype)
    return create_bidirectional_mask(model.config, embeds, attention_mask, allow_is_bidirectional_skip=False)


def _sliding(model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype) -> Any:
    embeds = _embeds_stub(attention_mask, dtype)
    return create_bidirectional_sliding_window_mask(
        model.config, embeds, attention_mask, allow_is_bidirectional_skip=False
    )


def _windowed(model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype) -> Any:
    """Models with one mask for all layers, windowed when the config sets ``sliding_window`` (mistral)."""
    builder = _sliding if getattr(model.config, "sliding_window", None) else _full
    return builder(model, attention_mask, dtype)


def _mask_per_layer_type(model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype) -> Any:
    """Models that accept a ``{layer_type: mask}`` mapping (qwen2, gemma2, gemma3)."""
    layer_types = set(getattr(model.config, "layer_types", None) or ["full_attention"])
    builders = {"full_attention": _full, "sliding_attention": _sliding}
    return {kind: builders[kind](model, attention_mask, dtype) for kind in layer_types}


# Architectures whose bidirectional path is verified by tests/test_attention.py.
BIDIRECTIONAL_MASK_BUILDERS: dict[str, Callable[[PreTrainedModel, torch.Tensor, torch.dtype], Any]] = {
    "llama": _full,
    "mistral": _windowed,
    "gemma": _full,
    "gpt2": _full,
    "qwen2": _mask_per_layer_type,
    "gemma2": _mask_per_layer_type,
    "gemma3_text": _mask_per_layer_type,
}


class UnsupportedArchitectureError(ValueError):
    pass


def check_bidirectional_support(model: PreTrainedModel) -> None:
    model_type = model.config.model_type
    if model_type not in BIDIRECTIONAL_MASK_BUILDERS:
        raise UnsupportedArchitectureError(
            f"bidirectional attention is not verified for architecture {model_type!r}; "
            f"verified: {', '.join(sorted(BIDIRECTIONAL_MASK_BUILDERS))}"
        )


@ATTENTION_MODES.register("causal")
def causal(model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype) -> dict[str, Any]:
    return {"attention_mask": attention_mask}


@ATTENTION_MODES.register("bidirectional")
def bidirectional(model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype) -> dict[str, Any]:
    check_bidirectional_support(model)
    mask = BIDIRECTIONAL_MASK_BUILDERS[model.config.model_type](model, attention_mask, dtype)
    return {"attention_mask": mask, "is_causal": False}


def attention_kwargs(
    mode: str, model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype
) -> dict[str, Any]:
    return ATTENTION_MODES.get(mode)(model, attention_mask, dtype)
