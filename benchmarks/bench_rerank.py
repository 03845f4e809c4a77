"""Retrieve & rerank on SciFact and an approximate index on AG News (issue 11).

Results: docs/results/2026-11-25-rerank.md.

Stages (``--stage``, each writes ``OUT/<stage>.json``; ``all`` runs them in order, but ``smoke``):

* ``quality``: SciFact test (``--queries`` queries, 150 by default) over the 200- and 1,000-document subsets
  (``corpus_limit``, as configs/paper-claims.yaml draws them): nDCG@10 etc. of the echo bi-encoder alone
  (exact cosine) and with the zero-shot decoder reranker on its top ``--rerank-top-k``. Saves the query and
  document vectors (``OUT/vectors-<subset>.npz``) for the ``latency`` stage.
* ``train``: hard negatives mined with the echo bi-encoder for SciFact *train* queries (full corpus), one
  LoRA reranker per loss (``--losses bce listnet lambda``), each scored on both subsets like ``quality``.
* ``smoke``: a reranker recipe (``--config configs/train-reranker*.yaml``) for ``--max-steps`` steps on
  ``--train-queries`` train queries with the real model, then one rerank of BM25's top ``--rerank-top-k``
  for each of the first ``--latency-queries`` test queries: seconds per step and per query, load average.
* ``latency``: per-query latency of each stage (query embedding, exact faiss search, rerank) at top-20 and
  top-50 on the first ``--latency-queries`` queries of the 1,000-document subset, with the saved vectors.
* ``ann-vectors``: echo vectors of 20,000 AG News texts (titles, descriptions and the sentences of
  multi-sentence descriptions, de-duplicated, shuffled with seed 0) and of 500 held-out texts as queries,
  saved as ``OUT/agnews-corpus-{0,1}.npy`` and ``OUT/agnews-queries.npy`` (float16).
* ``ann``: exact and HNSW faiss indexes over those vectors: recall@100 of HNSW against exact per efSearch,
  build time and search latency per query.

Example (CPU, 1 thread): ``python benchmarks/bench_rerank.py --stage latency --threads 1 --out runs/bench-rerank``
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

SUBSETS = (200, 1000)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    stages = ["all", "quality", "train", "latency", "ann-vectors", "ann", "smoke"]
    p.add_argument("--stage", default="all", choices=stages)
    p.add_argument("--out", default="runs/bench-rerank", help="results folder")
    p.add_argument("--model", default="smollm2-135m", help="bi-encoder and reranker source")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--dtype", default="float32", help="model dtype (default float32, also on CUDA)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--data-root", default=None, help="data folder (default: decemb.tasks.default_data_root())")
    p.add_argument("--queries", type=int, default=150, help="SciFact test queries")
    p.add_argument("--rerank-top-k", type=int, default=20)
    p.add_argument("--rerank-max-length", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--losses", nargs="+", default=["bce", "listnet"])
    p.add_argument("--config", help="smoke: the reranker recipe")
    p.add_argument("--max-steps", type=int, default=2, help="smoke: training steps")
    p.add_argument("--train-queries", type=int, default=8, help="smoke: train queries sampled")
    p.add_argument("--negatives", type=int, default=3, help="hard negatives per training query")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--train-batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--latency-queries", type=int, default=5)
    p.add_argument("--ann-size", type=int, default=20_000)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.out = Path(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def machine(args: argparse.Namespace) -> dict[str, Any]:
    import platform

    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None
    return {"device": args.device, "gpu": gpu, "threads": torch.get_num_threads(), "cpu": platform.processor()}


def save(args: argparse.Namespace, stage: str, record: dict[str, Any]) -> None:
    record = {"stage": stage, "machine": machine(args), "args": {k: str(v) for k, v in vars(args).items()}, **record}
    (args.out / f"{stage}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k not in ("args",)}, indent=1))


def scifact(args: argparse.Namespace, size: int | None, split: str = "test") -> Any:
    from decemb.tasks import load_task

    config = {"type": "retrieval", "name": f"scifact-{size or 'all'}-{split}", "path": "scifact", "format": "beir"}
    config.update({"split": split, "limit": args.queries if split == "test" else None, "corpus_limit": size})
    return load_task(config, args.data_root)


def embedder(args: argparse.Namespace) -> Any:
    import decemb

    return decemb.load(args.model, "echo", pooling="mean", max_length=512, device=args.device, dtype=args.dtype)


def reranker(args: argparse.Namespace) -> Any:
    from decemb.rerank import load_reranker

    return load_reranker(args.model, max_length=args.rerank_max_length, device=args.device, dtype=args.dtype)


def vectors(args: argparse.Namespace, model: Any, task: Any) -> dict[str, np.ndarray]:
    path = args.out / f"vectors-{len(task.doc_ids)}.npz"
    if path.exists():
        saved = np.load(path)
        if list(saved["doc_ids"]) == task.doc_ids and list(saved["query_ids"]) == task.query_ids:
            return {"queries": saved["queries"], "corpus": saved["corpus"]}
    q = model.encode_query(task.queries, batch_size=args.batch_size)
    d = model.encode_document(task.docs, batch_size=args.batch_size, show_progress_bar=True)
    np.savez(path, queries=q, corpus=d, doc_ids=np.array(task.doc_ids), query_ids=np.array(task.query_ids))
    return {"queries": q, "corpus": d}


def score_subsets(args: argparse.Namespace, model: Any, scorer: Any) -> dict[str, Any]:
    from decemb.search import evaluate_rerank, exact_rankings

    out = {}
    for size in SUBSETS:
        task = scifact(args, size)
        rankings = exact_rankings(task, vectors(args, model, task))
        report = evaluate_rerank(task, scorer, top_k=args.rerank_top_k, rankings=rankings, show_progress=True)
        out[f"{size}-docs"] = {"queries": len(task.query_ids), "documents": len(task.doc_ids), **report.to_dict()}
    return out


def stage_quality(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    results = score_subsets(args, embedder(args), reranker(args))
    save(args, "quality", {"results": results, "seconds": round(time.perf_counter() - started, 1)})


def stage_train(args: argparse.Namespace) -> None:
    from decemb.rerank import mine_examples, train_reranker

    started = time.perf_counter()
    model = embedder(args)
    train = scifact(args, None, split="train")
    queries, corpus = dict(zip(train.query_ids, train.queries)), dict(zip(train.doc_ids, train.docs))
    mining = {"num_negatives": args.negatives, "range_max": 30, "batch_size": args.batch_size, "show_progress": True}
    examples = mine_examples(model, queries, train.relevant, corpus, **mining)
    print(f"mined {len(examples)} training queries in {time.perf_counter() - started:.0f} s", flush=True)
    runs = {}
    for loss in args.losses:
        batch_size = args.train_batch_size if loss == "bce" else max(1, args.train_batch_size // 4)
        training = {"loss": loss, "epochs": args.epochs, "batch_size": batch_size, "learning_rate": args.lr}
        result = train_reranker(reranker(args), examples, args.out / f"reranker-{loss}", **training)
        runs[loss] = {"training": result.summary(), "results": score_subsets(args, model, result.reranker)}
        seconds = round(time.perf_counter() - started, 1)  # saved after each loss: a cut-off run keeps the first
        save(args, "train", {"train_queries": len(examples), "runs": runs, "seconds": seconds})


def stage_latency(args: argparse.Namespace) -> None:
    from decemb.search import SearchIndex, SearchPipeline, latency_summary

    task = scifact(args, 1000)
    model, scorer = embedder(args), reranker(args)
    saved = vectors(args, model, task)
    with tempfile.TemporaryDirectory() as folder:
        index = SearchIndex.build(Path(folder) / "idx", task.doc_ids, task.docs, model, vectors=saved["corpus"])
        queries = task.queries[: args.latency_queries]
        pipeline = SearchPipeline(index, model, scorer, top_k=10)
        pipeline.search(queries[0], rerank_top_k=2)  # warm-up
        results = {}
        for depth in (20, 50):
            found = pipeline.search_many(queries, rerank_top_k=depth, show_progress=True)
            results[f"top-{depth}"] = latency_summary(found)
    save(args, "latency", {"queries": len(queries), "documents": len(task.doc_ids), "results": results})


def agnews_texts(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    from decemb.tasks import default_data_root

    root = Path(args.data_root) if args.data_root else default_data_root()
    with (root / "ag_news" / "test.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    texts: list[str] = [row[1].strip() for row in rows] + [row[2].strip() for row in rows]
    for row in rows:
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", row[2]) if len(s.strip()) > 20]
        texts += sentences if len(sentences) > 1 else []
    unique = sorted({" ".join(t.split()) for t in texts if t.strip()})
    random.Random(0).shuffle(unique)
    return unique[: args.ann_size], unique[args.ann_size : args.ann_size + 500]


def stage_ann_vectors(args: argparse.Namespace) -> None:
    corpus, queries = agnews_texts(args)
    model = embedder(args)
    model[0].max_seq_length = 256
    started = time.perf_counter()
    d = model.encode_document(corpus, batch_size=args.batch_size, show_progress_bar=True)
    q = model.encode_query(queries, batch_size=args.batch_size)
    half = len(corpus) // 2  # two files: each stays under the device tool's 16 MiB per returned file
    np.save(args.out / "agnews-corpus-0.npy", np.asarray(d[:half], dtype=np.float16))
    np.save(args.out / "agnews-corpus-1.npy", np.asarray(d[half:], dtype=np.float16))
    np.save(args.out / "agnews-queries.npy", np.asarray(q, dtype=np.float16))
    seconds = round(time.perf_counter() - started, 1)
    save(args, "ann-vectors", {"corpus": len(corpus), "queries": len(queries), "seconds": seconds})


def stage_ann(args: argparse.Namespace) -> None:
    import faiss

    faiss.omp_set_num_threads(torch.get_num_threads())
    parts = [np.load(args.out / f"agnews-corpus-{i}.npy") for i in (0, 1)]
    corpus = np.ascontiguousarray(np.concatenate(parts).astype(np.float32))
    queries = np.load(args.out / "agnews-queries.npy").astype(np.float32)
    faiss.normalize_L2(corpus)
    faiss.normalize_L2(queries)
    started = time.perf_counter()
    exact = faiss.IndexFlatIP(corpus.shape[1])
    exact.add(corpus)
    exact_build = time.perf_counter() - started
    started = time.perf_counter()
    _, truth = exact.search(queries, 100)
    exact_ms = 1000 * (time.perf_counter() - started) / len(queries)
    started = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(corpus.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 200
    hnsw.add(corpus)
    hnsw_build = time.perf_counter() - started
    sweep = {}
    for ef in (64, 128, 256, 512):
        hnsw.hnsw.efSearch = ef
        started = time.perf_counter()
        _, found = hnsw.search(queries, 100)
        ms = 1000 * (time.perf_counter() - started) / len(queries)
        recall = float(np.mean([len(set(a) & set(b)) / 100 for a, b in zip(found, truth)]))
        sweep[f"ef_search={ef}"] = {"recall@100": round(100 * recall, 2), "ms_per_query": round(ms, 3)}
    sizes = {"corpus": int(corpus.shape[0]), "queries": int(queries.shape[0])}
    hnsw_record = {"m": 32, "ef_construction": 200, "build_s": round(hnsw_build, 2), "sweep": sweep}
    exact_record = {"build_s": round(exact_build, 3), "ms_per_query": round(exact_ms, 3)}
    save(args, "ann", {**sizes, "exact": exact_record, "hnsw": hnsw_record})


def stage_smoke(args: argparse.Namespace) -> None:
    import os

    from decemb.rerank.recipe import run_recipe
    from decemb.rerank.recipe_config import read_recipe
    from decemb.search import rerank_rankings
    from decemb.tasks import load_task

    recipe = read_recipe(args.config)
    data = recipe.data.model_copy(update={"queries": args.train_queries})
    training = recipe.training.model_copy(update={"max_steps": args.max_steps})
    recipe = recipe.model_copy(update={"data": data, "training": training})
    name, load = f"smoke-{recipe.head}-{recipe.loss.name}", os.getloadavg()
    result = run_recipe(recipe, args.out / name, data_root=args.data_root)  # its seconds include LoRA setup, merge
    config = {"type": "retrieval", "name": "scifact-test", "path": "scifact", "split": "test", "retriever": "bm25"}
    task = load_task({**config, "limit": args.latency_queries}, args.data_root)
    top_k = args.rerank_top_k
    _, seconds = rerank_rankings(task, task.rankings({}), result.reranker, top_k, batch_size=top_k)
    record = {"config": args.config, "training": result.summary(), "max_length": recipe.model.max_length}
    record.update({"seconds_per_step_at_most": result.seconds / result.steps, "rerank_seconds_per_query": seconds})
    save(args, name, {**record, "rerank_top_k": top_k, "load_average": {"start": load, "end": os.getloadavg()}})


STAGES = {
    "quality": stage_quality,
    "train": stage_train,
    "latency": stage_latency,
    "ann-vectors": stage_ann_vectors,
    "ann": stage_ann,
    "smoke": stage_smoke,
}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    for name in [stage for stage in STAGES if stage != "smoke"] if args.stage == "all" else [args.stage]:
        print(f"== {name} ==", flush=True)
        STAGES[name](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
