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

from decemb.compare.charts import plot_task
from decemb.compare.results import Result, Results
from decemb.compare.tables import TaskTable, number, task_tables
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
]


# -- markdown --------------------------------------------------------------------------------------


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown_table(header: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def format_report(results: Sequence[Result], *, title: str = "decemb comparison") -> str:
    """The markdown report: a table per task (best value of each metric column in bold), then timings."""
    lines = [f"# {title}", ""]
    for table in task_tables(results):
        lines += [f"## {table.task}", "", f"{table.task_type}, n = {table.n}, main metric: {table.main_metric}", ""]
        best = {metric: table.best(metric) for metric in table.metrics}
        body = []
        for row in table.rows:
            model, strategy, layer = row
            cells = [_cell(model), _cell(strategy), str(layer)]
            for metric in table.metrics:
                value = table.values[row].get(metric, math.nan)
                text = number(value)
                cells.append(f"**{text}**" if best[metric] is not None and value == best[metric] else text)
            body.append(cells)
        lines += _markdown_table(["model", "strategy", "layer", *table.metrics], body, numeric_from=2)
        lines.append("")
    lines += _timing_section(results)
    return "\n".join(lines).rstrip() + "\n"


def _timing_section(results: Sequence[Result]) -> list[str]:
    score: dict[tuple[str, str], float] = {}
    encode: dict[tuple[str, str], float] = {}
    seen: set[tuple[str, str, str, int]] = set()
    for r in results:
        pair = (r.model, r.task)
        encode[pair] = r.encode_seconds
        if (r.model, r.task, r.strategy, r.layer) not in seen:  # one score time per strategy × layer
            seen.add((r.model, r.task, r.strategy, r.layer))
            score[pair] = score.get(pair, 0.0) + r.seconds
    if not encode:
        return []
    loads = getattr(results, "load_seconds", {})
    rows = [
        [
            _cell(model),
            _cell(task),
            f"{loads[model]:.1f}" if model in loads else "",
            f"{seconds:.1f}",
            f"{score[pair]:.1f}",
        ]
        for pair, seconds in encode.items()
        for model, task in [pair]
    ]
    lines = ["## Timing", "", "Seconds: load the model, encode the task (all strategies × layers), score them.", ""]
    lines += _markdown_table(["model", "task", "load s", "encode s", "score s"], rows, numeric_from=2)
    stats = getattr(results, "stats", {})
    if stats:
        names = ["forward_passes", "sequences_run", "tokens_run", "cache_hits", "cache_misses"]
        rows = [[_cell(model), *(str(getattr(s, name, "")) for name in names)] for model, s in stats.items()]
        lines += ["", *_markdown_table(["model", *names], rows, numeric_from=1)]
    return [*lines, ""]


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
        record["value"] = "nan" if record["value"] is None else repr(record["value"])
        writer.writerow(record)
    return buffer.getvalue()


def write_outputs(
    results: Sequence[Result],
    out: OutputFolder | str | os.PathLike[str],
    *,
    plots: bool = True,
    report: str | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv``, ``run.json`` (when ``results`` is a :class:`Results`),
    ``<task>.png`` per task and ``report.md`` (``report``, default :func:`format_report`) into ``out``.

    The set replaces the folder's previous set in one step (:class:`~decemb.outputs.OutputFolder`): a
    crash or a concurrent reader never sees a mix. ``out`` is an open output folder (a run holds it from
    before its first encode) or a path, opened, checked and locked for this write (``force``: see
    :class:`~decemb.outputs.OutputFolder`)."""
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
