"""The output of a sharded encode: a folder of Parquet shards (``row``, ``id``, ``vector``) and a manifest.

``manifest.json`` records the run's identity: the model fingerprint (:func:`decemb.engine.fingerprint`:
config, dtype and every weight), the strategy and its options, the settings that change a vector, the side,
the instruction, normalisation, the shard size and the input's digest. Every shard
``shard-000000.parquet`` carries the same run key in its Parquet metadata and is written under a temporary
name and renamed when complete, so a file with a shard's name is always a whole shard. A re-run with the
same identity skips the finished shards; any other identity is refused in one line (another model, another
strategy, a changed input), and so is a folder holding files that are not such a run.

The manifest also records each finished shard's sha256 (``"sha256": {name: digest}``, written as each shard
lands): a re-run re-encodes a shard whose bytes no longer match (or that has no recorded digest), and
:func:`read_vectors` refuses such a folder in one line naming the shard, so a changed vector is never returned.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from decemb.errors import ConfigError, require_extra
from decemb.files import atomic_file, sha256_of, write_text

__all__ = ["MANIFEST", "ShardFolder", "read_vectors", "run_key", "shard_name", "write_shard"]

MANIFEST = "manifest.json"
FORMAT = "decemb-shards/1"
LOCK = ".lock"


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.parquet"


def run_key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def _arrow() -> tuple[Any, Any]:
    """``pyarrow`` and ``pyarrow.parquet`` (the optional ``parquet`` extra), or a one-line ``MissingExtraError``."""
    return require_extra("pyarrow", "parquet", "Parquet shards"), require_extra(
        "pyarrow.parquet", "parquet", "Parquet shards"
    )


def write_shard(
    folder: str | os.PathLike[str], index: int, start: int, ids: Sequence[str], vectors: np.ndarray, key: str
) -> Path:
    """Write one shard atomically: ``row`` (int64), ``id`` (string), ``vector`` (fixed-size float32 list)."""
    pa, pq = _arrow()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    table = pa.table(
        {
            "row": pa.array(np.arange(start, start + len(ids), dtype=np.int64)),
            "id": pa.array(list(ids), pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1]),
        }
    ).replace_schema_metadata({"decemb.run": key, "decemb.shard": str(index)})
    path = Path(folder) / shard_name(index)
    with atomic_file(path, binary=True) as handle:
        pq.write_table(table, handle)
    return path


def _shard_key(path: Path) -> tuple[str | None, int]:
    """(run key, rows) from a shard's footer; ``(None, 0)`` when it is not a readable shard."""
    _, pq = _arrow()
    try:
        meta = pq.read_metadata(path)
    except (OSError, ValueError):
        return None, 0
    key = (meta.metadata or {}).get(b"decemb.run")
    return (key.decode() if key else None), meta.num_rows


