"""``decemb search build``: a new index of a corpus file (vectors and BM25, or ``--retriever bm25``: BM25
only, no model loaded), or ``--add`` to an existing one (the index's own model, strategy and settings)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from decemb.cli_args import load_options_from_args
from decemb.errors import ConfigError
from decemb.search.cli_models import load_embedder, recorded_manifest, recorded_settings

__all__ = ["run_build"]

_MODEL_FLAGS = (("model", "--model"), ("strategy", "--strategy"), ("option", "--option"), ("layer", "--layer"))


def _lexical_only(args: argparse.Namespace, recorded: dict[str, Any] | None) -> bool:
    """Whether this build writes no vectors; flags that only a vector index uses are refused with it."""
    from decemb.search.store import LEXICAL_ONLY

    if recorded is not None:  # --add: the index's kind decides
        lexical = recorded.get("kind") == LEXICAL_ONLY
        if args.retriever == "bm25" and not lexical:
            message = "the index holds vectors; --add embeds with its model (drop --retriever)"
            raise ConfigError(message, key="--retriever")
        if lexical and (args.model or args.strategy):
            raise ConfigError("the index is BM25 only (no model); adding to it loads none", key="--model")
        return lexical
    if args.retriever != "bm25":
        return False
    vector_flags = (*_MODEL_FLAGS, ("max_length", "--max-length"), ("ray", "--ray"), ("ray_address", "--ray-address"))
    for attribute, flag in vector_flags:
        value = getattr(args, attribute, None)
        if not (value is None or value is False or value == []):  # --layer 0 counts as given
            raise ConfigError(f"--retriever bm25 builds a BM25 index only and loads no model; drop {flag}", key=flag)
    return True


def run_build(args: argparse.Namespace) -> int:
    from decemb.distributed.command import ray_options
    from decemb.encode import parse_options
    from decemb.search import SearchIndex, read_corpus
    from decemb.strategy_entry import build_checked_strategy

    manifest = recorded_manifest(args.index) if args.add else None
    lexical = _lexical_only(args, manifest)
    ids, texts = read_corpus(args.corpus, id_field=args.id_field, text_fields=args.text_field)
    common = {"show_progress": not args.quiet, "lock_wait": args.lock_wait}
    if lexical:
        if args.add:
            added = SearchIndex.open(args.index).add(ids, texts, None, **common)
            print(f"decemb: added {added} documents to {args.index} (BM25 only)", file=sys.stderr)
            return 0
        index = SearchIndex.build(args.index, ids, texts, None, overwrite=args.overwrite, **common)
        print(f"decemb: indexed {index.count} documents (BM25 only, no vectors) into {args.index}", file=sys.stderr)
        return 0
    recorded = dict((manifest or {}).get("model") or {})
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
    settings = recorded_settings(recorded)
    settings.update({k: v for k, v in {"max_length": args.max_length, "layer": args.layer}.items() if v is not None})
    ray = ray_options(args)
    if ray is not None and args.add:
        raise ConfigError("--add embeds in-process; build a new index (or --overwrite) to use Ray", key="--ray")
    model = load_embedder(source, strategy, settings, args, "--model")
    vectors = None if ray is None else _vectors_on_ray(args, source, strategy, settings, ids, texts, ray)
    common["batch_size"] = args.batch_size
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
            loading=load_options_from_args(args), quiet=args.quiet,
        )  # fmt: skip
        shards = Path(scratch) / "shards"
        encode_shards(job, open_source(corpus, "text", "id"), shards, ray=ray, show_progress=not args.quiet)
        got, vectors = read_vectors(shards)
    if list(got) != list(ids):  # pragma: no cover - read_vectors returns input order
        raise RuntimeError("the shard run returned the corpus out of order")
    return vectors
