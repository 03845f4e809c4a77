"""Fusing ranked lists of one query from several retrievers (BM25 and dense) into one ranking.

* ``rrf``: reciprocal rank fusion (Cormack et al. 2009): ``sum_r w_r / (k + rank_r(d))``, ranks from 1; a
  document missing from a list gets nothing from it. Scale-free: only ranks count.
* ``weighted``: each list's scores min-max normalised to [0, 1] over that list (a missing document counts 0),
  then ``sum_r w_r * norm_r(d)`` (Weaviate's "relative score fusion"; Bruch et al. 2023 call it TM2C2).

Ties are broken by the document's best rank in any list, then by the order lists were given.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["FusionSettings", "fuse"]

Ranking = Sequence[tuple[Hashable, float]]


class FusionSettings(BaseModel):
    """``method`` (``rrf`` or ``weighted``), ``k`` (RRF's rank offset), ``weights`` (one per retriever,
    lexical first; default equal), ``depth`` (how many of each retriever's hits are fused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["rrf", "weighted"] = "rrf"
    k: float = Field(60.0, gt=0)
    weights: tuple[float, float] = (1.0, 1.0)
    depth: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _check_weights(self) -> FusionSettings:
        if any(w < 0 for w in self.weights) or not any(self.weights):
            raise ValueError(f"weights must be >= 0 and not all 0 (got {list(self.weights)})")
        return self


def _normalised(ranking: Ranking) -> dict[Hashable, float]:
    if not ranking:
        return {}
    scores = [float(score) for _, score in ranking]
    low, high = min(scores), max(scores)
    span = high - low
    return {doc: (1.0 if span == 0 else (float(score) - low) / span) for doc, score in ranking}


def fuse(rankings: Sequence[Ranking], settings: FusionSettings | None = None) -> list[tuple[Hashable, float]]:
    """One ranking (``(document, fused score)``, best first) from ``rankings`` (each best first, one per
    retriever, as many as ``settings.weights``)."""
    settings = settings or FusionSettings()
    if len(rankings) != len(settings.weights):
        raise ValueError(f"{len(rankings)} rankings for {len(settings.weights)} fusion weights")
    fused: dict[Hashable, float] = {}
    best: dict[Hashable, tuple[int, int]] = {}
    for which, (ranking, weight) in enumerate(zip(rankings, settings.weights, strict=True)):
        head = list(ranking)[: settings.depth]
        norm = _normalised(head) if settings.method == "weighted" else {}
        for rank, (doc, _) in enumerate(head):
            gain = weight / (settings.k + rank + 1) if settings.method == "rrf" else weight * norm[doc]
            fused[doc] = fused.get(doc, 0.0) + gain
            best[doc] = min(best.get(doc, (rank, which)), (rank, which))
    return sorted(fused.items(), key=lambda item: (-item[1], best[item[0]]))
