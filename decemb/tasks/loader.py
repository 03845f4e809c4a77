"""``load_task``: config -> task object, with data paths resolved against a data root."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from decemb.tasks.base import Task
from decemb.tasks.types import parse_task_config, task_type_of

DATA_ENV = "DECEMB_DATA"


def default_data_root() -> Path:
    """``$DECEMB_DATA`` if set, else ``../shared/data`` next to the repository holding this package."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def load_task(config: Any, data_root: str | Path | None = None) -> Task:
    """Build the task a config (a ``TaskConfig``) describes; ``config`` may also be a raw mapping (validated
    first). The loader is the one registered for the config's ``type`` (:mod:`decemb.tasks.types`).

    Relative data paths resolve against ``data_root`` (default: :func:`default_data_root`). Missing
    files raise ``TaskFileNotFoundError`` (a ``FileNotFoundError`` and ``ValueError``) and bad data or
    column mappings ``TaskDataError`` (a ``ValueError``); both name the task, the config key and the path.
    """
    if isinstance(config, Mapping):
        config = parse_task_config(config)
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    return task_type_of(config).load(config, root)
