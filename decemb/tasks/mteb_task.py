"""An mteb task as a decemb task (``type: mteb``): mteb's data and evaluator, decemb's encoding.

    - {type: mteb, task: STSBenchmark}                          # mteb's data (the Hugging Face cache)
    - {type: mteb, task: SciFact, path: mteb/scifact, limit: 100, metrics: [recall_at_10]}

``task`` is an mteb task name; ``name`` (default: ``task``) is its name in the comparison. ``path``: a local
copy of the task's dataset, in the layout of its Hub dataset (a folder, relative to the data root), for
offline runs. ``split``: default the task's first evaluation split. ``subsets``: the Hugging Face subsets
(languages) to run, default all; scores are their mean. ``metrics``: mteb score keys reported besides the
task's main score. ``limit``: a seeded sample of the evaluated split's rows (retrieval: of its queries with
a relevant document; the corpus stays whole). Scores are mteb's, x100, without bootstrap intervals.

Loading runs mteb's evaluation once with stand-in vectors to collect the texts it embeds per side
(:mod:`decemb.tasks.mteb_replay`); :meth:`MtebTask.score` runs it again on the runner's vectors. Bad names,
splits, subsets and metrics, missing mteb and data that needs the Hub while offline are one-line errors
when the task loads, before any model does. The instruction a strategy gets is mteb's E5 instruction
(:func:`decemb.mteb.e5_instruction`), as in ``as_mteb_model``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from decemb.registry import did_you_mean
from decemb.tasks._io import resolve_path
from decemb.tasks._sampling import sample_indices
from decemb.tasks.base import EncodeRequest, TaskDataError, check_embeddings
from decemb.tasks.config import _TaskBase
from decemb.tasks.items import ItemScores

__all__ = ["MtebTask", "MtebTaskConfig", "load_mteb"]


class MtebTaskConfig(_TaskBase):
    """A task from mteb's registry (see the module doc)."""

    type: Literal["mteb"] = "mteb"
    task: str = Field(min_length=1, description="An mteb task name (``name`` defaults to it).")
    path: str | None = Field(
        default=None,
        min_length=1,
        description="A local copy of the task's dataset in its Hub layout (a folder, relative to the data root), "
        "for offline runs.",
    )
    split: str | None = Field(default=None, min_length=1, description="Default: the task's first evaluation split.")
    subsets: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The Hugging Face subsets (languages) to run; default all, scores averaged.",
    )
    metrics: list[str] = Field(default_factory=list, description="mteb score keys reported besides the main score.")

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "name" not in data and isinstance(data.get("task"), str):
            return {**data, "name": data["task"]}
        return data


@dataclass
class MtebTask:
    """Requests: ``query`` and ``document`` (the sides mteb encodes). Scores: the main score, then ``metrics``."""

    name: str
    type: str
    main_metric: str
    instruction: str | None  # mteb's E5 instruction for the task's queries
    mteb_task: Any
    split: str
    subsets: list[str] | None
    metrics: list[str]
    texts: dict[str, dict[str, int]]
    items: int
    info: dict[str, Any] = field(default_factory=dict)

    def requests(self) -> dict[str, EncodeRequest]:
        return {side: EncodeRequest(side, list(texts)) for side, texts in self.texts.items() if texts}  # type: ignore[arg-type]

    def score(self, embeddings: dict[str, np.ndarray]) -> dict[str, float]:
        from decemb.tasks.mteb_replay import ReplayEncoder, evaluate_subsets

        arrays = check_embeddings(self.name, self.requests(), embeddings)
        scores = evaluate_subsets(
            self.mteb_task, ReplayEncoder(self.name, self.texts, arrays), self.split, self.subsets
        )
        return {metric: 100 * float(np.mean([subset[metric] for subset in scores.values()])) for metric in self.metrics}

    def score_items(self, embeddings: dict[str, np.ndarray]) -> dict[str, ItemScores]:
        return {}  # mteb reports aggregates only: no bootstrap intervals

    def size(self) -> int:
        return self.items


def _fail(config: MtebTaskConfig, message: str) -> TaskDataError:
    return TaskDataError(f"task {config.name!r}: {message}")


def _check_among(config: MtebTaskConfig, key: str, value: str, known: list[str], what: str) -> None:
    """A one-line error naming ``key`` when ``value`` is not one of mteb's ``known`` names for ``what``."""
    if value not in known:
        shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        hint = did_you_mean(value, known)
        raise _fail(
            config, f"{key} = {value!r}: mteb task {config.task} has no such {what}{hint}; its {what}s: {shown}"
        )


