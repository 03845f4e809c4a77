"""Corpora to index: checked ids and texts, and reading them from a file (JSONL, CSV/TSV, or plain text)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from decemb.records import RowError, iter_rows
from decemb.search.errors import CorpusError, DuplicateIdError, EmptyCorpusError

__all__ = ["check_corpus", "read_corpus"]


def check_corpus(
    ids: Sequence[Any], texts: Sequence[Any], *, existing: set[str] | frozenset[str] = frozenset(), where: Any = None
) -> tuple[list[str], list[str]]:
    """``(ids, texts)`` as lists of str: as many ids as texts, at least one, ids unique (also against
    ``existing``, the ids already indexed), no blank text. Errors name the offending id."""
    if isinstance(ids, str) or isinstance(texts, str):
        raise CorpusError("ids and texts must be lists of strings, not one string", file=where)
    ids, texts = list(ids), list(texts)
    if len(ids) != len(texts):
        raise CorpusError(f"{len(ids)} ids but {len(texts)} texts", file=where)
    if not ids:
        raise EmptyCorpusError("the corpus is empty: there is nothing to index", file=where)
    seen: dict[str, int] = {}
    for position, (doc_id, text) in enumerate(zip(ids, texts)):
        if not isinstance(doc_id, str) or not doc_id:
            raise CorpusError(f"document {position} has id {doc_id!r}; ids must be non-empty strings", file=where)
        if doc_id in existing:
            raise DuplicateIdError(f"document id {doc_id!r} is already in the index", file=where)
        if doc_id in seen:
            raise DuplicateIdError(
                f"duplicate document id {doc_id!r} (documents {seen[doc_id]} and {position})", file=where
            )
        seen[doc_id] = position
        if not isinstance(text, str) or not text.strip():
            raise CorpusError(f"document {doc_id!r} has no text", file=where)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise CorpusError(f"document {doc_id!r} is not valid Unicode text (a lone surrogate)", file=where) from None
    return ids, texts


def _text_of(row: dict[str, Any], fields: Sequence[str]) -> str:
    return " ".join(str(row.get(field) or "").strip() for field in fields).strip()


def _table_records(path: Path, fmt: str) -> list[dict[str, str]]:
    """A csv/tsv file with a header as one dict per row; a row with another cell count is one line."""
    try:
        table = [cells for _, cells in iter_rows(path, fmt)]
    except RowError as error:
        raise CorpusError(error.problem, file=path) from None
    except csv.Error as error:
        raise CorpusError(f"not a valid {fmt} file ({error})", file=path) from None
    header = [str(name).strip() for name in table[0]] if table else []
    return [dict(zip(header, cells, strict=True)) for cells in table[1:]]


def read_corpus(
    path: str | Path, *, id_field: str | None = None, text_fields: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """Read a corpus file (see ``decemb search build --help``):

    * ``.jsonl``: one object per line; ids from ``id_field`` (default ``_id``, else ``id``), text from
      ``text_fields`` joined by a space (default ``title`` + ``text`` when present, the BEIR layout);
    * ``.csv`` / ``.tsv`` with a header: the same keys as columns;
    * anything else: one document per non-blank line, ids its line number (1-based).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CorpusError("no such corpus file", file=path)
    suffix = path.suffix.lower()
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if suffix == ".jsonl":
                rows = []
                for line_number, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            row = json.loads(line)
                        except ValueError as error:
                            raise CorpusError(f"line {line_number} is not JSON ({error})", file=path) from None
                        if not isinstance(row, dict):
                            raise CorpusError(f"line {line_number} is not a JSON object", file=path)
                        rows.append(row)
            elif suffix in (".csv", ".tsv"):
                rows = _table_records(path, suffix[1:])
            else:
                lines = [(n, line.strip()) for n, line in enumerate(handle, 1) if line.strip()]
                return check_corpus([str(n) for n, _ in lines], [text for _, text in lines], where=path)
    except UnicodeDecodeError as error:
        raise CorpusError(f"not UTF-8 text ({error.reason} at byte {error.start})", file=path) from None
    if not rows:
        raise EmptyCorpusError("the corpus is empty: there is nothing to index", file=path)
    keys = set(rows[0])
    id_key = id_field or ("_id" if "_id" in keys else "id")
    fields = list(text_fields) if text_fields else [key for key in ("title", "text") if key in keys]
    missing = [key for key in [id_key, *fields] if key not in keys]
    if missing or not fields:
        known = ", ".join(sorted(keys))
        raise CorpusError(
            f"no field {missing[0] if missing else 'text'!r} in the first record (fields: {known})", file=path
        )
    ids = [str(row.get(id_key) if row.get(id_key) is not None else "") for row in rows]
    return check_corpus(ids, [_text_of(row, fields) for row in rows], where=path)
