"""The input of a sharded encode: a plan of fixed-size row ranges (shards), and the rows of one shard.

Formats (by extension): ``.txt`` (one text per non-blank line; the ids are the row numbers), ``.csv`` /
``.tsv`` (a header row), ``.jsonl`` / ``.ndjson``, ``.parquet`` (a file, or a folder of ``.parquet`` files
taken in name order). :func:`plan_input` reads the input once, streaming: it counts the rows, checks every
text and id (a missing column, an empty text, a duplicate id: a one-line ``ConfigError`` naming the file and
line), digests the content, and records where each shard starts (a byte offset for the text formats, a row
number for Parquet). :func:`read_shard` then reads one shard's rows and nothing else, in whichever process
or node the shard lands on. Ray's own readers are not used for the rows: they give no stable row positions,
and the resumable unit needs them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from decemb.errors import ConfigError
from decemb.input_records import TABLE_FORMATS, record_value
from decemb.tasks._io import cell_count_problem

__all__ = ["Plan", "Shard", "Source", "iter_records", "open_source", "plan_input", "read_shard"]

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Source:
    """Where the rows are and which columns hold the text and the id (``None``: ids are row numbers)."""

    path: str
    format: str  # txt, csv, tsv, jsonl or parquet
    column: str | None
    id_column: str | None
    fieldnames: tuple[str, ...] = ()  # the CSV/TSV header
    body: int = 0  # byte offset of the first record (after a CSV header)
    files: tuple[tuple[str, int], ...] = ()  # Parquet: (file, rows) in order


@dataclass(frozen=True)
class Shard:
    """Rows ``start``..``stop`` (``stop`` excluded); text formats: bytes ``begin``..``end`` from ``line``."""

    index: int
    start: int
    stop: int
    begin: int = 0
    end: int = 0
    line: int = 0


@dataclass(frozen=True)
class Plan:
    source: Source
    rows: int
    digest: str  # sha256 of every (id, text) in order: a changed input is noticed on resume
    shards: tuple[Shard, ...]


def open_source(path: str | os.PathLike[str], column: str | None = None, id_column: str | None = None) -> Source:
    """Check the input's format and columns (header or schema) without reading its rows."""
    file = Path(path).expanduser().absolute()
    shown = os.fspath(path)
    if not file.exists():
        raise ConfigError("file not found", file=shown)
    fmt = "parquet" if file.suffix.lower() == ".parquet" or file.is_dir() else TABLE_FORMATS.get(file.suffix.lower())
    if fmt is None:
        if column is not None or id_column is not None:
            raise ConfigError("--column/--id-column need a .csv, .tsv, .jsonl or .parquet input", file=shown)
        return Source(str(file), "txt", None, None)
    if column is None:
        raise ConfigError(f"--column is required for a {file.suffix or 'Parquet'} input", file=shown)
    if fmt == "parquet":
        return _parquet_source(file, shown, column, id_column)
    if not file.is_file():
        raise ConfigError("not a file", file=shown)
    if fmt == "jsonl":
        return Source(str(file), fmt, column, id_column)
    with file.open("rb") as handle:
        lines = _Lines(handle, 0, None)
        header = next(csv.reader(lines, delimiter="\t" if fmt == "tsv" else ","), None)
    if not header:
        raise ConfigError("empty file (no header row)", file=shown)
    for option, key in (("--column", column), ("--id-column", id_column)):
        if key is not None and key not in header:
            raise ConfigError(f"{option} {key!r}: no such column (columns: {', '.join(header)})", file=shown)
    return Source(str(file), fmt, column, id_column, tuple(header), lines.offset, ())


def _parquet_source(file: Path, shown: str, column: str, id_column: str | None) -> Source:
    import pyarrow.parquet as pq

    paths = sorted(file.glob("*.parquet")) if file.is_dir() else [file]
    if not paths:
        raise ConfigError("a folder input must hold .parquet files", file=shown)
    files: list[tuple[str, int]] = []
    for path in paths:
        try:
            meta = pq.read_metadata(path)
        except (OSError, ValueError) as error:
            raise ConfigError(f"cannot read {path.name} as Parquet ({error})", file=shown) from None
        names = meta.schema.to_arrow_schema().names
        for option, key in (("--column", column), ("--id-column", id_column)):
            if key is not None and key not in names:
                known = ", ".join(names)
                raise ConfigError(f"{option} {key!r}: no such column in {path.name} (columns: {known})", file=shown)
        files.append((str(path), meta.num_rows))
    return Source(str(file), "parquet", column, id_column, files=tuple(files))


class _Lines:
    """Decoded lines of a binary file from ``begin`` to ``end``; ``offset`` is the byte after the last one given."""

    def __init__(self, handle: IO[bytes], begin: int, end: int | None) -> None:
        self.handle, self.start, self.offset, self.end = handle, begin, begin, end
        handle.seek(begin)

    def __iter__(self) -> Iterator[str]:
        for raw in self.handle:
            if self.end is not None and self.offset >= self.end:
                return
            text = raw[len(_BOM) :] if self.offset == 0 and raw.startswith(_BOM) else raw
            self.start, self.offset = self.offset, self.offset + len(raw)
            yield text.decode("utf-8")


