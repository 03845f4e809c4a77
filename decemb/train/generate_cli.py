"""``decemb generate-queries CORPUS --model SOURCE --out FILE``: argparse wiring for
:mod:`decemb.train.query_generation` (no heavy import until it runs).

``add_generate_parser(subparsers)`` adds the command; ``run_generate(args)`` runs it and returns the exit
status. The corpus, the settings and the output file are checked before the model loads; every problem is a
one-line :class:`decemb.errors.ConfigError` naming the option, the file or the document.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from decemb.cli_args import add_load_options, add_threads_option, integer, load_options_from_args, positive_int

__all__ = ["add_generate_parser", "filtered_path", "run_generate"]

DESCRIPTION = (
    "Write search queries that the model itself generates for the documents of CORPUS (InPars / GPL style) to "
    "FILE, a JSONL of doc_id, query, document and score (the query's mean token log-probability): (query -> "
    "document) training pairs for `decemb train` (data: {path: FILE, columns: {anchor: query, positive: document}}). "
    "CORPUS is read as `decemb search build` reads it (.jsonl: _id/id and title + text; .csv/.tsv with a header; "
    "else one document per line). Running the same command again resumes a killed run."
)
# Options passed to the library under the same name.
SETTINGS = ("per_document", "max_new_tokens", "max_document_tokens", "batch_size", "temperature", "top_p", "seed")


def add_generate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``generate-queries`` to an argparse sub-parser collection."""
    parser = subparsers.add_parser(
        "generate-queries",
        help="write queries the model generates for a corpus (training pairs)",
        description=DESCRIPTION,
    )
    parser.add_argument("corpus", metavar="CORPUS", help="corpus file (.jsonl, .csv, .tsv or one text per line)")
    parser.add_argument("--model", required=True, metavar="SOURCE", help="alias, .gguf file, folder or Hub id")
    parser.add_argument("--out", required=True, metavar="FILE", help="output JSONL (appended to when resuming)")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="the first N documents only")
    parser.add_argument("--per-document", type=positive_int, default=1, metavar="K", help="queries per document")
    parser.add_argument("--max-new-tokens", type=positive_int, default=32, metavar="N", help="tokens per query")
    parser.add_argument(
        "--max-document-tokens", type=positive_int, default=256, metavar="N", help="documents cut to N tokens"
    )
    parser.add_argument("--batch-size", type=positive_int, default=8, metavar="N", help="documents per batch")
    parser.add_argument(
        "--temperature", type=float, default=0.0, metavar="T", help="0: greedy (default); > 0: nucleus sampling"
    )
    parser.add_argument("--top-p", type=float, default=0.95, metavar="P", help="nucleus mass when sampling")
    parser.add_argument("--seed", type=integer, default=0, metavar="S", help="sampling seed (default: 0)")
    parser.add_argument("--instruction", metavar="TEXT", help="the request after the document (chat templates)")
    parser.add_argument("--no-examples", action="store_true", help="no demonstrations before the document")
    parser.add_argument(
        "--keep-top",
        type=float,
        metavar="F",
        help="also write the fraction F of the queries with the highest scores to FILE's stem + .topNN.jsonl",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    add_load_options(parser)
    add_threads_option(parser)
    return parser


def filtered_path(out: str | Path, fraction: float) -> Path:
    """Where ``--keep-top`` writes: ``queries.jsonl`` with 0.5 → ``queries.top50.jsonl``."""
    path = Path(out)
    return path.with_name(f"{path.stem}.top{round(fraction * 100)}{path.suffix or '.jsonl'}")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from decemb.errors import ConfigError
    from decemb.train.query_generation import generation_settings

    values = {name: getattr(args, name) for name in SETTINGS}
    if args.instruction is not None:
        values["instruction"] = args.instruction
    if args.no_examples:
        values["examples"] = ()
    try:
        generation_settings(**values)
    except ConfigError as error:
        raise ConfigError(error.detail, key="--" + (error.key or "settings").replace("_", "-")) from None
    if args.keep_top is not None and not 0 < args.keep_top <= 1:
        raise ConfigError(f"must be in (0, 1], got {args.keep_top}", key="--keep-top")
    return values


def run_generate(args: argparse.Namespace) -> int:
    """Run ``decemb generate-queries``; returns 0 (a ``ConfigError`` propagates for the CLI to print)."""
    from decemb.search.corpus import read_corpus
    from decemb.threads import set_threads
    from decemb.train.query_generation import check_output, generation_settings

    set_threads(getattr(args, "threads", None))
    ids, texts = read_corpus(args.corpus)
    documents = list(zip(ids, texts))[: args.limit]
    settings = _settings(args)
    check_output(args.out, generation_settings(**settings))
    loading = load_options_from_args(args)

    from decemb.rerank.loading import load_causal_lm
    from decemb.train.query_generation import generate_queries

    model, tokenizer = load_causal_lm(args.model, loading)
    began = time.perf_counter()

    def progress(report: Any) -> None:
        if not args.quiet:
            seconds = time.perf_counter() - began
            done = min(report.skipped + report.batches * settings["batch_size"], report.documents)
            print(
                f"decemb generate-queries: {done}/{report.documents} documents, {report.written} queries, "
                f"{seconds / max(report.written, 1):.2f} s/query",
                file=sys.stderr,
            )

    report = generate_queries((model, tokenizer), documents, args.out, on_batch=progress, **settings)
    dropped = ", ".join(f"{count} {reason}" for reason, count in report.dropped.items())
    print(
        f"decemb generate-queries: wrote {report.written} queries to {args.out} in {time.perf_counter() - began:.1f} s "
        f"({report.skipped} documents done before; dropped: {dropped}; {report.unfinished} cut at --max-new-tokens)",
        file=sys.stderr,
    )
    if args.keep_top is not None:
        from decemb.train.query_generation import keep_top

        target = filtered_path(args.out, args.keep_top)
        kept, total = keep_top(args.out, target, args.keep_top)
        print(f"decemb generate-queries: kept the top {kept} of {total} queries by score in {target}", file=sys.stderr)
    return 0
