"""On-disk cache of pooled embeddings (SQLite: atomic transactions, one file, safe to interrupt).

An entry's key is a sha256 of (model fingerprint, attention, layer, pooling, rendered ids, pool mask),
so a re-run of the same inputs is free and a new strategy costs only its own work. Each vector is
stored with a checksum; an entry that fails it is reported, dropped and recomputed.

Faults of the environment are told apart from damage: a cache locked by another process is waited
for (SQLite's busy timeout, WAL journal so readers never block the writer); a cache that cannot be
written (locked past the timeout, disk full, read-only file or folder) is used read-only and what could
not be written is kept in memory and written at the next chance, with one warning saying what is true.
Only a file that fails SQLite's integrity check is called damaged (:class:`CacheDamagedError`).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

_SCHEMA = "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB NOT NULL, checksum TEXT NOT NULL)"
BUSY_TIMEOUT_S = 30.0


class CacheError(ValueError):
    """The embedding cache cannot be used at all; the message names the file and what is wrong."""


class CacheDamagedError(CacheError):
    """The file is not a SQLite database, or fails SQLite's integrity check."""


def _checksum(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:32]


def explain(error: sqlite3.Error, timeout: float = BUSY_TIMEOUT_S) -> str:
    """What an SQLite error means for the user: locked, disk full, read-only, or the raw message."""
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        return f"locked by another process for more than {timeout:g} s"
    if "full" in text:
        return "the disk is full"
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return "the file or its folder is read-only"
    return str(error)


class EmbeddingCache:
    """A key → float32 vector store. Writes of one ``put_many`` call commit together or not at all."""

    def __init__(self, path: str | Path, timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path, self.timeout = Path(path), timeout
        if self.path.exists() and not self.path.is_file():
            raise CacheError(f"embedding cache {self.path} is not a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CacheError(f"embedding cache {self.path}: cannot create its folder ({error.strerror})") from None
        self.corrupt_entries = 0
        self.pending: dict[str, tuple[bytes, str]] = {}  # computed, not yet written (the cache was unwritable)
        self.unwritable: str | None = None
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout)
            self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as error:
            raise self._fault(error) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            with self._db:
                self._db.execute(_SCHEMA)
        except sqlite3.OperationalError as error:  # read-only, full or locked: still readable, maybe
            self._cannot_write(error)

    def _fault(self, error: sqlite3.DatabaseError) -> CacheError:
        if isinstance(error, sqlite3.OperationalError):
            return CacheError(f"embedding cache {self.path} cannot be opened: {explain(error, self.timeout)}")
        return CacheDamagedError(f"embedding cache {self.path} is damaged ({error}); delete it")

    def _damaged(self, error: sqlite3.DatabaseError) -> CacheError:
        """A non-operational error while reading: damaged only if the integrity check fails too."""
        try:
            verdict = self._db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as check:
            verdict = str(check)
        if verdict == "ok":
            return CacheError(f"embedding cache {self.path}: {error} (the file passes SQLite's integrity check)")
        return CacheDamagedError(f"embedding cache {self.path} is damaged ({verdict}); delete it")

    def _cannot_write(self, error: sqlite3.OperationalError) -> None:
        reason = explain(error, self.timeout)
        if self.unwritable is None:
            logger.warning(
                "embedding cache %s cannot be written (%s): going on without writing to it; "
                "new vectors are kept in memory and written when it can be",
                self.path,
                reason,
            )
        self.unwritable = reason

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        keys = list(dict.fromkeys(keys))
        bad: list[str] = []
        for key in keys:
            if key in self.pending:
                found[key] = np.frombuffer(self.pending[key][0], dtype=np.float32).copy()
        for start in range(0, len(keys), 500):
            chunk = [key for key in keys[start : start + 500] if key not in found]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, vector, checksum FROM embeddings WHERE key IN ({marks})"
            try:
                rows = self._db.execute(query, chunk).fetchall() if chunk else []
            except sqlite3.OperationalError as error:
                why = explain(error, self.timeout)
                logger.warning("embedding cache %s cannot be read (%s): recomputing", self.path, why)
                return found
            except sqlite3.DatabaseError as error:
                raise self._damaged(error) from None
            for key, blob, checksum in rows:
                if _checksum(blob) != checksum or len(blob) % 4:
                    bad.append(key)
                    continue
                found[key] = np.frombuffer(blob, dtype=np.float32).copy()
        if bad:
            self.corrupt_entries += len(bad)
            logger.warning("embedding cache %s: %d corrupt entries dropped and recomputed", self.path, len(bad))
            self._write([], bad)
        return found

    def put_many(self, items: Mapping[str, np.ndarray]) -> None:
        for key, vector in items.items():
            blob = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
            self.pending[key] = (blob, _checksum(blob))
        self.flush()

    def flush(self) -> bool:
        """Write what is pending; ``False`` (and everything kept) when the cache cannot be written now."""
        if not self.pending:
            return True
        rows = [(key, blob, checksum) for key, (blob, checksum) in self.pending.items()]
        if self._write(rows, []):
            self.pending.clear()
            if self.unwritable is not None:
                logger.warning("embedding cache %s is writable again: %d vectors written", self.path, len(rows))
                self.unwritable = None
            return True
        return False

    def _write(self, rows: list[tuple[str, bytes, str]], deletions: list[str]) -> bool:
        try:
            with self._db:  # one transaction
                self._db.executemany("DELETE FROM embeddings WHERE key = ?", [(key,) for key in deletions])
                self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
        except sqlite3.OperationalError as error:
            self._cannot_write(error)
            return False
        except sqlite3.DatabaseError as error:
            raise self._damaged(error) from None
        return True

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        """Write what is pending if possible (else say how much is lost to the cache) and close."""
        if not self.flush():
            lost, why = len(self.pending), self.unwritable
            logger.warning("embedding cache %s: %d vectors could not be written (%s)", self.path, lost, why)
        self._db.close()
