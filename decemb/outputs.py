"""An output folder that a run owns: checked before any work, locked, and replaced as one unit.

* Checked up front (:meth:`OutputFolder.open`): not the file-system root, not a file, creatable and
  writable, and holding only files an earlier decemb run wrote (listed in its ``.decemb-output.json``);
  anything else is refused in one line unless ``force=True``, which keeps those files.
* Locked: a second run on the same folder fails at once, naming the process that holds it.
* Committed as one unit (:meth:`OutputFolder.commit`): the whole set of files is written into a staging
  folder next to it, then the two folders are exchanged atomically (``renameat2(RENAME_EXCHANGE)`` on
  Linux; elsewhere two renames). A reader, a crash or a ``kill -9`` at any point sees the previous set or
  the new one, never a mix. Staging folders of processes that no longer run are removed at the start.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from decemb.errors import ConfigError
from decemb.files import current_umask, process_alive
from decemb.locks import FolderLock, LockHeld

MARKER = ".decemb-output.json"


def exchange_folders(a: Path, b: Path) -> bool:
    """Swap two folders atomically; ``False`` where the platform cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


class OutputFolder:
    """A run's output folder; use :meth:`open` (or ``with OutputFolder(path) as out:``)."""

    def __init__(self, path: str | os.PathLike[str], *, force: bool = False, key: str = "output") -> None:
        self.path = Path(path).expanduser().absolute()
        self.force, self.key = force, key
        self._lock: FolderLock | None = None

    # -- checks and lock --------------------------------------------------------------------------
    def _fail(self, message: str) -> ConfigError:
        return ConfigError(message, key=self.key)

    def open(self) -> OutputFolder:
        """Check the folder, take its lock and clean stale staging folders; errors are one line."""
        folder = self.path
        if folder.parent == folder:
            raise self._fail(f"refusing to write results into the file-system root {folder}; name a folder of its own")
        if folder.exists() and not folder.is_dir():
            raise self._fail(f"{folder} exists and is not a folder")
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder.parent, prefix=".decemb-probe-"):
                pass
        except OSError as error:
            raise self._fail(f"cannot write next to {folder} ({error.strerror}: {error.filename})") from None
        lock = FolderLock(folder)
        try:
            lock.acquire()
        except LockHeld as held:
            message = f"{folder} is in use by another decemb run ({held.holder}); wait for it or choose another folder"
            raise self._fail(message) from None
        self._lock = lock
        for stale in folder.parent.glob(f".{folder.name}.staging-*"):
            pid = stale.name.rsplit("staging-", 1)[1].split("-")[0]
            if not pid.isdigit() or not process_alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        self.foreign()  # refuse a folder of someone else's files now, before any work
        return self

    def foreign(self) -> list[str]:
        """Files in the folder that no decemb run wrote (refused unless ``force``)."""
        if not self.path.is_dir():
            return []
        try:
            ours = set(json.loads((self.path / MARKER).read_text())["files"])
        except (OSError, ValueError, KeyError, TypeError):
            ours = set()
        others = sorted(p.name for p in self.path.iterdir() if p.name not in ours and p.name != MARKER)
        if others and not self.force:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise self._fail(
                f"{self.path} holds files decemb did not write ({shown}); choose another folder, "
                "or pass --force to write there and keep them"
            )
        return others

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> OutputFolder:
        return self.open() if self._lock is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- committing a set of files ----------------------------------------------------------------
    def commit(self, write: Callable[[Path], list[str]]) -> list[str]:
        """``write(staging)`` writes the whole set into an empty folder and returns the file names; then
        the set replaces the folder's contents in one step. Returns the names written."""
        if self._lock is None:
            raise RuntimeError("open() the output folder before committing to it")
        folder = self.path
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.staging-{os.getpid()}-", dir=folder.parent))
        try:
            staging.chmod(0o777 & ~current_umask())
            names = write(staging)
            for name in self.foreign():  # kept (only with force)
                source = folder / name
                (shutil.copytree if source.is_dir() else shutil.copy2)(source, staging / name)
            marker = {"files": sorted(names), "pid": os.getpid(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            (staging / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
            _sync(staging)
            if not folder.exists():
                os.replace(staging, folder)
            elif exchange_folders(staging, folder):
                shutil.rmtree(staging, ignore_errors=True)  # now holds the previous set
            else:
                previous = folder.with_name(f".{folder.name}.staging-{os.getpid()}-previous")
                os.replace(folder, previous)
                os.replace(staging, folder)
                shutil.rmtree(previous, ignore_errors=True)
        except OSError as error:
            raise self._fail(f"cannot write the results into {folder} ({error.strerror}: {error.filename})") from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return names


def _sync(folder: Path) -> None:
    """Flush the staged files to disk before they become visible (a crash then shows whole files)."""
    for item in folder.iterdir():
        if item.is_file():
            with contextlib.suppress(OSError), item.open("rb") as handle:
                os.fsync(handle.fileno())
