"""One reader per file format, with one quoting rule and one error for one bad row, whoever reads the file.

Formats (:func:`format_of`: by suffix, :data:`TABLE_FORMATS`; a ``.parquet`` file or a folder is ``parquet``;
anything else ``txt``):

* ``txt``: one text per line (lines end at ``\\n``; a trailing ``\\r`` is dropped), as a one-cell row.
* ``csv`` / ``tsv``: the ``csv`` module's quoting, comma or tab as the delimiter (a quoted cell may hold the
  delimiter, quotes and newlines). The one exception is a layout that declares itself ``ragged``: its rows may
  have any number of cells, and a ragged ``tsv`` is STS-B's original layout, split at every tab with no quoting
  (its sentences hold unbalanced quote characters).
* ``jsonl`` (``.jsonl`` / ``.ndjson``): one JSON object per line.
* ``parquet`` (the optional ``parquet`` extra, pyarrow): :func:`parquet_files`, :func:`iter_parquet_rows`.

Every text format is read from bytes as UTF-8 (a BOM dropped) and blank rows are skipped. A bad row (a cell
count other than the header's, or the first row's; a line that is not a JSON object; bytes that are not
UTF-8; broken quoting) is a :class:`RowError`: one line ``line N ...`` naming the line where the row starts,
which every entry point (``decemb encode``, its shard planner, the evaluation tasks, training data, search
corpora) prefixes with the file, so one bad row reads the same everywhere. :func:`scan_rows` gives each row's
byte offset too, so that a sharded reader can start and stop in the middle of a file.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from decemb.errors import ConfigError, require_extra

__all__ = [
    "TABLE_FORMATS",
    "NotUtf8Error",
    "Record",
    "RowError",
    "TableError",
    "cell_count_problem",
    "format_of",
    "iter_parquet_rows",
    "iter_records",
    "iter_rows",
    "parquet_files",
    "record_value",
    "scan_rows",
    "table_header",
]

TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
Record = list[str] | dict[str, Any]
_BOM = b"\xef\xbb\xbf"


def format_of(path: str | os.PathLike[str]) -> str:
    """``parquet`` (a ``.parquet`` file or a folder), ``csv``, ``tsv``, ``jsonl`` by suffix, else ``txt``."""
    file = Path(path)
    if file.suffix.lower() == ".parquet" or file.is_dir():
        return "parquet"
    return TABLE_FORMATS.get(file.suffix.lower(), "txt")


class TableError(ValueError):
    """A file that cannot be read as its format: ``str()`` is one line (without the file, which callers add)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


class RowError(TableError):
    """One bad row: ``line`` (1-based, where the row starts) and ``problem``, one line starting ``line N``.
    ``json_error``: why a jsonl line did not parse (``None`` for any other problem)."""

    def __init__(self, line: int, json_error: json.JSONDecodeError | None = None, problem: str | None = None) -> None:
        self.line, self.json_error = line, json_error
        if problem is None:
            shown = f"not valid JSON ({json_error.msg})" if json_error is not None else "not a JSON object"
            problem = f"line {line} is {shown}"
        super().__init__(problem)


class NotUtf8Error(RowError):
    """A line whose bytes are not UTF-8: ``reason`` (the codec's) and ``start``, the offending byte's offset in
    the file."""

    def __init__(self, line: int, reason: str, start: int) -> None:
        self.reason, self.start = reason, start
        super().__init__(line, problem=f"line {line} is not UTF-8 text ({reason} at byte {start})")


def cell_count_problem(line: int, cells: int, expected: int, header: bool = True) -> str | None:
    """``None`` when a row's ``cells`` match, else one line: "line 7 has 2 cells, the header has 3 (too few)"
    (``header=False``: "the first row has 3")."""
    if cells == expected:
        return None
    reference = "the header" if header else "the first row"
    return f"line {line} has {cells} cells, {reference} has {expected} (too {'few' if cells < expected else 'many'})"


