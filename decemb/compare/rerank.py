"""A retrieval task's rerank stage in a comparison run: each query's first-stage top ``top_k`` (the task's
``retriever``: dense, bm25 or hybrid) rescored by a decoder reranker, with the task's metrics before and after
and the latency per query of each stage.

The stage is :func:`decemb.search.evaluate_rerank` taken apart so that per-query metrics come back too (for
the bootstrap intervals): :meth:`~decemb.tasks.RetrievalTask.rankings` (the first stage's top 100 per query,
timed: the ``retrieve`` latency), :func:`~decemb.search.rerank_rankings` (one reranker call per query over its top k:
the ``rerank`` latency), then the task's own metrics on both rankings. Rerankers load once per run, before
any model, keyed by (source, adapter).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from decemb.compare.tasks import RerankConfig
from decemb.errors import ConfigError, ModelSourceError
from decemb.tasks import ItemScores, RetrievalTask

__all__ = ["RerankOutcome", "Rerankers", "run_rerank"]


class Rerankers:
    """The rerankers of a run, each loaded once (:func:`decemb.rerank.load_reranker`)."""

    def __init__(self, device: str | None, show_progress: bool = False) -> None:
        self.device, self.show_progress = device, show_progress
        self._loaded: dict[tuple[str, str | None], Any] = {}

    def load_all(self, tasks: Sequence[Any]) -> None:
        """Load every reranker the tasks ask for, so that a bad one fails before anything is encoded."""
        for index, task in enumerate(tasks):
            if getattr(task, "rerank", None) is not None:
                self.get(task.rerank, index)

    def get(self, config: RerankConfig, index: int) -> Any:
        """The reranker of ``tasks[index].rerank``, reading pairs of at most its ``max_length`` tokens."""
        where = f"tasks[{index}].rerank"
        try:
            if config.key not in self._loaded:
                from decemb.progress import transformers_progress
                from decemb.rerank import load_reranker

                with transformers_progress(self.show_progress):
                    self._loaded[config.key] = load_reranker(
                        config.source, adapter=config.adapter, max_length=config.max_length, device=self.device
                    )
            reranker = self._loaded[config.key]
            encoder = reranker[0]
            limit = getattr(encoder.auto_model.config.get_text_config(), "max_position_embeddings", None)
            wanted = config.max_length if limit is None or config.max_length is None else min(config.max_length, limit)
            if encoder.max_seq_length != wanted:  # another task's max_length: same model, other cut
                encoder.max_seq_length = wanted
        except ModelSourceError as error:
            raise ConfigError(str(error), key=where) from None
        except ValueError as error:  # e.g. the pair template alone does not fit max_length
            key = f"{where}.max_length" if "max_length" in str(error) else where
            raise ConfigError(str(error), key=key) from None
        return reranker

    def close(self) -> None:
        self._loaded.clear()


@dataclass
class RerankOutcome:
    """Per-query metrics (x100) of the bi-encoder's ranking and of the reranked one, and latency per query."""

    before: dict[str, ItemScores]
    after: dict[str, ItemScores]
    latency_ms: dict[str, float]
    seconds: float


def run_rerank(
    task: RetrievalTask, embeddings: dict[str, np.ndarray], reranker: Any, config: RerankConfig, index: int
) -> RerankOutcome:
    """Retrieve with ``embeddings``, rerank each query's top ``config.top_k``, score both rankings."""
    from decemb.rerank import PairTooLongError
    from decemb.search import rerank_rankings

    started = time.perf_counter()
    rankings = task.rankings(embeddings)  # the task's own first stage: dense, bm25 or hybrid
    retrieve = time.perf_counter() - started
    try:
        reranked, seconds = rerank_rankings(task, rankings, reranker, config.top_k, batch_size=config.batch_size)
    except PairTooLongError as error:
        raise ConfigError(f"task {task.name!r}: {error}", key=f"tasks[{index}].rerank.max_length") from None
    after = task.ranking_items(reranked)
    n = len(task.query_ids)
    latency = {"retrieve": 1000 * retrieve / n, "rerank": 1000 * float(np.mean(seconds))}
    return RerankOutcome(task.ranking_items(rankings), after, latency, time.perf_counter() - started)
