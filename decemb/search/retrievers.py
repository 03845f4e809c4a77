"""The first stage of a search: ``dense`` (the bi-encoder's vectors), ``bm25`` (lexical) or ``hybrid`` (both,
fused by :func:`decemb.search.fusion.fuse`), over one :class:`~decemb.search.SearchIndex`.

    hits, timings = retrieve(index, "what is rlhf?", embedder, retriever="hybrid", top_k=20)

``timings`` holds seconds per stage that ran: ``embed`` (the query vector), ``search`` (the vector index),
``lexical`` (BM25) and ``fuse``.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from decemb.registry import did_you_mean
from decemb.search.errors import check_count
from decemb.search.fusion import FusionSettings, fuse
from decemb.search.index import SearchIndex
from decemb.search.vectors import Hit, embed_queries

__all__ = ["RETRIEVERS", "Retriever", "check_retriever", "fuse_hits", "retrieve"]

Retriever = Literal["dense", "bm25", "hybrid"]
RETRIEVERS: tuple[str, ...] = ("dense", "bm25", "hybrid")


def check_retriever(name: object) -> Retriever:
    """``name`` if it is a retriever, else a ``ValueError`` naming it, with a near match."""
    if name not in RETRIEVERS:
        raise ValueError(f"unknown retriever {name!r}{did_you_mean(name, RETRIEVERS)}; known: {', '.join(RETRIEVERS)}")
    return name  # type: ignore[return-value]


def fuse_hits(lexical: list[Hit], dense: list[Hit], fusion: FusionSettings) -> list[Hit]:
    """One query's BM25 and dense hits fused (:func:`decemb.search.fusion.fuse`); scores are fused scores."""
    by_position = {hit.position: hit for hit in (*dense, *lexical)}
    fused = fuse([[(h.position, h.score) for h in lexical], [(h.position, h.score) for h in dense]], fusion)
    return [Hit(by_position[p].doc_id, by_position[p].text, score, int(p)) for p, score in fused]  # type: ignore[call-overload]


def retrieve(
    index: SearchIndex,
    query: str,
    embedder: Any,
    *,
    retriever: Retriever = "dense",
    top_k: int = 10,
    fusion: FusionSettings | None = None,
) -> tuple[list[Hit], dict[str, float]]:
    """One query's ``top_k`` first-stage hits, best first, and the seconds of each stage that ran.
    ``embedder`` is not used (and may be ``None``) for ``bm25``."""
    retriever, top_k = check_retriever(retriever), check_count("top_k", top_k)
    fusion = fusion or FusionSettings()
    depth = max(top_k, fusion.depth) if retriever == "hybrid" else top_k
    timings: dict[str, float] = {}
    dense: list[Hit] = []
    lexical: list[Hit] = []
    if retriever in ("dense", "hybrid"):
        started = time.perf_counter()
        vector = embed_queries(embedder, [query])
        timings["embed"] = time.perf_counter() - started
        started = time.perf_counter()
        dense = index.search(vector, depth)[0]
        timings["search"] = time.perf_counter() - started
    if retriever in ("bm25", "hybrid"):
        started = time.perf_counter()
        lexical = index.search_lexical([query], depth)[0]
        timings["lexical"] = time.perf_counter() - started
    if retriever != "hybrid":
        return (dense or lexical)[:top_k], timings
    started = time.perf_counter()
    hits = fuse_hits(lexical, dense, fusion)[:top_k]
    timings["fuse"] = time.perf_counter() - started
    return hits, timings
