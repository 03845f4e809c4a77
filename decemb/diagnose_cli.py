"""``decemb diagnose MODEL``: argparse wiring for :mod:`decemb.diagnose` (no heavy import until it runs).

``add_diagnose_parser(subparsers)`` adds the command to ``decemb``'s parser; ``run_diagnose(args)`` runs it
and returns the exit status. User errors are :class:`decemb.errors.ConfigError` (one line naming the
option or file), which the ``decemb`` entry point prints before exiting with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from decemb.cli_args import (
    add_load_options,
    add_threads_option,
    integer,
    load_options_from_args,
    positive_int,
    user_errors,
)

__all__ = ["add_diagnose_parser", "run_diagnose"]

HELP = "discrimination gap (with histograms) and echo probe of a model, per strategy"
DESCRIPTION = (
    "For each strategy (default: every registered one; a saved decemb folder: its own), measure the discrimination "
    "gap (mean cosine of related minus random pairs, STS-B test by default) and run the echo probe (is a shared "
    "prefix A closer in 'A B' and 'A B+' than in 'A B-'?). Prints a table and writes diagnose.json, diagnose.txt "
    "and gap.png into --out."
)
# Options passed to DiagnoseSettings under the same name.
SAME_NAMES = ("data_root", "limit", "related_min", "unrelated_max", "probe_file", "probe_limit", "batch_size")


def add_diagnose_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``diagnose`` to an argparse sub-parser collection."""
    parser = subparsers.add_parser("diagnose", help=HELP, description=DESCRIPTION)
    parser.add_argument("model", metavar="MODEL", help="alias, local folder, .gguf file, Hub id or saved decemb folder")
    parser.add_argument(
        "--strategy", action="append", metavar="NAME", help="strategy to diagnose (repeatable; default: all)"
    )
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="strategy option (with one --strategy)"
    )
    parser.add_argument("--only", choices=["gap", "probe"], help="run only the gap or only the echo probe")
    parser.add_argument("--pairs", metavar="PATH", help="labelled pair file (default: stsbenchmark/sts-test.csv)")
    parser.add_argument("--format", choices=["stsb", "csv", "tsv", "jsonl"], default="stsb", help="pair file format")
    parser.add_argument(
        "--columns", metavar="T1,T2,SCORE", default="sentence1,sentence2,score", help="pair columns (csv/tsv/jsonl)"
    )
    parser.add_argument("--limit", type=positive_int, default=400, metavar="N", help="pairs sampled (default: 400)")
    parser.add_argument("--related-min", type=float, default=4.0, metavar="S", help="related: gold >= S (default 4)")
    parser.add_argument("--unrelated-max", type=float, default=1.0, metavar="S", help="low-scored: gold <= S")
    parser.add_argument("--probe-file", metavar="PATH", help="probe items (.jsonl of a/b/b_plus/b_minus texts)")
    parser.add_argument("--probe-limit", type=positive_int, metavar="N", help="use the first N probe items")
    parser.add_argument("--data-root", metavar="DIR", help="folder data paths are relative to ($DECEMB_DATA)")
    parser.add_argument("--out", metavar="DIR", default="runs/diagnose", help="output folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="write into a folder holding files decemb did not write")
    parser.add_argument("--max-length", type=positive_int, metavar="N", help="tokens per input (default: 512)")
    parser.add_argument("--layer", type=integer, help="hidden layer to pool (default: the last)")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N")
    add_load_options(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    add_threads_option(parser)
    return parser


def _strategies(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]] | None:
    from decemb.encode import parse_options
    from decemb.errors import ConfigError
    from decemb.strategy_entry import build_checked_strategy

    options = parse_options(args.option)
    if not args.strategy:
        if options:
            raise ConfigError("--option needs exactly one --strategy", key="--option")
        return None
    if options and len(args.strategy) != 1:
        raise ConfigError("--option needs exactly one --strategy", key="--option")
    for name in args.strategy:
        build_checked_strategy(name, options)
    return [(name, options) for name in args.strategy]


def _settings(args: argparse.Namespace) -> Any:
    from decemb.diagnose.run import DiagnoseSettings
    from decemb.errors import ConfigError

    columns = tuple(part.strip() for part in args.columns.split(","))
    if len(columns) != 3 or not all(columns):
        raise ConfigError(f"expected three comma-separated column names, got {args.columns!r}", key="--columns")
    encode = {"max_length": args.max_length, "layer": args.layer}
    return DiagnoseSettings(
        **{name: getattr(args, name) for name in SAME_NAMES},
        gap=args.only != "probe",
        probe=args.only != "gap",
        pairs=args.pairs or DiagnoseSettings.pairs,
        pairs_format=args.format,
        columns=columns,  # type: ignore[arg-type]
        encode={key: value for key, value in encode.items() if value is not None},
    )


def run_diagnose(args: argparse.Namespace) -> int:
    """Run ``decemb diagnose``; returns the exit status."""
    from decemb.diagnose.probeset import ProbeSetError
    from decemb.errors import ConfigError
    from decemb.outputs import OutputFolder
    from decemb.threads import set_threads

    set_threads(getattr(args, "threads", None))
    strategies, settings = _strategies(args), _settings(args)
    loading = load_options_from_args(args)
    with OutputFolder(args.out, force=args.force, key="--out") as out:
        from decemb.diagnose.report import format_table, plot_histograms
        from decemb.diagnose.run import diagnose, to_json
        from decemb.errors import ModelSourceError

        report = None if args.quiet else (lambda line: print(f"decemb diagnose: {line}", file=sys.stderr))
        try:
            results = diagnose(args.model, strategies, settings, load=loading.loading_kwargs(), report=report)
        except ProbeSetError as error:
            raise ConfigError(str(error), key="--probe-file") from None
        except ModelSourceError as error:
            raise ConfigError(str(error), key="MODEL") from None
        table = format_table(results)

        def write(folder: Any) -> list[str]:
            record = {"model": args.model, "settings": dict(vars(args)), "results": to_json(results)}
            (folder / "diagnose.json").write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
            (folder / "diagnose.txt").write_text(table, encoding="utf-8")
            names = ["diagnose.json", "diagnose.txt"]
            if settings.gap:
                plot_histograms(results, folder / "gap.png", f"discrimination gap: {args.model}")
                names.append("gap.png")
            return names

        written = out.commit(write)
    sys.stdout.write(json.dumps(to_json(results), indent=1, default=str) + "\n" if args.json else table)
    print(f"decemb diagnose: wrote {', '.join(written)} to {out.path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m decemb.diagnose_cli MODEL ...``: the same as ``decemb diagnose MODEL ...``."""

    parser = argparse.ArgumentParser(prog="decemb")
    add_diagnose_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["diagnose", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run_diagnose(args)
    except user_errors() as error:
        print(f"decemb diagnose: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
