"""The input of a sharded encode: a plan of fixed-size row ranges (shards), and the rows of one shard.

Formats (by extension, read by :mod:`decemb.records`): ``.txt`` (one text per non-blank line; the ids are
the row numbers), ``.csv`` / ``.tsv`` (a header row), ``.jsonl`` / ``.ndjson``, ``.parquet`` (a file, or a
folder of ``.parquet`` files taken in name order; the ``parquet`` extra). :func:`plan_input` reads the input
once, streaming: it counts the rows, checks every text and id (a missing column, an empty text, a duplicate
id: a one-line ``ConfigError`` naming the file and line), digests the content, and records where each shard
starts (a byte offset for the text formats, a row number for Parquet). :func:`read_shard` then reads one
shard's rows and nothing else, in whichever process or node the shard lands on. Ray's own readers are not
used for the rows: they give no stable row positions, and the resumable unit needs them.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decemb.errors import ConfigError
from decemb.records import (
    TableError,
    format_of,
    iter_parquet_rows,
    parquet_files,
    record_value,
    scan_rows,
    table_header,
)
from decemb.records import iter_records as iter_table_records

__all__ = ["Plan", "Shard", "Source", "iter_records", "open_source", "plan_input", "read_shard"]


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
    line: int = 1  # the line number of the first record


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
    fmt = format_of(file)
    if fmt == "txt":
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
    try:
        header, body, line = table_header(file, fmt)
    except TableError as error:
        raise ConfigError(str(error), file=shown) from None
    if not header:
        raise ConfigError("empty file (no header row)", file=shown)
    for option, key in (("--column", column), ("--id-column", id_column)):
        if key is not None and key not in header:
            raise ConfigError(f"{option} {key!r}: no such column (columns: {', '.join(header)})", file=shown)
    return Source(str(file), fmt, column, id_column, tuple(header), body, (), line)


def _parquet_source(file: Path, shown: str, column: str, id_column: str | None) -> Source:
    try:
        found = parquet_files(file)
    except TableError as error:
        raise ConfigError(str(error), file=shown) from None
    for path, _, names in found:
        for option, key in (("--column", column), ("--id-column", id_column)):
            if key is not None and key not in names:
                known = ", ".join(names)
                name = Path(path).name
                raise ConfigError(f"{option} {key!r}: no such column in {name} (columns: {known})", file=shown)
    files = tuple((path, rows) for path, rows, _ in found)
    return Source(str(file), "parquet", column, id_column, files=files)


def iter_records(source: Source, shard: Shard | None = None) -> Iterator[tuple[int, int, str, str | None]]:
    """``(line or row number, byte offset, text, id)`` of every row (of ``shard`` only, when given)."""
    if source.format == "parquet":
        columns = [source.column or "", *([source.id_column] if source.id_column else [])]
        start, stop = (shard.start, shard.stop) if shard else (0, None)
        for number, record in iter_parquet_rows(source.files, columns, start, stop):
            yield number, 0, *_text_and_id(source, record, number)
        return
    begin = shard.begin if shard else source.body
    line = shard.line if shard else source.line
    end = shard.end if shard else None
    try:
        if source.format == "txt":
            for number, offset, row in scan_rows(source.path, "txt", begin=begin, end=end, line=line):
                yield number, offset, str(row[0]), None
            return
        fieldnames = source.fieldnames if source.format != "jsonl" else None
        rows = iter_table_records(source.path, source.format, fieldnames=fieldnames, begin=begin, end=end, line=line)
        for number, offset, record in rows:
            yield number, offset, *_text_and_id(source, record, number)
    except TableError as error:
        raise ConfigError(str(error), file=source.path) from None
    except OSError as error:
        raise ConfigError(f"cannot read the file ({error})", file=source.path) from None


def _text_and_id(source: Source, record: dict[str, Any], number: int) -> tuple[str, str | None]:
    text = record_value(record, source.column or "", number, source.path, "--column")
    key = source.id_column
    return text, record_value(record, key, number, source.path, "--id-column") if key else None


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
