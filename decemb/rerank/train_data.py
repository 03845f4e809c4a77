"""Training data for a reranker: queries with their relevant documents and hard negatives drawn from a first
stage's ranking, as the datasets sentence-transformers' cross-encoder losses read.

* :func:`examples_from_task`: the negatives come from the first stage the reranker will rerank at search
  time, the task's ``retriever`` (``bm25``: no model; ``dense`` / ``hybrid``: with the task's embeddings),
  among its top ``range_max``, as :meth:`decemb.tasks.RetrievalTask.rankings` ranks them;
* :func:`mine_examples`: from a bi-encoder's own cosine ranking (``sentence_transformers.util.semantic_search``).

* BCE (``BinaryCrossEntropyLoss``): rows ``(query, document, label)``, label 1 for a relevant document and
  0 for a hard negative;
* listwise (``ListNetLoss``): rows ``(query, docs, labels)``, one positive and its hard negatives per row.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sentence_transformers import SentenceTransformer

__all__ = [
    "RerankExample",
    "bce_dataset",
    "examples_from_rankings",
    "examples_from_task",
    "listwise_dataset",
    "mine_examples",
]


@dataclass(frozen=True)
class RerankExample:
    query: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]


def examples_from_rankings(
    queries: Mapping[str, str],
    relevant: Mapping[str, set[str]],
    rankings: Mapping[str, Sequence[str]],
    texts: Mapping[str, str],
    *,
    num_negatives: int = 3,
    range_min: int = 0,
    range_max: int = 50,
    seed: int = 0,
) -> list[RerankExample]:
    """Per query: its relevant documents, and ``num_negatives`` hard negatives drawn at random from the
    non-relevant documents ranked ``range_min..range_max`` (0-based) by the bi-encoder. Queries without a
    relevant document in ``texts`` or without a negative are skipped."""
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be > 0, got {num_negatives}")
    rng = random.Random(seed)
    examples = []
    for query_id, query in queries.items():
        positives = tuple(texts[d] for d in sorted(relevant.get(query_id, ())) if d in texts)
        pool = [d for d in list(rankings.get(query_id, ()))[range_min:range_max] if d not in relevant.get(query_id, ())]
        if not positives or not pool:
            continue
        chosen = rng.sample(pool, min(num_negatives, len(pool)))
        examples.append(RerankExample(query, positives, tuple(texts[d] for d in chosen)))
    return examples


def mine_examples(
    embedder: SentenceTransformer,
    queries: Mapping[str, str],
    relevant: Mapping[str, set[str]],
    corpus: Mapping[str, str],
    *,
    num_negatives: int = 3,
    range_min: int = 0,
    range_max: int = 50,
    batch_size: int = 32,
    seed: int = 0,
    show_progress: bool = False,
) -> list[RerankExample]:
    """:func:`examples_from_rankings` over the bi-encoder's own cosine ranking of ``corpus`` (queries on the
    query side, documents on the document side, as at search time)."""
    doc_ids = list(corpus)
    query_ids = [q for q in queries if relevant.get(q)]
    from sentence_transformers.util import semantic_search

    docs = embedder.encode_document(
        [corpus[d] for d in doc_ids], batch_size=batch_size, show_progress_bar=show_progress, convert_to_tensor=True
    )
    vectors = embedder.encode_query(
        [queries[q] for q in query_ids], batch_size=batch_size, show_progress_bar=False, convert_to_tensor=True
    )
    hits = semantic_search(vectors.float(), docs.float(), top_k=min(range_max, len(doc_ids)))
    rankings = {q: [doc_ids[hit["corpus_id"]] for hit in row] for q, row in zip(query_ids, hits, strict=True)}
    return examples_from_rankings(
        {q: queries[q] for q in query_ids},
        relevant,
        rankings,
        corpus,
        num_negatives=num_negatives,
        range_min=range_min,
        range_max=range_max,
        seed=seed,
    )


def examples_from_task(
    task: Any,
    embeddings: Mapping[str, Any] | None = None,
    *,
    num_negatives: int = 3,
    range_min: int = 0,
    range_max: int = 20,
    seed: int = 0,
) -> list[RerankExample]:
    """:func:`examples_from_rankings` over the first stage of a :class:`~decemb.tasks.RetrievalTask`: its
    ``retriever`` (``bm25`` needs no ``embeddings``; ``dense`` / ``hybrid`` need ``{"queries", "corpus"}``),
    so the negatives are the candidates that first stage puts in its top ``range_max`` (a reranker's
    ``top_k``) at search time. Use a *train* split: nothing here looks at which split it is."""
    rankings = task.rankings(dict(embeddings or {}))
    ranked = {q: [doc for doc, _ in row] for q, row in zip(task.query_ids, rankings, strict=True)}
    return examples_from_rankings(
        dict(zip(task.query_ids, task.queries, strict=True)),
        task.relevant,
        ranked,
        dict(zip(task.doc_ids, task.docs, strict=True)),
        num_negatives=num_negatives,
        range_min=range_min,
        range_max=range_max,
        seed=seed,
    )


def bce_dataset(examples: Sequence[RerankExample], seed: int = 0) -> Any:
    """``datasets.Dataset`` with ``query``, ``document``, ``label`` (1.0 relevant, 0.0 hard negative), shuffled."""
    from datasets import Dataset

    rows = [(e.query, d, 1.0) for e in examples for d in e.positives]
    rows += [(e.query, d, 0.0) for e in examples for d in e.negatives]
    if not rows:
        raise ValueError("no training pairs: every example is empty")
    random.Random(seed).shuffle(rows)
    return Dataset.from_dict(
        {"query": [r[0] for r in rows], "document": [r[1] for r in rows], "label": [r[2] for r in rows]}
    )


def listwise_dataset(examples: Sequence[RerankExample], seed: int = 0) -> Any:
    """``datasets.Dataset`` with ``query``, ``docs`` (one positive, then the negatives, shuffled within the
    row) and ``labels`` (1.0 / 0.0); one row per (query, positive)."""
    from datasets import Dataset

    rng = random.Random(seed)
    queries, lists, labels = [], [], []
    for example in examples:
        for positive in example.positives:
            items = [(positive, 1.0)] + [(negative, 0.0) for negative in example.negatives]
            rng.shuffle(items)
            queries.append(example.query)
            lists.append([text for text, _ in items])
            labels.append([label for _, label in items])
    if not queries:
        raise ValueError("no training lists: every example is empty")
    return Dataset.from_dict({"query": queries, "docs": lists, "labels": labels})
