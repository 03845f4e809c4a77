"""``decemb.explain``: what a decemb model reads for a text, its pooled tokens marked (used by the model card)."""

from __future__ import annotations

from typing import Any

from decemb.st.embedder import DecembEmbedder

__all__ = ["explain"]


def explain(model: Any, text: str, task: str | None = None) -> str:
    """The rendered input for ``text`` as the model reads it, pooled tokens wrapped in ⟦ ⟧.

    ``task``: ``None``/"query" or "document" (the side that ``encode_query``/``encode_document`` render).
    """
    embedder = model[0]
    if not isinstance(embedder, DecembEmbedder):
        raise TypeError("explain() needs a decemb model (its first module is a DecembEmbedder)")
    features = embedder.preprocess([text], task=task)
    ids = features["input_ids"][0].tolist()
    pooled = features["pool_mask"][0].tolist()
    out, inside = [], False
    for token_id, flag in zip(ids, pooled):
        if flag != inside:
            out.append("⟦" if flag else "⟧")
            inside = flag
        out.append(embedder.tokenizer.decode([token_id]))
    if inside:
        out.append("⟧")
    return "".join(out)
