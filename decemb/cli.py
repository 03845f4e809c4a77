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

from decemb.cli_args import add_threads_option, integer, positive_int

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

    encode = commands.add_parser(
        "encode",
        help="embed a text file (one text per line), a CSV/TSV column or a JSONL field",
        description="Embed INPUT (.txt: one text per line; .csv/.tsv with a header, or .jsonl: --column) and "
        "write OUTPUT (.npy; or .npz with 'embeddings' and, given --id-column, 'ids').",
    )
    encode.add_argument("input", metavar="INPUT")
    encode.add_argument("output", metavar="OUTPUT")
    encode.add_argument("--model", required=True, help="alias, local folder, .gguf file or Hub id")
    encode.add_argument("--strategy", default="mean", help="strategy name (default: mean; see 'decemb strategies')")
    encode.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="strategy option (repeatable; VALUE is parsed as YAML, e.g. pooling=last, append_eos=false)",
    )
    encode.add_argument("--kind", choices=["query", "document"], default="query", help="rendering side")
    encode.add_argument("--column", metavar="NAME", help="text column (CSV/TSV) or key (JSONL)")
    encode.add_argument("--id-column", metavar="NAME", help="id column/key; ids are saved next to the embeddings")
    encode.add_argument("--instruction", help="per-call instruction (strategies that take one, e.g. instruct)")
    encode.add_argument(
        "--layer", type=integer, default=defaults.layer, help="hidden layer to pool (default: %(default)s, the last)"
    )
    encode.add_argument("--max-length", type=positive_int, default=defaults.max_length, metavar="N")
    encode.add_argument("--batch-size", type=positive_int, default=defaults.batch_size, metavar="N")
    encode.add_argument("--dtype", help="float32, bfloat16 or float16 (default: float32 on CPU)")
    encode.add_argument("--device", help="e.g. cpu or cuda")
    encode.add_argument("--normalize", action="store_true", help="L2-normalise every embedding")
    encode.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_threads_option(encode)

    from decemb.search.cli import add_search_parser
    from decemb.train.cli import add_train_parser

    add_train_parser(commands)
    add_search_parser(commands)

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
    from decemb.encode import build_checked_strategy, check_output, encode_to_file, parse_options, read_texts
    from decemb.errors import ConfigError
    from decemb.loading import dtype_name

    strategy = build_checked_strategy(args.strategy, parse_options(args.option))
    if args.instruction is not None and not strategy.takes_instruction:
        raise ConfigError(f"strategy {strategy.name!r} takes no instruction", key="--instruction")
    try:
        if args.dtype is not None:
            dtype_name(args.dtype)
    except ValueError as error:
        raise ConfigError(str(error), key="--dtype") from None
    if check_output(args.output) != ".npz" and args.id_column:
        raise ConfigError("--id-column saves ids next to the embeddings: use an .npz output", file=args.output)
    texts, ids = read_texts(args.input, column=args.column, id_column=args.id_column)
    engine = _encode_engine(args, strategy)
    encode_to_file(
        engine,
        strategy,
        texts,
        args.output,
        ids=ids,
        kind=args.kind,
        instruction=args.instruction,
        normalize=args.normalize,
        show_progress=not args.quiet,
    )
    width = engine.core.hidden_size
    print(f"decemb: wrote {len(texts)} × {width} embeddings to {args.output}", file=sys.stderr)
    return 0


def _encode_engine(args: argparse.Namespace, strategy: Any) -> Any:
    """Load the model and refuse, before any work, a layer, strategy or ``--max-length`` it cannot take."""
    from decemb.attention import UnsupportedArchitectureError
    from decemb.engine import Engine
    from decemb.errors import ConfigError, ModelSourceError
    from decemb.loading import load_backbone
    from decemb.progress import transformers_progress
    from decemb.settings import settings_from
    from decemb.templates import TemplateError

    settings = settings_from(max_length=args.max_length, batch_size=args.batch_size, layer=args.layer)
    try:
        with transformers_progress(not args.quiet):
            model, tokenizer = load_backbone(args.model, dtype=args.dtype, device=args.device)
    except ModelSourceError as error:
        raise ConfigError(str(error), key="--model") from None
    try:
        engine = Engine(model, tokenizer, settings)  # binds the settings: the layer must be in range
    except ValueError as error:
        raise ConfigError(str(error), key="--layer") from None
    try:
        engine.core.check(strategy, [args.instruction])
    except (UnsupportedArchitectureError, TemplateError) as error:
        raise ConfigError(str(error), key="--strategy") from None
    except ValueError as error:  # the template leaves no room for the text within max_length
        raise ConfigError(str(error), key="--max-length") from None
    return engine


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


def _search(args: argparse.Namespace) -> int:
    from decemb.search.cli import run_search

    return run_search(args)


COMMANDS = {"compare": _compare, "encode": _encode, "strategies": _strategies, "train": _train, "search": _search}
RUNS_A_MODEL = {"compare", "encode", "train", "search"}


def _user_errors() -> tuple[type[BaseException], ...]:
    from decemb.attention import UnsupportedArchitectureError
    from decemb.errors import ConfigError, ModelSourceError
    from decemb.registry import UnknownNameError
    from decemb.tasks import TaskDataError
    from decemb.templates import TemplateError

    return ConfigError, TaskDataError, ModelSourceError, UnknownNameError, UnsupportedArchitectureError, TemplateError


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

            set_threads(args.threads)
        return COMMANDS[args.command](args)
    except _user_errors() as error:
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
