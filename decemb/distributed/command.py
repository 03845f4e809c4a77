"""``decemb encode``'s options and the command behind them (no heavy imports at parser-building time)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from decemb.cli_args import add_load_options, add_threads_option, integer, load_options_from_args, positive_int

__all__ = ["add_encode_parser", "run_encode"]


def _gpus(text: str) -> float:
    value = float(text) if text.replace(".", "", 1).isdigit() else -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def add_encode_parser(commands: Any, defaults: Any) -> argparse.ArgumentParser:
    """The ``encode`` subcommand; ``defaults`` is an ``EncodeSettings`` (the defaults shown)."""
    encode = commands.add_parser(
        "encode",
        help="embed a text file, a CSV/TSV/Parquet column or a JSONL field, in process or on Ray",
        description="Embed INPUT (.txt: one text per line; .csv/.tsv with a header, .jsonl or .parquet: --column) "
        "into OUTPUT: .npy; .npz with 'embeddings' and, given --id-column, 'ids'; or a folder of Parquet shards "
        "(row, id, vector) with a manifest, resumable (run the same command again after a crash), in this process "
        "or on Ray with --ray / --ray-address.",
    )
    encode.add_argument("input", metavar="INPUT")
    encode.add_argument("output", metavar="OUTPUT", help=".npy, .npz, or a folder (no extension) for Parquet shards")
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
    encode.add_argument("--column", metavar="NAME", help="text column (CSV/TSV/Parquet) or key (JSONL)")
    encode.add_argument("--id-column", metavar="NAME", help="id column/key; ids are saved next to the embeddings")
    encode.add_argument("--instruction", help="per-call instruction (strategies that take one, e.g. instruct)")
    encode.add_argument(
        "--layer", type=integer, default=defaults.layer, help="hidden layer to pool (default: %(default)s, the last)"
    )
    encode.add_argument("--max-length", type=positive_int, default=defaults.max_length, metavar="N")
    encode.add_argument("--batch-size", type=positive_int, default=defaults.batch_size, metavar="N")
    encode.add_argument(
        "--max-batch-tokens", type=positive_int, metavar="N", help="cap a batch's padded tokens (length-sorted batches)"
    )
    add_load_options(encode)
    encode.add_argument("--normalize", action="store_true", help="L2-normalise every embedding")
    encode.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_threads_option(encode)
    shards = encode.add_argument_group("Parquet shards (OUTPUT is a folder)")
    shards.add_argument(
        "--shard-size", type=positive_int, default=10_000, metavar="N", help="rows per shard (default: %(default)s)"
    )
    add_ray_options(shards)
    return encode


def add_ray_options(group: Any) -> None:
    """``--ray`` / ``--ray-address`` and the actor shape, for every command that can run on Ray."""
    where = group.add_mutually_exclusive_group()
    where.add_argument("--ray", action="store_true", help="run on a local Ray cluster (needs decemb[ray])")
    where.add_argument(
        "--ray-address", metavar="ADDR", help="run on the Ray cluster at ADDR (host:port, ray://…, auto)"
    )
    group.add_argument("--actors", type=positive_int, default=1, metavar="N", help="Ray actors, each holds the model")
    group.add_argument(
        "--cpus-per-actor", type=positive_int, default=1, metavar="N", help="CPUs (torch threads) per actor"
    )
    group.add_argument(
        "--gpus-per-actor", type=_gpus, default=0.0, metavar="G", help="GPUs per actor (> 0: CUDA actors)"
    )


def ray_options(args: argparse.Namespace) -> Any:
    """The :class:`~decemb.distributed.run.RayOptions` the arguments ask for, or ``None`` (in-process); actor
    options without Ray are a one-line error."""
    from decemb.distributed.run import RayOptions
    from decemb.errors import ConfigError

    on_ray = args.ray or args.ray_address is not None
    wide = (args.actors, args.cpus_per_actor, args.gpus_per_actor) != (1, 1, 0.0)
    if wide and not on_ray:
        raise ConfigError("--actors, --cpus-per-actor and --gpus-per-actor need --ray or --ray-address", key="--actors")
    return RayOptions(args.ray_address, args.actors, args.cpus_per_actor, args.gpus_per_actor) if on_ray else None


def run_encode(args: argparse.Namespace) -> int:
    """``decemb encode``: a ``.npy``/``.npz`` file through the streaming writer, or a shard folder."""
    from decemb.distributed.worker import EncodeJob, load_engine
    from decemb.encode import check_output, encode_to_file, parse_options, read_texts
    from decemb.errors import ConfigError
    from decemb.strategy_entry import build_checked_strategy

    options = parse_options(args.option)
    strategy = build_checked_strategy(args.strategy, options)
    if args.instruction is not None and not strategy.takes_instruction:
        raise ConfigError(f"strategy {strategy.name!r} takes no instruction", key="--instruction")
    loading = load_options_from_args(args)
    settings = {"max_length": args.max_length, "batch_size": args.batch_size, "layer": args.layer}
    if args.max_batch_tokens:
        settings["max_batch_tokens"] = args.max_batch_tokens
    job = EncodeJob(
        str(args.model), args.strategy, options, settings, args.kind, args.instruction, args.normalize,
        loading, args.quiet,
    )  # fmt: skip
    on_ray = ray_options(args) is not None
    if on_ray and (args.device or "").startswith("cuda") and not args.gpus_per_actor:
        raise ConfigError("CUDA actors need GPUs: pass --gpus-per-actor (e.g. 1)", key="--device")
    if check_output(args.output, folders=True) == "":
        return _encode_shards(args, job, on_ray)
    if on_ray:
        raise ConfigError("Ray writes Parquet shards into a folder: name OUTPUT without .npy/.npz", file=args.output)
    if check_output(args.output) != ".npz" and args.id_column:
        raise ConfigError("--id-column saves ids next to the embeddings: use an .npz output", file=args.output)
    texts, ids = read_texts(args.input, column=args.column, id_column=args.id_column)
    engine = load_engine(job)
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
    print(f"decemb: wrote {len(texts)} × {engine.core.hidden_size} embeddings to {args.output}", file=sys.stderr)
    return 0


def _encode_shards(args: argparse.Namespace, job: Any, on_ray: bool) -> int:
    from decemb.distributed.run import encode_shards
    from decemb.distributed.sources import open_source
    from decemb.errors import require_extra

    require_extra("pyarrow.parquet", "parquet", "Parquet shards")  # a one-line error before anything is read
    source = open_source(args.input, args.column, args.id_column)
    ray = ray_options(args)
    run = encode_shards(job, source, args.output, shard_size=args.shard_size, ray=ray, show_progress=not args.quiet)
    earlier = run.shards - run.embedded
    print(
        f"decemb: wrote {run.rows} × {run.hidden_size} embeddings in {run.shards} shard(s) to {run.folder}"
        + (f" ({earlier} finished by an earlier run)" if earlier else "")
        + f" in {run.seconds:.1f} s",
        file=sys.stderr,
    )
    return 0
