"""Run a comparison: every model × strategy × layer × task, sharing forwards and the on-disk cache.

Per model, the backbone is loaded once; per (model, task), the task's texts are deduplicated per side
(query/document) and every strategy × layer becomes one :class:`~decemb.engine.EmbeddingJob` per side,
all handed to ONE ``Engine.embed`` call, so strategies whose renderings coincide (``mean``, ``last``,
``sgpt``; echo-mean and echo-last; all layers of a sweep) share one forward pass per text. Then each
strategy × layer is scored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from decemb.compare.config import ComparisonConfig, ConfigError, load_config
from decemb.instructions import instruction_for
from decemb.strategies import Strategy
from decemb.tasks import Task, TaskDataError, load_task
from decemb.tasks.loader import DATA_ENV, default_data_root

__all__ = [
    "Result",
    "Results",
    "default_cache_path",
    "resolve_cache_path",
    "resolve_data_root",
    "run_comparison",
    "task_instruction",
]


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


# -- resolution of paths -------------------------------------------------------------------------


def resolve_data_root(config: ComparisonConfig, data_root: str | os.PathLike[str] | None = None) -> Path:
    """``data_root`` argument, else ``$DECEMB_DATA``, else the config's ``data_root``, else the default."""
    if data_root is not None:
        return Path(data_root).expanduser()
    if os.environ.get(DATA_ENV):
        return default_data_root()
    if config.data_root:
        return Path(config.data_root).expanduser()
    return default_data_root()


def default_cache_path() -> Path:
    """The shared embedding cache: ``$DECEMB_CACHE/embeddings.sqlite`` (``~/.cache/decemb/...``)."""
    from decemb.loading import cache_root

    return cache_root() / "embeddings.sqlite"


def resolve_cache_path(config: ComparisonConfig, cache: bool | str | os.PathLike[str] | None = None) -> Path | None:
    """Where the cache lives (``None``: no cache); ``cache`` overrides the config's ``cache``."""
    setting: Any = config.cache if cache is None else cache
    if setting is False:
        return None
    if setting is True:
        return default_cache_path()
    return Path(os.fspath(setting)).expanduser()


# -- instructions --------------------------------------------------------------------------------


def task_instruction(strategy: Strategy, task: Task) -> str | None:
    """The per-call instruction for ``instruct`` without an explicit one: the E5 instruction for the
    task's name, else for its type. ``None`` (the strategy's own setting) for everything else."""
    if strategy.name != "instruct":
        return None
    if getattr(strategy, "instruction", None) is not None or getattr(strategy, "task", None) is not None:
        return None
    for key in (task.name, task.type):
        try:
            return instruction_for(key)
        except KeyError:
            continue
    return None


# -- planning one (model, task) ------------------------------------------------------------------


@dataclass
class _Plan:
    """The jobs of one (model, task) and how to map their rows back onto the task's requests."""

    jobs: list[Any] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # job → strategy index
    job_index: dict[tuple[int, int, str], int] = field(default_factory=dict)  # (strategy, layer, kind) → job
    rows: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)  # request key → (kind, row indices)

    def embeddings(self, arrays: Sequence[np.ndarray], strategy: int, layer: int) -> dict[str, np.ndarray]:
        return {key: arrays[self.job_index[(strategy, layer, kind)]][rows] for key, (kind, rows) in self.rows.items()}


def _plan(task: Task, strategies: Sequence[Strategy], layers: Sequence[int]) -> _Plan:
    from decemb.engine import EmbeddingJob

    plan = _Plan()
    unique: dict[str, dict[str, int]] = {}
    for key, request in task.requests().items():
        texts = unique.setdefault(request.kind, {})
        rows = [texts.setdefault(text, len(texts)) for text in request.texts]
        plan.rows[key] = (request.kind, np.asarray(rows, dtype=np.int64))
    for s, strategy in enumerate(strategies):
        instruction = task_instruction(strategy, task)
        for layer in layers:
            for kind, texts in unique.items():
                plan.job_index[(s, layer, kind)] = len(plan.jobs)
                plan.owners.append(s)
                plan.jobs.append(
                    EmbeddingJob(strategy=strategy, kind=kind, texts=list(texts), layer=layer, instruction=instruction)
                )
    return plan


# -- the run -------------------------------------------------------------------------------------


