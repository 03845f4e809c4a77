"""The records of a comparison: one :class:`Result` per metric, gathered in :class:`Results`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decemb.compare.config import ComparisonConfig

__all__ = ["Result", "Results"]


@dataclass
class Result:
    """One metric of one model × strategy × layer × task (× stage).

    ``seconds``: time to score this strategy × layer on the task (the embeddings given); on a rerank record,
    the whole rerank stage (retrieve, rerank every query's top k, score).
    ``encode_seconds``: time to embed the task's texts for ALL strategies × layers of this model (one
    shared ``Engine.embed`` call; cache hits make it small), the same on every record of the pair.
    ``main``: whether ``metric`` is the task's main metric.
    ``stage``: ``None`` for the bi-encoder's score; ``"rerank"`` for the score after the task's rerank stage
    (``info``: ``reranker``, ``top_k``, ``latency_ms`` per query per stage, ``change`` and ``change_ci``, the
    gain over the bi-encoder with its paired bootstrap CI).
    ``ci_low``/``ci_high``: the 95% bootstrap confidence interval of ``value`` over the task's items
    (:mod:`decemb.compare.stats`); ``None`` where there is none (a NaN score, fewer than 2 items).
    ``encode_share_seconds``/``encode_share_tokens``: this strategy × layer's share of the shared encode
    (:class:`decemb.engine.JobCost`): its rendering and lookups, plus its share of the forwards it used.
    """

    model: str
    strategy: str
    strategy_name: str
    options: dict[str, Any]
    layer: int
    task: str
    task_type: str
    metric: str
    value: float
    n: int
    seconds: float
    encode_seconds: float
    main: bool = False
    stage: str | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    encode_share_seconds: float | None = None
    encode_share_tokens: float | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.ci_low is None or self.ci_high is None else (self.ci_low, self.ci_high)

    def to_dict(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        if not math.isfinite(record["value"]):
            record["value"] = None  # JSON has no NaN
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Result:
        """A record of ``results.json``; keys a newer version added are ignored, missing ones take defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        data = {key: value for key, value in record.items() if key in known}
        data["value"] = math.nan if data.get("value") is None else float(data["value"])
        return cls(**data)


class Results(list[Result]):
    """The records of a run (a plain ``list`` of :class:`Result`) plus run-wide bookkeeping.

    * ``stats``: model name → the engine's stats (forward passes, sequences, tokens, cache hits/misses)
    * ``load_seconds``: model name → seconds to load the backbone
    * ``encode_seconds``: (model, task) → seconds of the shared encode call
    * ``config``: the config that was run (with ``--limit`` applied to its tasks)
    """

    def __init__(self, items: Sequence[Result] = ()) -> None:
        super().__init__(items)
        self.stats: dict[str, Any] = {}
        self.load_seconds: dict[str, float] = {}
        self.encode_seconds: dict[tuple[str, str], float] = {}
        self.config: ComparisonConfig | None = None
        self.cache_path: Path | None = None

    def total(self, field_name: str) -> int:
        """Sum of one engine stats field over every model (e.g. ``total("forward_passes")``)."""
        return sum(int(getattr(stats, field_name)) for stats in self.stats.values())

    def summary(self) -> dict[str, Any]:
        """JSON-ready run metadata (what ``run.json`` holds)."""
        return {
            "config": None if self.config is None else self.config.model_dump(mode="json"),
            "cache": None if self.cache_path is None else str(self.cache_path),
            "load_seconds": dict(self.load_seconds),
            "encode_seconds": [
                {"model": model, "task": task, "seconds": seconds}
                for (model, task), seconds in self.encode_seconds.items()
            ],
            "engine_stats": {
                model: dataclasses.asdict(stats) if dataclasses.is_dataclass(stats) else dict(vars(stats))
                for model, stats in self.stats.items()
            },
        }
