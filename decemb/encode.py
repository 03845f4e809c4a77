"""``decemb encode``'s library side: read texts from a txt / csv / tsv / jsonl file, embed them, save them.

Input formats (by extension):

* ``.txt`` (or any other extension not listed below): one text per line; blank lines are skipped.
* ``.csv`` / ``.tsv``: a header row; ``column`` names the text column (``id_column`` optionally the ids).
* ``.jsonl`` / ``.ndjson``: one JSON object per line; ``column`` / ``id_column`` are keys.
* ``.parquet`` (a file, or a folder of them; the ``parquet`` extra): ``column`` / ``id_column`` are columns.

Output: ``.npy`` (a float32 array, one row per text) or ``.npz`` (``embeddings`` and, with an
``id_column``, ``ids``), written atomically; or a folder of Parquet shards, resumable, in process or on
Ray (:mod:`decemb.distributed`). :func:`encode_to_file` (what ``decemb encode`` runs) streams
the vectors to the file chunk by chunk (:mod:`decemb.streaming`), so memory stays flat however many texts
there are; :func:`encode_texts` + :func:`save_embeddings` are the in-memory equivalent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from decemb.errors import ConfigError
from decemb.files import atomic_write
from decemb.records import TABLE_FORMATS, TableError, format_of, iter_records, iter_rows, record_value
from decemb.settings import EncodeSettings
from decemb.strategies import Kind, Strategy

__all__ = [
    "OUTPUT_FORMATS",
    "TABLE_FORMATS",
    "check_output",
    "encode_texts",
    "encode_to_file",
    "parse_options",
    "read_texts",
    "record_value",
    "save_embeddings",
]

OUTPUT_FORMATS = (".npy", ".npz")


def read_texts(
    path: str | os.PathLike[str], *, column: str | None = None, id_column: str | None = None
) -> tuple[list[str], list[str] | None]:
    """(texts, ids or ``None``) from a file, read by :mod:`decemb.records` (:mod:`decemb.distributed.sources`
    for Parquet); problems are ``ConfigError`` naming the file (and line)."""
    file = Path(path).expanduser()
    shown = os.fspath(path)
    if format_of(file) == "parquet":
        from decemb.distributed.sources import iter_records as iter_source_rows
        from decemb.distributed.sources import open_source

        rows = list(iter_source_rows(open_source(path, column, id_column)))
        return [text for *_, text, _ in rows], [key for *_, key in rows] if id_column else None
    if not file.is_file():
        raise ConfigError("file not found" if not file.exists() else "not a file", file=shown)
    fmt = format_of(file)
    if fmt == "txt":
        if column is not None or id_column is not None:
            raise ConfigError(
                "--column/--id-column need a .csv, .tsv or .jsonl input; a text file holds one text per line",
                file=shown,
            )
        texts = [row[0] for _, row in _read(file, shown, lambda: iter_rows(file, "txt")) if isinstance(row, list)]
        if not texts:
            raise ConfigError("no texts (the file has no non-blank line)", file=shown)
        return texts, None
    if column is None:
        raise ConfigError(f"--column is required for a {file.suffix} input (which column holds the text?)", file=shown)
    records = _read(file, shown, lambda: ((line, record) for line, _, record in iter_records(file, fmt)))
    if not records:
        raise ConfigError("no rows", file=shown)
    texts = [record_value(record, column, line, shown, "--column") for line, record in records]
    ids = (
        [record_value(record, id_column, line, shown, "--id-column") for line, record in records] if id_column else None
    )
    return texts, ids


def _read(file: Path, shown: str, rows: Callable[[], Iterable[tuple[int, Any]]]) -> list[tuple[int, Any]]:
    """All of ``rows()``; a bad row or an unreadable file is a ``ConfigError`` naming the file."""
    try:
        return list(rows())
    except TableError as error:
        raise ConfigError(str(error), file=shown) from None
    except OSError as error:
        raise ConfigError(f"cannot read the file ({error})", file=shown) from None


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["pooling=last", "append_eos=false"]`` → ``{"pooling": "last", "append_eos": False}`` (YAML values)."""
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected key=value, got {pair!r}", key="--option")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        options[key.strip()] = raw if value is None else value
    return options


def encode_texts(
    model: Any,
    tokenizer: Any,
    strategy: Strategy,
    texts: Sequence[str],
    *,
    kind: Kind = "query",
    instruction: str | None = None,
    settings: EncodeSettings | None = None,
    show_progress: bool = False,
    **changes: Any,
) -> np.ndarray:
    """Embed ``texts`` with one strategy through the shared-forward engine (float32, one row per text), in
    memory. ``settings`` (default: :class:`EncodeSettings`'s) with ``changes`` (e.g. ``layer=3``) applied."""
    from decemb.engine import EmbeddingJob, Engine
    from decemb.settings import settings_from

    engine = Engine(model, tokenizer, settings_from(settings, **changes), show_progress=show_progress)
    return engine.embed([EmbeddingJob(strategy=strategy, kind=kind, texts=list(texts), instruction=instruction)])[0]


def check_output(path: str | os.PathLike[str], ids: bool = False, folders: bool = False) -> str:
    """The output's format (``.npy``, ``.npz``, or with ``folders`` ``""`` for a folder of Parquet shards: a
    path without an extension, or an existing folder); ``ConfigError`` naming the file for anything else, or
    for ids without an ``.npz``."""
    if folders and (Path(path).is_dir() or not Path(path).suffix):
        return ""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        also = ", or name a folder (no extension) for Parquet shards" if folders else ""
        raise ConfigError(f"the output must end in .npy or .npz{also}", file=os.fspath(path))
    if ids and suffix != ".npz":
        raise ConfigError("ids need an .npz output (.npy holds one array)", file=os.fspath(path))
    return suffix


def encode_to_file(
    engine: Any,
    strategy: Strategy,
    texts: Sequence[str],
    path: str | os.PathLike[str],
    *,
    ids: Sequence[str] | None = None,
    kind: Kind = "query",
    instruction: str | None = None,
    normalize: bool = False,
    show_progress: bool = False,
) -> Path:
    """Stream the embeddings of ``texts`` (one :class:`~decemb.engine.Engine` call per chunk) into ``path``:
    ``.npy``, or ``.npz`` with ``embeddings`` and, given ``ids``, ``ids``; written atomically."""
    from decemb.streaming import encode_to_npy, encode_to_npz

    options: dict[str, Any] = {"kind": kind, "strategy": strategy, "instruction": instruction}
    options.update(normalize=normalize, show_progress=show_progress)
    if check_output(path, ids is not None) == ".npy":
        return encode_to_npy(engine, texts, path, **options)
    return encode_to_npz(engine, texts, path, ids=ids, **options)


def save_embeddings(path: str | os.PathLike[str], embeddings: np.ndarray, ids: Sequence[str] | None = None) -> Path:
    """``.npy`` (the array) or ``.npz`` (``embeddings`` and optional ``ids``), atomically."""
    if check_output(path, ids is not None) == ".npy":
        return atomic_write(path, lambda handle: np.save(handle, embeddings), binary=True)
    arrays: dict[str, np.ndarray] = {"embeddings": embeddings}
    if ids is not None:
        arrays["ids"] = np.asarray(list(ids), dtype=str)
    return atomic_write(path, lambda handle: np.savez(handle, **arrays), binary=True)
