"""One writer at a time on a search index folder, and the checks a write makes under its lock.

Every write (``SearchIndex.build``, ``--overwrite``, ``SearchIndex.add``) takes the folder's
:class:`decemb.locks.FolderLock` (``.NAME.decemb-lock`` next to the folder) for the part that reads the
manifest it extends and commits the new generation; it is released when the commit is done. The documents
are embedded *before* the lock is taken, so two writers embed at the same time and only their commits
queue. Under the lock a writer reads the manifest again: when another writer committed since this one read
the index, it reloads the index from disk and checks its documents again against the fresh one (an id the
other writer added is a :class:`~decemb.search.errors.DuplicateIdError`; an index meanwhile rebuilt with
another model an :class:`~decemb.search.errors.IndexMismatchError`), then adds on top of it: with two
concurrent adds both sets of documents end up in the index. A build checks again that no index appeared.

A second writer waits for the lock up to ``lock_wait`` seconds (default :data:`DEFAULT_LOCK_WAIT`; the
CLI's ``--lock-wait``); past that it is refused with :class:`~decemb.search.errors.IndexBusyError`, one line
naming the holder's pid, and the index is left as it is. Readers take no lock: commits are atomic
(:mod:`decemb.search.store`) and ``SearchIndex.open`` reads the manifest again when a commit removed the
files of the generation it had started to read.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import decemb.search.store as store
from decemb.locks import FolderLock, LockHeld
from decemb.search.errors import (
    CorruptIndexError,
    IndexBusyError,
    IndexExistsError,
    IndexWriteError,
    SearchError,
    check_count,
)

__all__ = ["DEFAULT_LOCK_WAIT", "build_target", "check_build", "check_lock_wait", "writer_lock"]

DEFAULT_LOCK_WAIT = 600.0  # seconds a writer waits for another one to finish


def check_lock_wait(value: Any) -> float:
    """``value`` as seconds (a finite number >= 0); a one-line error naming ``lock_wait`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise SearchError(f"must be a number of seconds >= 0 (got {value!r})", key="lock_wait")
    return float(value)


@contextlib.contextmanager
def writer_lock(folder: Path, wait: float) -> Iterator[None]:
    """Hold ``folder``'s writer lock for the block, waiting up to ``wait`` seconds for another writer."""
    wait = check_lock_wait(wait)
    lock = FolderLock(folder)
    try:
        lock.folder.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(wait=wait)
    except LockHeld as held:
        raise IndexBusyError(folder, held.holder, wait) from None
    except OSError as error:  # a read-only or full file system: the lock file cannot be made
        raise IndexWriteError(folder, error) from None
    try:
        yield
    finally:
        lock.release()


def check_build(folder: Path, overwrite: bool, kind: str, lock_wait: Any, counts: dict[str, Any]) -> None:
    """A build's arguments, checked before any work (the target folder again under the lock)."""
    if kind not in ("auto", "exact", "hnsw"):
        raise SearchError(f"unknown index kind {kind!r}; expected auto, exact or hnsw", key="kind")
    for name, value in counts.items():
        check_count(name, value)
    check_lock_wait(lock_wait)
    build_target(folder, overwrite)


def build_target(folder: Path, overwrite: bool) -> int:
    """Check that a new index may be written into ``folder``; returns the generation it replaces (0: none).

    Called before the documents are embedded (fail fast) and again under the writer lock."""
    if (folder / store.MANIFEST).exists():
        if not overwrite:
            raise IndexExistsError("an index exists here; add documents to it, or overwrite it", file=folder)
        try:
            return int(store.read_manifest(folder).get("generation", 0))
        except (CorruptIndexError, TypeError, ValueError):
            return 0  # overwriting a damaged index: the commit skips any generation whose files exist
    if folder.is_dir() and any(folder.iterdir()):
        raise SearchError("the folder is not empty and holds no index; choose a new folder", file=folder)
    if folder.exists() and not folder.is_dir():
        raise SearchError("exists and is not a folder; choose a new folder", file=folder)
    return 0
