"""An index folder on disk: ``manifest.json`` plus one generation of data files, committed atomically.

Each write (build, add) puts its data files under new names (``vectors-<gen>.faiss``, ``docs-<gen>.jsonl``),
fsyncs them, then replaces ``manifest.json`` in one ``os.replace``: a reader sees either the previous
generation or the new one, whole, never a mix, whatever the moment a write is interrupted. Files of older
generations are removed after the commit; a write that fails (disk full, read-only folder, Ctrl-C) removes
its own files before it raises, and leftovers of a killed one go on the next commit. The manifest records
each data file's sha256 and size, so a truncated or altered file is caught on open. A reader that lost the
race with a commit (its generation's files removed under it) reads the manifest again
(:meth:`decemb.search.SearchIndex.open`). One writer at a time: :mod:`decemb.search.writing`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from decemb.files import atomic_file, sha256_of, signals_deferred, write_text
from decemb.search.errors import CorruptIndexError, IndexNotFoundError, IndexWriteError, SearchError

__all__ = [
    "FORMAT",
    "LEXICAL_ONLY",
    "MANIFEST",
    "VERSION",
    "commit",
    "data_path",
    "docs_writer",
    "read_docs",
    "read_manifest",
    "verify",
]

FORMAT = "decemb-search-index"
VERSION = 1
MANIFEST = "manifest.json"
LEXICAL_ONLY = "bm25"  # the manifest ``kind`` of an index with documents and BM25 but no vectors
_DATA = re.compile(r"^(vectors|docs|bm25)-(\d+)\.(faiss|jsonl|npz)$")
# role, file extension, binary; every role is written by every commit (bm25 is absent only from indexes
# written before decemb stored it, which are read and get it with their next commit), but vectors by no
# commit of a BM25-only index.
_ROLES = (("vectors", "faiss", True), ("docs", "jsonl", False), ("bm25", "npz", True))


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest, checked for shape; :class:`IndexNotFoundError` / :class:`CorruptIndexError` otherwise."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise IndexNotFoundError("no such index folder", file=folder)
    if not path.is_file():
        raise IndexNotFoundError(f"not a decemb search index (no {MANIFEST})", file=folder)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CorruptIndexError(f"{MANIFEST} is unreadable ({error}); rebuild the index", file=folder) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CorruptIndexError(f"{MANIFEST} is not a decemb search index manifest", file=folder)
    if manifest.get("version") != VERSION:
        raise CorruptIndexError(
            f"index format version {manifest.get('version')!r} is not supported (expected {VERSION})", file=folder
        )
    files = manifest.get("files")
    needed = {"docs", "bm25"} if manifest.get("kind") == LEXICAL_ONLY else {"vectors", "docs"}
    if not isinstance(files, dict) or not needed <= set(files):
        raise CorruptIndexError(f"{MANIFEST} names no data files", file=folder)
    return manifest


def data_path(folder: Path, manifest: dict[str, Any], role: str) -> Path | None:
    """The data file of ``role``; ``None`` for an optional role the manifest does not name (``bm25``)."""
    entry = manifest["files"].get(role)
    return None if entry is None else folder / entry["name"]


def verify(folder: Path, manifest: dict[str, Any]) -> None:
    """Every data file present, of the recorded size and sha256."""
    for _role, entry in manifest["files"].items():
        path = folder / str(entry.get("name", ""))
        if not path.is_file():
            raise CorruptIndexError(f"index file {path.name} is missing; rebuild the index", file=folder)
        size = path.stat().st_size
        if size != entry.get("size"):
            raise CorruptIndexError(
                f"index file {path.name} is corrupted ({size} bytes, expected {entry.get('size')}); rebuild the index",
                file=folder,
            )
        if sha256_of(path) != entry.get("sha256"):
            raise CorruptIndexError(
                f"index file {path.name} is corrupted (sha256 mismatch); rebuild the index", file=folder
            )


def _write(path: Path, write: Callable[[IO[Any]], None], binary: bool) -> dict[str, Any]:
    with atomic_file(path, binary=binary) as handle:
        write(handle)
    return {"name": path.name, "size": path.stat().st_size, "sha256": sha256_of(path)}


def commit(
    folder: Path,
    manifest: dict[str, Any],
    vectors: bytes | None,
    write_docs: Callable[[IO[Any]], None],
    write_bm25: Callable[[IO[Any]], None],
) -> dict[str, Any]:
    """Write a new generation (vector index bytes, documents, BM25 index) and commit ``manifest`` pointing
    at it. ``vectors`` ``None``: a BM25-only index (no vectors file).

    The caller holds the folder's writer lock (:func:`decemb.search.writing.writer_lock`). A write that
    fails before the manifest is replaced removes what it wrote (the folder too, if it made it): the index
    stays the previous one, with no orphan file; an ``OSError`` (disk full, read-only) becomes one line,
    :class:`IndexWriteError`. Returns the committed manifest (with ``generation`` and ``files`` filled in)."""
    created = not folder.exists()
    written: list[Path] = []
    done, current = False, MANIFEST
    try:
        folder.mkdir(parents=True, exist_ok=True)
        generation = int(manifest.get("generation", 0)) + 1
        while any((folder / f"{role}-{generation}.{ext}").exists() for role, ext, _binary in _ROLES):
            generation += 1  # leftovers of a killed write: never overwrite a file in place
        writers = {"vectors": lambda handle: handle.write(vectors), "docs": write_docs, "bm25": write_bm25}
        files: dict[str, Any] = {}
        for role, ext, binary in _ROLES:
            if role == "vectors" and vectors is None:
                continue
            written.append(folder / f"{role}-{generation}.{ext}")
            current = written[-1].name
            files[role] = _write(written[-1], writers[role], binary)
        committed, current = {**manifest, "generation": generation, "files": files}, MANIFEST
        with signals_deferred():
            write_text(folder / MANIFEST, json.dumps(committed, indent=1, sort_keys=True) + "\n")
            done = True
            _sweep(folder, {entry["name"] for entry in files.values()})
    except BaseException as error:
        if done:
            raise  # committed; a deferred Ctrl-C lands after the manifest
        _discard(written, folder if created else None)
        if isinstance(error, OSError) and not isinstance(error, SearchError):
            raise IndexWriteError(folder, error, current) from None
        raise
    return committed


def _discard(paths: list[Path], made: Path | None) -> None:
    """Remove a failed write's data files, and the folder it made when nothing else is in it."""
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)
    if made is not None:
        with contextlib.suppress(OSError):
            made.rmdir()


