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
    """One metric of one model × strategy × layer × task.

    ``seconds``: time to score this strategy × layer on the task (the embeddings given).
    ``encode_seconds``: time to embed the task's texts for ALL strategies × layers of this model (one
    shared ``Engine.embed`` call; cache hits make it small), the same on every record of the pair.
    ``main``: whether ``metric`` is the task's main metric.
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

    def to_dict(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        if not math.isfinite(record["value"]):
            record["value"] = None  # JSON has no NaN
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Result:
        data = dict(record)
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
