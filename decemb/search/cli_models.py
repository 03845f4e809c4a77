"""What ``decemb search build`` and ``query`` (and ``decemb serve``) share: the index's recorded model, and
loading a bi-encoder or reranker with the loading flags (:func:`decemb.cli_args.add_load_options`) and errors
that name the flag (no heavy imports at module level)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from decemb.cli_args import load_options_from_args
from decemb.errors import ConfigError

__all__ = ["load_embedder", "load_query_reranker", "recorded_manifest", "recorded_settings", "reranker_loading"]


def recorded_manifest(index_folder: str) -> dict[str, Any]:
    """The index's manifest (checked for shape: one-line errors for a missing or damaged index)."""
    from decemb.search.store import read_manifest

    return read_manifest(Path(index_folder).expanduser())


def recorded_settings(recorded: dict[str, Any]) -> dict[str, Any]:
    """The encode settings a manifest's ``model`` records, as :func:`decemb.load` keywords."""
    return {key: value for key, value in (recorded.get("settings") or {}).items() if key != "max_seq_length"}


def load_embedder(source: str, strategy: Any, settings: dict[str, Any], args: argparse.Namespace, key: str) -> Any:
    """:func:`decemb.load` with the command's loading flags (``--dtype``, ``--device``, ``--backend``, ...); a
    bad source names ``key``."""
    import decemb
    from decemb.errors import ModelSourceError
    from decemb.progress import transformers_progress

    loading = load_options_from_args(args)
    try:
        with transformers_progress(not args.quiet):
            return decemb.load(source, strategy, loading=loading, **settings)
    except ModelSourceError as error:
        raise ConfigError(str(error), key=key) from None
    except ValueError as error:  # a layer out of range, a template with no room within max_length
        raise ConfigError(str(error), key="--strategy") from None


def reranker_loading(args: argparse.Namespace, adapter: str | None = None) -> Any:
    """The reranker's :class:`~decemb.load_options.LoadOptions`: the loading flags, less the bi-encoder's own
    ``--adapter`` and ``--revision`` (``adapter``: the reranker's, e.g. ``--reranker-adapter``)."""
    return load_options_from_args(args, adapter=adapter, revision=None)


def load_query_reranker(args: argparse.Namespace) -> Any:
    """The ``--reranker`` of ``decemb search query`` (``None`` without one)."""
    if not args.reranker:
        return None
    from decemb.errors import ModelSourceError
    from decemb.rerank import load_reranker

    try:
        loading = reranker_loading(args, args.reranker_adapter)
        return load_reranker(args.reranker, loading=loading, max_length=args.rerank_max_length)
    except ModelSourceError as error:
        raise ConfigError(str(error), key="--reranker") from None
