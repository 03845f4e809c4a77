"""Load a causal LM (with its LM head) for reranking, from any source decemb's loader accepts.

``decemb.loading.load_backbone`` loads the base model only; a reranker needs the head that turns the last
hidden state into vocabulary logits. Sources resolve exactly as there (alias, ``.gguf`` file, folder, Hub
id; GGUF dequantized once into decemb's cache). That cache holds the base model: a model whose head is tied
to its input embeddings (SmolLM2, Gemma) gets its head back from them; one with a separate head is loaded
from the GGUF file itself (dequantized in memory at each load). A folder or Hub model without head weights
is refused: a random head would score noise.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from decemb.errors import ModelSourceError
from decemb.loading import (
    _fail_if_offline,
    _hub_cached,
    default_dtype,
    dequantized_gguf,
    ensure_pad_token,
    parse_dtype,
    resolve_source,
)

__all__ = ["apply_adapter", "head_is_missing", "load_causal_lm"]


def head_is_missing(model: PreTrainedModel, missing_keys: list[str]) -> bool:
    """Whether the LM head's weight was not in the checkpoint and is not tied to the input embeddings."""
    head = model.get_output_embeddings()
    if head is None:
        return True
    tied = bool(getattr(model.config.get_text_config(), "tie_word_embeddings", False))
    if tied and head.weight is model.get_input_embeddings().weight:
        return False
    names = [name for name, module in model.named_modules() if module is head]
    return any(f"{name}.weight" in missing_keys for name in names)


def apply_adapter(model: PreTrainedModel, adapter: str | os.PathLike[str]) -> PreTrainedModel:
    """Merge a PEFT (LoRA) adapter into ``model``; a one-line error if it does not fit."""
    try:
        from peft import PeftModel
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("loading an adapter needs peft: pip install 'decemb[peft]'") from error
    try:
        return PeftModel.from_pretrained(model, os.fspath(adapter)).merge_and_unload()
    except (ValueError, RuntimeError, KeyError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelSourceError(f"adapter {os.fspath(adapter)!r} does not fit this model: {first}") from error


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def load_causal_lm(
    source: str | os.PathLike[str],
    *,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    device_map: Any = None,
    attn_implementation: str | None = None,
    revision: str | None = None,
    adapter: str | os.PathLike[str] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(causal LM in eval mode, tokenizer with a pad token) for ``source``."""
    resolved = resolve_source(source)
    torch_dtype = parse_dtype(dtype) or default_dtype(device, device_map)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if device_map is not None:
        kwargs["device_map"] = device_map
    hub = {"revision": revision, "local_files_only": _offline()} if resolved.kind == "hub" else {}
    if resolved.kind == "hub" and not _hub_cached(resolved.location, revision):
        _fail_if_offline(resolved.location, hub["local_files_only"])  # fail fast, as load_backbone does
    location = str(dequantized_gguf(resolved.gguf_file)) if resolved.gguf_file else resolved.location
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **hub)
        model, info = AutoModelForCausalLM.from_pretrained(location, output_loading_info=True, **kwargs, **hub)
        if head_is_missing(model, list(info.get("missing_keys", []))):
            if resolved.gguf_file is None:
                raise ModelSourceError(
                    f"model {os.fspath(source)!r} has no LM head weights (a base-model checkpoint); "
                    "a reranker needs the causal-LM head"
                )
            gguf = resolved.gguf_file
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, **kwargs)
    except OSError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelSourceError(f"cannot load model {os.fspath(source)!r}: {first}") from error
    if adapter:
        model = apply_adapter(model, adapter)
    if device is not None and device_map is None:
        model = model.to(device)
    ensure_pad_token(tokenizer)
    return model.eval(), tokenizer