class _Lines:
    """The decoded lines of a binary file from byte ``begin`` to ``end``: ``number`` is the line number of the
    last line given (the first is ``line``), ``start`` its byte offset, ``offset`` the byte after it."""

    def __init__(self, handle: IO[bytes], begin: int, end: int | None, line: int) -> None:
        self.handle, self.start, self.offset, self.end, self.number = handle, begin, begin, end, line - 1
        handle.seek(begin)

    def __iter__(self) -> Iterator[str]:
        for raw in self.handle:
            if self.end is not None and self.offset >= self.end:
                return
            text = raw[len(_BOM) :] if self.offset == 0 and raw.startswith(_BOM) else raw
            self.start, self.offset, self.number = self.offset, self.offset + len(raw), self.number + 1
            try:
                yield text.decode("utf-8")
            except UnicodeDecodeError as error:
                at = self.start + error.start + (len(raw) - len(text))
                raise NotUtf8Error(self.number, error.reason, at) from None


def _quoted(lines: _Lines, delimiter: str, fmt: str) -> Iterator[tuple[int, int, Record]]:
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        number, offset = lines.number + 1, lines.offset
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise RowError(number, problem=f"line {number} is not a valid {fmt} row ({error})") from None
        yield number, offset, row


def _json(lines: _Lines) -> Iterator[tuple[int, int, Record]]:
    for text in lines:
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise RowError(lines.number, error) from None
        if not isinstance(record, dict):
            raise RowError(lines.number)
        yield lines.number, lines.start, record


def _rows(lines: _Lines, fmt: str, ragged: bool) -> Iterator[tuple[int, int, Record]]:
    if fmt == "jsonl":
        return _json(lines)
    if fmt == "txt":
        return ((lines.number, lines.start, [text.rstrip("\r\n")]) for text in lines)
    if fmt == "tsv" and ragged:  # STS-B's original layout: every tab splits, quotes are text
        return ((lines.number, lines.start, text.rstrip("\r\n").split("\t")) for text in lines)
    if fmt in ("csv", "tsv"):
        return _quoted(lines, "\t" if fmt == "tsv" else ",", fmt)
    raise ValueError(f"unknown table format {fmt!r} (known: txt, csv, tsv, jsonl)")


def scan_rows(
    path: str | os.PathLike[str],
    fmt: str,
    *,
    header: bool = True,
    ragged: bool = False,
    width: int | None = None,
    begin: int = 0,
    end: int | None = None,
    line: int = 1,
) -> Iterator[tuple[int, int, Record]]:
    """``(line, byte offset, row)`` of every non-blank row from byte ``begin`` (on line ``line``) to byte
    ``end``: a list of cells (csv/tsv, the header row included; txt: the line), or a dict (jsonl).

    A csv/tsv row must have ``width`` cells (default: as many as the first row, the header when ``header``),
    unless ``ragged``; otherwise, and for any other bad row, :class:`RowError`. ``OSError`` propagates."""
    with open(path, "rb") as handle:
        lines = _Lines(handle, begin, end, line)
        expected = width
        for number, offset, row in _rows(lines, fmt, ragged):
            if isinstance(row, list):
                if not any(cell.strip() for cell in row):
                    continue
                if fmt != "txt" and not ragged:
                    if expected is None:
                        expected = len(row)
                    elif problem := cell_count_problem(number, len(row), expected, header or width is not None):
                        raise RowError(number, problem=problem)
            yield number, offset, row


def iter_rows(
    path: str | os.PathLike[str], fmt: str, *, header: bool = True, ragged: bool = False
) -> Iterator[tuple[int, Record]]:
    """``(line, row)`` of every non-blank row of a file (:func:`scan_rows` without the offsets)."""
    for number, _, row in scan_rows(path, fmt, header=header, ragged=ragged):
        yield number, row


