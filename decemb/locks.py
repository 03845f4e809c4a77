"""One writer at a time: an exclusive lock on a folder that a run writes (a comparison's output, a training
run's ``--out``, a search index), held by one process and released by the kernel when it exits (``flock``).

The lock file is ``.NAME.decemb-lock`` *next to* the folder (never inside it, so replacing the folder in one
rename does not drop the lock), and holds ``pid N`` of the process that holds it, which the refusal names.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO, Any

__all__ = ["FolderLock", "LockHeld"]


class LockHeld(RuntimeError):
    """The folder is locked by another process; ``holder`` is what the lock file says (``pid N``)."""

    def __init__(self, folder: Path, holder: str) -> None:
        self.folder, self.holder = folder, holder
        super().__init__(f"{folder} is in use by another decemb process ({holder})")


class FolderLock:
    """``with FolderLock(folder):`` or :meth:`acquire` / :meth:`release`. Not re-entrant across objects:
    a second lock object on the same folder in the same process is refused like another process."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser().absolute()
        self.path = self.folder.parent / f".{self.folder.name}.decemb-lock"
        self._handle: IO[Any] | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self, *, wait: float = 0.0, poll: float = 0.05) -> FolderLock:
        """Take the lock, waiting up to ``wait`` seconds for another holder; :class:`LockHeld` if it is
        still held then. An ``OSError`` (a read-only or missing parent) propagates to the caller."""
        if self._handle is not None:
            return self
        handle = self.path.open("a+")
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    handle.close()
                    raise LockHeld(self.folder, holder) from None
                time.sleep(poll)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
