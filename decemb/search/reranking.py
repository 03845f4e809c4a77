"""Reranking one query's candidates: the one loop behind :func:`decemb.search.rerank_hits` (the search
pipeline) and :func:`decemb.search.rerank_rankings` (retrieval metrics after reranking).

The reranker's own ``sentence_transformers.CrossEncoder.rank`` scores the candidates in one call (so they
share the rendered template opening and the query, see :class:`decemb.rerank.DecembPairEncoder`) and sorts
them best first; equal scores keep the first stage's order (a stable sort).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["rerank_order"]


def rerank_order(reranker: Any, query: str, texts: Sequence[str], batch_size: int) -> list[tuple[int, float]]:
    """``(position in texts, rerank score)`` for every candidate, best first; ``[]`` for no candidate.
    ``reranker``: anything with ``CrossEncoder.rank``'s signature and output."""
    if not texts:
        return []
    ranked = reranker.rank(query, list(texts), batch_size=batch_size, show_progress_bar=False)
    return [(int(entry["corpus_id"]), float(entry["score"])) for entry in ranked]
