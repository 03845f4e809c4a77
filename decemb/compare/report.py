"""Report writers: ``results.json``, ``results.csv``, ``run.json``, ``report.md`` and a PNG bar chart per task.

The whole set is written into a staging folder and then replaces the output folder's previous set in one
atomic step (:class:`decemb.outputs.OutputFolder`), so an interrupted or killed run, or a concurrent
reader, sees the previous set or the new one, never a new ``results.json`` next to an old ``report.md``;
SIGINT/SIGTERM are held meanwhile. The markdown report is exactly what ``decemb compare`` prints.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from decemb.compare.charts import charts_available, plot_task, require_charts
from decemb.compare.results import Result, Results
from decemb.compare.stats import describe
from decemb.compare.tables import TaskTable, cell, markdown_table, scored, task_tables
from decemb.compare.timing import timing_section
from decemb.files import signals_deferred, write_text
from decemb.outputs import OutputFolder

__all__ = ["CSV_FIELDS", "TaskTable", "format_report", "plot_task", "read_results", "task_tables", "write_outputs"]

CSV_FIELDS = [
    "model",
    "strategy",
    "strategy_name",
    "options",
    "layer",
    "task",
    "task_type",
    "metric",
    "value",
    "n",
    "seconds",
    "encode_seconds",
    "main",
    "stage",
    "ci_low",
    "ci_high",
    "encode_share_seconds",
    "encode_share_tokens",
    "info",
]


# -- markdown --------------------------------------------------------------------------------------

ITEMS = {"sts": "pairs", "retrieval": "queries", "classification": "test texts", "clustering": "texts"}
FITTED = {
    "classification": "; the classifier is fitted once, its test predictions resampled",
    "clustering": "; k-means is fitted once and its clusters resampled, so they leave out k-means' own variance",
}


def format_report(results: Sequence[Result], *, title: str = "decemb comparison") -> str:
    """The markdown report: a table per task (best value of each metric column in bold, each score with its
    bootstrap interval), a side-by-side table of a rerank stage, then timings."""
    lines = [f"# {title}", ""]
    tables = task_tables(results)
    if any(table.intervals for table in tables):
        lines += [f"Scores are x100. {describe()}", ""]
    for table in tables:
        lines += _task_section(table)
        if table.reranked:
            lines += _rerank_section(table)
    lines += timing_section(results)
    return "\n".join(lines).rstrip() + "\n"


def _task_section(table: TaskTable) -> list[str]:
    about = f"{table.task_type}, n = {table.n}, main metric: {table.main_metric}"
    if table.intervals:
        about += f"; intervals over the {table.n} {ITEMS.get(table.task_type, 'items')}"
        about += FITTED.get(table.task_type, "")
    else:
        about += "; no intervals (mteb tasks report aggregates only; other tasks need 2+ items and finite scores)"
    best = {metric: table.best(metric) for metric in table.metrics}
    body = []
    for row in table.rows:
        model, strategy, layer = row
        cells = [cell(model), cell(strategy), str(layer)]
        for metric in table.metrics:
            value = table.values[row].get(metric, math.nan)
            bold = best[metric] is not None and value == best[metric]
            cells.append(scored(value, table.intervals.get(row, {}).get(metric), bold=bold))
        body.append(cells)
    lines = [f"## {table.task}", "", about, ""]
    return [*lines, *markdown_table(["model", "strategy", "layer", *table.metrics], body, numeric_from=2), ""]


def _rerank_section(table: TaskTable) -> list[str]:
    """Before and after the rerank stage, one row per stage, with each stage's latency per query."""
    info = next(iter(table.rerank_info.values()), {})
    top_k, main = info.get("top_k", "?"), table.main_metric
    lines = [
        f"### {table.task}: reranked",
        "",
        f"Stages side by side: `retrieve` is the bi-encoder's ranking (the table above); `rerank top {top_k}` "
        f"reorders each query's top {top_k} by the reranker `{cell(info.get('reranker', '?'))}`, the rest keep "
        "their order. ms/query: mean latency per query of the stage (retrieve: cosine top 100 over the corpus; "
        f"rerank: one reranker call over the top {top_k}). Δ {main}: the gain, with its paired bootstrap interval "
        "over the queries.",
        "",
    ]
    body = []
    for row in (row for row in table.rows if row in table.reranked):
        latency = table.rerank_info.get(row, {}).get("latency_ms", {})
        gain = _change(table.rerank_info.get(row, {}))
        for stage, values, intervals, step, delta in (
            ("retrieve", table.values, table.intervals, "retrieve", ""),
            (f"rerank top {top_k}", table.reranked, table.reranked_intervals, "rerank", gain),
        ):
            cells = [cell(row[0]), cell(row[1]), str(row[2]), stage]
            cells += [scored(values[row].get(m, math.nan), intervals.get(row, {}).get(m)) for m in table.metrics]
            body.append([*cells, f"{latency[step]:.2f}" if step in latency else "", delta])
    header = ["model", "strategy", "layer", "stage", *table.metrics, "ms/query", f"Δ {main}"]
    return [*lines, *markdown_table(header, body, numeric_from=2, text=[3]), ""]


