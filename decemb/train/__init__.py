"""Fine-tuning decemb strategies: ``decemb train CONFIG.yaml --out DIR`` and :func:`train`.

Every strategy trains as it embeds (same templates, sides, pooled spans and attention) through the
sentence-transformers trainer: InfoNCE with in-batch and hard negatives (plain or cached), CoSENT/AnglE
on scored pairs, unsupervised SimCSE, and LLM2Vec's masked next-token prediction; LoRA (merged into the
saved weights) or full fine-tuning; evaluation before, during and after; resumable checkpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from decemb.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, __file__)  # the names below load on first use

if TYPE_CHECKING:
    from decemb.train.config import TrainConfig
    from decemb.train.parsing import apply_overrides, load_train_config, parse_train_config
    from decemb.train.run import TrainResult, train
