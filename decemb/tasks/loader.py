"""``load_task``: config -> task object, with data paths resolved against a data root."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from decemb.config_base import DATA_ENV
from decemb.config_base import data_root as resolve_root
from decemb.tasks.base import Task
from decemb.tasks.types import parse_task_config, task_type_of

__all__ = ["DATA_ENV", "default_data_root", "load_task"]


def default_data_root() -> Path:
    """The data root when nothing names one: ``$DECEMB_DATA`` if set, else ``../shared/data`` next to the
    repository (:func:`decemb.config_base.data_root`)."""
    return resolve_root()


def load_task(config: Any, data_root: str | Path | None = None) -> Task:
    """Build the task a config (a ``TaskConfig``) describes; ``config`` may also be a raw mapping (validated
    first). The loader is the one registered for the config's ``type`` (:mod:`decemb.tasks.types`).

    Relative data paths resolve against ``data_root`` (default: :func:`default_data_root`). Missing
    files raise ``TaskFileNotFoundError`` (a ``FileNotFoundError`` and ``ValueError``) and bad data or
    column mappings ``TaskDataError`` (a ``ValueError``); both name the task, the config key and the path.
    """
    if isinstance(config, Mapping):
        config = parse_task_config(config)
    return task_type_of(config).load(config, resolve_root(data_root))
