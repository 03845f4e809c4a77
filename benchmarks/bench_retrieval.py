"""The lexical side of retrieval on SciFact: decemb's BM25 (bm25s through :class:`decemb.search.SearchIndex`'s
``LexicalIndex``) on the whole test set (300 queries, 5,183 documents) with its 95% bootstrap interval, and
what it costs: build seconds and per-query latency (one query at a time, as a server answers them) at the
corpus's 5k documents and at ``--scale`` documents (the corpus repeated, ids made unique: the cost, not the
quality, of a larger index).

Targets (issue "Retrieval that beats BM25"): nDCG@10 >= 66.5 (BM25 in the BEIR paper), the lexical side
under 5 ms per query at 5k documents. Dense and hybrid rows come from ``decemb compare
configs/scifact-retrievers.yaml`` (the embedding engine and cache; docs/retrieval.md).

    python benchmarks/bench_retrieval.py --threads 1
"""

from __future__ import annotations

import statistics
import time

from _common import data_root, parse, parser, print_footer, table

from decemb.compare.stats import bootstrap_ci
from decemb.search.lexical import Bm25Settings, LexicalIndex
from decemb.tasks import load_task

TARGET_NDCG, TARGET_MS = 66.5, 5.0


def latency(index: LexicalIndex, queries: list[str], top_k: int = 100) -> dict[str, float]:
    """Per-query milliseconds (mean, median, p95) of ``index.search`` called with one query at a time."""
    index.search(queries[:5], top_k)  # warm-up
    values = []
    for query in queries:
        started = time.perf_counter()
        index.search([query], top_k)
        values.append(1000 * (time.perf_counter() - started))
    ordered = sorted(values)
    return {
        "mean": statistics.fmean(values),
        "p50": statistics.median(values),
        "p95": ordered[round(0.95 * (len(ordered) - 1))],
    }


def main() -> None:
    p = parser(__doc__, pairs=300, quick_pairs=30, repeats=1)
    p.add_argument("--scale", type=int, default=100_000, help="documents of the larger index (default 100,000)")
    args = parse(p)
    root = data_root(args.data_root)
    limit = None if not args.quick else args.pairs
    config = {"type": "retrieval", "name": "scifact", "path": "scifact", "split": "test", "retriever": "bm25"}
    task = load_task({**config, "limit": limit}, root)
    settings = Bm25Settings()
    print(f"SciFact test: {len(task.query_ids)} queries, {len(task.doc_ids)} documents; BM25 {settings.model_dump()}")

    started = time.perf_counter()
    index = LexicalIndex.build(task.docs, settings)
    build_small = time.perf_counter() - started
    found = index.search(task.queries, top_k=100)
    rankings = [[(task.doc_ids[p], score) for p, score in row] for row in found]
    items = task.ranking_items(rankings)
    interval = bootstrap_ci(items["ndcg@10"])
    ndcg = items["ndcg@10"].value()
    small = latency(index, task.queries)

    copies = max(1, -(-args.scale // len(task.docs)))
    big_docs = [f"{text} {copy}" for copy in range(copies) for text in task.docs][: args.scale]
    started = time.perf_counter()
    big = LexicalIndex.build(big_docs, settings)
    build_big = time.perf_counter() - started
    large = latency(big, task.queries)

    low, high = interval or (float("nan"), float("nan"))
    print()
    print(table([["BM25 (decemb, bm25s)", f"{ndcg:.2f} [{low:.1f}, {high:.1f}]", len(task.query_ids)]],
                ["retriever", "nDCG@10 [95% CI]", "queries"]))  # fmt: skip
    print(f"recall@100 {items['recall@100'].value():.2f}, mrr@10 {items['mrr@10'].value():.2f}")
    print()
    rows = [
        [f"{count:,}", f"{seconds:.2f}", *(f"{timing[key]:.2f}" for key in ("mean", "p50", "p95"))]
        for count, seconds, timing in [(len(task.docs), build_small, small), (len(big_docs), build_big, large)]
    ]
    print(table(rows, ["documents", "build s", "query mean ms", "p50 ms", "p95 ms"]))
    print()
    print(f"nDCG@10 {ndcg:.2f}: {'meets' if ndcg >= TARGET_NDCG else 'MISSES'} target >= {TARGET_NDCG}")
    print(f"lexical latency at 5k: {small['mean']:.2f} ms: {'meets' if small['mean'] < TARGET_MS else 'MISSES'} "
          f"target < {TARGET_MS:g} ms")  # fmt: skip
    print_footer()


if __name__ == "__main__":
    main()
