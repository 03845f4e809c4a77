"""Reading csv/tsv/jsonl tables and resolving column references, with errors that name the task and key.

* csv: the ``csv`` module (quoted fields, embedded commas/newlines); a UTF-8 BOM is dropped.
* tsv: ``line.split("\\t")`` with no quote handling (STS-B needs this: its texts contain quotes).
* jsonl: one JSON object per line.

Blank lines are ignored everywhere. Values are returned as stripped strings (``None`` -> ``""``).

Cell counts: a csv row, and a tsv row of a file with a header, must have as many cells as the header (or, in
a csv without one, the first row); a row with too few or too many is one line naming the file and the line
(:func:`cell_count_problem`, shared by every csv/tsv reader in decemb). Only a caller that reads a layout
with known ragged rows passes ``ragged=True``: STS-B's original files, where some rows carry two extra
trailing columns that ``format: stsb`` and the ``stsb`` training preset ignore.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decemb.tasks.base import TaskDataError, TaskFileNotFoundError

Record = list[str] | dict[str, Any]


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


class RowError(ValueError):
    """A jsonl line that is not a JSON object, or a csv/tsv row with the wrong number of cells: ``line``
    (1-based), ``json_error`` (why it did not parse; ``None`` when it parsed to something other than an
    object, or for a cell count: then ``problem`` is the message)."""

    def __init__(self, line: int, json_error: json.JSONDecodeError | None = None, problem: str | None = None) -> None:
        self.line, self.json_error = line, json_error
        if problem is None:
            shown = f"not valid JSON ({json_error})" if json_error is not None else "not a JSON object"
            problem = f"line {line} is {shown}"
        self.problem = problem
        super().__init__(problem)


def cell_count_problem(line: int, cells: int, expected: int, header: bool = True) -> str | None:
    """``None`` when a row's ``cells`` match, else one line: "line 7 has 2 cells, the header has 3 (too few)"
    (``header=False``: "the first row has 3")."""
    if cells == expected:
        return None
    reference = "the header" if header else "the first row"
    return f"line {line} has {cells} cells, {reference} has {expected} (too {'few' if cells < expected else 'many'})"


def iter_rows(path: Path, fmt: str, *, header: bool = True, ragged: bool = False) -> Iterator[tuple[int, Record]]:
    """``(line number, row)`` for each non-blank row of a csv/tsv file (a list of cells, the header row
    included) or jsonl file (a dict; any other line raises :class:`RowError`). Read as UTF-8, a BOM dropped;
    ``OSError``, ``UnicodeDecodeError`` and ``csv.Error`` propagate. A row whose cell count differs from the
    first row's (``header``: which is the header) raises :class:`RowError`, unless ``ragged``."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if fmt == "jsonl":
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise RowError(number, error) from error
                if not isinstance(record, dict):
                    raise RowError(number)
                yield number, record
            return
        if fmt == "csv":
            reader = csv.reader(handle)
            rows: Iterator[tuple[int, list[str]]] = ((reader.line_num, row) for row in reader)
        else:
            rows = ((n, line.rstrip("\r\n").split("\t")) for n, line in enumerate(handle, start=1))
        width: int | None = None
        for number, row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if width is None:
                width = len(row)
            elif not ragged and (problem := cell_count_problem(number, len(row), width, header)):
                raise RowError(number, problem=problem)
            yield number, row


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
    except RowError as error:
        raise TaskDataError(f"task {task!r}: {path}: {error}") from error.json_error
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
