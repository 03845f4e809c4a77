"""The FastAPI app: ``POST /v1/embeddings``, ``POST /v1/rerank``, ``GET /v1/models``, ``GET /health``.

Each request is checked completely (body shape, model name, every input, token counts) before it is queued,
so a bad request is a 4xx naming its field and never reaches a batch it could spoil. Good requests go
through one :class:`~decemb.serve.batcher.DynamicBatcher`; the app's lifespan starts it and, on shutdown
(uvicorn's graceful shutdown on SIGTERM, after in-flight requests are answered), drains and stops it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np

from decemb.serve.stack import require_stack

try:
    import pydantic_core
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, Response
except ImportError:  # one line naming the extra (tests/test_serve_cli.py runs this without fastapi)
    require_stack()
    raise

from decemb.serve.auth import BearerAuth
from decemb.serve.batcher import BatcherClosedError, DynamicBatcher
from decemb.serve.embedder import ServedEmbedder
from decemb.serve.errors import APIError, from_validation
from decemb.serve.limits import ServeLimits
from decemb.serve.reranker import ServedReranker
from decemb.serve.schemas import (
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorResponse,
    ModelList,
    RerankRequest,
    RerankResponse,
)

logger = logging.getLogger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 404, 503)}


def _json(payload: Any) -> Response:
    return Response(pydantic_core.to_json(payload), media_type="application/json")


def embedding_payload(vectors: np.ndarray, encoding: str, model: str, tokens: int) -> bytes:
    """OpenAI's embeddings response as JSON bytes (base64: little-endian float32, as OpenAI sends it)."""
    if encoding == "base64":
        rows: list[Any] = [base64.b64encode(row.astype("<f4").tobytes()).decode("ascii") for row in vectors]
    else:
        rows = vectors.astype(np.float32).tolist()
    data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return pydantic_core.to_json({"object": "list", "data": data, "model": model, "usage": usage})


class _Models:
    """Which model names this app answers to, with the 404s for the others."""

    def __init__(self, embedder: ServedEmbedder, reranker: ServedReranker | None) -> None:
        self.embedder, self.reranker = embedder, reranker
        self.created = int(time.time())

    def served(self) -> str:
        names = [self.embedder.name] + ([self.reranker.name] if self.reranker else [])
        return " and ".join(repr(name) for name in names)

    def embedding_model(self, name: str) -> ServedEmbedder:
        if name == self.embedder.name:
            return self.embedder
        if self.reranker is not None and name == self.reranker.name:
            raise APIError(400, f"{name!r} is a reranker: send it to /v1/rerank", param="model")
        raise APIError(404, f"unknown model {name!r}; this server serves {self.served()}", param="model",
                       code="model_not_found")  # fmt: skip

    def rerank_model(self, name: str | None) -> ServedReranker:
        if self.reranker is None:
            raise APIError(404, "this server serves no reranker (start it with --reranker SOURCE)", param="model",
                           code="model_not_found")  # fmt: skip
        if name is None or name == self.reranker.name:
            return self.reranker
        if name == self.embedder.name:
            raise APIError(400, f"{name!r} is an embedder: send it to /v1/embeddings", param="model")
        raise APIError(404, f"unknown model {name!r}; this server serves {self.served()}", param="model",
                       code="model_not_found")  # fmt: skip

    def cards(self) -> dict[str, Any]:
        cards = [{"id": self.embedder.name, "object": "model", "created": self.created, "owned_by": "decemb",
                  "kind": "embedding"}]  # fmt: skip
        if self.reranker is not None:
            cards.append({**cards[0], "id": self.reranker.name, "kind": "rerank"})
        return {"object": "list", "data": cards}


def _add_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, error: APIError) -> Response:
        return JSONResponse(error.body(), status_code=error.status)

    async def invalid(request: Request, error: RequestValidationError) -> Response:
        return await api_error(request, from_validation(list(error.errors())))

    async def http_error(request: Request, error: HTTPException) -> Response:
        message = f"{request.method} {request.url.path}: {error.detail}"
        return await api_error(request, APIError(error.status_code, message))

    async def unexpected(request: Request, error: Exception) -> Response:
        logger.exception("internal error", exc_info=error)
        return JSONResponse(APIError(500, f"internal error: {type(error).__name__}").body(), status_code=500)

    app.add_exception_handler(APIError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def build_app(embedder: ServedEmbedder, reranker: ServedReranker | None = None, limits: ServeLimits | None = None):
    """The app serving ``embedder`` (and ``reranker``) under ``limits``; run it with uvicorn. The batcher's
    worker thread runs with the torch thread count of the thread that calls this."""
    import torch

    limits = limits or ServeLimits()
    threads = torch.get_num_threads()
    runners: dict[str, Any] = {"embed": embedder.embed}
    if reranker is not None:
        runners["rerank"] = reranker.rerank
    models = _Models(embedder, reranker)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.batcher = DynamicBatcher(
            runners,
            max_batch_tokens=limits.max_batch_tokens,
            max_wait=limits.max_wait_ms / 1000,
            on_start=lambda: torch.set_num_threads(threads),
        )
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.batcher.close)  # drain: everything queued is still answered

    app = FastAPI(title="decemb serve", version="1", lifespan=lifespan)
    _add_error_handlers(app)
    if limits.api_key is not None:
        app.add_middleware(BearerAuth, api_key=limits.api_key)

    async def run(kind: str, work: Any, tokens: int) -> Any:
        try:
            future = app.state.batcher.submit(kind, work, tokens)
        except BatcherClosedError as error:
            raise APIError(503, str(error)) from None
        return await asyncio.wrap_future(future)

    @app.post("/v1/embeddings", response_model=EmbeddingResponse, responses=ERRORS)
    async def embeddings(body: EmbeddingRequest) -> Response:
        served = models.embedding_model(body.model)
        if body.dimensions is not None and body.dimensions != served.dimension:
            raise APIError(400, f"this model's vectors have {served.dimension} dimensions and are not shortened",
                           param="dimensions")  # fmt: skip
        work = await run_in_threadpool(served.check, body.input, body.input_type, limits.max_inputs)
        vectors = await run("embed", work, sum(work.tokens))
        content = await run_in_threadpool(
            embedding_payload, vectors, body.encoding_format, served.name, sum(work.tokens)
        )
        return Response(content, media_type="application/json")

    @app.post("/v1/rerank", response_model=RerankResponse, responses=ERRORS)
    async def rerank(body: RerankRequest) -> Response:
        served = models.rerank_model(body.model)
        work, tokens = await run_in_threadpool(served.check, body.query, body.documents, limits.max_inputs)
        scores = await run("rerank", work, tokens)
        order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))[: body.top_n]
        results = []
        for index in order:
            result: dict[str, Any] = {"index": index, "relevance_score": float(scores[index])}
            if body.return_documents:
                result["document"] = {"text": body.documents[index]}
            results.append(result)
        return _json({"model": served.name, "results": results})

    @app.get("/v1/models", response_model=ModelList)
    async def list_models() -> Response:
        return _json(models.cards())

    @app.get("/health")
    async def health() -> Response:
        batcher = app.state.batcher
        stats = {"pending": batcher.pending, "batches": batcher.stats.batches, "requests": batcher.stats.requests}
        return _json({"status": "ok", "models": [card["id"] for card in models.cards()["data"]], **stats})

    return app
