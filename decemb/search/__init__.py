"""Retrieve and rerank: a persistent faiss index of a corpus embedded by a decemb bi-encoder, a two-stage
pipeline (index top-k → decoder reranker), and retrieval metrics before/after reranking.

Needs the ``search`` extra (faiss-cpu). The CLI is ``decemb search build|query`` (:mod:`decemb.search.cli`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from decemb.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, __file__)  # the names below load on first use

if TYPE_CHECKING:
    from decemb.search.corpus import check_corpus, read_corpus
    from decemb.search.errors import (
        CorpusError,
        CorruptIndexError,
        DuplicateIdError,
        EmptyCorpusError,
        IndexBusyError,
        IndexExistsError,
        IndexMismatchError,
        IndexNotFoundError,
        IndexWriteError,
        SearchError,
    )
    from decemb.search.evaluate import (
        RerankEvaluation,
        evaluate_rerank,
        exact_rankings,
        rerank_rankings,
        score_rankings,
    )
    from decemb.search.identity import model_identity
    from decemb.search.index import AUTO_EXACT_MAX, Hit, SearchIndex
    from decemb.search.pipeline import QueryResults, SearchPipeline, SearchResult, latency_summary, rerank_hits
