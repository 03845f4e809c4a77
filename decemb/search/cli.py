"""``decemb search build`` / ``decemb search query``: argparse wiring for :mod:`decemb.search`.

``add_search_parser(subparsers)`` adds the ``search`` command to ``decemb``'s parser; ``run_search(args)``
runs it and returns the exit status. User errors are :class:`decemb.errors.ConfigError`\\ s (one line naming
the option, file or index folder), which the ``decemb`` entry point prints before exiting with status 2
(among them: another writer holding the index past ``--lock-wait``, a full or read-only disk).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from decemb.cli_args import add_threads_option, positive_int, seconds
from decemb.errors import ConfigError

__all__ = ["add_search_parser", "run_search"]


def add_search_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``search`` (with ``build`` and ``query``) to an argparse sub-parser collection."""
    search = subparsers.add_parser(
        "search",
        help="index a corpus with a bi-encoder and search it, optionally reranking with a decoder",
        description="Build a vector index of a corpus (build) and search it, with an optional reranker (query).",
    )
    actions = search.add_subparsers(dest="search_command", metavar="ACTION")
    actions.required = True

    build = actions.add_parser(
        "build",
        help="embed a corpus file into an index folder (or add to one with --add)",
        description="Embed CORPUS (.jsonl: BEIR-style _id/title/text; .csv/.tsv with a header; any other file: "
        "one document per line, ids = line numbers) into the index folder INDEX.",
    )
    build.add_argument("corpus", metavar="CORPUS")
    build.add_argument("index", metavar="INDEX")
    build.add_argument("--model", help="alias, local folder, .gguf file or Hub id (default with --add: the index's)")
    build.add_argument("--strategy", help="strategy name (default: echo; with --add: the index's)")
    build.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="strategy option (repeatable)"
    )
    build.add_argument("--max-length", type=positive_int, metavar="N", help="tokens per input (default: 512)")
    build.add_argument("--layer", type=int, help="hidden layer to pool (default: the last)")
    build.add_argument(
        "--kind", choices=["auto", "exact", "hnsw"], default="auto", help="exact or HNSW (default: auto)"
    )
    build.add_argument("--hnsw-m", type=positive_int, default=32, metavar="M", help="HNSW links per node")
    build.add_argument("--ef-construction", type=positive_int, default=200, metavar="N")
    build.add_argument("--ef-search", type=positive_int, default=128, metavar="N", help="HNSW search breadth")
    build.add_argument("--id-field", metavar="NAME", help="id key/column (default: _id, else id)")
    build.add_argument("--text-field", action="append", metavar="NAME", help="text key/column (repeatable)")
    build.add_argument("--batch-size", type=positive_int, default=32, metavar="N")
    build.add_argument("--dtype", help="float32, bfloat16 or float16 (default: float32 on CPU)")
    build.add_argument("--device", help="e.g. cpu or cuda")
    mode = build.add_mutually_exclusive_group()
    mode.add_argument("--add", action="store_true", help="add the corpus's documents to an existing index")
    mode.add_argument("--overwrite", action="store_true", help="replace an existing index")
    wait = "seconds to wait for another process writing INDEX (default: 600)"
    build.add_argument("--lock-wait", type=seconds, default=600.0, metavar="SECONDS", help=wait)
    build.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    from decemb.distributed.command import add_ray_options

    add_threads_option(build)
    add_ray_options(build.add_argument_group("embedding the corpus on Ray (a new index, not --add)"))

    query = actions.add_parser(
        "query",
        help="search an index, optionally reranking the top candidates",
        description="Search INDEX for each QUERY (or each line of --queries), embedding with the index's model.",
    )
    query.add_argument("index", metavar="INDEX")
    query.add_argument("queries", metavar="QUERY", nargs="*")
    query.add_argument("--queries", dest="queries_file", metavar="FILE", help="a file with one query per line")
    query.add_argument("--top-k", type=positive_int, default=10, metavar="K", help="results per query (default: 10)")
    retrievers = "first stage: the index's vectors (dense), its BM25 index (bm25: no model loads) or both fused"
    query.add_argument("--retriever", choices=["dense", "bm25", "hybrid"], default="dense", help=retrievers)
    fusion = "how hybrid fuses: min-max weighted scores (weighted, the default) or reciprocal rank fusion (rrf)"
    query.add_argument("--fusion", choices=["rrf", "weighted"], default="weighted", help=fusion)
    weights = "hybrid weights of the BM25 and the dense list (default: 0.8 0.2, measured on SciFact train)"
    query.add_argument("--fusion-weights", type=float, nargs=2, metavar=("BM25", "DENSE"), help=weights)
    rerank = "decoder reranker: alias, folder, .gguf or Hub id (SmolLM2-135M lowers SciFact nDCG@10: docs/retrieval.md)"
    query.add_argument("--reranker", metavar="SOURCE", help=rerank)
    query.add_argument("--reranker-adapter", metavar="DIR", help="PEFT adapter merged into the reranker")
    query.add_argument("--rerank-top-k", type=positive_int, default=20, metavar="K", help="candidates reranked")
    query.add_argument("--rerank-max-length", type=positive_int, default=512, metavar="N")
    query.add_argument("--rerank-batch-size", type=positive_int, default=16, metavar="N")
    query.add_argument("--model", help="load the bi-encoder from here instead of the index's recorded source")
    query.add_argument("--dtype", help="float32, bfloat16 or float16 (default: float32 on CPU)")
    query.add_argument("--device", help="e.g. cpu or cuda")
    query.add_argument("--json", action="store_true", help="one JSON object per query on stdout")
    query.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    add_threads_option(query)
    return search


def _embedder(source: str, strategy: Any, settings: dict[str, Any], args: argparse.Namespace, key: str) -> Any:
    import decemb
    from decemb.errors import ModelSourceError
    from decemb.progress import transformers_progress

    try:
        with transformers_progress(not args.quiet):
            return decemb.load(source, strategy, dtype=args.dtype, device=args.device, **settings)
    except ModelSourceError as error:
        raise ConfigError(str(error), key=key) from None
    except ValueError as error:  # a layer out of range, a template with no room within max_length
        raise ConfigError(str(error), key="--strategy") from None


def _recorded(index_folder: str) -> dict[str, Any]:
    from decemb.search.store import read_manifest

    return dict(read_manifest(Path(index_folder).expanduser()).get("model") or {})


def _build(args: argparse.Namespace) -> int:
    from decemb.distributed.command import ray_options
    from decemb.encode import build_checked_strategy, parse_options
    from decemb.search import SearchIndex, read_corpus

    ids, texts = read_corpus(args.corpus, id_field=args.id_field, text_fields=args.text_field)
    recorded = _recorded(args.index) if args.add else {}
    source = args.model or recorded.get("source")
    if not source:
        raise ConfigError("required (the index records no model source)" if args.add else "required", key="--model")
    if args.strategy or not recorded:
        strategy = build_checked_strategy(args.strategy or "echo", parse_options(args.option))
    else:
        saved = recorded.get("strategy") or {}
        strategy = build_checked_strategy(
            saved.get("name", "echo"), {**saved.get("options", {}), **parse_options(args.option)}
        )
    settings = {key: value for key, value in (recorded.get("settings") or {}).items() if key != "max_seq_length"}
    settings.update({k: v for k, v in {"max_length": args.max_length, "layer": args.layer}.items() if v is not None})
    ray = ray_options(args)
    if ray is not None and args.add:
        raise ConfigError("--add embeds in-process; build a new index (or --overwrite) to use Ray", key="--ray")
    model = _embedder(source, strategy, settings, args, "--model")
    vectors = None if ray is None else _vectors_on_ray(args, source, strategy, settings, ids, texts, ray)
    common = {"batch_size": args.batch_size, "show_progress": not args.quiet, "lock_wait": args.lock_wait}
    if args.add:
        index = SearchIndex.open(args.index, model)
        added = index.add(ids, texts, model, **common)
        print(f"decemb: added {added} documents to {args.index} ({index.count} in all, {index.kind})", file=sys.stderr)
        return 0
    index = SearchIndex.build(
        args.index,
        ids,
        texts,
        model,
        source=source,
        kind=args.kind,
        hnsw_m=args.hnsw_m,
        ef_construction=args.ef_construction,
        ef_search=args.ef_search,
        overwrite=args.overwrite,
        vectors=vectors,
        **common,
    )
    print(f"decemb: indexed {index.count} documents ({index.dim}-d, {index.kind}) into {args.index}", file=sys.stderr)
    return 0


def _vectors_on_ray(
    args: argparse.Namespace,
    source: str,
    strategy: Any,
    settings: dict[str, Any],
    ids: list[str],
    texts: list[str],
    ray: Any,
) -> Any:
    """The corpus's document vectors from a sharded run on Ray (same model, strategy and settings as the
    index records), in corpus order."""
    import tempfile

    from decemb.distributed import EncodeJob, encode_shards, open_source, read_vectors

    with tempfile.TemporaryDirectory(prefix="decemb-index-") as scratch:
        corpus = Path(scratch) / "corpus.jsonl"
        with corpus.open("w", encoding="utf-8") as handle:
            for doc_id, text in zip(ids, texts, strict=True):
                handle.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
        job = EncodeJob(
            source, strategy.name, strategy.options(), dict(settings, batch_size=args.batch_size), "document",
            dtype=args.dtype, device=args.device, quiet=args.quiet,
        )  # fmt: skip
        shards = Path(scratch) / "shards"
        encode_shards(job, open_source(corpus, "text", "id"), shards, ray=ray, show_progress=not args.quiet)
        got, vectors = read_vectors(shards)
    if list(got) != list(ids):  # pragma: no cover - read_vectors returns input order
        raise RuntimeError("the shard run returned the corpus out of order")
    return vectors


def _read_queries(args: argparse.Namespace) -> list[str]:
    queries = list(args.queries)
    if args.queries_file:
        path = Path(args.queries_file).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read queries ({type(error).__name__})", file=path) from None
        queries += [line.strip() for line in lines if line.strip()]
    if not queries:
        raise ConfigError("give at least one QUERY or --queries FILE", key="QUERY")
    return queries


def _query_embedder(args: argparse.Namespace) -> Any:
    """The bi-encoder recorded in the index (or ``--model``), loaded with the index's strategy and settings."""
    recorded = _recorded(args.index)
    source = args.model or recorded.get("source")
    if not source:
        raise ConfigError("the index records no model source; pass --model", key="--model")
    strategy = recorded.get("strategy") or {}
    settings = {key: value for key, value in (recorded.get("settings") or {}).items() if key != "max_seq_length"}
    options = {**strategy.get("options", {}), **settings}
    return _embedder(source, strategy.get("name", "mean"), options, args, "--model")


def _query(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from decemb.errors import ModelSourceError, pydantic_message
    from decemb.search import SearchIndex, SearchPipeline, latency_summary
    from decemb.search.fusion import FusionSettings

    queries = _read_queries(args)
    try:
        chosen = {"weights": tuple(args.fusion_weights)} if args.fusion_weights else {}
        fusion = FusionSettings(method=args.fusion, **chosen)
    except ValidationError as error:
        raise ConfigError(pydantic_message(error.errors()[0]), key="--fusion-weights") from None
    model = _query_embedder(args) if args.retriever != "bm25" else None
    index = SearchIndex.open(args.index, model)
    reranker = None
    if args.reranker:
        from decemb.rerank import load_reranker

        try:
            reranker = load_reranker(
                args.reranker,
                max_length=args.rerank_max_length,
                dtype=args.dtype,
                device=args.device,
                adapter=args.reranker_adapter,
            )
        except ModelSourceError as error:
            raise ConfigError(str(error), key="--reranker") from None
    pipeline = SearchPipeline(
        index,
        model,
        reranker,
        top_k=args.top_k,
        rerank_top_k=args.rerank_top_k,
        rerank_batch_size=args.rerank_batch_size,
        check=False,
        retriever=args.retriever,
        fusion=fusion,
    )
    try:
        found = pipeline.search_many(queries, show_progress=not args.quiet and len(queries) > 1)
    except ValueError as error:  # e.g. a query that leaves the reranker no room for a document
        if isinstance(error, ConfigError):
            raise
        from decemb.rerank import PairTooLongError

        key = "--rerank-max-length" if isinstance(error, PairTooLongError) else "QUERY"
        raise ConfigError(str(error), key=key) from None
    for item in found:
        if args.json:
            record = item.to_dict()
            record["timings"] = {stage: round(1000 * value, 3) for stage, value in item.timings.items()}
            print(json.dumps(record, ensure_ascii=False))
            continue
        print(f"query: {item.query}")
        print(f"  {'rank':>4}  {'doc id':<16} {'retrieval':>9}  {'rerank':>8}  text")
        for result in item.results:
            rerank = "" if result.rerank_score is None else f"{result.rerank_score:8.3f}"
            snippet = " ".join(result.text.split())[:70]
            print(f"  {result.rank:>4}  {result.doc_id[:16]:<16} {result.retrieval_score:9.4f}  {rerank:>8}  {snippet}")
    summary = latency_summary(found)
    shown = [stage for stage in summary if stage != "total" and summary[stage]["mean_ms"] > 0]  # stages that ran
    stages = ", ".join(f"{stage} {summary[stage]['mean_ms']:.1f} ms" for stage in shown)
    print(f"decemb: {len(found)} queries; mean latency per query: {stages}", file=sys.stderr)
    return 0


def run_search(args: argparse.Namespace) -> int:
    """Run ``decemb search build|query``; returns the exit status (user errors raise ``ConfigError``)."""
    if args.search_command == "build":
        return _build(args)
    if args.search_command == "query":
        return _query(args)
    raise ConfigError(f"unknown search action {args.search_command!r}", key="search")
