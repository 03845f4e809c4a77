"""Error types shared across modules (a leaf module: it imports nothing from decemb).

Every config and command-line problem (comparison and training configs, ``decemb encode``'s inputs and
options) is a :class:`ConfigError`, one line naming the file and/or key; the CLI prints it and exits 2.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any


class ModelSourceError(ValueError):
    """A model source that does not exist or cannot be loaded."""


class ConfigError(ValueError):
    """A bad config or input: ``str()`` is one line naming the file and/or the key path."""

    def __init__(self, message: str, *, key: str | None = None, file: str | os.PathLike[str] | None = None) -> None:
        self.key = key
        self.file = None if file is None else os.fspath(file)
        self.detail = " ".join(str(message).split())
        super().__init__(self.line())

    def line(self) -> str:
        parts = [part for part in (self.file, self.key) if part]
        return ": ".join([*parts, self.detail])

    def __str__(self) -> str:
        return self.line()

    def with_file(self, file: str | os.PathLike[str]) -> ConfigError:
        return ConfigError(self.detail, key=self.key, file=file)


class MissingExtraError(ConfigError, ImportError):
    """An optional dependency that is not installed: one line naming the feature and the extra to install
    (a ``ConfigError``, so the command line prints it and exits 2; also an ``ImportError``)."""


def require_extra(module: str, extra: str, feature: str) -> ModuleType:
    """``import module``, or a :class:`MissingExtraError`: "FEATURE needs PACKAGE: pip install 'decemb[EXTRA]'"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.partition(".")[0]
        raise MissingExtraError(f"{feature} needs {package}: pip install 'decemb[{extra}]'") from None


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def pydantic_message(error: Any) -> str:
    """One pydantic error dict → a short message (``must be ...``), with the offending input when short."""
    kind, message = error["type"], str(error["msg"])
    if kind == "missing":
        return "required key missing"
    if kind in ("value_error", "assertion_error"):
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "too_short" and error.get("ctx", {}).get("min_length") == 1:
        return "must not be empty"
    if kind in _BOUNDS:
        bound = next(iter(error.get("ctx", {}).values()), "?")
        message = f"must be {_BOUNDS[kind]} {bound}"
    message = message.replace("Input should be", "must be")
    given = error.get("input")
    if isinstance(given, str | int | float | bool) or given is None:
        shown = repr(given)
        if len(shown) <= 60:
            message += f" (got {shown})"
    return message