@contextlib.contextmanager
def transformers_progress(enabled: bool) -> Iterator[None]:
    """Show transformers' own progress bars (weight loading) only when ours are shown."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()
    if before and not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if before and not enabled:
            hf_logging.enable_progress_bar()


def _default_device() -> str | None:
    import torch

    return "cuda" if torch.cuda.is_available() else None


def _load_tasks(config: ComparisonConfig, root: Path, show_progress: bool) -> list[Task]:
    tasks = []
    for index, task_config in enumerate(tqdm(config.tasks, desc="Loading tasks", disable=not show_progress)):
        try:
            tasks.append(load_task(task_config, root))
        except TaskDataError as error:
            raise ConfigError(str(error), key=f"tasks[{index}]") from None
        except UnicodeDecodeError as error:  # the readers open files as UTF-8 and do not catch this
            files = [getattr(task_config, key, None) for key in ("path", "train", "test")]
            shown = ", ".join(repr(f) for f in files if f)
            raise ConfigError(
                f"task {task_config.name!r}: its data ({shown}) is not UTF-8 text ({error.reason} at byte "
                f"{error.start}); re-save it as UTF-8",
                key=f"tasks[{index}]",
            ) from None
        except OSError as error:  # e.g. permission denied; the message names the file
            raise ConfigError(
                f"task {task_config.name!r}: cannot read its data ({error})", key=f"tasks[{index}]"
            ) from None
        _check_texts(tasks[-1], index)
    return tasks


def _check_texts(task: Task, index: int) -> None:
    """Refuse, before any model loads, a text that no tokenizer can read (e.g. a lone surrogate from a
    JSON ``"\\ud800"`` escape), naming the task, the side and the text."""
    from decemb.rendering import check_text

    for key, request in task.requests().items():
        for row, text in enumerate(request.texts):
            try:
                check_text(row, text)
            except (TypeError, ValueError) as error:
                shown = text[:40] if isinstance(text, str) else text
                raise ConfigError(
                    f"task {task.name!r}: text {row} of {key!r} ({shown!r}) {str(error).removeprefix(f'input {row} ')}",
                    key=f"tasks[{index}]",
                ) from None


def run_comparison(
    config: ComparisonConfig | str | os.PathLike[str],
    *,
    data_root: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    device: str | None = None,
    cache: bool | str | os.PathLike[str] | None = None,
    show_progress: bool = True,
    on_progress: Callable[[Results], None] | None = None,
) -> Results:
    """Run every model × strategy × layer × task of ``config`` (a config or a YAML path).

    ``data_root``: overrides ``$DECEMB_DATA`` and the config's ``data_root``. ``limit``: caps every task
    (replaces each task's ``limit``). ``device``: for every model (default: the model's ``device``, else
    CUDA when available, else CPU). ``cache``: ``False`` disables the cache, a path replaces the config's.
    ``on_progress``: called with the results so far after each (model, task), e.g. to save them.

    Raises :class:`ConfigError` for a bad config, missing data, an unloadable model or a layer outside
    a model's range. Returns :class:`Results` (a list of :class:`Result`, with engine stats and timings).
    """
    if not isinstance(config, ComparisonConfig):
        config = load_config(config)
    try:
        return _run(
            config,
            data_root=data_root,
            limit=limit,
            device=device,
            cache=cache,
            show_progress=show_progress,
            on_progress=on_progress,
        )
    except ConfigError as error:
        if error.file is None and config.source is not None and not (error.key or "").startswith("--"):
            raise error.with_file(config.source) from None
        raise


def _run(
    config: ComparisonConfig,
    *,
    data_root: str | os.PathLike[str] | None,
    limit: int | None,
    device: str | None,
    cache: bool | str | os.PathLike[str] | None,
    show_progress: bool,
    on_progress: Callable[[Results], None] | None,
) -> Results:
    from decemb.attention import UnsupportedArchitectureError
    from decemb.cache import EmbeddingCache
    from decemb.engine import Engine, fingerprint
    from decemb.forward import resolve_layer
    from decemb.loading import ModelSourceError, load_backbone

    if limit is not None:
        if limit < 1:
            raise ConfigError(f"must be > 0 (got {limit})", key="--limit")
        config = config.model_copy(
            update={"tasks": [task.model_copy(update={"limit": limit}) for task in config.tasks]}
        )
    root = resolve_data_root(config, data_root)
    tasks = _load_tasks(config, root, show_progress)
    strategies = [entry.spec for entry in config.strategies]
    labels = [entry.display_label for entry in config.strategies]
    layers = list(config.layers)

    results = Results()
    results.config = config
    results.cache_path = resolve_cache_path(config, cache)
    try:
        store = EmbeddingCache(results.cache_path) if results.cache_path is not None else None
    except ValueError as error:  # not a SQLite file, or a damaged one: the message names the file
        raise ConfigError(f"{error}, or run with --no-cache", key="cache") from None
    try:
        for m, model_config in enumerate(config.models):
            name = model_config.name
            start = time.perf_counter()
            with (
                tqdm(total=1, desc=f"Loading {name}", disable=not show_progress) as bar,
                transformers_progress(show_progress),
            ):
                try:
                    model, tokenizer = load_backbone(
                        model_config.source,
                        dtype=model_config.dtype,
                        device=device or model_config.device or _default_device(),
                        attn_implementation=model_config.attn_implementation,
                        adapter=model_config.adapter,
                        revision=model_config.revision,
                    )
                except ModelSourceError as error:
                    raise ConfigError(str(error), key=f"models[{m}].source") from None
                bar.update()
            results.load_seconds[name] = time.perf_counter() - start
            for index, layer in enumerate(layers):
                try:
                    resolve_layer(model, layer)
                except ValueError as error:
                    raise ConfigError(f"{error} (model {name!r})", key=f"layers[{index}]") from None
            for index, strategy in enumerate(strategies):
                try:
                    strategy.attention.check(model)
                except UnsupportedArchitectureError as error:
                    raise ConfigError(f"{error} (model {name!r})", key=f"strategies[{index}]") from None

            engine = Engine(
                model,
                tokenizer,
                model_config.settings,
                cache=store,
                model_fingerprint=fingerprint(model) if store is not None else None,
                show_progress=show_progress,
            )
            results.stats[name] = engine.stats
            for t, task in enumerate(tasks):
                plan = _plan(task, strategies, layers)
                _check_renderings(plan, tokenizer, model_config.max_length, labels, name, m)
                start = time.perf_counter()
                arrays = engine.embed(plan.jobs, desc=f"Encoding {task.name} with {name} ({len(plan.jobs)} jobs)")
                encode_seconds = time.perf_counter() - start
                results.encode_seconds[(name, task.name)] = encode_seconds
                pairs = [(s, layer) for s in range(len(strategies)) for layer in layers]
                for s, layer in tqdm(pairs, desc=f"Scoring {task.name}", disable=not show_progress):
                    start = time.perf_counter()
                    try:
                        scores = task.score(plan.embeddings(arrays, s, layer))
                    except TaskDataError as error:
                        raise ConfigError(str(error), key=f"tasks[{t}]") from None
                    seconds = time.perf_counter() - start
                    for metric, value in scores.items():
                        results.append(
                            Result(
                                model=name,
                                strategy=labels[s],
                                strategy_name=strategies[s].name,
                                options=strategies[s].options(),
                                layer=layer,
                                task=task.name,
                                task_type=task.type,
                                metric=metric,
                                value=float(value),
                                n=task.size(),
                                seconds=seconds,
                                encode_seconds=encode_seconds,
                                main=metric == task.main_metric,
                            )
                        )
                if on_progress is not None:
                    on_progress(results)
            del engine, model, tokenizer
            _release_memory()
    except sqlite3.DatabaseError as error:  # a cache damaged past its header, found when read or written
        raise ConfigError(
            f"embedding cache {results.cache_path} is damaged ({error}); delete it, or run with --no-cache",
            key="cache",
        ) from None
    finally:
        if store is not None:
            store.close()
    return results


def _check_renderings(
    plan: _Plan, tokenizer: Any, max_length: int | None, labels: list[str], model: str, m: int
) -> None:
    """Fail before encoding when a template does not fit ``max_length`` or needs a token the tokenizer lacks."""
    from decemb.templates import TemplateError

    seen: set[tuple[int, str, str | None]] = set()
    for job, s in zip(plan.jobs, plan.owners, strict=True):
        if (s, job.kind, job.instruction) in seen:
            continue
        seen.add((s, job.kind, job.instruction))
        try:
            job.strategy.renderer(tokenizer, job.kind, job.instruction, max_length=max_length)
        except TemplateError as error:
            raise ConfigError(f"{error} (model {model!r})", key=f"strategies[{s}]") from None
        except ValueError as error:
            raise ConfigError(f"{error} (strategy {labels[s]!r})", key=f"models[{m}].max_length") from None


def _release_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass
