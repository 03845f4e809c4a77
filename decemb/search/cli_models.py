"""What ``decemb search build`` and ``query`` share: the model-loading flags, the index's recorded model,
and loading a bi-encoder or reranker with errors that name the flag (no heavy imports at module level)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from decemb.errors import ConfigError

__all__ = ["add_device_options", "load_embedder", "load_query_reranker", "recorded_manifest", "recorded_settings"]


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """``--dtype`` and ``--device`` (for the bi-encoder, and for the reranker of ``query``)."""
    parser.add_argument("--dtype", help="float32, bfloat16 or float16 (default: float32 on CPU)")
    parser.add_argument("--device", help="e.g. cpu or cuda")


def recorded_manifest(index_folder: str) -> dict[str, Any]:
    """The index's manifest (checked for shape: one-line errors for a missing or damaged index)."""
    from decemb.search.store import read_manifest

    return read_manifest(Path(index_folder).expanduser())


def recorded_settings(recorded: dict[str, Any]) -> dict[str, Any]:
    """The encode settings a manifest's ``model`` records, as :func:`decemb.load` keywords."""
    return {key: value for key, value in (recorded.get("settings") or {}).items() if key != "max_seq_length"}


def load_embedder(source: str, strategy: Any, settings: dict[str, Any], args: argparse.Namespace, key: str) -> Any:
    """:func:`decemb.load` with the command's ``--dtype``/``--device``; a bad source names ``key``."""
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


def load_query_reranker(args: argparse.Namespace) -> Any:
    """The ``--reranker`` of ``decemb search query`` (``None`` without one)."""
    if not args.reranker:
        return None
    from decemb.errors import ModelSourceError
    from decemb.rerank import load_reranker

    try:
        return load_reranker(
            args.reranker,
            max_length=args.rerank_max_length,
            dtype=args.dtype,
            device=args.device,
            adapter=args.reranker_adapter,
        )
    except ModelSourceError as error:
        raise ConfigError(str(error), key="--reranker") from None
