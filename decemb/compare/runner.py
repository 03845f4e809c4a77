"""Run a comparison: every model × strategy × layer × task, sharing forwards and the on-disk cache.

Per model, the backbone is loaded once and every layer and strategy is checked against it (layer range,
attention support, template fit at the model's capped ``max_length``, for every instruction the tasks
ask for) before anything is encoded. Per (model, task), the task's texts are deduplicated per side
(query/document) and every strategy × layer becomes one :class:`~decemb.engine.EmbeddingJob` per side,
all handed to ONE ``Engine.embed`` call, so strategies whose renderings coincide (``mean``, ``last``,
``sgpt``; echo-mean and echo-last; all layers of a sweep) share one forward pass per text. Then each
strategy × layer is scored (:mod:`~decemb.compare.scoring`: every score with its bootstrap interval, and the
strategy's share of the encode time and tokens), and a retrieval task's ``rerank`` stage runs on its
embeddings (:mod:`~decemb.compare.rerank`; the rerankers load once, before any model).
"""

from __future__ import annotations

import gc
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from decemb.attention import UnsupportedArchitectureError
from decemb.backends import DEFAULT_BACKEND
from decemb.cache import CacheError, EmbeddingCache
from decemb.compare.config import ComparisonConfig, ModelConfig, load_config
from decemb.compare.inputs import load_tasks
from decemb.compare.paths import resolve_cache_path, resolve_data_root
from decemb.compare.plan import plan_task, task_instruction
from decemb.compare.rerank import Rerankers, run_rerank
from decemb.compare.results import Results
from decemb.compare.scoring import rerank_records, score_records
from decemb.errors import ConfigError, ModelSourceError
from decemb.loading import load_backbone
from decemb.progress import transformers_progress
from decemb.strategies import Strategy
from decemb.tasks import Task
from decemb.templates import TemplateError

if TYPE_CHECKING:  # torch loads with the first model, not when the config is checked
    from decemb.core import EncodingCore
    from decemb.engine import Engine

__all__ = ["run_comparison"]


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
        return _run(config, data_root, limit, device, cache, show_progress, on_progress)
    except ConfigError as error:
        if error.file is None and config.source is not None and not (error.key or "").startswith("--"):
            raise error.with_file(config.source) from None
        raise


def _run(
    config: ComparisonConfig,
    data_root: str | os.PathLike[str] | None,
    limit: int | None,
    device: str | None,
    cache: bool | str | os.PathLike[str] | None,
    show_progress: bool,
    on_progress: Callable[[Results], None] | None,
) -> Results:
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"must be > 0 (got {limit})", key="--limit")
        config = config.model_copy(
            update={"tasks": [task.model_copy(update={"limit": limit}) for task in config.tasks]}
        )
    tasks = load_tasks(config, resolve_data_root(config, data_root), show_progress)
    strategies = [entry.spec for entry in config.strategies]
    results = Results()
    results.config = config
    results.cache_path = resolve_cache_path(config, cache)
    try:
        store = EmbeddingCache(results.cache_path) if results.cache_path is not None else None
    except ValueError as error:  # not a SQLite file, or a damaged one: the message names the file
        raise ConfigError(f"{error}, or run with --no-cache", key="cache") from None
    rerankers = Rerankers(device or _default_device(), show_progress)
    try:
        rerankers.load_all(config.tasks)
        for m, model_config in enumerate(config.models):
            start = time.perf_counter()
            model, tokenizer = _load(model_config, m, device, show_progress)
            results.load_seconds[model_config.name] = time.perf_counter() - start
            from decemb.engine import Engine

            engine = Engine(model, tokenizer, model_config.settings, cache=store, show_progress=show_progress)
            _check_model(engine.core, config, strategies, tasks, m)
            results.stats[model_config.name] = engine.stats
            for t, task in enumerate(tasks):
                _run_task(engine, config, strategies, task, t, model_config.name, results, show_progress, rerankers)
                if on_progress is not None:
                    on_progress(results)
            del engine, model, tokenizer
            _release_memory()
    except CacheError as error:  # the cache found damaged while reading: the message names the file
        raise ConfigError(f"{error}, or run with --no-cache", key="cache") from None
    except sqlite3.DatabaseError as error:  # a cache damaged past its header, found when read or written
        raise ConfigError(
            f"embedding cache {results.cache_path} is damaged ({error}); delete it, or run with --no-cache",
            key="cache",
        ) from None
    finally:
        rerankers.close()
        if store is not None:
            store.close()
    return results


