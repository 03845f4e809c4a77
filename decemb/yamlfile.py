"""Reading a YAML config file: safe loading, duplicate keys refused, every problem one ``ConfigError`` line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from decemb.errors import ConfigError

__all__ = ["read_yaml"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys instead of keeping the last one silently."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, str | int | float | bool) and key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1}, column {mark.column + 1})", mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Parse a YAML file; a missing or unreadable file, bad syntax or an empty file is a ``ConfigError``."""
    file = Path(path).expanduser()
    if not file.exists():
        raise ConfigError("file not found", file=path)
    if not file.is_file():
        raise ConfigError("not a file", file=path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the file ({error})", file=path) from None
    if not text.strip():
        raise ConfigError("the file is empty", file=path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML{where}: {problem}", file=path) from None
    if data is None:
        raise ConfigError("the file is empty (only comments)", file=path)
    return data
