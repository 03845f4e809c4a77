"""Every error the server answers, as OpenAI's JSON error (``{"error": {"message", "type", "param", "code"}}``)
with the offending field in ``param`` and at the start of ``message``; never a bare 500 for a bad request."""

from __future__ import annotations

import logging
from typing import Any

from decemb.errors import pydantic_message

logger = logging.getLogger(__name__)

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error", 503: "unavailable"}


class APIError(Exception):
    """An answer other than 200: ``status``, a one-line ``message`` and the field it is about (``param``)."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code
        self.message = f"{param}: {message}" if param else message

    def body(self) -> dict[str, Any]:
        kind = _TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


def field_path(location: tuple[Any, ...]) -> str:
    """``("body", "input", 3)`` → ``input[3]``; ``("body",)`` → ``body``."""
    parts = list(location[1:] if location and location[0] == "body" and len(location) > 1 else location)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def from_validation(errors: list[dict[str, Any]]) -> APIError:
    """FastAPI's request validation errors → one 400 naming the first offending field."""
    first = errors[0]
    param = field_path(tuple(first.get("loc", ())))
    kind = first.get("type", "")
    if kind == "json_invalid":
        return APIError(400, f"not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})", param="body")
    if kind == "extra_forbidden":
        return APIError(400, "unknown field", param=param)
    message = pydantic_message(first)
    if param == "input" and kind == "list_type":
        message = "must be a string or a list of strings"
    elif param.startswith("input[") and kind == "string_type" and isinstance(first.get("input"), int | list):
        message += "; token id arrays are not accepted: send the text"
    return APIError(400, message, param=param)
