"""An index folder on disk: ``manifest.json`` plus one generation of data files, committed atomically.

Each write (build, add) puts its data files under new names (``vectors-<gen>.faiss``, ``docs-<gen>.jsonl``),
fsyncs them, then replaces ``manifest.json`` in one ``os.replace``: a reader sees either the previous
generation or the new one, whole, never a mix, whatever the moment a write is interrupted. Files of older
generations are removed after the commit (and leftovers of an interrupted write on the next one). The
manifest records each data file's sha256 and size, so a truncated or altered file is caught on open.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from decemb.files import atomic_file, signals_deferred, write_text
from decemb.search.errors import CorruptIndexError, IndexNotFoundError

__all__ = ["FORMAT", "MANIFEST", "VERSION", "commit", "data_path", "read_manifest", "verify"]

FORMAT = "decemb-search-index"
VERSION = 1
MANIFEST = "manifest.json"
_DATA = re.compile(r"^(vectors|docs)-(\d+)\.(faiss|jsonl)$")
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


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
    if not isinstance(files, dict) or not {"vectors", "docs"} <= set(files):
        raise CorruptIndexError(f"{MANIFEST} names no data files", file=folder)
    return manifest


def data_path(folder: Path, manifest: dict[str, Any], role: str) -> Path:
    return folder / manifest["files"][role]["name"]


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
    vectors: bytes,
    write_docs: Callable[[IO[Any]], None],
) -> dict[str, Any]:
    """Write a new generation (vector index bytes, documents) and commit ``manifest`` pointing at it.

    Returns the committed manifest (with ``generation`` and ``files`` filled in)."""
    folder.mkdir(parents=True, exist_ok=True)
    generation = int(manifest.get("generation", 0)) + 1
    while any(
        (folder / f"{role}-{generation}.{ext}").exists() for role, ext in (("vectors", "faiss"), ("docs", "jsonl"))
    ):
        generation += 1  # leftovers of an interrupted write: never overwrite a file in place
    files = {
        "vectors": _write(folder / f"vectors-{generation}.faiss", lambda handle: handle.write(vectors), True),
        "docs": _write(folder / f"docs-{generation}.jsonl", write_docs, False),
    }
    committed = {**manifest, "generation": generation, "files": files}
    with signals_deferred():
        write_text(folder / MANIFEST, json.dumps(committed, indent=1, sort_keys=True) + "\n")
        _sweep(folder, {entry["name"] for entry in files.values()})
    return committed


def _sweep(folder: Path, keep: set[str]) -> None:
    """Remove data files of other generations and temporary files of interrupted writes."""
    for path in folder.iterdir():
        stale = _DATA.match(path.name) and path.name not in keep
        temporary = path.name.startswith(".") and path.name.endswith(".tmp")
        if stale or temporary:
            with contextlib.suppress(OSError):
                os.unlink(path)
