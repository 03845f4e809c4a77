"""Atomic files: a file is either its previous version or the complete new one, never half of one.

:func:`atomic_file` writes into a temporary file next to the target and ``os.replace``-s it when the block
ends without an error (the temporary file is removed otherwise). :func:`atomic_write` does the same for a
short write with SIGINT/SIGTERM held meanwhile (:func:`signals_deferred`), so that an interrupt never
leaves the temporary file behind; a long write (a streaming encode) uses :func:`atomic_file` directly and
stays interruptible: Ctrl-C removes the temporary file and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_file",
    "atomic_write",
    "current_umask",
    "process_alive",
    "sha256_of",
    "signals_deferred",
    "write_text",
]

_HELD_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))
_holding = threading.local()


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver them (with their usual handlers).

    A Ctrl-C or ``kill`` that lands while a set of files is being written then takes effect once the
    whole set is written. Nests; outside the main thread (where handlers cannot be set) it does nothing.
    """
    if getattr(_holding, "active", False) or threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous: dict[int, Any] = {}
    for number in _HELD_SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            previous[number] = signal.signal(number, lambda signum, frame: pending.append(signum))
    _holding.active = True
    try:
        yield
    finally:
        _holding.active = False
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(pending):
            signal.raise_signal(number)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid runs (a staging folder named after a dead one is a leftover)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, binary: bool = False) -> Iterator[IO[Any]]:
    """A handle on a temporary file next to ``path`` (``.<name>.<random>.tmp``); when the block ends
    without an error the file is flushed, synced and renamed onto ``path``, otherwise removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.chmod(temp, 0o666 & ~current_umask())  # mkstemp's 0600 would hide results from the user's team
    text_mode: dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": ""}
    try:
        with os.fdopen(fd, "wb" if binary else "w", **text_mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[Any]], None], *, binary: bool = False) -> Path:
    """Write ``path`` through ``write(handle)`` atomically (:func:`atomic_file`), signals held meanwhile."""
    with signals_deferred(), atomic_file(path, binary=binary) as handle:
        write(handle)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text."""
    return atomic_write(path, lambda handle: handle.write(text))


def sha256_of(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file's bytes, read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
