"""A comparison's records grouped per task: rows = model × strategy × layer, columns = metrics; plus the
markdown helpers the report's tables share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from decemb.compare.results import Result

__all__ = ["Interval", "Row", "TaskTable", "cell", "markdown_table", "number", "scored", "task_tables"]

Row = tuple[str, str, int]  # (model, strategy label, layer)
Interval = tuple[float, float]


@dataclass
class TaskTable:
    """One task's results: rows = model × strategy × layer, columns = metrics (main metric first).

    ``values``/``intervals``: the bi-encoder's scores and their bootstrap intervals. ``reranked`` /
    ``reranked_intervals``: the scores after the task's rerank stage (empty without one), and ``rerank_info``
    the ``info`` of each row's main-metric rerank record (reranker, top k, latency, gain).
    """

    task: str
    task_type: str
    n: int
    main_metric: str
    metrics: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    values: dict[Row, dict[str, float]] = field(default_factory=dict)
    intervals: dict[Row, dict[str, Interval]] = field(default_factory=dict)
    reranked: dict[Row, dict[str, float]] = field(default_factory=dict)
    reranked_intervals: dict[Row, dict[str, Interval]] = field(default_factory=dict)
    rerank_info: dict[Row, dict[str, Any]] = field(default_factory=dict)

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
        reranked = result.stage == "rerank"
        values = table.reranked if reranked else table.values
        intervals = table.reranked_intervals if reranked else table.intervals
        values.setdefault(row, {})[result.metric] = result.value
        if result.interval is not None:
            intervals.setdefault(row, {})[result.metric] = result.interval
        if reranked and result.main:
            table.rerank_info[row] = result.info
    for table in tables.values():
        if table.main_metric in table.metrics:
            table.metrics.remove(table.main_metric)
            table.metrics.insert(0, table.main_metric)
    return list(tables.values())


def number(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "nan"


def scored(value: float, interval: Interval | None, *, bold: bool = False) -> str:
    """A score cell: ``71.20 [69.80, 72.50]`` (value, then its interval when there is one), value in bold."""
    text = f"**{number(value)}**" if bold else number(value)
    return text if interval is None else f"{text} [{number(interval[0])}, {number(interval[1])}]"


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list[str]], numeric_from: int, text: Sequence[int] = ()) -> list[str]:
    """Columns from ``numeric_from`` on are right-aligned, but for the ``text`` ones."""
    align = ["---" if i < numeric_from or i in text else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
