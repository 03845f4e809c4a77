"""The one batched forward pass that every strategy shares: padding, positions, masks, hidden states."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from transformers import PreTrainedModel

from decemb.attention import attention_kwargs
from decemb.rendering import Rendered

PaddingSide = Literal["left", "right"]


def collate(rendered: Sequence[Rendered], pad_id: int, padding_side: PaddingSide) -> dict[str, torch.Tensor]:
    """Pad rendered inputs into ``input_ids``, ``attention_mask`` and ``pool_mask`` tensors."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    length = max((len(r) for r in rendered), default=0)
    ids = torch.full((len(rendered), length), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rendered), length), dtype=torch.long)
    pool = torch.zeros((len(rendered), length), dtype=torch.bool)
    for row, item in enumerate(rendered):
        n = len(item)
        span = slice(length - n, length) if padding_side == "left" else slice(0, n)
        ids[row, span] = torch.tensor(item.input_ids, dtype=torch.long)
        attention[row, span] = 1
        pool[row, span] = torch.tensor(item.pool_mask, dtype=torch.bool)
    return {"input_ids": ids, "attention_mask": attention, "pool_mask": pool}


def num_layers(model: PreTrainedModel) -> int:
    return int(model.config.get_text_config().num_hidden_layers)


def resolve_layer(model: PreTrainedModel, layer: int) -> int:
    """Map a layer index to ``0..L`` (0: embeddings, L: the final, normed output; negatives count back)."""
    total = num_layers(model)
    resolved = layer + total + 1 if layer < 0 else layer
    if not 0 <= resolved <= total:
        raise ValueError(f"layer {layer} is out of range for a model with {total} layers (-{total + 1}..{total})")
    return resolved


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted from each input's first real token, so left padding shifts nothing."""
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)


def hidden_states(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    attention: str,
    layers: Sequence[int] = (-1,),
) -> dict[int, torch.Tensor]:
    """Run the base model once and return ``{layer: hidden states}`` for each requested layer."""
    resolved = {layer: resolve_layer(model, layer) for layer in layers}
    top = num_layers(model)
    need_all = any(index != top for index in resolved.values())
    device = model.get_input_embeddings().weight.device
    input_ids = input_ids.to(device)
    attention_mask = attention_mask.to(device)
    output = model(
        input_ids=input_ids,
        position_ids=position_ids(attention_mask),
        use_cache=False,
        output_hidden_states=need_all,
        return_dict=True,
        **attention_kwargs(attention, model, attention_mask, model.dtype),
    )
    states = {}
    for layer, index in resolved.items():
        states[layer] = output.last_hidden_state if index == top else output.hidden_states[index]
    return states
