"""The output folder, never half-written: a run works in ``DIR.partial/`` (its config, checkpoints, the
evaluation history, and the final files staged in ``final/``), and ``final/`` is renamed to ``DIR`` in one
step once ``model/`` (and ``adapter/``), ``metrics.json`` and ``config.json`` are all written. An
interrupted run leaves ``DIR.partial/``; running the same config again resumes from its last complete
checkpoint.

One run at a time: :meth:`Workspace.lock` takes a :class:`~decemb.locks.FolderLock` on ``DIR`` (the very
lock :class:`decemb.outputs.OutputFolder` takes on a folder) and one on ``DIR.partial`` before anything is
read or written, and holds them until the result is published; a second run on either folder, training or
comparison, is refused at once, naming the process that holds it. JSON files are written atomically by
:func:`decemb.files.write_text`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from decemb.errors import ConfigError
from decemb.files import write_text
from decemb.locks import FolderLock, LockHeld
from decemb.outputs import exchange_folders
from decemb.train.config import ModelSection, TrainConfig
from decemb.train.trainer import last_checkpoint

__all__ = ["Workspace", "fingerprint", "write_json"]

# Sections that define what is trained; the others (eval, output, progress) may change between a run and its resume.
_IDENTITY = ("data_root", "model", "finetune", "lora", "data", "loss", "hard_negatives")
_IDENTITY_TRAINING = (
    "epochs",
    "max_steps",
    "batch_size",
    "grad_accumulation",
    "lr",
    "warmup_ratio",
    "warmup_steps",
    "weight_decay",
    "max_grad_norm",
    "seed",
    "gradient_checkpointing",
    "bf16",
)


_SOURCE_DEFAULTS: dict[str, Any] = {"loss": None, "weight": 1.0, "hard_negatives": None}
# The model keys of every run's identity before the section took all of LoadOptions' keys; the others, when at
# their defaults, leave the identity of an earlier run as it was.
_MODEL_KEYS = ("source", "strategy", "max_length", "layer", "dtype", "attn_implementation")


def fingerprint(config: TrainConfig) -> dict[str, Any]:
    """What must be equal for a run to resume another: model, data, loss and the optimisation settings."""
    dumped = config.model_dump(mode="json")
    out = {key: dumped[key] for key in _IDENTITY}
    for source in out["data"] if isinstance(out["data"], list) else [out["data"]]:
        for key, default in _SOURCE_DEFAULTS.items():  # keys added with multi-source training, when unused,
            if source.get(key, default) == default:  # leave the identity of a one-source run as it was
                source.pop(key, None)
    fields = ModelSection.model_fields
    out["model"] = {
        key: value for key, value in out["model"].items() if key in _MODEL_KEYS or value != fields[key].default
    }
    out["training"] = {key: dumped["training"][key] for key in _IDENTITY_TRAINING}
    return out


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (:func:`decemb.files.write_text`: a synced temporary file, then a rename)."""
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


class Workspace:
    """``out`` (the result) and ``work`` = ``out.partial`` (everything in progress). :meth:`lock` first (or
    ``with Workspace(out) as workspace:``): :meth:`prepare` and :meth:`publish` refuse to run without it."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out).expanduser().absolute()
        self.work = self.out.with_name(self.out.name + ".partial")
        self.checkpoints = self.work / "checkpoints"
        self.final = self.work / "final"
        self.history = self.work / "eval-history.jsonl"
        self.before = self.work / "eval-before.json"
        self._locks: list[FolderLock] = []
        self._overwrite = False
        self._checked = False

    # -- one run at a time ------------------------------------------------------------------------
    @property
    def locked(self) -> bool:
        return bool(self._locks)

    def lock(self) -> Workspace:
        """Lock ``out`` and ``work`` for this process; a ``ConfigError`` on ``--out`` naming the holder's pid
        when another run holds either. Nothing else is read or written (but ``out``'s parent is created)."""
        if self._locks:
            return self
        taken: list[FolderLock] = []
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            for folder in (self.out, self.work):
                taken.append(FolderLock(folder).acquire())
        except LockHeld as held:
            for lock in taken:
                lock.release()
            raise ConfigError(
                f"{held.folder} is in use by another decemb run ({held.holder}); wait for it or choose another --out",
                key="--out",
            ) from None
        except OSError as error:
            for lock in taken:
                lock.release()
            raise ConfigError(
                f"cannot write next to {self.out} ({error.strerror}: {error.filename})", key="--out"
            ) from None
        self._locks = taken
        return self

    def unlock(self) -> None:
        for lock in reversed(self._locks):
            lock.release()
        self._locks = []

    def __enter__(self) -> Workspace:
        return self.lock()

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    def _require_lock(self, action: str) -> None:
        if not self._locks:
            raise RuntimeError(f"lock the workspace of {self.out} before you {action} it")

    # -- the run's folders ------------------------------------------------------------------------
    def _occupied(self) -> bool:
        return self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir()))

    def check(self, config: TrainConfig) -> None:
        """An existing, non-empty output is an error unless ``overwrite`` (run once, before any model loads)."""
        if self._occupied() and not config.overwrite:
            raise ConfigError(f"{self.out} already exists; choose another --out or set overwrite: true", key="--out")
        self._checked = True

    def prepare(self, config: TrainConfig) -> Path | None:
        """Set up the work folder (after :meth:`check`); return the checkpoint to resume from, if any."""
        self._require_lock("prepare")
        if not self._checked:
            raise RuntimeError(f"check the output {self.out} before preparing its work folder")
        self._overwrite = config.overwrite
        identity = fingerprint(config)
        saved = self.work / "run.json"
        if self.work.exists():
            previous = json.loads(saved.read_text()) if saved.is_file() else None
            if config.resume and previous == identity:
                shutil.rmtree(self.final, ignore_errors=True)
                return last_checkpoint(self.checkpoints)
            if config.resume and previous is not None:
                raise ConfigError(
                    f"{self.work} holds an interrupted run of a different config; "
                    "set resume: false to discard it, or pass another --out",
                    key="resume",
                )
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        write_json(saved, identity)
        return None

    def stage(self) -> Path:
        shutil.rmtree(self.final, ignore_errors=True)
        self.final.mkdir(parents=True)
        return self.final

    def publish(self) -> Path:
        """Put the staged result in place of ``out`` (the two folders exchanged in one step where the platform
        can, else two renames), then drop the work folder; only under the lock, so no other run can be
        writing either. An ``out`` that appeared meanwhile is replaced only with ``overwrite``."""
        self._require_lock("publish")
        out = self.out
        if self._occupied() and not self._overwrite:
            raise ConfigError(f"{out} appeared while training; the trained result stays in {self.final}", key="--out")
        if not out.exists():
            os.replace(self.final, out)
        elif not (out.is_dir() and exchange_folders(self.final, out)):  # exchanged: final now holds the previous set
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(self.final, out)
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)
        return out