def iter_records(source: Source, shard: Shard | None = None) -> Iterator[tuple[int, int, str, str | None]]:
    """``(line or row number, byte offset, text, id)`` of every row (of ``shard`` only, when given)."""
    if source.format == "parquet":
        yield from _parquet_records(source, shard)
        return
    begin = shard.begin if shard else source.body
    line = shard.line if shard else (2 if source.format in ("csv", "tsv") else 1)
    try:
        with open(source.path, "rb") as handle:
            lines = _Lines(handle, begin, shard.end if shard else None)
            if source.format in ("csv", "tsv"):
                yield from _csv_records(source, lines, line)
                return
            for number, text in enumerate(lines, start=line):
                if text.strip():
                    yield number, lines.start, *_parse_line(source, text, number)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"cannot read the file ({error})", file=source.path) from None


def _parse_line(source: Source, text: str, number: int) -> tuple[str, str | None]:
    if source.format == "txt":
        return text.rstrip("\r\n"), None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"line {number} is not valid JSON ({error.msg})", file=source.path) from None
    if not isinstance(record, dict):
        raise ConfigError(f"line {number} is not a JSON object", file=source.path)
    return _text_and_id(source, record, number)


def _text_and_id(source: Source, record: dict[str, Any], number: int) -> tuple[str, str | None]:
    text = record_value(record, source.column or "", number, source.path, "--column")
    key = source.id_column
    return text, record_value(record, key, number, source.path, "--id-column") if key else None


def _csv_records(source: Source, lines: _Lines, line: int) -> Iterator[tuple[int, int, str, str | None]]:
    start = lines.offset
    for row in csv.reader(lines, delimiter="\t" if source.format == "tsv" else ","):
        if any(value.strip() for value in row):
            problem = cell_count_problem(line, len(row), len(source.fieldnames))
            if problem:
                raise ConfigError(problem, file=source.path)
            record = dict(zip(source.fieldnames, row))
            yield line, start, *_text_and_id(source, record, line)
        line += sum(value.count("\n") for value in row) + 1
        start = lines.offset


def _parquet_records(source: Source, shard: Shard | None) -> Iterator[tuple[int, int, str, str | None]]:
    import pyarrow.parquet as pq

    columns = [source.column, *([source.id_column] if source.id_column else [])]
    start, stop = (shard.start, shard.stop) if shard else (0, sum(rows for _, rows in source.files))
    row = 0
    for path, _ in source.files:
        parquet = pq.ParquetFile(path)
        for group in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            if row < stop and row + size > start:
                records = parquet.read_row_group(group, columns=columns).to_pylist()
                for number in range(max(row, start), min(row + size, stop)):
                    yield number, 0, *_text_and_id(source, records[number - row], number)
            row += size


def _id_hash(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "little")


def plan_input(source: Source, shard_size: int) -> Plan:
    """Read the input once: check every row, digest it, and cut it into shards of ``shard_size`` rows."""
    import numpy as np

    digest, hashes = hashlib.sha256(), array("Q")
    shards: list[Shard] = []
    begin, line = 0, 0
    for count, (number, offset, text, identity) in enumerate(iter_records(source)):
        if count % shard_size == 0:
            if count:
                shards.append(Shard(len(shards), count - shard_size, count, begin, offset, line))
            begin, line = offset, number
        key = str(count) if identity is None else identity
        digest.update(f"{len(key)}:{key}{len(text)}:{text}".encode())
        hashes.append(_id_hash(key))
    rows = len(hashes)
    if not rows:
        empty = "no texts (the file has no non-blank line)" if source.format == "txt" else "no rows"
        raise ConfigError(empty, file=source.path)
    end = os.path.getsize(source.path) if source.format != "parquet" else 0
    shards.append(Shard(len(shards), shards[-1].stop if shards else 0, rows, begin, end, line))
    values = np.frombuffer(hashes, dtype=np.uint64)
    ordered = np.sort(values)
    repeated = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if repeated:
        _refuse_duplicates(source, repeated, "row" if source.format == "parquet" else "line")
    return Plan(source, rows, digest.hexdigest(), tuple(shards))


def _refuse_duplicates(source: Source, repeated: set[int], where: str) -> None:
    """Name the first id that occurs twice (64-bit hashes found candidates; a mere collision passes)."""
    seen: dict[str, int] = {}
    for count, (number, _, _, identity) in enumerate(iter_records(source)):
        key = str(count) if identity is None else identity
        if _id_hash(key) in repeated:
            if key in seen:
                raise ConfigError(
                    f"--id-column {source.id_column!r}: duplicate id {key!r} ({where}s {seen[key]} and {number}); "
                    "every row needs its own id",
                    file=source.path,
                )
            seen[key] = number


def read_shard(source: Source, shard: Shard) -> tuple[list[str], list[str]]:
    """``(ids, texts)`` of one shard; a shard that no longer has its planned rows is a ``ConfigError``."""
    ids: list[str] = []
    texts: list[str] = []
    for _, _, text, identity in iter_records(source, shard):
        ids.append(str(shard.start + len(ids)) if identity is None else identity)
        texts.append(text)
    if len(texts) != shard.stop - shard.start:
        raise ConfigError(
            f"shard {shard.index} has {len(texts)} rows, the plan {shard.stop - shard.start}: the input changed "
            "during the run",
            file=source.path,
        )
    return ids, texts
