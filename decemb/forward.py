"""The one batched forward pass that every strategy shares: padding, positions, masks, hidden states."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Sequence
from functools import cache

import torch
from transformers import Cache, DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from decemb.attention import AttentionMode, attention_mode
from decemb.rendering import Rendered
from decemb.settings import PaddingSide

logger = logging.getLogger(__name__)


def place(
    rows: Sequence[Sequence[int | bool]], length: int, side: PaddingSide, fill: int, dtype: torch.dtype
) -> torch.Tensor:
    """Rows of different lengths in one ``(len(rows), length)`` tensor, padded with ``fill`` on ``side``."""
    out = torch.full((len(rows), length), fill, dtype=dtype)
    for index, row in enumerate(rows):
        if len(row):
            span = slice(length - len(row), length) if side == "left" else slice(0, len(row))
            out[index, span] = torch.tensor(list(row), dtype=dtype)
    return out


def collate(
    rendered: Sequence[Rendered], tokenizer: PreTrainedTokenizerBase, padding_side: PaddingSide
) -> dict[str, torch.Tensor]:
    """Pad rendered inputs into ``input_ids``, ``attention_mask`` and ``pool_mask`` tensors (with the
    tokenizer's pad token, or id 0 if it has none: padded positions are masked, never read)."""
    pad_id = 0 if tokenizer.pad_token_id is None else int(tokenizer.pad_token_id)
    length = max((len(r) for r in rendered), default=0)
    return {
        "input_ids": place([r.input_ids for r in rendered], length, padding_side, pad_id, torch.long),
        "attention_mask": place([[1] * len(r) for r in rendered], length, padding_side, 0, torch.long),
        "pool_mask": place([r.pool_mask for r in rendered], length, padding_side, False, torch.bool),
    }


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


def decoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The model's stack of decoder blocks (``layers`` for Llama-likes, ``h`` for GPT-2, ...)."""
    total = num_layers(model)
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == total:
            return module
    raise ValueError(f"cannot find the {total} decoder layers of {type(model).__name__}")


class _StopForward(Exception):
    """Raised by a hook once the deepest requested layer has run: the layers above it never run."""


def shared_prefix_length(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> int:
    """Length of the leading tokens that every row has, identical and unpadded."""
    same = (input_ids == input_ids[:1]).all(dim=0) & (attention_mask == 1).all(dim=0)
    return int(same.long().cumprod(dim=0).sum())


def hidden_states(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    attention: AttentionMode | str,
    layers: Sequence[int] = (-1,),
    prefix_cache: bool = True,
    min_prefix: int = 4,
) -> dict[int, torch.Tensor]:
    """Run the base model once and return ``{layer: hidden states}`` for each requested layer.

    Layer ``L`` (or ``-1``) is the model's final, normed output; layer ``k < L`` the output of the k-th
    decoder block (0: its input, the embeddings), captured by hooks, and the blocks above the deepest
    requested layer do not run. Under causal attention, when every row starts with the same tokens (an
    instruction, a prompt's opening words) those are run once and their keys/values reused. Nothing here
    turns gradients off: under ``torch.enable_grad`` the same path trains.
    """
    attention = attention_mode(attention)
    resolved = {layer: resolve_layer(model, layer) for layer in layers}
    device = model.get_input_embeddings().weight.device
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    # Gradient checkpointing drops the cache argument in training: no shared prefix then.
    checkpointing = model.training and getattr(_base_model(model), "is_activation_checkpointing", False)
    prefix_cache = prefix_cache and attention.causal and not checkpointing
    prefix = shared_prefix_length(input_ids, attention_mask) if prefix_cache else 0
    prefix = min(prefix, input_ids.shape[1] - 1)
    if input_ids.shape[0] > 1 and prefix >= min_prefix:
        cache = DynamicCache(config=model.config)
        head = _run(model, input_ids[:1, :prefix], attention_mask[:1, :prefix], attention, resolved, cache)
        cache.batch_repeat_interleave(input_ids.shape[0])
        tail = _run(model, input_ids[:, prefix:], attention_mask, attention, resolved, cache)
        batch = input_ids.shape[0]
        return {
            layer: torch.cat([head[index].expand(batch, -1, -1), tail[index]], dim=1)
            for layer, index in resolved.items()
        }
    states = _run(model, input_ids, attention_mask, attention, resolved)
    return {layer: states[index] for layer, index in resolved.items()}


def _run(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    attention: AttentionMode,
    resolved: dict[int, int],
    cache: Cache | None = None,
) -> dict[int, torch.Tensor]:
    """One forward; ``{layer index: states}`` for the requested indices. With a ``cache``, its keys and
    values come first (and this run's are appended); ``attention_mask`` covers both, and positions
    continue after the cached tokens.

    The capture hooks live only for this call and act only in the calling thread, so concurrent calls
    on one shared model (other threads, other layers) never see each other's state."""
    top = num_layers(model)
    wanted = set(resolved.values())
    blocks = decoder_layers(model)
    captured: dict[int, torch.Tensor] = {}
    deepest = max(wanted)
    hooks = []
    caller = threading.get_ident()

    def capture(index: int, stop: bool):
        def hook(module, args, kwargs, output):
            if threading.get_ident() != caller:
                return
            captured[index] = output[0] if isinstance(output, tuple) else output
            if stop:
                raise _StopForward

        return hook

    def capture_input(module, args, kwargs):
        if threading.get_ident() != caller:
            return
        captured[0] = args[0] if args else kwargs["hidden_states"]
        if deepest == 0:
            raise _StopForward

    if 0 in wanted:
        hooks.append(blocks[0].register_forward_pre_hook(capture_input, with_kwargs=True))
    for index in wanted - {0, top}:
        hooks.append(blocks[index - 1].register_forward_hook(capture(index, index == deepest), with_kwargs=True))
    positions = position_ids(attention_mask)[:, attention_mask.shape[1] - input_ids.shape[1] :]
    kwargs = attention.forward_kwargs(model, attention_mask, model.dtype)
    if cache is not None:
        kwargs[cache_argument(type(_base_model(model)))] = cache
    try:
        output = model(
            input_ids=input_ids, position_ids=positions, use_cache=cache is not None, return_dict=True, **kwargs
        )
        captured[top] = output.last_hidden_state
    except _StopForward:
        pass  # the deepest requested layer has run; nothing above it is needed
    finally:
        for handle in hooks:
            handle.remove()
    return captured


def _base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model under a PEFT wrapper (whose own ``forward`` only passes keywords on)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


@cache
def cache_argument(model_class: type) -> str:
    """The name under which this model class takes a KV cache: ``cache`` in current transformers,
    ``past_key_values`` before (read from the signature: no deprecated argument is ever passed)."""
    parameters = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def is_out_of_memory(error: BaseException) -> bool:
    """A real allocator failure: torch's OutOfMemoryError (CUDA and others) or the CPU allocator's."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "DefaultCPUAllocator: can't allocate memory" in str(error)


def hidden_states_splitting(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    attention: AttentionMode | str,
    layers: Sequence[int] = (-1,),
    prefix_cache: bool = True,
) -> dict[int, torch.Tensor]:
    """:func:`hidden_states`, but a batch that runs out of memory is split in two and retried (any other
    error propagates at once). Rows are independent, so the result equals the unsplit run."""
    try:
        return hidden_states(model, input_ids, attention_mask, attention, layers, prefix_cache)
    except (RuntimeError, torch.OutOfMemoryError) as error:
        if not is_out_of_memory(error) or input_ids.shape[0] == 1:
            raise
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    half = input_ids.shape[0] // 2
    parts = [
        hidden_states_splitting(model, input_ids[rows], attention_mask[rows], attention, layers, prefix_cache)
        for rows in (slice(0, half), slice(half, None))
    ]
    return {layer: torch.cat([part[layer] for part in parts], dim=0) for layer in parts[0]}


def position_limit(model: PreTrainedModel) -> int | None:
    """The size of the model's table of learned absolute positions (GPT-2's ``n_positions``): past it
    such a model cannot run at all. ``None`` for rotary models, which have no hard limit."""
    table = getattr(model.config.get_text_config(), "n_positions", None)
    return None if table is None else int(table)


def hidden_states_batch_independent(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    attention: AttentionMode | str,
    layers: Sequence[int] = (-1,),
    bucket: int = 8,
) -> dict[int, torch.Tensor]:
    """Like :func:`hidden_states_splitting`, but each row's arithmetic depends on that row alone, so its
    vector is bit-identical whatever batch it is in (any batch size, any neighbours).

    Rows are run in groups of equal width (their own length rounded up to ``bucket``) and without the
    prefix KV cache: the padding length and the shared prefix are what otherwise change the order of
    floating-point reductions. Needs right padding. Costs some speed (more, smaller forwards).
    """
    if bool((attention_mask[:, 1:] > attention_mask[:, :-1]).any()):
        raise ValueError("batch-independent (deterministic) mode needs right padding")
    batch, length = input_ids.shape
    padded = -(-length // bucket) * bucket
    if padded != length:  # widths must not depend on how long this batch's longest row happens to be
        input_ids = torch.nn.functional.pad(input_ids, (0, padded - length), value=0)
        attention_mask = torch.nn.functional.pad(attention_mask, (0, padded - length), value=0)
    widths = -(-attention_mask.sum(dim=1) // bucket) * bucket
    out: dict[int, torch.Tensor] = {}
    for width in sorted(set(widths.tolist())):
        rows = (widths == width).nonzero().flatten()
        sub = hidden_states_splitting(
            model, input_ids[rows, :width], attention_mask[rows, :width], attention, layers, prefix_cache=False
        )
        for layer, states in sub.items():
            if layer not in out:
                out[layer] = states.new_zeros((batch, length, states.shape[-1]))
            out[layer][rows.to(states.device), : min(width, length)] = states[:, :length]
    return out
