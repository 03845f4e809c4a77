"""What a search index is made of besides its store: the faiss module, a hit, and query/document vectors
(L2-normalised float32, so inner products are cosines)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sentence_transformers import SentenceTransformer

from decemb.normalize import l2_normalize

__all__ = ["Hit", "embed_documents", "embed_queries", "faiss", "normalized", "vector_index"]


def faiss() -> Any:
    try:
        import faiss as module
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("decemb search needs faiss: pip install 'decemb[search]'") from error
    return module


@dataclass(frozen=True)
class Hit:
    doc_id: str
    text: str
    score: float  # cosine similarity, BM25 score or fused score: what the retriever ranked by
    position: int  # row in the index


def normalized(vectors: Any) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("the model produced NaN or infinite vectors")
    return np.ascontiguousarray(l2_normalize(array), dtype=np.float32)


def embed_documents(
    model: SentenceTransformer, texts: Sequence[str], batch_size: int, show_progress: bool
) -> np.ndarray:
    vectors = model.encode_document(list(texts), batch_size=batch_size, show_progress_bar=show_progress)
    return normalized(vectors)


def embed_queries(model: SentenceTransformer, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    return normalized(model.encode_query(list(texts), batch_size=batch_size, show_progress_bar=False))


def vector_index(vectors: np.ndarray, kind: str, hnsw_m: int, ef_construction: int) -> Any:
    """A faiss inner-product index holding ``vectors``: flat (``exact``) or an HNSW graph (``hnsw``)."""
    lib = faiss()
    if kind == "exact":
        index = lib.IndexFlatIP(vectors.shape[1])
    else:
        index = lib.IndexHNSWFlat(vectors.shape[1], hnsw_m, lib.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
    index.add(vectors)
    return index