def _change(info: dict[str, Any]) -> str:
    """The rerank gain of the main metric, ``+3.10 [-1.20, +7.40]``."""
    change, interval = info.get("change"), info.get("change_ci")
    if change is None:
        return ""
    text = f"{change:+.2f}"
    return text if not interval else f"{text} [{interval[0]:+.2f}, {interval[1]:+.2f}]"


# -- all outputs ---------------------------------------------------------------------------------


_write_text = write_text  # one name for every file of the set (tests interrupt the run between two)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "task"


def _csv_text(results: Sequence[Result]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        record = result.to_dict()
        record["options"] = json.dumps(record["options"], ensure_ascii=False, sort_keys=True)
        record["info"] = json.dumps(record["info"], ensure_ascii=False, sort_keys=True) if record["info"] else ""
        record["value"] = "nan" if record["value"] is None else repr(record["value"])
        writer.writerow(record)
    return buffer.getvalue()


def write_outputs(
    results: Sequence[Result],
    out: OutputFolder | str | os.PathLike[str],
    *,
    plots: bool | None = None,
    report: str | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv``, ``run.json`` (when ``results`` is a :class:`Results`),
    ``<task>.png`` per task and ``report.md`` (``report``, default :func:`format_report`) into ``out``.
    ``plots``: ``None`` (the default) draws the charts when matplotlib (the ``plots`` extra) is installed and
    otherwise leaves them out with one logged line; ``True`` without matplotlib is a one-line error.

    The set replaces the folder's previous set in one step (:class:`~decemb.outputs.OutputFolder`): a
    crash or a concurrent reader never sees a mix. ``out`` is an open output folder (a run holds it from
    before its first encode) or a path, opened, checked and locked for this write (``force``: see
    :class:`~decemb.outputs.OutputFolder`)."""
    if plots is None:
        plots = charts_available()
    elif plots:
        require_charts()  # before anything is written
    if not isinstance(out, OutputFolder):
        with OutputFolder(out, force=force) as folder:
            return write_outputs(results, folder, plots=plots, report=report)
    with signals_deferred():
        names = out.commit(lambda staging: list(_write_outputs(results, staging, plots=plots, report=report)))
    return {name: out.path / name for name in names}


def _write_outputs(results: Sequence[Result], folder: Path, *, plots: bool, report: str | None) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    records = [result.to_dict() for result in results]
    written["results.json"] = _write_text(
        folder / "results.json", json.dumps(records, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    )
    written["results.csv"] = _write_text(folder / "results.csv", _csv_text(results))
    if isinstance(results, Results):
        summary = json.dumps(results.summary(), indent=2, ensure_ascii=False, default=str) + "\n"
        written["run.json"] = _write_text(folder / "run.json", summary)
    if plots:
        used: set[str] = set()
        for table in task_tables(results):
            stem = base = _slug(table.task)
            counter = 2
            while stem in used:
                stem, counter = f"{base}-{counter}", counter + 1
            used.add(stem)
            written[f"{stem}.png"] = plot_task(table, folder / f"{stem}.png")
    written["report.md"] = _write_text(folder / "report.md", report if report is not None else format_report(results))
    return written


def read_results(path: str | os.PathLike[str]) -> list[Result]:
    """Records from a ``results.json`` (e.g. to re-render a report)."""
    records = json.loads(Path(path).read_text(encoding="utf-8"))
    return [Result.from_dict(record) for record in records]