def _sweep(folder: Path, keep: set[str]) -> None:
    """Remove data files of other generations and temporary files of interrupted writes."""
    for path in folder.iterdir():
        stale = _DATA.match(path.name) and path.name not in keep
        temporary = path.name.startswith(".") and path.name.endswith(".tmp")
        if stale or temporary:
            with contextlib.suppress(OSError):
                os.unlink(path)


def docs_writer(ids: Sequence[str], texts: Sequence[str]) -> Callable[[IO[Any]], None]:
    """What writes the documents file of ``ids`` and ``texts`` (read back by :func:`read_docs`)."""

    def write(handle: IO[Any]) -> None:
        for doc_id, text in zip(ids, texts):
            handle.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")

    return write


def read_docs(folder: Path, path: Path) -> tuple[list[str], list[str]]:
    """The documents file's ids and texts (one ``{"id", "text"}`` JSON object a line)."""
    ids: list[str] = []
    texts: list[str] = []
    number = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                number += 1
                record = json.loads(line)
                ids.append(str(record["id"]))
                texts.append(str(record["text"]))
    except FileNotFoundError:
        raise CorruptIndexError(f"index file {path.name} is missing; rebuild the index", file=folder) from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise CorruptIndexError(
            f"index file {path.name} is corrupted at line {number} ({type(error).__name__}); rebuild the index",
            file=folder,
        ) from None
    return ids, texts
