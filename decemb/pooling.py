"""Pooling functions: pure maps from (hidden states, pool mask) to one vector per input.

Each reads only the positions where ``pool_mask`` is true, uses ``torch.where`` rather than
multiplication (so non-finite values at padded positions cannot leak in) and computes in float32.
None depends on the padding side or on the other inputs of the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from decemb.registry import Registry

PoolingFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
POOLINGS: Registry[PoolingFn] = Registry("pooling")


def _masked(hidden: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    mask = pool_mask.to(torch.bool).unsqueeze(-1)
    return torch.where(mask, hidden.float(), torch.zeros((), dtype=torch.float32, device=hidden.device))


@POOLINGS.register("mean")
def mean_pooling(hidden: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """Average of the pooled tokens' states."""
    counts = pool_mask.to(torch.float32).sum(dim=1, keepdim=True).clamp(min=1.0)
    return _masked(hidden, pool_mask).sum(dim=1) / counts


@POOLINGS.register("weighted_mean")
def weighted_mean_pooling(hidden: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """SGPT's position-weighted mean: the i-th pooled token (i = 1, 2, ...) gets weight i / sum(i).

    Positions are counted from the first pooled token, so padding on either side changes nothing.
    """
    mask = pool_mask.to(torch.float32)
    weights = torch.cumsum(mask, dim=1) * mask
    weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1.0)
    return (_masked(hidden, pool_mask) * weights.unsqueeze(-1)).sum(dim=1)


@POOLINGS.register("last")
def last_pooling(hidden: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """State of the last pooled token (e.g. the EOS or the closing quote of a prompt)."""
    positions = torch.arange(pool_mask.shape[1], device=pool_mask.device).expand_as(pool_mask)
    last = torch.where(pool_mask.to(torch.bool), positions, -1).max(dim=1).values.clamp(min=0)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    return hidden[rows, last.to(hidden.device)].float()


def pool(name: str, hidden: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    return POOLINGS.get(name)(hidden, pool_mask)
