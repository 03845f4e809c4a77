"""Load a causal LM (with its LM head) for reranking, from any source decemb's loader accepts.

This is :func:`decemb.loading.load_backbone` with ``head=True``: sources resolve exactly as there (alias,
``.gguf`` file, folder, Hub id; GGUF dequantized once into decemb's cache). A model whose head is tied to its
input embeddings (SmolLM2, Gemma) gets its head back from them; one with a separate head is loaded from the
GGUF file itself; a folder or Hub model without head weights is refused: a random head would score noise.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from decemb.load_options import LoadOptions
from decemb.loading import apply_adapter, head_is_missing, load_backbone

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["apply_adapter", "head_is_missing", "load_causal_lm"]


def load_causal_lm(
    source: str | os.PathLike[str], options: LoadOptions | None = None, **keys: Any
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(causal LM in eval mode, tokenizer with a pad token) for ``source``; ``options`` / ``keys``: the
    :class:`~decemb.load_options.LoadOptions` of :func:`decemb.loading.load_backbone`."""
    return load_backbone(source, options, head=True, **keys)
