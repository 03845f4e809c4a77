"""Retrieval metrics before and after reranking, with per-stage latency: the hook behind a comparison
config's ``rerank:`` stage and the SciFact benchmark.

    report = evaluate_rerank(task, reranker, top_k=20, embeddings={"queries": q, "corpus": d})
    report.before["ndcg@10"], report.after["ndcg@10"], report.latency_ms

Metrics are the task's own: :func:`score_rankings` hands ranked lists to the same sentence-transformers
``InformationRetrievalEvaluator`` configuration as :meth:`decemb.tasks.RetrievalTask.score` (a test checks
that both give identical numbers on the bi-encoder's ranking). Reranking reorders the first ``top_k``
candidates of each query; candidates ``top_k+1..100`` keep their retrieval order behind them, so
``recall@100`` and ``map@100`` stay comparable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sentence_transformers import CrossEncoder, SentenceTransformer
from tqdm.auto import tqdm

from decemb.search.errors import check_count
from decemb.search.reranking import rerank_order
from decemb.tasks.retrieval import TOP_K, RetrievalTask

__all__ = ["RerankEvaluation", "evaluate_rerank", "exact_rankings", "rerank_rankings", "score_rankings"]

Ranking = list[tuple[str, float]]  # (document id, score), best first


def score_rankings(task: RetrievalTask, rankings: Sequence[Sequence[tuple[str, float]]]) -> dict[str, float]:
    """The task's metrics (x100, same keys as ``task.score``) for one ranked list per query, in
    ``task.query_ids`` order. Only the order matters: scores become strictly decreasing rank scores
    (:meth:`decemb.tasks.RetrievalTask.score_rankings`)."""
    return task.score_rankings(rankings)


def exact_rankings(task: RetrievalTask, embeddings: Mapping[str, Any], top_k: int = TOP_K) -> list[Ranking]:
    """Cosine top-k per query from ``{"queries", "corpus"}`` embeddings, exactly as ``task.score`` ranks
    (:meth:`decemb.tasks.RetrievalTask.dense_rankings`)."""
    return task.dense_rankings(dict(embeddings), check_count("top_k", top_k))


def rerank_rankings(
    task: RetrievalTask,
    rankings: Sequence[Sequence[tuple[str, float]]],
    reranker: CrossEncoder,
    top_k: int,
    *,
    batch_size: int = 16,
    show_progress: bool = False,
) -> tuple[list[Ranking], list[float]]:
    """Each query's first ``top_k`` candidates reordered by ``reranker`` (rerank scores), the rest after them
    unchanged; and the seconds each query's rerank took."""
    top_k, batch_size = check_count("top_k", top_k), check_count("batch_size", batch_size)
    texts = dict(zip(task.doc_ids, task.docs, strict=True))
    out: list[Ranking] = []
    seconds: list[float] = []
    progress = tqdm(total=len(rankings), desc="Reranking", unit="query", disable=not show_progress)
    for query, ranking in zip(task.queries, rankings):
        head, tail = list(ranking[:top_k]), list(ranking[top_k:])
        started = time.perf_counter()
        order = rerank_order(reranker, query, [texts[doc_id] for doc_id, _ in head], batch_size)
        seconds.append(time.perf_counter() - started)
        out.append([(head[i][0], score) for i, score in order] + tail)
        progress.update()
    progress.close()
    return out, seconds


@dataclass
class RerankEvaluation:
    """Metrics before/after reranking (x100) and mean latency per query per stage (ms).

    ``latency_ms``: ``embed_queries`` (only when an ``embedder`` was given: batched query encoding divided
    by the number of queries), ``retrieve`` (the task's first stage, top 100, batched, per query) and
    ``rerank`` (one ``CrossEncoder.rank`` call per query over its ``top_k`` candidates)."""

    task: str
    top_k: int
    queries: int
    before: dict[str, float]
    after: dict[str, float]
    latency_ms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def gain(self, metric: str = "ndcg@10") -> float:
        return self.after[metric] - self.before[metric]


def evaluate_rerank(
    task: RetrievalTask,
    reranker: CrossEncoder,
    *,
    top_k: int = 20,
    embeddings: Mapping[str, Any] | None = None,
    embedder: SentenceTransformer | None = None,
    rankings: Sequence[Sequence[tuple[str, float]]] | None = None,
    batch_size: int = 16,
    show_progress: bool = False,
) -> RerankEvaluation:
    """Score ``task`` with its first stage's ranking (the task's ``retriever``) and after reranking its top
    ``top_k``.

    The first stage comes from, in this order: ``rankings`` (ranked ``(doc id, score)`` lists per query,
    e.g. from a :class:`~decemb.search.SearchIndex`), ``embeddings`` (``{"queries", "corpus"}``, as the
    comparison runner holds them), or ``embedder`` (queries and corpus encoded here)."""
    if not isinstance(task, RetrievalTask):
        raise TypeError(f"a rerank stage needs a retrieval task, got {type(task).__name__}")
    top_k, batch_size = check_count("top_k", top_k), check_count("batch_size", batch_size)
    latency: dict[str, float] = {}
    n = len(task.query_ids)
    if rankings is None:
        if embeddings is None and not task.requests():  # bm25: nothing to encode
            embeddings = {}
        if embeddings is None:
            if embedder is None:
                raise ValueError("evaluate_rerank needs rankings, embeddings or an embedder")
            started = time.perf_counter()
            queries = embedder.encode_query(task.queries, show_progress_bar=show_progress)
            latency["embed_queries"] = 1000 * (time.perf_counter() - started) / n
            corpus = embedder.encode_document(task.docs, show_progress_bar=show_progress)
            embeddings = {"queries": queries, "corpus": corpus}
        started = time.perf_counter()
        rankings = task.rankings(embeddings)  # the task's retriever: dense, bm25 or hybrid
        latency["retrieve"] = 1000 * (time.perf_counter() - started) / n
    before = score_rankings(task, rankings)
    reranked, seconds = rerank_rankings(
        task, rankings, reranker, top_k, batch_size=batch_size, show_progress=show_progress
    )
    latency["rerank"] = 1000 * float(np.mean(seconds))
    after = score_rankings(task, reranked)
    return RerankEvaluation(task.name, top_k, n, before, after, latency)
