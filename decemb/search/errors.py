"""Search errors: each one line naming the index folder (or the corpus file) and the offending id.

They are :class:`decemb.errors.ConfigError`\\ s (hence ``ValueError``\\ s): the CLI prints the line and exits 2.
"""

from __future__ import annotations

import errno
import numbers
import os
from pathlib import Path
from typing import Any

from decemb.errors import ConfigError

__all__ = [
    "CorpusError",
    "CorruptIndexError",
    "DuplicateIdError",
    "EmptyCorpusError",
    "IndexBusyError",
    "IndexExistsError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexWriteError",
    "NoVectorsError",
    "SearchError",
    "check_count",
]


class SearchError(ConfigError):
    """Base class of the search errors."""


class CorpusError(SearchError):
    """A corpus (ids + texts) that cannot be indexed: unreadable, mismatched lengths, blank text, bad id."""


class EmptyCorpusError(CorpusError):
    """A corpus without a single document."""


class DuplicateIdError(CorpusError):
    """A document id given twice, or already in the index."""


class IndexNotFoundError(SearchError, FileNotFoundError):
    """No index at the given folder."""


class IndexExistsError(SearchError):
    """``build`` into a folder that already holds an index (add to it, or overwrite)."""


class IndexMismatchError(SearchError):
    """An index built with another model, strategy or encode settings than the one at hand."""


class NoVectorsError(SearchError):
    """A vector search (``dense``, ``hybrid``, a model check) asked of an index built BM25 only."""

    def __init__(self, folder: str | os.PathLike[str], asked: str) -> None:
        super().__init__(
            f"the index holds no vectors (built with --retriever bm25), so it cannot {asked}; search it with "
            "--retriever bm25, or add vectors by rebuilding it with a model: decemb search build CORPUS "
            f"{os.fspath(folder)} --overwrite --model SOURCE",
            file=folder,
        )


class CorruptIndexError(SearchError):
    """An index file that is missing, truncated, altered or unreadable."""


class IndexBusyError(SearchError):
    """Another process kept the index's writer lock longer than this writer would wait; the index is intact.
    ``holder`` is what the lock names (``pid N``)."""

    def __init__(self, folder: str | os.PathLike[str], holder: str, waited: float) -> None:
        self.holder = holder
        super().__init__(
            f"another decemb process ({holder}) is writing this index; gave up after waiting {waited:g} s "
            "(--lock-wait); try again when it is done",
            file=folder,
        )


_NO_ROOM = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


class IndexWriteError(SearchError):
    """The index folder could not be written (disk full, read-only, no permission); nothing of the write is
    left behind and the index is as it was. ``errno``: the operating system's error number."""

    def __init__(self, folder: str | os.PathLike[str], error: OSError, writing: str | None = None) -> None:
        self.errno = error.errno
        named = isinstance(error.filename, str | bytes | os.PathLike)  # not a file descriptor
        where = Path(os.fsdecode(error.filename)).name if named else (writing or "")
        reason = error.strerror or str(error) or type(error).__name__
        hint = (
            "; free some space and try again"
            if error.errno in _NO_ROOM
            else "; the folder is not writable here"
            if error.errno in _NOT_WRITABLE
            else ""
        )
        detail = f"{reason}: {where}" if where else reason
        super().__init__(f"cannot write the index ({detail}); it is unchanged{hint}", file=folder)


def check_count(name: str, value: Any) -> int:
    """``value`` as an int when it is a positive integer (not a bool); a one-line error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SearchError(f"must be a positive integer (got {value!r})", key=name)
    if value < 1:
        raise SearchError(f"must be > 0 (got {value!r})", key=name)
    return int(value)
