"""One strategy × layer of a task turned into records: the task's metrics, each with its bootstrap interval,
then, when the task has one, its rerank stage's metrics (``stage="rerank"``) with the gain per metric."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from decemb.compare.rerank import RerankOutcome
from decemb.compare.results import Result
from decemb.compare.stats import bootstrap_ci, change_items
from decemb.compare.tasks import RerankConfig
from decemb.errors import ConfigError
from decemb.tasks import ItemScores, Task, TaskDataError

__all__ = ["rerank_records", "score_records"]


def _interval(items: ItemScores | None) -> dict[str, float | None]:
    interval = bootstrap_ci(items) if items is not None else None
    return {"ci_low": None if interval is None else interval[0], "ci_high": None if interval is None else interval[1]}


def score_records(task: Task, embeddings: dict[str, np.ndarray], base: dict[str, Any], index: int) -> list[Result]:
    """The task's metrics of these embeddings (``base``: the record fields that name the strategy × layer)."""
    start = time.perf_counter()
    try:
        scores = task.score(embeddings)
    except TaskDataError as error:
        raise ConfigError(str(error), key=f"tasks[{index}]") from None
    seconds = time.perf_counter() - start
    items = task.score_items(embeddings)
    return [
        Result(
            **base,
            metric=metric,
            value=float(value),
            seconds=seconds,
            main=metric == task.main_metric,
            **_interval(items.get(metric)),
        )
        for metric, value in scores.items()
    ]


def rerank_records(task: Task, outcome: RerankOutcome, config: RerankConfig, base: dict[str, Any]) -> list[Result]:
    """The metrics after the rerank stage; ``info`` holds the stage, its latency and the gain over the
    bi-encoder (``change``, with ``change_ci``: the paired bootstrap interval over the queries)."""
    records = []
    for metric, after in outcome.after.items():
        before = outcome.before[metric]
        change = change_items(before, after)
        change_ci = bootstrap_ci(change) if change is not None else None
        info = {
            "reranker": config.label,
            "source": config.source,
            "adapter": config.adapter,
            "top_k": config.top_k,
            "latency_ms": dict(outcome.latency_ms),
            "before": before.value(),
            "change": after.value() - before.value(),
            "change_ci": None if change_ci is None else list(change_ci),
        }
        records.append(
            Result(
                **base,
                metric=metric,
                value=after.value(),
                seconds=outcome.seconds,
                main=metric == task.main_metric,
                stage="rerank",
                info=info,
                **_interval(after),
            )
        )
    return records
