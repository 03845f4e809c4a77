"""The server stack (FastAPI + uvicorn) is the ``serve`` extra: without it, one line saying what to install."""

from __future__ import annotations


def require_stack() -> None:
    """A :class:`~decemb.errors.MissingExtraError` (one line naming ``decemb[serve]``) unless both import."""
    from decemb.errors import require_extra

    for module in ("fastapi", "uvicorn"):
        require_extra(module, "serve", "decemb serve")
