"""Attention modes as per-call inputs to an unmodified Hugging Face model.

A mode (:class:`AttentionMode`, registered in ``ATTENTION_MODES``) pairs a pure function
``(model, attention_mask_2d, dtype) -> forward kwargs`` with what the rest of decemb needs to know
about it: whether it is causal (then rows sharing an opening can share its keys/values) and which
models support it. ``causal`` hands the
2-D padding mask to the model, which builds its own causal masks. ``bidirectional`` builds the
padding-only masks with transformers' own ``masking_utils`` (so each attention implementation gets
the mask format it expects) and passes ``is_causal=False``, which the attention functions read.
No attention class is copied or subclassed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from decemb.registry import Registry

if TYPE_CHECKING:  # torch and transformers load when a mode is used, not when strategies are listed
    import torch
    from transformers import PreTrainedModel

AttentionFn = Callable[["PreTrainedModel", "torch.Tensor", "torch.dtype"], dict[str, Any]]


@dataclass(frozen=True)
class AttentionMode:
    """One way of attending: ``forward_kwargs`` builds the model's per-call inputs; ``check`` refuses a
    model the mode is not verified for (one-line ``UnsupportedArchitectureError``)."""

    name: str
    causal: bool
    forward_kwargs: AttentionFn
    check: Callable[[PreTrainedModel], None]

    def __str__(self) -> str:
        return self.name


ATTENTION_MODES: Registry[AttentionMode] = Registry("attention mode")


def _embeds_stub(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    import torch

    # masking_utils reads only batch size, length, dtype and device from the embeddings.
    batch, length = attention_mask.shape
    return torch.empty((batch, length, 1), dtype=dtype, device=attention_mask.device)


def _full(model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype) -> Any:
    from transformers.masking_utils import create_bidirectional_mask

    embeds = _embeds_stub(attention_mask, dtype)
    return create_bidirectional_mask(model.config, embeds, attention_mask, allow_is_bidirectional_skip=False)


def _sliding(model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype) -> Any:
    from transformers.masking_utils import create_bidirectional_sliding_window_mask

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


def _causal_kwargs(model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype) -> dict[str, Any]:
    return {"attention_mask": attention_mask}


def _bidirectional_kwargs(model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype) -> dict[str, Any]:
    check_bidirectional_support(model)
    mask = BIDIRECTIONAL_MASK_BUILDERS[model.config.model_type](model, attention_mask, dtype)
    return {"attention_mask": mask, "is_causal": False}


def _any_model(model: PreTrainedModel) -> None:
    return None


CAUSAL = ATTENTION_MODES.add("causal", AttentionMode("causal", True, _causal_kwargs, _any_model))
BIDIRECTIONAL = ATTENTION_MODES.add(
    "bidirectional", AttentionMode("bidirectional", False, _bidirectional_kwargs, check_bidirectional_support)
)


def attention_mode(mode: str | AttentionMode) -> AttentionMode:
    """The registered mode for a name (or the mode itself)."""
    return mode if isinstance(mode, AttentionMode) else ATTENTION_MODES.get(mode)


def attention_kwargs(
    mode: str | AttentionMode, model: PreTrainedModel, attention_mask: torch.Tensor, dtype: torch.dtype
) -> dict[str, Any]:
    return attention_mode(mode).forward_kwargs(model, attention_mask, dtype)
