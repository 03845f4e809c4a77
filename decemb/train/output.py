"""The output folder, never half-written: a run works in ``DIR.partial/`` (its config, checkpoints, the
evaluation history, and the final files staged in ``final/``), and ``final/`` is renamed to ``DIR`` in one
step once ``model/`` (and ``adapter/``), ``metrics.json`` and ``config.json`` are all written. An
interrupted run leaves ``DIR.partial/``; running the same config again resumes from its last complete
checkpoint."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from decemb.errors import ConfigError
from decemb.train.config import TrainConfig
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


def fingerprint(config: TrainConfig) -> dict[str, Any]:
    """What must be equal for a run to resume another: model, data, loss and the optimisation settings."""
    dumped = config.model_dump(mode="json")
    out = {key: dumped[key] for key in _IDENTITY}
    out["training"] = {key: dumped["training"][key] for key in _IDENTITY_TRAINING}
    return out


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a temporary file in the same folder, then a rename)."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(staging, path)


class Workspace:
    """``out`` (the result) and ``work`` = ``out.partial`` (everything in progress)."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out).expanduser().absolute()
        self.work = self.out.with_name(self.out.name + ".partial")
        self.checkpoints = self.work / "checkpoints"
        self.final = self.work / "final"
        self.history = self.work / "eval-history.jsonl"
        self.before = self.work / "eval-before.json"

    def check(self, config: TrainConfig) -> None:
        """An existing, non-empty output is an error unless ``overwrite``."""
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())) and not config.overwrite:
            raise ConfigError(f"{self.out} already exists; choose another --out or set overwrite: true", key="--out")

    def prepare(self, config: TrainConfig) -> Path | None:
        """Check the output and set up the work folder; return the checkpoint to resume from, if any."""
        self.check(config)
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
        """Move the staged result to ``out`` in one rename (an existing ``out`` is replaced only with
        ``overwrite``, checked in :meth:`prepare`), then drop the work folder."""
        old = None
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            os.replace(self.out, old)
        os.replace(self.final, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)
        return self.out
