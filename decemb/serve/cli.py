"""``decemb serve MODEL``: the options and the command behind them (no heavy imports at parser-building time).

Everything that can be wrong with the command line (the strategy and its options, the limits, the port, the
server extra) is a one-line error before any model loads.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from typing import Any

from decemb.cli_args import add_load_options, add_threads_option, non_negative, positive_int
from decemb.errors import ConfigError

__all__ = ["add_serve_parser", "run_serve"]

API_KEY_ENV = "DECEMB_API_KEY"


_milliseconds = non_negative("milliseconds")


def add_serve_parser(commands: Any) -> argparse.ArgumentParser:
    from decemb.serve.limits import DEFAULT_MAX_BATCH_TOKENS, DEFAULT_MAX_INPUTS, DEFAULT_MAX_WAIT_MS

    serve = commands.add_parser(
        "serve",
        help="serve an embedder (and a reranker) over an OpenAI-compatible HTTP API",
        description="Serve MODEL at POST /v1/embeddings (OpenAI's API; 'input_type': query|document picks the "
        "side), RERANKER at POST /v1/rerank (Cohere/Jina shape), GET /v1/models and GET /health. Concurrent "
        "requests are batched together; SIGTERM answers in-flight requests, then stops.",
    )
    serve.add_argument(
        "model", metavar="MODEL", help="alias, local folder (a saved decemb model), .gguf file or Hub id"
    )
    serve.add_argument("--strategy", help="strategy name (default: a saved model's own, else mean)")
    serve.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="strategy option (repeatable; YAML values)"
    )
    serve.add_argument("--max-length", type=positive_int, metavar="N", help="tokens per rendered input (default: 512)")
    serve.add_argument("--normalize", action="store_true", help="L2-normalise every embedding")
    serve.add_argument("--served-model-name", metavar="NAME", help="the model name clients send (default: MODEL)")
    serve.add_argument("--reranker", metavar="SOURCE", help="also serve this decemb reranker at /v1/rerank")
    add_load_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, loopback)")
    serve.add_argument("--port", type=positive_int, default=8000, help="port (default: %(default)s)")
    serve.add_argument(
        "--api-key", metavar="KEY", help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV})"
    )
    limits = serve.add_argument_group("limits and batching")
    limits.add_argument(
        "--max-inputs", type=positive_int, default=DEFAULT_MAX_INPUTS, metavar="N",
        help="texts per embeddings request, documents per rerank request (default: %(default)s)",
    )  # fmt: skip
    limits.add_argument(
        "--max-tokens-per-input", type=positive_int, metavar="N",
        help="rendered tokens per input; longer inputs are refused, never cut (default and maximum: max_length)",
    )  # fmt: skip
    limits.add_argument(
        "--max-batch-tokens", type=positive_int, default=DEFAULT_MAX_BATCH_TOKENS, metavar="N",
        help="rendered tokens gathered across requests into one model call (default: %(default)s)",
    )  # fmt: skip
    limits.add_argument(
        "--max-wait-ms", type=_milliseconds, default=DEFAULT_MAX_WAIT_MS, metavar="MS",
        help="how long a batch waits for more requests (default: %(default)s)",
    )  # fmt: skip
    serve.add_argument("--no-access-log", action="store_true", help="do not log every request")
    serve.add_argument("--quiet", "-q", action="store_true", help="no progress bars while loading")
    add_threads_option(serve)
    return serve


def _check_port(host: str, port: int) -> None:
    """Fail now, not after the model has loaded, when the address cannot be listened on."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(f"cannot listen on {host}:{port} ({error.strerror or error})", key="--port") from None


def _limits(args: argparse.Namespace) -> Any:
    from decemb.serve.limits import ServeLimits

    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    if api_key is not None and not api_key.strip():
        raise ConfigError("must not be blank", key="--api-key")
    return ServeLimits(
        max_inputs=args.max_inputs,
        max_tokens_per_input=args.max_tokens_per_input,
        max_batch_tokens=args.max_batch_tokens,
        max_wait_ms=args.max_wait_ms,
        api_key=api_key,
    )


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from decemb.encode import parse_options
    from decemb.errors import ModelSourceError
    from decemb.search.cli_models import load_embedder, reranker_loading
    from decemb.strategy_entry import build_checked_strategy

    options = parse_options(args.option)
    strategy = build_checked_strategy(args.strategy, options) if args.strategy or options else None
    settings: dict[str, Any] = {"max_length": args.max_length} if args.max_length else {}
    if args.normalize:
        settings["normalize"] = True
    if settings and strategy is None:
        from decemb.api import is_saved_model

        if is_saved_model(args.model):  # decemb.load would then build a fresh `mean` over its weights
            flag = "--max-length" if args.max_length else "--normalize"
            raise ConfigError(
                "a saved model reloads with its own settings: pass --strategy too to change them", key=flag
            )
    model = load_embedder(args.model, strategy, settings, args, "MODEL")
    reranker = None
    if args.reranker:
        from decemb.rerank import load_reranker

        try:
            reranker = load_reranker(args.reranker, loading=reranker_loading(args))
        except (ModelSourceError, ValueError) as error:
            raise ConfigError(str(error), key="--reranker") from None
    return model, reranker


def run_serve(args: argparse.Namespace) -> int:
    """Load the model(s), then serve until SIGTERM / Ctrl-C (in-flight requests are answered first)."""
    from decemb.serve.stack import require_stack

    require_stack()
    limits = _limits(args)
    _check_port(args.host, args.port)
    model, reranker_model = _load(args)

    import uvicorn

    from decemb.serve.app import build_app
    from decemb.serve.embedder import ServedEmbedder
    from decemb.serve.reranker import ServedReranker

    embedder = ServedEmbedder(model, args.served_model_name or args.model, limits.max_tokens_per_input)
    reranker = ServedReranker(reranker_model, args.reranker) if reranker_model is not None else None
    if reranker is not None and reranker.name == embedder.name:
        raise ConfigError(
            "the reranker needs a name other than the embedder's: pass --served-model-name", key="--reranker"
        )
    loopback = args.host in ("localhost", "::1") or args.host.startswith("127.")
    if not loopback and limits.api_key is None:
        print(f"decemb serve: warning: listening on {args.host} without an API key", file=sys.stderr)
    app = build_app(embedder, reranker, limits)
    uvicorn.run(app, host=args.host, port=args.port, access_log=not args.no_access_log, log_level="info")
    return 0
