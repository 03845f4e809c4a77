"""Fine-tuning decemb strategies: ``decemb train CONFIG.yaml --out DIR`` and :func:`train`.

Every strategy trains as it embeds (same templates, sides, pooled spans and attention) through the
sentence-transformers trainer: InfoNCE with in-batch and hard negatives (plain or cached), CoSENT/AnglE
on scored pairs, unsupervised SimCSE, and LLM2Vec's masked next-token prediction; LoRA (merged into the
saved weights) or full fine-tuning; evaluation before, during and after; resumable checkpoints.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "TrainConfig": "decemb.train.config",
    "apply_overrides": "decemb.train.parsing",
    "load_train_config": "decemb.train.parsing",
    "parse_train_config": "decemb.train.parsing",
    "TrainResult": "decemb.train.run",
    "train": "decemb.train.run",
}


def __getattr__(name: str) -> Any:  # imported on first use: the CLI's parser needs none of it
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'decemb.train' has no attribute {name!r}")


if TYPE_CHECKING:
    from decemb.train.config import TrainConfig
    from decemb.train.parsing import apply_overrides, load_train_config, parse_train_config
    from decemb.train.run import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "apply_overrides", "load_train_config", "parse_train_config", "train"]
