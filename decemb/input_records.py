"""What ``decemb encode``'s readers share (in memory in :mod:`decemb.encode`, sharded in
:mod:`decemb.distributed.sources`): the table formats by file suffix and the one check of a record's text or
id value (a leaf module: both import it, neither imports the other at load time)."""

from __future__ import annotations

from typing import Any

from decemb.errors import ConfigError

__all__ = ["TABLE_FORMATS", "record_value"]

TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def record_value(record: dict[str, Any], key: str, line: int, shown: str, option: str) -> str:
    """``record[key]`` as text; a missing column, an empty value or a non-text value is one line naming it."""
    if key not in record:
        known = ", ".join(str(k) for k in record if k is not None)
        raise ConfigError(f"{option} {key!r}: no such column on line {line} (columns: {known})", file=shown)
    value = record[key]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigError(f"{option} {key!r}: empty value on line {line}", file=shown)
    if isinstance(value, dict | list):
        raise ConfigError(f"{option} {key!r}: line {line} holds a {type(value).__name__}, not text", file=shown)
    return str(value)