def table_header(path: str | os.PathLike[str], fmt: str) -> tuple[list[str], int, int]:
    """A csv/tsv file's header (the first non-blank row, names stripped), the byte offset and the line number
    where the rows after it start; ``([], 0, 1)`` for a file without a non-blank row."""
    with open(path, "rb") as handle:
        lines = _Lines(handle, 0, None, 1)
        for _, _, row in _rows(lines, fmt, False):
            if isinstance(row, list) and any(cell.strip() for cell in row):
                return [cell.strip() for cell in row], lines.offset, lines.number + 1
    return [], 0, 1


def iter_records(
    path: str | os.PathLike[str],
    fmt: str,
    *,
    fieldnames: Sequence[str] | None = None,
    begin: int = 0,
    end: int | None = None,
    line: int = 1,
) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """``(line, byte offset, record)``: a jsonl file's objects, or a csv/tsv file's rows as ``{name: cell}``
    under its header (the first non-blank row; ``fieldnames``: the header read before, and ``begin`` / ``line``
    where the rows after it start, e.g. from :func:`table_header`)."""
    if fmt == "jsonl":
        for number, offset, record in scan_rows(path, fmt, begin=begin, end=end, line=line):
            assert isinstance(record, dict)
            yield number, offset, record
        return
    names = list(fieldnames) if fieldnames is not None else None
    rows = scan_rows(path, fmt, width=None if names is None else len(names), begin=begin, end=end, line=line)
    for number, offset, row in rows:
        assert isinstance(row, list)
        if names is None:
            names = [cell.strip() for cell in row]
            continue
        yield number, offset, dict(zip(names, row))


def record_value(record: dict[str, Any], key: str, line: int, shown: str, option: str) -> str:
    """``record[key]`` as text; a missing column, an empty value or a non-text value is a ``ConfigError``
    naming the file (``shown``), the ``option`` that named the column, and the line."""
    if key not in record:
        known = ", ".join(str(k) for k in record if k is not None)
        raise ConfigError(f"{option} {key!r}: no such column on line {line} (columns: {known})", file=shown)
    value = record[key]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigError(f"{option} {key!r}: empty value on line {line}", file=shown)
    if isinstance(value, dict | list):
        raise ConfigError(f"{option} {key!r}: line {line} holds a {type(value).__name__}, not text", file=shown)
    return str(value)


# -- Parquet (the optional ``parquet`` extra) --------------------------------------------------------


def _parquet() -> Any:
    return require_extra("pyarrow.parquet", "parquet", "reading Parquet")


def parquet_files(path: str | os.PathLike[str]) -> list[tuple[str, int, list[str]]]:
    """``(file, rows, column names)`` of a ``.parquet`` file, or of each ``.parquet`` file of a folder in name
    order; a folder without one, or a file pyarrow cannot read, is a :class:`TableError`."""
    pq = _parquet()
    folder = Path(path)
    paths = sorted(folder.glob("*.parquet")) if folder.is_dir() else [folder]
    if not paths:
        raise TableError("a folder input must hold .parquet files")
    found: list[tuple[str, int, list[str]]] = []
    for file in paths:
        try:
            meta = pq.read_metadata(file)
        except (OSError, ValueError) as error:
            raise TableError(f"cannot read {file.name} as Parquet ({error})") from None
        found.append((str(file), meta.num_rows, list(meta.schema.to_arrow_schema().names)))
    return found


def iter_parquet_rows(
    files: Sequence[tuple[str, int]], columns: Sequence[str], start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, {column: value})`` of rows ``start``..``stop`` of the files taken as one table, reading
    only the row groups that hold them."""
    pq = _parquet()
    stop = sum(rows for _, rows in files) if stop is None else stop
    row = 0
    for path, _ in files:
        parquet = pq.ParquetFile(path)
        for group in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            if row < stop and row + size > start:
                records = parquet.read_row_group(group, columns=list(columns)).to_pylist()
                for number in range(max(row, start), min(row + size, stop)):
                    yield number, records[number - row]
            row += size
