"""A config's pydantic ``ValidationError`` → one ``(key path, message)`` line: :func:`format_validation_error`
lives in :mod:`decemb.config_base` (the base of every config) and is re-exported here for the callers that
import it from :mod:`decemb.compare.errors`."""

from __future__ import annotations

from decemb.config_base import format_validation_error

__all__ = ["format_validation_error"]
