"""Poolings as pure maps from the pool mask to per-token weights; one weighted sum applies them all.

A pooling turns ``pool_mask`` (which tokens the strategy pools) into integer weights (integers, so that
sentence-transformers can pad and merge the features of several columns into one forward); the vector is
``Σ w_i h_i / Σ w_i`` over the pooled positions (:func:`weighted_sum`). The strategy alone names its
pooling, and the weights travel with the features, so the sentence-transformers pooling module needs
no setting of its own. Positions outside the mask are excluded with ``torch.where`` (non-finite values
at padded positions cannot leak in); nothing depends on the padding side or on the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from decemb.registry import Registry

PoolWeightsFn = Callable[[torch.Tensor], torch.Tensor]
POOLINGS: Registry[PoolWeightsFn] = Registry("pooling")


@POOLINGS.register("mean")
def mean_weights(pool_mask: torch.Tensor) -> torch.Tensor:
    """Every pooled token counts once: the average of their states."""
    return pool_mask.to(torch.long)


@POOLINGS.register("weighted_mean")
def position_weights(pool_mask: torch.Tensor) -> torch.Tensor:
    """SGPT's position-weighted mean: the i-th pooled token (i = 1, 2, ...) gets weight i / Σi.

    Positions are counted from the first pooled token, so padding on either side changes nothing.
    """
    mask = pool_mask.to(torch.long)
    return torch.cumsum(mask, dim=1) * mask


@POOLINGS.register("last")
def last_weights(pool_mask: torch.Tensor) -> torch.Tensor:
    """Only the last pooled token (e.g. the EOS or the closing quote of a prompt)."""
    positions = torch.arange(pool_mask.shape[1], device=pool_mask.device).expand_as(pool_mask)
    last = torch.where(pool_mask.to(torch.bool), positions, -1).max(dim=1, keepdim=True).values
    return (positions == last).to(torch.long)


def pool_weights(name: str, pool_mask: torch.Tensor) -> torch.Tensor:
    """The integer weights of pooling ``name`` for a ``(batch, length)`` pool mask."""
    return POOLINGS.get(name)(pool_mask)


def weighted_sum(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``Σ w_i h_i / Σ w_i`` per row, in float32; positions with weight 0 are never read."""
    weights = weights.to(device=hidden.device, dtype=torch.float32)
    keep = (weights > 0).unsqueeze(-1)
    states = torch.where(keep, hidden.float(), torch.zeros((), dtype=torch.float32, device=hidden.device))
    total = weights.sum(dim=1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
    return (states * weights.unsqueeze(-1)).sum(dim=1) / total


def pool(name: str, hidden: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """Pool ``hidden`` over ``pool_mask`` with the registered pooling ``name``."""
    return weighted_sum(hidden, pool_weights(name, pool_mask))
