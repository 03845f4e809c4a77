"""decemb's index store (faiss + documents + BM25 in generations under one manifest) against LanceDB (one table
of ids, texts and vectors with its native full-text index), side by side in one run:

* build seconds (vectors, texts and the lexical index) at 5k and ``--scale`` documents;
* per-query latency, one query at a time: exact vector top-100 and lexical top-100;
* exact top-10 agreement of the two vector searches (both brute force: faiss `exact`, LanceDB without a vector
  index; same vectors);
* lexical quality on SciFact test (the real 5,183-document corpus): nDCG@10 of bm25s and of LanceDB's FTS;
* concurrent appends to one LanceDB table: ``--writers`` processes x ``--appends`` each.

Vectors are random unit vectors of SmolLM2's width (576): store mechanics, not embedding quality (decemb's
identity record is SmolLM2-135M's). ``pip install lancedb`` first (not a decemb dependency).

    python benchmarks/bench_store.py --threads 1
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import data_root, parse, parser, print_footer, table

import decemb
from decemb.search import SearchIndex
from decemb.tasks import load_task

DIM = 576


def per_query_ms(run: Callable[[int], object], count: int) -> float:
    run(0)  # warm-up
    values = []
    for i in range(count):
        started = time.perf_counter()
        run(i)
        values.append(1000 * (time.perf_counter() - started))
    return statistics.median(values)


def lance_table(folder: Path, ids: list[str], texts: list[str], vectors: np.ndarray):  # type: ignore[no-untyped-def]
    import lancedb
    import pyarrow as pa

    table = lancedb.connect(str(folder)).create_table(
        "docs", data=pa.table({"id": ids, "text": texts, "vector": _vectors(vectors)})
    )
    table.create_fts_index("text")
    return table


def _vectors(vectors: np.ndarray):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float32).ravel()), vectors.shape[1])


def append(folder: str, writer: int, appends: int) -> int:
    """One writer process: ``appends`` appends of 10 rows each to the shared table; returns rows written."""
    import lancedb
    import pyarrow as pa

    table = lancedb.connect(folder).open_table("docs")
    rng = np.random.default_rng(writer)
    for step in range(appends):
        ids = [f"w{writer}-{step}-{i}" for i in range(10)]
        table.add(pa.table({"id": ids, "text": ids, "vector": _vectors(rng.standard_normal((10, DIM)))}))
    return 10 * appends


def side_by_side(scratch: Path, task, model, queries: np.ndarray, count: int, rng, n: int) -> dict:  # type: ignore[no-untyped-def]
    """Both stores over ``count`` documents: build, latency and agreement rows; lexical nDCG@10 at 5k."""
    texts = [task.docs[i % len(task.docs)] + (f" {i // len(task.docs)}" if i >= len(task.docs) else "")
             for i in range(count)]  # fmt: skip
    ids = [str(i) for i in range(count)]
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    index = SearchIndex.build(scratch / f"decemb-{count}", ids, texts, model, vectors=vectors, kind="exact")
    ours_build = time.perf_counter() - started
    started = time.perf_counter()
    lance = lance_table(scratch / f"lance-{count}", ids, texts, vectors)
    lance_build = time.perf_counter() - started
    words = task.queries
    timings = {
        "ours": (
            per_query_ms(lambda i: index.search(queries[i : i + 1], 100), n),
            per_query_ms(lambda i: index.search_lexical([words[i % len(words)]], 100), n),
        ),
        "lance": (
            per_query_ms(lambda i: lance.search(queries[i]).metric("dot").limit(100).to_arrow(), n),
            per_query_ms(lambda i: lance.search(words[i % len(words)], query_type="fts").limit(100).to_arrow(), n),
        ),
    }
    same = []
    for q in queries[:50]:
        ours = {h.doc_id for h in index.search(q[None, :], 10)[0]}
        theirs = set(lance.search(q).metric("dot").limit(10).to_arrow()["id"].to_pylist())
        same.append(len(ours & theirs) / 10)
    rows = [
        [f"{count:,}", name, f"{build:.2f}", *(f"{ms:.2f}" for ms in timings[key])]
        for name, key, build in [("decemb (faiss + bm25s)", "ours", ours_build), ("LanceDB", "lance", lance_build)]
    ]
    ndcg = {}
    if count == len(task.docs):  # the real corpus: lexical quality
        fts = [lance.search(q, query_type="fts").limit(100).to_arrow()["id"].to_pylist() for q in task.queries]
        bm25 = [[h.doc_id for h in row] for row in index.search_lexical(task.queries, 100)]
        for name, ranked in [("decemb bm25s", bm25), ("LanceDB FTS", fts)]:
            scored = task.score_rankings([[(task.doc_ids[int(i)], 0.0) for i in row] for row in ranked])
            ndcg[name] = scored["ndcg@10"]
    return {"rows": rows, "agreement": statistics.fmean(same), "ndcg": ndcg}


def main() -> None:
    p = parser(__doc__, pairs=300, quick_pairs=30, repeats=1)
    p.add_argument("--scale", type=int, default=100_000, help="documents of the larger store")
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--appends", type=int, default=20)
    args = parse(p)
    root = data_root(args.data_root)
    task = load_task({"type": "retrieval", "name": "scifact", "path": "scifact", "split": "test"}, root)
    model = decemb.load(args.model, "mean", max_length=128)  # the identity the decemb store records
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((args.pairs, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    rows, agreement, lexical = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as scratch:
        for count in (len(task.docs), args.scale):
            found = side_by_side(Path(scratch), task, model, queries, count, rng, args.pairs)
            rows += found["rows"]
            agreement[count] = found["agreement"]
            lexical = lexical or found["ndcg"]
        folder = Path(scratch) / "lance-concurrent"
        lance_table(folder, ["seed"], ["seed"], rng.standard_normal((1, DIM)))
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(args.writers) as pool:
            written = pool.starmap(append, [(str(folder), w, args.appends) for w in range(args.writers)])
        seconds = time.perf_counter() - started
        import lancedb

        final = lancedb.connect(str(folder)).open_table("docs")
        kept, versions = final.count_rows(), final.version
    print(table(rows, ["documents", "store", "build s", "vector top-100 ms (p50)", "lexical top-100 ms (p50)"]))
    print("exact top-10 agreement (50 queries): " + ", ".join(f"{c:,} docs {a:.3f}" for c, a in agreement.items()))
    print("SciFact test nDCG@10, lexical: " + ", ".join(f"{name} {value:.2f}" for name, value in lexical.items()))
    print(f"LanceDB concurrent appends: {args.writers} writers x {args.appends}: {kept} of {1 + sum(written)} rows, "
          f"{versions} versions, {seconds:.1f} s")  # fmt: skip
    print_footer()


if __name__ == "__main__":
    main()
