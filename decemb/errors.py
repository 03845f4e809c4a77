"""Error types shared across modules (a leaf module: it imports nothing from decemb)."""

from __future__ import annotations


class ModelSourceError(ValueError):
    """A model source that does not exist or cannot be loaded."""
