"""What a search index is made of besides its store: the faiss module, a hit, and query/document vectors
(L2-normalised float32, so inner products are cosines)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sentence_transformers import SentenceTransformer

__all__ = ["Hit", "embed_documents", "embed_queries", "faiss", "normalized"]


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
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.ascontiguousarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


def embed_documents(
    model: SentenceTransformer, texts: Sequence[str], batch_size: int, show_progress: bool
) -> np.ndarray:
    vectors = model.encode_document(list(texts), batch_size=batch_size, show_progress_bar=show_progress)
    return normalized(vectors)


def embed_queries(model: SentenceTransformer, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    return normalized(model.encode_query(list(texts), batch_size=batch_size, show_progress_bar=False))
