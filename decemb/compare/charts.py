"""A PNG bar chart of one task's main metric (matplotlib's Agg canvas, no display needed): one bar per
model × strategy × layer with its bootstrap interval as an error bar, and, for a task with a rerank stage,
a second bar per row for the reranked score."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from decemb.compare.tables import Interval, Row, TaskTable, number
from decemb.errors import MissingExtraError, require_extra
from decemb.files import atomic_write

__all__ = ["charts_available", "plot_task", "require_charts"]

logger = logging.getLogger(__name__)
_EXTRA = "plots"


def require_charts() -> None:
    """A one-line ``MissingExtraError`` naming the ``plots`` extra when matplotlib is not installed."""
    require_extra("matplotlib", _EXTRA, "charts")


def charts_available() -> bool:
    """Whether matplotlib (the ``plots`` extra) is installed; when not, says once in the log what is left out."""
    try:
        require_charts()
    except MissingExtraError as error:
        logger.warning("no charts: %s", error)
        return False
    return True


def _errors(values: list[float], intervals: list[Interval | None]) -> list[list[float]]:
    """matplotlib's ``xerr``: distances below and above each value (0 where there is no interval)."""
    below = [v - i[0] if i is not None and math.isfinite(v) else 0.0 for v, i in zip(values, intervals, strict=True)]
    above = [i[1] - v if i is not None and math.isfinite(v) else 0.0 for v, i in zip(values, intervals, strict=True)]
    return [[max(b, 0.0) for b in below], [max(a, 0.0) for a in above]]


def plot_task(table: TaskTable, path: str | os.PathLike[str]) -> Path:
    """Horizontal bar chart of the task's main metric per model × strategy × layer, with 95% intervals
    (matplotlib, the ``plots`` extra: without it a one-line ``MissingExtraError``)."""
    require_charts()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = {row[0] for row in table.rows}
    layers = {row[2] for row in table.rows}

    def label(row: Row) -> str:
        text = row[1]
        if len(layers) > 1:
            text += f" @ layer {row[2]}"
        if len(models) > 1:
            text = f"{row[0]} / {text}"
        return text

    metric = table.main_metric
    series = [("bi-encoder", table.values, table.intervals)]
    if table.reranked:
        top_k = next(iter(table.rerank_info.values()), {}).get("top_k", "?")
        series.append((f"reranked (top {top_k})", table.reranked, table.reranked_intervals))
    height = 0.8 / len(series)
    best = table.best(metric)
    figure = Figure(figsize=(7.5, 1.4 + 0.35 * len(table.rows) * len(series)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    positions = list(range(len(table.rows)))[::-1]
    for k, (_, source, bounds) in enumerate(series):
        values = [source.get(row, {}).get(metric, math.nan) for row in table.rows]
        intervals = [bounds.get(row, {}).get(metric) for row in table.rows]
        where = [p + (len(series) - 1) / 2 * height - k * height for p in positions]
        shown = [v if math.isfinite(v) else 0.0 for v in values]
        if k == 0:
            colors = ["tab:orange" if best is not None and v == best else "tab:blue" for v in values]
        else:
            colors = ["tab:green"] * len(values)
        axes.barh(where, shown, height=height * 0.9, color=colors)
        axes.errorbar(shown, where, xerr=_errors(values, intervals), fmt="none", ecolor="black", capsize=2, lw=0.8)
        for y, value, interval in zip(where, values, intervals, strict=True):
            end = interval[1] if interval is not None else value
            axes.annotate(
                number(value),
                (max(end, 0.0) if math.isfinite(end) else 0.0, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    axes.set_yticks(positions, [label(row) for row in table.rows])
    interval_note = ", 95% bootstrap intervals" if table.intervals else ""
    axes.set_xlabel(f"{metric} (×100{interval_note})")
    axes.set_title(f"{table.task} ({table.task_type}, n = {table.n})")
    if len(series) > 1:
        from matplotlib.patches import Patch

        colors = ["tab:blue", "tab:orange", "tab:green"]
        names = [series[0][0], f"best {series[0][0]}", series[1][0]]
        handles = [Patch(color=c, label=n) for c, n in zip(colors, names, strict=True)]
        figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    axes.margins(x=0.15)
    return atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=110), binary=True)
