"""``decemb search query``: each query through :class:`~decemb.search.SearchPipeline` (the index's first
stage, optionally a reranker), printed as a table or as one JSON object per query, with per-stage latency."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from decemb.errors import ConfigError
from decemb.search.cli_models import load_embedder, load_query_reranker, recorded_manifest, recorded_settings

__all__ = ["run_query"]


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
    """The bi-encoder recorded in the index (or ``--model``), loaded with the index's strategy and settings;
    ``None`` for ``--retriever bm25``. An index without vectors is refused before any model loads."""
    from decemb.search.errors import NoVectorsError
    from decemb.search.store import LEXICAL_ONLY

    manifest = recorded_manifest(args.index)
    if args.retriever == "bm25":
        return None
    if manifest.get("kind") == LEXICAL_ONLY:
        raise NoVectorsError(Path(args.index).expanduser(), f"search with --retriever {args.retriever}")
    recorded = dict(manifest.get("model") or {})
    source = args.model or recorded.get("source")
    if not source:
        raise ConfigError("the index records no model source; pass --model", key="--model")
    strategy = recorded.get("strategy") or {}
    options = {**strategy.get("options", {}), **recorded_settings(recorded)}
    return load_embedder(source, strategy.get("name", "mean"), options, args, "--model")


def _fusion(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from decemb.errors import pydantic_message
    from decemb.search.fusion import FusionSettings

    try:
        chosen = {"weights": tuple(args.fusion_weights)} if args.fusion_weights else {}
        return FusionSettings(method=args.fusion, **chosen)
    except ValidationError as error:
        raise ConfigError(pydantic_message(error.errors()[0]), key="--fusion-weights") from None


def run_query(args: argparse.Namespace) -> int:
    from decemb.search import SearchIndex, SearchPipeline, latency_summary

    queries = _read_queries(args)
    fusion = _fusion(args)
    model = _query_embedder(args)
    index = SearchIndex.open(args.index, model)
    reranker = load_query_reranker(args)
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
        _print(item, args.json)
    summary = latency_summary(found)
    shown = [stage for stage in summary if stage != "total" and summary[stage]["mean_ms"] > 0]  # stages that ran
    stages = ", ".join(f"{stage} {summary[stage]['mean_ms']:.1f} ms" for stage in shown)
    print(f"decemb: {len(found)} queries; mean latency per query: {stages}", file=sys.stderr)
    return 0


def _print(item: Any, as_json: bool) -> None:
    if as_json:
        record = item.to_dict()
        record["timings"] = {stage: round(1000 * value, 3) for stage, value in item.timings.items()}
        print(json.dumps(record, ensure_ascii=False))
        return
    print(f"query: {item.query}")
    print(f"  {'rank':>4}  {'doc id':<16} {'retrieval':>9}  {'rerank':>8}  text")
    for result in item.results:
        rerank = "" if result.rerank_score is None else f"{result.rerank_score:8.3f}"
        snippet = " ".join(result.text.split())[:70]
        print(f"  {result.rank:>4}  {result.doc_id[:16]:<16} {result.retrieval_score:9.4f}  {rerank:>8}  {snippet}")
