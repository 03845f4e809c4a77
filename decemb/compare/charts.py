"""A PNG bar chart of one task's main metric (matplotlib's Agg canvas, no display needed)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from decemb.compare.tables import TaskTable, number
from decemb.files import atomic_write

__all__ = ["plot_task"]


def plot_task(table: TaskTable, path: str | os.PathLike[str]) -> Path:
    """Horizontal bar chart of the task's main metric per model × strategy × layer (PNG, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = {row[0] for row in table.rows}
    layers = {row[2] for row in table.rows}

    def label(row: tuple[str, str, int]) -> str:
        text = row[1]
        if len(layers) > 1:
            text += f" @ layer {row[2]}"
        if len(models) > 1:
            text = f"{row[0]} / {text}"
        return text

    values = [table.values[row].get(table.main_metric, math.nan) for row in table.rows]
    best = table.best(table.main_metric)
    figure = Figure(figsize=(7.5, 1.2 + 0.35 * len(table.rows)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    positions = list(range(len(table.rows)))[::-1]
    shown = [v if math.isfinite(v) else 0.0 for v in values]
    colors = ["tab:orange" if best is not None and v == best else "tab:blue" for v in values]
    axes.barh(positions, shown, color=colors)
    axes.set_yticks(positions, [label(row) for row in table.rows])
    for position, value in zip(positions, values, strict=True):
        axes.annotate(
            number(value),
            (max(value, 0.0) if math.isfinite(value) else 0.0, position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    axes.set_xlabel(f"{table.main_metric} (×100)")
    axes.set_title(f"{table.task} ({table.task_type}, n = {table.n})")
    axes.margins(x=0.15)
    return atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=110), binary=True)
