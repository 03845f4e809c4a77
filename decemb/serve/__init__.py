"""``decemb serve``: any decemb embedder (and reranker) behind an OpenAI-compatible HTTP API, with dynamic
batching across concurrent requests (FastAPI + uvicorn: ``pip install 'decemb[serve]'``; see docs/serve.md).

    app = build_app(ServedEmbedder(decemb.load("smollm2-135m", "echo"), "smollm2-135m"))
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from decemb.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, __file__)  # the names below load on first use

if TYPE_CHECKING:
    from decemb.serve.app import build_app
    from decemb.serve.batcher import DynamicBatcher
    from decemb.serve.embedder import ServedEmbedder
    from decemb.serve.limits import ServeLimits
    from decemb.serve.reranker import ServedReranker
