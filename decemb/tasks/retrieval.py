"""Retrieval: rank a corpus for each query (dense cosine, BM25 or both fused) and score it against qrels."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decemb.search.fusion import FusionSettings, fuse
from decemb.search.lexical import Bm25Settings, LexicalIndex
from decemb.tasks._io import Table, column, read_table, resolve_path
from decemb.tasks._sampling import sample_indices
from decemb.tasks.base import EncodeRequest, TaskDataError, check_embeddings
from decemb.tasks.config import RetrievalTaskConfig
from decemb.tasks.items import ItemScores, mean_items

logger = logging.getLogger(__name__)

TOP_K = 100


@dataclass
class RetrievalTask:
    """Scores (x100): ``ndcg@10``, ``mrr@10``, ``map@100``, ``recall@10``, ``recall@100``, ``accuracy@1``.

    Ranking (``retriever``): ``dense``, ``sentence_transformers.util.semantic_search`` (cosine, top 100);
    ``bm25``, :class:`~decemb.search.lexical.LexicalIndex` over the same document texts (no model, nothing to
    encode); ``hybrid``, both fused (:func:`~decemb.search.fusion.fuse`). Metrics:
    ``InformationRetrievalEvaluator.compute_metrics`` from sentence-transformers on those hit lists
    (binary relevance). Queries are ``query``-kind requests, the corpus ``document``-kind.
    """

    name: str
    query_ids: list[str]
    queries: list[str]
    doc_ids: list[str]
    docs: list[str]
    relevant: dict[str, set[str]]  # query id -> ids of relevant documents (all in doc_ids)
    info: dict[str, Any] = field(default_factory=dict)
    retriever: str = "dense"
    bm25: Bm25Settings = field(default_factory=Bm25Settings)
    fusion: FusionSettings = field(default_factory=FusionSettings)
    type: str = field(default="retrieval", init=False)
    main_metric: str = field(default="ndcg@10", init=False)
    _lexical: Any = field(default=None, init=False, repr=False, compare=False)

    def requests(self) -> dict[str, EncodeRequest]:
        if self.retriever == "bm25":
            return {}
        return {
            "queries": EncodeRequest("query", list(self.queries)),
            "corpus": EncodeRequest("document", list(self.docs)),
        }

    def _evaluator(self) -> Any:
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

        evaluator = InformationRetrievalEvaluator(
            queries=dict(zip(self.query_ids, self.queries, strict=True)),
            corpus=dict(zip(self.doc_ids, self.docs, strict=True)),
            relevant_docs=self.relevant,
            mrr_at_k=[10],
            ndcg_at_k=[10],
            accuracy_at_k=[1],
            precision_recall_at_k=[10, TOP_K],
            map_at_k=[TOP_K],
            write_csv=False,
        )
        if evaluator.queries_ids != self.query_ids:  # it drops queries without relevant docs; we have none
            raise RuntimeError(f"task {self.name!r}: query order mismatch with InformationRetrievalEvaluator")
        return evaluator

    def lexical_rankings(self) -> list[list[tuple[str, float]]]:
        """Each query's BM25 top 100 as ``(document id, score)`` (computed once per task: it needs no model)."""
        if self._lexical is None:
            found = LexicalIndex.build(self.docs, self.bm25).search(self.queries, top_k=TOP_K)
            self._lexical = [[(self.doc_ids[position], score) for position, score in row] for row in found]
        return [list(row) for row in self._lexical]

    def dense_rankings(self, embeddings: dict[str, np.ndarray], top_k: int = TOP_K) -> list[list[tuple[str, float]]]:
        """Each query's cosine top ``top_k`` as ``(document id, score)``."""
        import torch
        from sentence_transformers.util import semantic_search

        arrays = check_embeddings(self.name, self.requests(), embeddings)
        hits = semantic_search(
            torch.from_numpy(arrays["queries"].astype(np.float32)),
            torch.from_numpy(arrays["corpus"].astype(np.float32)),
            top_k=top_k,
        )
        return [[(self.doc_ids[h["corpus_id"]], float(h["score"])) for h in row] for row in hits]

    def rankings(self, embeddings: dict[str, np.ndarray]) -> list[list[tuple[str, float]]]:
        """The first stage of this task's ``retriever``: each query's top 100, best first."""
        if self.retriever == "bm25":
            check_embeddings(self.name, self.requests(), embeddings)
            return self.lexical_rankings()
        dense = self.dense_rankings(embeddings)
        if self.retriever == "dense":
            return dense
        fused = [fuse([lexical, row], self.fusion) for lexical, row in zip(self.lexical_rankings(), dense)]
        return [[(str(doc), score) for doc, score in row[:TOP_K]] for row in fused]

    def _hits(self, embeddings: dict[str, np.ndarray]) -> list[list[dict[str, Any]]]:
        """The rankings as the evaluator reads them (``corpus_id``: the document id); only the order counts."""
        return self._ranked(self.rankings(embeddings))

    def score(self, embeddings: dict[str, np.ndarray]) -> dict[str, float]:
        return _metrics(self._evaluator().compute_metrics(self._hits(embeddings)))

    def score_items(self, embeddings: dict[str, np.ndarray]) -> dict[str, ItemScores]:
        """Per query: each metric of that query alone; every metric is their mean."""
        return self._per_query(self._hits(embeddings))

    def score_rankings(self, rankings: Sequence[Sequence[tuple[str, Any]]]) -> dict[str, float]:
        """:meth:`score` for given ranked ``(document id, score)`` lists, one per query in ``query_ids`` order,
        best first (e.g. after reranking). Only the order counts: scores become decreasing rank scores."""
        return _metrics(self._evaluator().compute_metrics(self._ranked(rankings)))

    def ranking_items(self, rankings: Sequence[Sequence[tuple[str, Any]]]) -> dict[str, ItemScores]:
        """:meth:`score_items` for given rankings (as :meth:`score_rankings`)."""
        return self._per_query(self._ranked(rankings))

    def _ranked(self, rankings: Sequence[Sequence[tuple[str, Any]]]) -> list[list[dict[str, Any]]]:
        if len(rankings) != len(self.query_ids):
            raise ValueError(f"task {self.name!r}: {len(rankings)} rankings for {len(self.query_ids)} queries")
        return [
            [{"corpus_id": doc_id, "score": float(len(ranking) - rank)} for rank, (doc_id, _) in enumerate(ranking)]
            for ranking in rankings
        ]

    def _per_query(self, results: list[list[dict[str, Any]]]) -> dict[str, ItemScores]:
        """The evaluator's own metric code run on one query at a time."""
        single = copy.copy(self._evaluator())
        values: dict[str, list[float]] = {}
        for query_id, query, hits in zip(self.query_ids, self.queries, results, strict=True):
            single.queries_ids, single.queries = [query_id], [query]
            for metric, value in _metrics(single.compute_metrics([hits])).items():
                values.setdefault(metric, []).append(value)
        return {metric: mean_items(per_query) for metric, per_query in values.items()}

    def size(self) -> int:
        return len(self.query_ids)


