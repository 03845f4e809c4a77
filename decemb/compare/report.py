"""Report writers: ``results.json``, ``results.csv``, ``run.json``, ``report.md`` and a PNG bar chart per task.

Every file is written atomically (a temporary file in the same folder, then ``os.replace``), so an
interrupted run leaves either the previous version of a file or the new one, never half of one; and
SIGINT/SIGTERM are held while a set of files is written (:func:`signals_deferred`), so the set is all old
or all new, never a new ``results.json`` next to an old ``report.md``, and no temporary file is left.
The markdown report is exactly what ``decemb compare`` prints.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from decemb.compare.runner import Result, Results

__all__ = [
    "CSV_FIELDS",
    "TaskTable",
    "atomic_write",
    "format_report",
    "plot_task",
    "read_results",
    "signals_deferred",
    "task_tables",
    "write_outputs",
]

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


# -- atomic files --------------------------------------------------------------------------------


_HELD_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))
_holding = threading.local()


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver them (with their usual handlers).

    A Ctrl-C or ``kill`` that lands while a set of files is being written then takes effect once the
    whole set is written. Nests; outside the main thread (where handlers cannot be set) it does nothing.
    """
    if getattr(_holding, "active", False) or threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous: dict[int, Any] = {}
    for number in _HELD_SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            previous[number] = signal.signal(number, lambda signum, frame: pending.append(signum))
    _holding.active = True
    try:
        yield
    finally:
        _holding.active = False
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(pending):
            signal.raise_signal(number)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[Any]], None], *, binary: bool = False) -> Path:
    """Write ``path`` through ``write(handle)`` into a temporary file next to it, then ``os.replace`` it
    (signals held meanwhile, so an interrupt never leaves the temporary file behind)."""
    with signals_deferred():
        return _atomic_write(path, write, binary=binary)


def _atomic_write(path: str | os.PathLike[str], write: Callable[[IO[Any]], None], *, binary: bool) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return target


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda handle: handle.write(text))


# -- tables --------------------------------------------------------------------------------------


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


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _number(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "nan"


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
                text = _number(value)
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


# -- charts --------------------------------------------------------------------------------------


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
            _number(value),
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


# -- all outputs ---------------------------------------------------------------------------------


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
    results: Sequence[Result], out_dir: str | os.PathLike[str], *, plots: bool = True, report: str | None = None
) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv``, ``run.json`` (when ``results`` is a :class:`Results`),
    ``<task>.png`` per task and ``report.md`` (``report``, default :func:`format_report`) into ``out_dir``.

    Signals are held until every file is written, so an interrupt never leaves a mixed set."""
    with signals_deferred():
        return _write_outputs(results, Path(out_dir), plots=plots, report=report)


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
