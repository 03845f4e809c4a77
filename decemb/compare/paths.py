"""Where a comparison reads its data and keeps its embedding cache."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from decemb.compare.config import ComparisonConfig
from decemb.config_base import data_root as resolve_root

__all__ = ["default_cache_path", "resolve_cache_path", "resolve_data_root"]


def resolve_data_root(config: ComparisonConfig, data_root: str | os.PathLike[str] | None = None) -> Path:
    """``data_root`` argument, else the config's ``data_root``, else ``$DECEMB_DATA``, else ``../shared/data``
    next to the repository (:func:`decemb.config_base.data_root`: the one precedence of every data root)."""
    return resolve_root(data_root if data_root is not None else config.data_root)


def default_cache_path() -> Path:
    """The shared embedding cache: ``$DECEMB_CACHE/embeddings.sqlite`` (``~/.cache/decemb/...``)."""
    from decemb.gguf import cache_root

    return cache_root() / "embeddings.sqlite"


def resolve_cache_path(config: ComparisonConfig, cache: bool | str | os.PathLike[str] | None = None) -> Path | None:
    """Where the cache lives (``None``: no cache); ``cache`` overrides the config's ``cache``."""
    setting: Any = config.cache if cache is None else cache
    if setting is False:
        return None
    if setting is True:
        return default_cache_path()
    return Path(os.fspath(setting)).expanduser()
