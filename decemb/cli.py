"""The ``decemb`` command line: ``compare``, ``encode``, ``train``, ``search`` and ``strategies``; a thin layer over
the library.

Exit status: 0 on success, 2 on a bad config, option or input (one line on stderr naming the key or
file, with a "did you mean" suggestion for unknown names; no traceback), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from decemb.cli_args import add_threads_option, positive_int, user_errors

USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors print one line (plus the usage) and raise instead of exiting the process."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise _UsageError(f"{self.prog}: error: {message}")


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    from decemb import __version__
    from decemb.settings import EncodeSettings

    defaults = EncodeSettings()

    parser = _Parser(prog="decemb", description="Decoder-only language models as text embedders.")
    parser.add_argument("--version", action="version", version=f"decemb {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    compare = commands.add_parser(
        "compare",
        help="run every model × strategy × layer × task of a YAML config and report the results",
        description="Run every model × strategy × layer × task of CONFIG; write results.json, results.csv, "
        "run.json, report.md and a PNG chart per task into the output folder; print the report.",
    )
    compare.add_argument("config", metavar="CONFIG", help="comparison config (YAML)")
    compare.add_argument("--out", metavar="DIR", help="output folder (default: the config's output)")
    compare.add_argument("--limit", metavar="N", type=positive_int, help="cap every task at N items")
    compare.add_argument("--device", help="device for every model, e.g. cpu or cuda (default: cuda if available)")
    compare.add_argument(
        "--data-root", metavar="DIR", help="folder that task paths are relative to (overrides $DECEMB_DATA)"
    )
    compare.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    compare.add_argument(
        "--force", action="store_true", help="write into an output folder that holds files decemb did not write"
    )
    compare.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    add_threads_option(compare)

    from decemb.distributed.command import add_encode_parser

    add_encode_parser(commands, defaults)

    from decemb.diagnose_cli import add_diagnose_parser
    from decemb.search.cli import add_search_parser
    from decemb.serve.cli import add_serve_parser
    from decemb.train.cli import add_train_parser

    add_train_parser(commands)
    from decemb.train.generate_cli import add_generate_parser

    add_generate_parser(commands)
    add_search_parser(commands)
    add_diagnose_parser(commands)
    add_serve_parser(commands)

    strategies = commands.add_parser(
        "strategies", help="list the strategies and their options", description="List the registered strategies."
    )
    strategies.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


# -- commands ------------------------------------------------------------------------------------


def _compare(args: argparse.Namespace) -> int:
    from decemb.compare import format_report, load_config, run_comparison, write_outputs
    from decemb.outputs import OutputFolder

    config = load_config(args.config)
    if args.threads is None and config.threads is not None:  # the command line wins over the config
        from decemb.threads import set_threads

        set_threads(config.threads)
    title = f"decemb comparison: {args.config}"
    # Checked and locked before any model loads: a bad or busy output folder costs nothing.
    with OutputFolder(args.out or config.output_dir(), force=args.force, key="--out") as out:

        def save_partial(results: Any) -> None:
            write_outputs(results, out, plots=False, report=format_report(results, title=title))

        results = run_comparison(
            config,
            data_root=args.data_root,
            limit=args.limit,
            device=args.device,
            cache=False if args.no_cache else None,
            show_progress=not args.quiet,
            on_progress=save_partial,
        )
        report = format_report(results, title=title)
        written = write_outputs(results, out, report=report)
    sys.stdout.write(report)
    sys.stdout.flush()
    print(f"decemb: wrote {', '.join(written)} to {out.path}", file=sys.stderr)
    return 0


def _encode(args: argparse.Namespace) -> int:
    from decemb.distributed.command import run_encode

    return run_encode(args)


def _format_option(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _choices(strategy: str, option: str) -> str:
    """`` {mean|last}`` for a Literal-typed option, else nothing."""
    import typing

    from decemb.strategies import STRATEGIES

    annotation = STRATEGIES.get(strategy).model_fields[option].annotation
    if typing.get_origin(annotation) is typing.Literal:
        return " {" + "|".join(str(choice) for choice in typing.get_args(annotation)) + "}"
    return ""


def _strategies(args: argparse.Namespace) -> int:
    from decemb import describe_strategies

    records = describe_strategies()
    if args.json:
        print(json.dumps(records, indent=2, ensure_ascii=False, default=str))
        return 0
    width = max(len(record["name"]) for record in records)
    for record in records:
        attention = " [bidirectional]" if record["attention"] != "causal" else ""
        print(f"{record['name']:<{width}}  {record['summary']}{attention}")
        options = ", ".join(
            f"{key}={_format_option(value)}{_choices(record['name'], key)}" for key, value in record["options"].items()
        )
        print(f"{'':<{width}}  options: {options or '(none)'}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from decemb.train.cli import run_train

    return run_train(args)


def _generate_queries(args: argparse.Namespace) -> int:
    from decemb.train.generate_cli import run_generate

    return run_generate(args)


def _diagnose(args: argparse.Namespace) -> int:
    from decemb.diagnose_cli import run_diagnose

    return run_diagnose(args)


def _search(args: argparse.Namespace) -> int:
    from decemb.search.cli import run_search

    return run_search(args)


def _serve(args: argparse.Namespace) -> int:
    from decemb.serve.cli import run_serve

    return run_serve(args)


COMMANDS = {
    "compare": _compare,
    "encode": _encode,
    "strategies": _strategies,
    "train": _train,
    "generate-queries": _generate_queries,
    "search": _search,
    "diagnose": _diagnose,
    "serve": _serve,
}
RUNS_A_MODEL = {"compare", "encode", "train", "generate-queries", "search", "diagnose", "serve"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as error:
        print(error, file=sys.stderr)
        return USER_ERROR
    except SystemExit as exit_:  # --help, --version
        return exit_.code if isinstance(exit_.code, int) else 0
    try:
        if args.command in RUNS_A_MODEL:
            from decemb.threads import set_threads

            set_threads(getattr(args, "threads", None))
        return COMMANDS[args.command](args)
    except user_errors() as error:
        message = " ".join(str(error).split())
        print(f"decemb {args.command}: error: {message}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        again = "; run the same command again to resume" if args.command == "train" else ""
        print(f"decemb {args.command}: interrupted{again}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `decemb strategies | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
