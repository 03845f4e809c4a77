"""The sentence-transformers pooling module: the weighted sum of the strategy's pooling weights."""

from __future__ import annotations

from typing import Any

import torch
from sentence_transformers.base.modules import Module

from decemb.pooling import weighted_sum


class DecembPooling(Module):
    """Reads ``token_embeddings`` and ``pool_weights`` (set by the input module from its strategy),
    writes ``sentence_embedding``. The strategy alone decides the pooling, so nothing here can disagree
    with it; ``pooling`` is accepted only so that folders saved before this rule still load."""

    config_keys = ["embedding_dimension"]

    def __init__(self, embedding_dimension: int, pooling: str | None = None) -> None:
        super().__init__()
        self.embedding_dimension = embedding_dimension

    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        embedding = weighted_sum(features["token_embeddings"], features["pool_weights"])
        return {**features, "sentence_embedding": embedding}

    def get_embedding_dimension(self) -> int:
        return self.embedding_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
