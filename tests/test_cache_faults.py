"""Embedding cache faults: a locked, full or read-only cache is never called damaged, and loses no work."""

from __future__ import annotations

import logging
import sqlite3

import numpy as np
import pytest

from decemb.cache import CacheDamagedError, EmbeddingCache

VECTORS = {f"key-{i}": np.full(8, i, dtype=np.float32) for i in range(20)}


def _filled(path):
    cache = EmbeddingCache(path)
    cache.put_many(dict(list(VECTORS.items())[:10]))
    return cache


def test_a_lock_held_past_the_timeout_keeps_the_work_and_writes_it_later(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    _filled(path).close()
    cache = EmbeddingCache(path, timeout=0.2)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing for a long time
    with caplog.at_level(logging.WARNING, logger="decemb.cache"):
        cache.put_many(dict(list(VECTORS.items())[10:]))
    assert "locked by another process" in caplog.text and "damaged" not in caplog.text
    assert len(cache.pending) == 10  # nothing computed is thrown away
    assert set(cache.get_many(VECTORS)) == set(VECTORS)  # the file is still read; the new ones come from memory
    holder.rollback()
    holder.close()
    assert cache.flush() and not cache.pending
    cache.close()
    again = EmbeddingCache(path)
    assert len(again) == 20
    np.testing.assert_array_equal(again.get_many(["key-15"])["key-15"], VECTORS["key-15"])


def test_a_full_disk_is_said_as_such_and_the_run_goes_on(tmp_path, caplog):
    cache = _filled(tmp_path / "c.sqlite")
    pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
    cache._db.execute(f"PRAGMA max_page_count={pages}")  # the file may not grow: as with a full disk
    big = {f"big-{i}": np.ones(4096, dtype=np.float32) for i in range(4)}
    with caplog.at_level(logging.WARNING, logger="decemb.cache"):
        cache.put_many(big)
    assert "the disk is full" in caplog.text
    assert len(cache.pending) == 4 and len(cache) == 10


def test_a_read_only_cache_is_read_and_not_written(tmp_path, monkeypatch, caplog):
    path = tmp_path / "c.sqlite"
    _filled(path).close()
    real_connect = sqlite3.connect
    # What SQLite sees on a read-only file or folder (root ignores permission bits, so open it read-only).
    monkeypatch.setattr(sqlite3, "connect", lambda p, **kw: real_connect(f"file:{p}?mode=ro", uri=True, **kw))
    with caplog.at_level(logging.WARNING, logger="decemb.cache"):
        cache = EmbeddingCache(path)
        assert len(cache.get_many(VECTORS)) == 10
        cache.put_many({"new": np.zeros(8, dtype=np.float32)})
        cache.close()
    assert "read-only" in caplog.text and "damaged" not in caplog.text
    assert "1 vectors could not be written" in caplog.text


def test_a_cache_path_that_is_a_folder_is_one_line(tmp_path):
    (tmp_path / "c.sqlite").mkdir()
    with pytest.raises(ValueError, match=r"c\.sqlite is not a file$"):
        EmbeddingCache(tmp_path / "c.sqlite")


def test_only_a_failed_integrity_check_is_called_damaged(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"not a database at all" * 300)
    with pytest.raises(CacheDamagedError, match="is damaged"):
        EmbeddingCache(path)
    assert path.read_bytes() == b"not a database at all" * 300  # left for the user to inspect