def _metrics(m: dict[str, Any]) -> dict[str, float]:
    """Our metric names (x100) from ``InformationRetrievalEvaluator.compute_metrics``."""
    return {
        "ndcg@10": float(m["ndcg@k"][10]) * 100,
        "mrr@10": float(m["mrr@k"][10]) * 100,
        "map@100": float(m["map@k"][TOP_K]) * 100,
        "recall@10": float(m["recall@k"][10]) * 100,
        "recall@100": float(m["recall@k"][TOP_K]) * 100,
        "accuracy@1": float(m["accuracy@k"][1]) * 100,
    }


def _unique(ids: list[str], table: Table, what: str, task: str) -> None:
    seen: set[str] = set()
    for value, line in zip(ids, table.lines, strict=True):
        if value in seen:
            raise TaskDataError(f"task {task!r}: duplicate {what} id {value!r} on line {line} of {table.path}")
        seen.add(value)


def load_retrieval(config: RetrievalTaskConfig, data_root: Path) -> RetrievalTask:
    """Read corpus, queries and qrels (see ``RetrievalTaskConfig`` for ``limit``/``corpus_limit``).

    Documents and queries with a blank text are skipped; qrels rows naming an unknown or skipped query
    or document are dropped; queries left without a relevant document are not scored. All counts are
    in ``info``. Duplicate ids and non-numeric qrels scores are ``TaskDataError``s.
    """
    task = config.name
    folder = resolve_path(config.path, root=data_root, task=task, key="path", kind="folder")
    fields = config.resolved_fields()

    def locate(key: str, value: str) -> Path:
        if getattr(config, key):  # set explicitly (format jsonl)
            return resolve_path(value, root=folder, task=task, key=key)
        return resolve_path(value, root=folder, task=task, key="path", configured=config.path)

    corpus = read_table(locate("corpus", config.corpus_file()), "jsonl", False, task=task)
    doc_ids = column(corpus, fields.doc_id, task=task, key="fields.doc_id")
    bodies = column(corpus, fields.doc_text, task=task, key="fields.doc_text")
    _unique(doc_ids, corpus, "document", task)
    if config.use_title and fields.doc_title:
        titles = [str(r.get(fields.doc_title) or "").strip() for r in corpus.rows if isinstance(r, dict)]
        bodies = [f"{t} {b}".strip() for t, b in zip(titles, bodies, strict=True)]
    docs = {i: b for i, b in zip(doc_ids, bodies, strict=True) if b}

    queries_table = read_table(locate("queries", config.queries_file()), "jsonl", False, task=task)
    query_ids = column(queries_table, fields.query_id, task=task, key="fields.query_id")
    query_texts = column(queries_table, fields.query_text, task=task, key="fields.query_text")
    _unique(query_ids, queries_table, "query", task)
    queries = {i: t for i, t in zip(query_ids, query_texts, strict=True) if t}

    qrels_header = True if config.qrels_header is None else config.qrels_header
    qrels = read_table(locate("qrels", config.qrels_file()), "tsv", qrels_header, task=task)
    q_col = column(qrels, 0, task=task, key="qrels")
    d_col = column(qrels, 1, task=task, key="qrels")
    s_col = column(qrels, 2, task=task, key="qrels")
    relevant: dict[str, set[str]] = {}
    dropped = 0
    for qid, did, raw, line in zip(q_col, d_col, s_col, qrels.lines, strict=True):
        try:
            grade = float(raw)
        except ValueError:
            raise TaskDataError(
                f"task {task!r}: qrels score {raw!r} on line {line} of {qrels.path} is not a number"
            ) from None
        if grade <= 0:
            continue
        if qid not in queries or did not in docs:
            dropped += 1
            continue
        relevant.setdefault(qid, set()).add(did)

    eligible = [qid for qid in query_ids if qid in relevant]
    kept_queries = [eligible[i] for i in sample_indices(eligible, config.limit, config.seed)]
    if not kept_queries:
        raise TaskDataError(f"task {task!r}: no query in {qrels.path} has a relevant document in the corpus")
    kept_relevant = {qid: relevant[qid] for qid in kept_queries}

    all_docs = list(docs)
    if config.corpus_limit is None or config.corpus_limit >= len(all_docs):
        kept_docs = all_docs
    else:
        needed = set().union(*kept_relevant.values())
        others = [d for d in all_docs if d not in needed]
        extra = {others[i] for i in sample_indices(others, max(config.corpus_limit - len(needed), 0), config.seed)}
        kept_docs = [d for d in all_docs if d in needed or d in extra]
    skipped = {
        "documents": len(doc_ids) - len(docs),
        "queries": len(query_ids) - len(queries),
        "qrels": dropped,
    }
    if any(skipped.values()):
        logger.warning("task %r: skipped blank/unknown entries: %s", task, skipped)
    return RetrievalTask(
        name=task,
        query_ids=kept_queries,
        queries=[queries[q] for q in kept_queries],
        doc_ids=kept_docs,
        docs=[docs[d] for d in kept_docs],
        relevant=kept_relevant,
        info={
            "path": str(folder),
            "split": config.split,
            "skipped": skipped,
            "eligible_queries": len(eligible),
            "retriever": config.retriever,
        },
        retriever=config.retriever,
        bm25=config.bm25 or Bm25Settings(),
        fusion=config.fusion or FusionSettings(),
    )
