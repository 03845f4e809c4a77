"""The reranker's training losses, all sentence-transformers' own cross-encoder losses, with the dataset
shape each one reads (:mod:`decemb.rerank.train_data`):

* ``bce``: ``BinaryCrossEntropyLoss`` on ``(query, document, label)`` pairs; ``pos_weight`` weighs the
  positives' term (e.g. the number of negatives per positive, to balance them);
* ``listnet``: ``ListNetLoss`` on ``(query, docs, labels)`` lists (cross-entropy of the softmaxed scores
  against the labels);
* ``lambda``: ``LambdaLoss`` on the same lists (pairwise, NDCG-weighted: ``NDCGLoss2PPScheme``).

The list losses score one list per forward (``mini_batch_size`` = the list's length), so a list's pairs
share the query's KV cache (:class:`~decemb.rerank.module.DecembPairEncoder`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from decemb.rerank.train_data import RerankExample, bce_dataset, listwise_dataset

__all__ = ["RERANK_LOSSES", "RerankLoss", "check_loss", "training_dataset", "training_loss"]

RerankLoss = Literal["bce", "listnet", "lambda"]
RERANK_LOSSES: tuple[str, ...] = ("bce", "listnet", "lambda")


def check_loss(name: object, pos_weight: float | None = None) -> RerankLoss:
    """``name`` if it is a reranker loss (and ``pos_weight``, if given, is for ``bce`` and > 0)."""
    if name not in RERANK_LOSSES:
        raise ValueError(f"unknown reranker loss {name!r}; expected one of {', '.join(RERANK_LOSSES)}")
    if pos_weight is not None and (name != "bce" or not pos_weight > 0):
        raise ValueError(f"pos_weight is for loss 'bce' and must be > 0 (got {pos_weight!r} with loss {name!r})")
    return name  # type: ignore[return-value]


def training_dataset(loss: RerankLoss, examples: Sequence[RerankExample], seed: int = 0) -> Any:
    """The ``datasets.Dataset`` that ``loss`` reads: pairs for ``bce``, lists for the others."""
    return bce_dataset(examples, seed) if check_loss(loss) == "bce" else listwise_dataset(examples, seed)


def training_loss(
    loss: RerankLoss, reranker: Any, *, list_size: int, pos_weight: float | None = None
) -> torch.nn.Module:
    """The sentence-transformers loss object of ``loss`` for ``reranker`` (scores stay raw: identity
    activation, as the losses expect logits)."""
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, LambdaLoss, ListNetLoss

    check_loss(loss, pos_weight)
    if loss == "bce":
        weight = None if pos_weight is None else torch.tensor([float(pos_weight)], device=reranker.device)
        return BinaryCrossEntropyLoss(reranker, pos_weight=weight)
    if loss == "listnet":
        return ListNetLoss(reranker, mini_batch_size=list_size)
    return LambdaLoss(reranker, mini_batch_size=list_size)
