"""Bearer-token check in front of every ``/v1`` route (``/health`` stays open for probes), before the body is
read: a caller without the key learns nothing about the request it sent."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.responses import JSONResponse

from decemb.serve.errors import APIError


class BearerAuth:
    """A pure ASGI middleware: ``Authorization: Bearer KEY`` or a 401 in OpenAI's error shape."""

    def __init__(self, app: Any, api_key: str) -> None:
        self.app = app
        self._expected = f"bearer {api_key}".encode()

    def _allowed(self, scope: dict[str, Any]) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                return hmac.compare_digest(scheme.lower() + b" " + token.strip(), self._expected)
        return False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/v1") and not self._allowed(scope):
            error = APIError(401, "missing or wrong API key: send 'Authorization: Bearer KEY'", code="invalid_api_key")
            await JSONResponse(error.body(), status_code=401)(scope, receive, send)
            return
        await self.app(scope, receive, send)
