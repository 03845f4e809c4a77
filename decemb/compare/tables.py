"""A comparison's records grouped per task: rows = model × strategy × layer, columns = metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from decemb.compare.results import Result

__all__ = ["TaskTable", "number", "task_tables"]


@dataclass
class TaskTable:
    """One task's results: rows = model × strategy × layer, columns = metrics (main metric first)."""

    task: str
    task_type: str
    n: int
    main_metric: str
    metrics: list[str] = field(default_factory=list)
    rows: list[tuple[str, str, int]] = field(default_factory=list)
    values: dict[tuple[str, str, int], dict[str, float]] = field(default_factory=dict)

    def best(self, metric: str) -> float | None:
        finite = [v[metric] for v in self.values.values() if metric in v and math.isfinite(v[metric])]
        return max(finite) if finite else None


def task_tables(results: Sequence[Result]) -> list[TaskTable]:
    """Group records by task (in run order)."""
    tables: dict[str, TaskTable] = {}
    for result in results:
        table = tables.get(result.task)
        if table is None:
            table = tables[result.task] = TaskTable(result.task, result.task_type, result.n, result.metric)
        if result.main:
            table.main_metric = result.metric
        if result.metric not in table.metrics:
            table.metrics.append(result.metric)
        row = (result.model, result.strategy, result.layer)
        if row not in table.values:
            table.rows.append(row)
            table.values[row] = {}
        table.values[row][result.metric] = result.value
    for table in tables.values():
        if table.main_metric in table.metrics:
            table.metrics.remove(table.main_metric)
            table.metrics.insert(0, table.main_metric)
    return list(tables.values())


def number(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "nan"