def _load(model_config: ModelConfig, m: int, device: str | None, show_progress: bool) -> tuple[Any, Any]:
    with (
        tqdm(total=1, desc=f"Loading {model_config.name}", disable=not show_progress) as bar,
        transformers_progress(show_progress),
    ):
        loading = model_config.loading
        placement = device or loading.device or (_default_device() if loading.backend == DEFAULT_BACKEND else None)
        try:
            loaded = load_backbone(model_config.source, loading.model_copy(update={"device": placement}))
        except ModelSourceError as error:
            raise ConfigError(str(error), key=f"models[{m}].source") from None
        except ValueError as error:  # e.g. backend int8 asked to run on a GPU
            raise ConfigError(str(error).splitlines()[0], key=f"models[{m}]") from None
        bar.update()
    return loaded


def _check_model(
    core: EncodingCore, config: ComparisonConfig, strategies: Sequence[Strategy], tasks: Sequence[Task], m: int
) -> None:
    """Refuse, before encoding anything, a layer outside the model or a strategy it cannot run (attention,
    or a template that does not fit the capped ``max_length`` for an instruction some task asks for)."""
    name = config.models[m].name
    for index, layer in enumerate(config.layers):
        try:
            core.resolve_layer(layer)
        except ValueError as error:
            raise ConfigError(f"{error} (model {name!r})", key=f"layers[{index}]") from None
    for s, strategy in enumerate(strategies):
        instructions = list(dict.fromkeys(task_instruction(strategy, task) for task in tasks))
        try:
            core.check(strategy, instructions)
        except (UnsupportedArchitectureError, TemplateError) as error:
            raise ConfigError(f"{error} (model {name!r})", key=f"strategies[{s}]") from None
        except ValueError as error:  # the template leaves no room for the text within max_length
            label = config.strategies[s].display_label
            raise ConfigError(f"{error} (strategy {label!r})", key=f"models[{m}].max_length") from None


def _run_task(
    engine: Engine,
    config: ComparisonConfig,
    strategies: Sequence[Strategy],
    task: Task,
    t: int,
    model: str,
    results: Results,
    show_progress: bool,
    rerankers: Rerankers,
) -> None:
    """Encode one task for every strategy × layer in one ``Engine.embed`` call, then score each (and run
    its rerank stage, if the task has one)."""
    plan = plan_task(task, strategies, config.layers)
    start = time.perf_counter()
    arrays = engine.embed(plan.jobs, desc=f"Encoding {task.name} with {model} ({len(plan.jobs)} jobs)")
    encode_seconds = time.perf_counter() - start
    results.encode_seconds[(model, task.name)] = encode_seconds
    costs = getattr(engine, "job_costs", [])
    rerank = getattr(config.tasks[t], "rerank", None)
    pairs = [(s, layer) for s in range(len(strategies)) for layer in config.layers]
    for s, layer in tqdm(pairs, desc=f"Scoring {task.name}", disable=not show_progress):
        base = {
            "model": model,
            "strategy": config.strategies[s].display_label,
            "strategy_name": strategies[s].name,
            "options": strategies[s].options(),
            "layer": layer,
            "task": task.name,
            "task_type": task.type,
            "n": task.size(),
            "encode_seconds": encode_seconds,
            **plan.share(costs, s, layer),
        }
        embeddings = plan.embeddings(arrays, s, layer)
        results.extend(score_records(task, embeddings, base, t))
        if rerank is not None:
            outcome = run_rerank(task, embeddings, rerankers.get(rerank, t), rerank, t)
            results.extend(rerank_records(task, outcome, rerank, base))


def _default_device() -> str | None:
    import torch

    return "cuda" if torch.cuda.is_available() else None


def _release_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass
