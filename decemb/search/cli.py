"""``decemb search build`` / ``decemb search query``: argparse wiring for :mod:`decemb.search`.

``add_search_parser(subparsers)`` adds the ``search`` command to ``decemb``'s parser; ``run_search(args)``
runs it (:mod:`decemb.search.cli_build`, :mod:`decemb.search.cli_query`) and returns the exit
status. User errors are :class:`decemb.errors.ConfigError`\\ s (one line naming
the option, file or index folder), which the ``decemb`` entry point prints before exiting with status 2
(among them: another writer holding the index past ``--lock-wait``, a full or read-only disk).
"""

from __future__ import annotations

import argparse
from typing import Any

from decemb.cli_args import add_load_options, add_threads_option, positive_int, seconds
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
        help="index a corpus file into an index folder: vectors and BM25, or BM25 only (or add with --add)",
        description="Embed CORPUS (.jsonl: BEIR-style _id/title/text; .csv/.tsv with a header; any other file: "
        "one document per line, ids = line numbers) into the index folder INDEX, with a BM25 index of the same "
        "texts; --retriever bm25 writes the BM25 index only and loads no model.",
    )
    build.add_argument("corpus", metavar="CORPUS")
    build.add_argument("index", metavar="INDEX")
    built = "what the index serves: dense/hybrid (vectors and BM25, the default) or bm25 (BM25 only: no model, fast)"
    build.add_argument("--retriever", choices=["dense", "bm25", "hybrid"], default="dense", help=built)
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
    add_load_options(build)
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
    rerank = (
        "decoder reranker: alias, folder, .gguf or Hub id (not shown to help: zero-shot SmolLM2-135M lowers "
        "SciFact nDCG@10, and no trained one has been measured above its first stage; docs/retrieval.md)"
    )
    query.add_argument("--reranker", metavar="SOURCE", help=rerank)
    query.add_argument("--reranker-adapter", metavar="DIR", help="PEFT adapter merged into the reranker")
    query.add_argument("--rerank-top-k", type=positive_int, default=20, metavar="K", help="candidates reranked")
    query.add_argument("--rerank-max-length", type=positive_int, default=512, metavar="N")
    query.add_argument("--rerank-batch-size", type=positive_int, default=16, metavar="N")
    query.add_argument("--model", help="load the bi-encoder from here instead of the index's recorded source")
    add_load_options(query)
    query.add_argument("--json", action="store_true", help="one JSON object per query on stdout")
    query.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    add_threads_option(query)
    return search


def run_search(args: argparse.Namespace) -> int:
    """Run ``decemb search build|query``; returns the exit status (user errors raise ``ConfigError``)."""
    if args.search_command == "build":
        from decemb.search.cli_build import run_build

        return run_build(args)
    if args.search_command == "query":
        from decemb.search.cli_query import run_query

        return run_query(args)
    raise ConfigError(f"unknown search action {args.search_command!r}", key="search")