def _mteb_task(config: MtebTaskConfig, data_root: Path) -> Any:
    try:
        import mteb
    except ImportError:
        raise _fail(config, "type 'mteb' needs the mteb package: pip install 'decemb[mteb]'") from None
    from decemb.mteb import load_task_data, with_local_data

    try:
        task = mteb.get_task(config.task)
    except KeyError as error:
        shown = str(error.args[0] if error.args else error).removeprefix("KeyError: ")
        raise _fail(config, f"task = {config.task!r}: {shown}") from None
    if config.path is not None:
        with_local_data(
            task, str(resolve_path(config.path, root=data_root, task=config.name, key="path", kind="folder"))
        )
    if config.subsets is not None:
        for index, subset in enumerate(config.subsets):
            _check_among(config, f"subsets[{index}]", subset, list(task.hf_subsets or ["default"]), "subset")
    try:
        load_task_data(task)
    except RuntimeError as error:
        raise _fail(config, str(error)) from None
    return task


def _holder(task: Any, subset: str) -> Any:
    """The mapping of a subset's splits (as ``AbsTask.evaluate`` finds them)."""
    return task.dataset if subset == "default" and subset not in task.dataset else task.dataset[subset]


def _split_data(task: Any, split: str, subset: str) -> tuple[Any, Any]:
    """The mapping holding a subset's split, and the split's data."""
    holder = _holder(task, subset)
    return holder, holder[split]


def _limit(config: MtebTaskConfig, task: Any, split: str, subsets: list[str]) -> int:
    """Cut each subset's split to a seeded sample of ``limit`` rows (retrieval: queries); the items kept."""
    from datasets import Dataset

    kept = 0
    for subset in subsets:
        holder, data = _split_data(task, split, subset)
        if isinstance(data, Dataset):
            rows = sample_indices(range(len(data)), config.limit, config.seed)
            holder[split] = data.select(rows) if len(rows) < len(data) else data
            kept += len(rows)
        elif isinstance(data, dict) and {"queries", "relevant_docs"} <= set(data):
            relevant, queries = data["relevant_docs"], list(data["queries"]["id"])
            ids = sorted(query for query in queries if relevant.get(query))
            keep = {ids[i] for i in sample_indices(ids, config.limit, config.seed)}
            rows = [i for i, query in enumerate(queries) if query in keep]
            data = {**data, "queries": data["queries"].select(rows), "relevant_docs": {q: relevant[q] for q in keep}}
            holder[split] = data
            kept += len(rows)
        elif config.limit is not None:
            raise _fail(config, f"limit: cannot sample the data of mteb task {config.task} ({type(data).__name__})")
        else:
            kept += len(data) if hasattr(data, "__len__") else 0
    return kept


def load_mteb(config: MtebTaskConfig, data_root: Path) -> MtebTask:
    """Load the mteb task's data, sample it, and collect the texts its evaluation embeds (module doc)."""
    from decemb.mteb import e5_instruction
    from decemb.tasks.mteb_replay import RecordingEncoder, evaluate_subsets

    task = _mteb_task(config, data_root)
    meta = task.metadata
    split = config.split or meta.eval_splits[0]
    subsets = config.subsets or list(task.hf_subsets or ["default"])
    for subset in subsets:
        _check_among(config, "split", split, [str(name) for name in _holder(task, subset)], "split")
    items = _limit(config, task, split, subsets)
    recorder = RecordingEncoder()
    scores = evaluate_subsets(task, recorder, split, config.subsets)
    available = sorted(
        {
            key
            for subset in scores.values()
            for key, value in subset.items()
            if isinstance(value, float | int) and not isinstance(value, bool)
        }
    )
    for index, metric in enumerate(config.metrics):
        _check_among(config, f"metrics[{index}]", metric, available, "score")
    metrics = list(dict.fromkeys([meta.main_score, *config.metrics]))
    return MtebTask(
        name=config.name,
        type=str(meta.type).lower(),  # STS, Retrieval, ... are decemb's sts, retrieval, ...
        main_metric=meta.main_score,
        instruction=e5_instruction(meta),
        mteb_task=task,
        split=split,
        subsets=config.subsets,
        metrics=metrics,
        texts={side: dict(texts) for side, texts in recorder.texts.items()},
        items=items,
        info={"mteb_task": meta.name, "dataset": meta.dataset.get("path"), "split": split},
    )
