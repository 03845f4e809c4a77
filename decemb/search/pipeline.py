"""Two-stage search: the index retrieves candidates (``retriever``: dense vectors, BM25 or both fused; see
:mod:`decemb.search.retrievers`), the decoder reranker reorders the top ones.

    pipeline = SearchPipeline(SearchIndex.open("idx"), embedder, reranker, top_k=10, rerank_top_k=20)
    found = pipeline.search("what is rlhf?")
    for result in found.results:
        print(result.rank, result.doc_id, result.retrieval_score, result.rerank_score)
    found.timings   # seconds per stage: embed, search, lexical, fuse, rerank (0.0 where a stage did not run)
    SearchPipeline(index, None, retriever="bm25")   # lexical only: no embedder needed

Each query's candidates are reranked in one ``CrossEncoder.rank`` call (:mod:`decemb.search.reranking`).
An index built BM25 only serves ``retriever="bm25"`` and refuses the others in one line.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sentence_transformers import CrossEncoder, SentenceTransformer
from tqdm.auto import tqdm

from decemb.search.errors import check_count
from decemb.search.fusion import FusionSettings
from decemb.search.index import SearchIndex
from decemb.search.reranking import rerank_order
from decemb.search.retrievers import Retriever, check_retriever, retrieve
from decemb.search.vectors import Hit

__all__ = ["STAGES", "QueryResults", "SearchPipeline", "SearchResult", "latency_summary", "rerank_hits"]

STAGES = ("embed", "search", "lexical", "fuse", "rerank")


@dataclass(frozen=True)
class SearchResult:
    doc_id: str
    text: str
    rank: int  # final rank, 1-based
    retrieval_rank: int  # rank in the first stage's list, 1-based
    retrieval_score: float  # the first stage's score: cosine, BM25 or fused
    rerank_score: float | None  # logit(yes) - logit(no); None when not reranked


@dataclass
class QueryResults:
    query: str
    results: list[SearchResult]
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "results": [asdict(r) for r in self.results], "timings": self.timings}


def rerank_hits(
    query: str, hits: Sequence[Hit], reranker: CrossEncoder | None, rerank_top_k: int, batch_size: int = 16
) -> list[SearchResult]:
    """``hits`` (best first) with the first ``rerank_top_k`` reordered by the reranker; the rest follow in
    retrieval order without a rerank score."""
    rerank_top_k, batch_size = check_count("rerank_top_k", rerank_top_k), check_count("batch_size", batch_size)
    head = list(hits[:rerank_top_k]) if reranker is not None else []
    order = rerank_order(reranker, query, [hit.text for hit in head], batch_size)
    ranked: list[tuple[Hit, int, float | None]] = [(head[i], i + 1, score) for i, score in order]
    ranked += [(hit, len(head) + j + 1, None) for j, hit in enumerate(hits[len(head) :])]
    return [
        SearchResult(hit.doc_id, hit.text, rank, retrieval_rank, hit.score, score)
        for rank, (hit, retrieval_rank, score) in enumerate(ranked, 1)
    ]


class SearchPipeline:
    """Query → first stage top-k → rerank → results with both scores (see the module docstring)."""

    def __init__(
        self,
        index: SearchIndex,
        embedder: SentenceTransformer | None,
        reranker: CrossEncoder | None = None,
        *,
        top_k: int = 10,
        rerank_top_k: int = 20,
        rerank_batch_size: int = 16,
        check: bool = True,
        retriever: Retriever = "dense",
        fusion: FusionSettings | None = None,
    ) -> None:
        top_k, rerank_top_k = check_count("top_k", top_k), check_count("rerank_top_k", rerank_top_k)
        rerank_batch_size = check_count("rerank_batch_size", rerank_batch_size)
        self.retriever, self.fusion = check_retriever(retriever), fusion or FusionSettings()
        if retriever != "bm25":
            index.require_vectors(f"search with retriever {retriever!r}")
        if retriever != "bm25" and embedder is None:
            raise ValueError(f"retriever {retriever!r} needs the embedder that built the index")
        if check and embedder is not None and index.has_vectors:
            index.check_model(embedder)
        self.index = index
        self.embedder = embedder
        self.reranker = reranker
        self.top_k = top_k
        self.rerank_top_k = rerank_top_k  # unused without a reranker
        self.rerank_batch_size = rerank_batch_size

    def search(self, query: str, top_k: int | None = None, rerank_top_k: int | None = None) -> QueryResults:
        """One query, timed per stage (seconds); ``top_k`` / ``rerank_top_k``: this query's, > 0."""
        top_k, depth = self._counts(top_k, rerank_top_k)
        reranking = self.reranker is not None
        hits, ran = retrieve(
            self.index, query, self.embedder, retriever=self.retriever,
            top_k=max(top_k, depth) if reranking else top_k, fusion=self.fusion,
        )  # fmt: skip
        timings = {stage: ran.get(stage, 0.0) for stage in STAGES}
        started = time.perf_counter()
        results = rerank_hits(query, hits, self.reranker, depth, self.rerank_batch_size)
        timings["rerank"] = time.perf_counter() - started if reranking else 0.0
        return QueryResults(query, results[:top_k], timings)

    def search_many(
        self,
        queries: Sequence[str],
        top_k: int | None = None,
        rerank_top_k: int | None = None,
        *,
        show_progress: bool = False,
    ) -> list[QueryResults]:
        """Each query on its own (so the timings are per-query latencies), with a progress bar."""
        self._counts(top_k, rerank_top_k)  # a bad count fails before the first query
        return [
            self.search(query, top_k, rerank_top_k)
            for query in tqdm(list(queries), desc="Queries", unit="query", disable=not show_progress)
        ]

    def _counts(self, top_k: int | None, rerank_top_k: int | None) -> tuple[int, int]:
        """``(top_k, rerank_top_k)`` of one call (the pipeline's where ``None``), checked: > 0."""
        return (
            self.top_k if top_k is None else check_count("top_k", top_k),
            self.rerank_top_k if rerank_top_k is None else check_count("rerank_top_k", rerank_top_k),
        )


def latency_summary(found: Sequence[QueryResults]) -> dict[str, dict[str, float]]:
    """Per stage (and in total): mean, median and p95 latency in milliseconds over queries."""
    out: dict[str, dict[str, float]] = {}
    for stage in (*STAGES, "total"):
        values = [
            1000 * (sum(item.timings.values()) if stage == "total" else item.timings.get(stage, 0.0)) for item in found
        ]
        if not values:
            continue
        ordered = sorted(values)
        out[stage] = {
            "mean_ms": statistics.fmean(values),
            "median_ms": statistics.median(values),
            "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        }
    return out