class ShardFolder:
    """An output folder of shards, locked by one driver at a time (``with ShardFolder(path) as folder:``)."""

    def __init__(self, path: str | os.PathLike[str], key: str = "OUTPUT") -> None:
        self.path = Path(path).expanduser().absolute()
        self.key = key
        self._lock: IO[str] | None = None
        self._manifest: dict[str, Any] = {}
        self.digests: dict[str, str] = {}  # shard name -> sha256, of the shards finished so far
        self.redone: dict[int, str] = {}  # shard index -> why its file on disk is encoded again (one line)

    def _fail(self, message: str) -> ConfigError:
        return ConfigError(message, file=os.fspath(self.path))

    def check(self) -> dict[str, Any] | None:
        """Before any work: a folder (or nothing yet), holding nothing but a shard run; its manifest if any."""
        if self.path.exists() and not self.path.is_dir():
            raise self._fail("exists and is not a folder")
        if not self.path.is_dir():
            return None
        manifest_file = self.path / MANIFEST
        names = sorted(p.name for p in self.path.iterdir() if not _ours(p.name))
        if not manifest_file.is_file():
            if names:
                shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                raise self._fail(f"holds files that are not a decemb shard run ({shown}); choose a new or empty folder")
            return None
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise self._fail(f"cannot read {MANIFEST} ({error})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise self._fail(f"{MANIFEST} is not a decemb shard manifest; choose a new or empty folder")
        return manifest

    def __enter__(self) -> ShardFolder:
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = (self.path / LOCK).open("a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise self._fail("is in use by another decemb encode; wait for it or choose another folder") from None
        for stale in self.path.glob(".shard-*.tmp"):  # left by a killed run (nobody else holds the lock)
            with contextlib.suppress(OSError):
                stale.unlink()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def begin(self, manifest: dict[str, Any], shard_rows: Sequence[int]) -> set[int]:
        """Refuse another run's folder, write the manifest, and return the shards already finished: those whose
        file is whole and matches the sha256 the manifest recorded. The others on disk are listed in
        :attr:`redone` with the reason, to be encoded again."""
        previous = self.check()
        key = manifest["run_key"]
        if previous is not None:
            _same_run(previous, manifest, self._fail)
        recorded = _digests(previous)
        finished: set[int] = set()
        self.digests, self.redone = {}, {}
        for path in sorted(self.path.glob("shard-*.parquet")):
            stem = path.name.removeprefix("shard-").removesuffix(".parquet")
            found, rows = _shard_key(path)
            index = int(stem) if stem.isdigit() else -1
            if found is not None and found != key:
                raise self._fail(f"{path.name} is a shard of another run (run {found[:12]}, this run {key[:12]})")
            if not 0 <= index < len(shard_rows):
                continue
            problem = _shard_problem(path, found == key and rows == shard_rows[index], recorded.get(path.name))
            if problem:
                self.redone[index] = f"{path.name} {problem}: encoding it again"
                continue
            finished.add(index)
            self.digests[path.name] = recorded[path.name]
        self._manifest = manifest
        self._write(complete=False)
        return finished

    def record(self, index: int, digest: str) -> None:
        """Note a shard just written (its file's sha256) in the manifest, so that a re-run can trust it."""
        self.digests[shard_name(index)] = digest
        self._write(complete=False)

    def _write(self, complete: bool) -> None:
        digests = dict(sorted(self.digests.items()))
        text = json.dumps({**self._manifest, "complete": complete, "sha256": digests}, indent=1)
        write_text(self.path / MANIFEST, text + "\n")

    def finish(self, manifest: dict[str, Any], shard_rows: Sequence[int]) -> None:
        """Check that every shard is there, whole and with its sha256 recorded, then mark the run complete."""
        key = manifest["run_key"]
        missing = [
            i
            for i, rows in enumerate(shard_rows)
            if shard_name(i) not in self.digests or _shard_key(self.path / shard_name(i)) != (key, rows)
        ]
        if missing:
            raise self._fail(f"{len(missing)} shard(s) missing after the run (first: {shard_name(missing[0])})")
        self._manifest = manifest
        self._write(complete=True)


def _digests(manifest: dict[str, Any] | None) -> dict[str, str]:
    found = (manifest or {}).get("sha256")
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _shard_problem(path: Path, whole: bool, recorded: str | None) -> str:
    """Why a shard file of this run cannot be trusted ("" when it can)."""
    if not whole:
        return "is not a whole shard of this run"
    if recorded is None:
        return "has no recorded sha256 in the manifest"
    try:
        if sha256_of(path) == recorded:
            return ""
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    return "fails its sha256 check (its bytes changed after it was written)"


def _ours(name: str) -> bool:
    return (
        name in (MANIFEST, LOCK) or name.startswith("shard-") or (name.startswith(".shard-") and name.endswith(".tmp"))
    )


def _same_run(previous: dict[str, Any], manifest: dict[str, Any], fail: Callable[[str], ConfigError]) -> None:
    old, new = previous.get("identity", {}), manifest["identity"]
    if old.get("fingerprint") != new["fingerprint"]:
        raise fail(
            f"holds shards of another model (fingerprint {str(old.get('fingerprint'))[:12]}, source "
            f"{previous.get('model_source')!r}); this model's is {new['fingerprint'][:12]}: choose another folder"
        )
    differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if differ:
        raise fail(
            f"holds shards of another run ({', '.join(differ)} differ); run the same command to resume, "
            "or choose another folder"
        )


def read_vectors(folder: str | os.PathLike[str], *, partial: bool = False) -> tuple[list[str], np.ndarray]:
    """``(ids, vectors)`` of a shard folder in input order (``partial``: the finished shards only)."""
    _, pq = _arrow()
    path = Path(folder)
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"not a decemb shard folder ({error})", file=os.fspath(path)) from None
    if not manifest.get("complete") and not partial:
        raise ConfigError("the run is not complete: run the same command again to finish it", file=os.fspath(path))
    recorded = _digests(manifest)
    ids: list[str] = []
    blocks: list[np.ndarray] = []
    for index in range(manifest["shards"]):
        file = path / shard_name(index)
        if partial and (not file.exists() or file.name not in recorded):
            continue  # not finished (a shard without a recorded sha256 is not trusted)
        if not file.exists():
            problem = "is missing"
        elif file.name not in recorded:
            problem = "has no recorded sha256 in the manifest"
        else:
            problem = _shard_problem(file, True, recorded[file.name])
        if problem:
            raise ConfigError(
                f"{file.name} {problem}; run the same decemb encode again to re-encode it", file=os.fspath(path)
            )
        table = pq.read_table(file)
        ids.extend(table.column("id").to_pylist())
        flat = table.column("vector").combine_chunks().flatten().to_numpy()
        blocks.append(flat.reshape(table.num_rows, -1))
    width = int(manifest.get("hidden_size") or 0)
    return ids, np.concatenate(blocks) if blocks else np.zeros((0, width), dtype=np.float32)
