"""On-disk cache of pooled embeddings (SQLite: atomic transactions, one file, safe to interrupt).

An entry's key is a sha256 of (model fingerprint, attention, layer, pooling, rendered ids, pool mask),
so a re-run of the same inputs is free and a new strategy costs only its own work. Each vector is
stored with a checksum; an entry that fails it is reported, dropped and recomputed.
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


def _checksum(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:32]


class EmbeddingCache:
    """A key → float32 vector store. Writes of one ``put_many`` call commit together or not at all."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.corrupt_entries = 0
        try:
            self._db = sqlite3.connect(self.path)
            self._db.execute(_SCHEMA)
            self._db.commit()
        except sqlite3.DatabaseError as error:
            raise ValueError(f"embedding cache {self.path} is not a usable SQLite file ({error}); delete it") from error

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        keys = list(dict.fromkeys(keys))
        bad: list[str] = []
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, vector, checksum FROM embeddings WHERE key IN ({marks})"
            for key, blob, checksum in self._db.execute(query, chunk):
                if _checksum(blob) != checksum or len(blob) % 4:
                    bad.append(key)
                    continue
                found[key] = np.frombuffer(blob, dtype=np.float32).copy()
        if bad:
            self.corrupt_entries += len(bad)
            logger.warning("embedding cache %s: %d corrupt entries dropped and recomputed", self.path, len(bad))
            with self._db:
                self._db.executemany("DELETE FROM embeddings WHERE key = ?", [(key,) for key in bad])
        return found

    def put_many(self, items: Mapping[str, np.ndarray]) -> None:
        rows = []
        for key, vector in items.items():
            blob = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
            rows.append((key, blob, _checksum(blob)))
        with self._db:  # one transaction
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        self._db.close()
