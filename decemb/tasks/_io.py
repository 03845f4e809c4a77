"""The evaluation tasks' view of a table: a task's data paths, its rows, and column references, with errors
that name the task and the config key.

The rows come from :mod:`decemb.records` (the one reader of every format: csv/tsv with the csv module's
quoting, jsonl, blank rows skipped, a row with the wrong cell count one line naming the file and the line).
Only STS-B's original files (``format: stsb``) are read ``ragged``: tab-split with no quoting, some rows
carrying two extra trailing columns. Values are returned as stripped strings (``None`` -> ``""``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decemb.records import Record, TableError, iter_rows
from decemb.tasks.base import TaskDataError, TaskFileNotFoundError

__all__ = [
    "Table",
    "column",
    "joined_column",
    "read_labelled",
    "read_table",
    "resolve_path",
]


def resolve_path(
    value: str, *, root: Path, task: str, key: str, kind: str = "file", configured: str | None = None
) -> Path:
    """``value`` as is when absolute, else under ``root``; raise if it is not an existing file/folder.

    ``kind`` is "file", "folder" or "path" (either). The error names the task, the config key with its
    configured value (``configured``, default ``value``) and the resolved path.
    """
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = root / path
    ok = path.is_dir() if kind == "folder" else path.is_file() if kind == "file" else path.exists()
    if not ok:
        shown = value if configured is None else configured
        raise TaskFileNotFoundError(f"task {task!r}: {key} = {shown!r}: {kind} not found: {path}")
    return path


@dataclass
class Table:
    path: Path
    format: str
    header: list[str] | None
    rows: list[Record]
    lines: list[int]  # 1-based line number of each row, for error messages


def read_table(path: Path, fmt: str, header: bool, *, task: str, ragged: bool = False) -> Table:
    """Read a csv/tsv (``header``: first non-blank row names the columns) or jsonl file; a row with a cell
    count other than the header's (or the first row's) is a ``TaskDataError`` unless ``ragged``."""
    rows: list[Record] = []
    lines: list[int] = []
    names: list[str] | None = None
    try:
        for number, row in iter_rows(path, fmt, header=header, ragged=ragged):
            if header and names is None and isinstance(row, list):
                names = [cell.strip() for cell in row]
                continue
            rows.append(row)
            lines.append(number)
    except TableError as error:  # kept as the cause: a comparison words a file that is not UTF-8 its own way
        raise TaskDataError(f"task {task!r}: {path}: {error}") from error
    return Table(path, fmt, names, rows, lines)


def column(table: Table, ref: str | int, *, task: str, key: str) -> list[str]:
    """The values of one column, as stripped strings ("" for missing/null jsonl values in lenient use)."""
    where = f"task {task!r}: {key} = {ref!r}"
    if table.format == "jsonl":
        assert isinstance(ref, str)
        out: list[str] = []
        for record, number in zip(table.rows, table.lines, strict=True):
            assert isinstance(record, dict)
            if ref not in record:
                raise TaskDataError(
                    f"{where}: field {ref!r} missing on line {number} of {table.path}; "
                    f"available fields: {sorted(record)}"
                )
            out.append(_text(record[ref]))
        return out
    if isinstance(ref, str):
        if table.header is None or ref not in table.header:
            raise TaskDataError(f"{where}: column {ref!r} not found in {table.path}; available columns: {table.header}")
        index = table.header.index(ref)
    else:
        index = ref
        width = len(table.header) if table.header is not None else len(table.rows[0]) if table.rows else 0
        if index >= width:
            shown = table.header if table.header is not None else f"indices 0..{width - 1}"
            raise TaskDataError(
                f"{where}: column index {index} out of range for {table.path} ({width} columns); "
                f"available columns: {shown}"
            )
    values = []
    for row, number in zip(table.rows, table.lines, strict=True):
        if index >= len(row):
            raise TaskDataError(
                f"{where}: line {number} of {table.path} has {len(row)} columns, column {index} is missing"
            )
        values.append(row[index].strip())
    return values


def joined_column(table: Table, refs: str | int | Sequence[str | int], sep: str, *, task: str, key: str) -> list[str]:
    """One column, or several joined with ``sep`` (blank parts left out)."""
    if isinstance(refs, str | int):
        return column(table, refs, task=task, key=key)
    parts = [column(table, ref, task=task, key=f"{key}[{i}]") for i, ref in enumerate(refs)]
    return [sep.join(p for p in row if p) for row in zip(*parts, strict=True)]


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value).strip()


def read_labelled(
    path: Path,
    fmt: str,
    header: bool,
    text: str | int | Sequence[str | int],
    label: str | int,
    sep: str,
    *,
    task: str,
) -> tuple[list[str], list[str], int]:
    """(texts, labels, skipped): rows with a blank text or a blank label are skipped and counted."""
    table = read_table(path, fmt, header, task=task)
    texts = joined_column(table, text, sep, task=task, key="text")
    labels = column(table, label, task=task, key="label")
    kept = [(t, y) for t, y in zip(texts, labels, strict=True) if t and y]
    return [t for t, _ in kept], [y for _, y in kept], len(texts) - len(kept)
