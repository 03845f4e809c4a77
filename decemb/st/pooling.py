"""The sentence-transformers pooling module: applies a registered pooling over the strategy's span."""

from __future__ import annotations

from typing import Any

import torch
from sentence_transformers.base.modules import Module

from decemb.pooling import POOLINGS, pool


class DecembPooling(Module):
    """Reads ``token_embeddings`` and ``pool_mask``, writes ``sentence_embedding``."""

    config_keys = ["pooling", "embedding_dimension"]

    def __init__(self, pooling: str, embedding_dimension: int) -> None:
        super().__init__()
        POOLINGS.get(pooling)
        self.pooling = pooling
        self.embedding_dimension = embedding_dimension

    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        embedding = pool(self.pooling, features["token_embeddings"], features["pool_mask"])
        return {**features, "sentence_embedding": embedding}

    def get_embedding_dimension(self) -> int:
        return self.embedding_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
