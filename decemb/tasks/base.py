"""Task interface shared by every evaluation task, plus the checks that guard ``Task.score``.

The runner embeds the texts named by :meth:`Task.requests` (any model, any strategy) and hands the
embeddings back to :meth:`Task.score`; tasks never see a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from decemb.normalize import l2_normalize
from decemb.tasks.items import ItemScores

__all__ = [
    "EncodeRequest",
    "Task",
    "TaskDataError",
    "TaskFileNotFoundError",
    "check_embeddings",
    "l2_normalize",
]


class TaskDataError(ValueError):
    """A task's data does not match its config (bad column, unparsable value, too few classes, ...)."""


class TaskFileNotFoundError(TaskDataError, FileNotFoundError):
    """A file named by a task config does not exist; also a ``FileNotFoundError``."""


@dataclass(frozen=True)
class EncodeRequest:
    """A named group of texts to embed.

    ``kind`` tells an asymmetric strategy which side renders the text: ``"query"`` (queries, and both
    sides of symmetric tasks) or ``"document"`` (retrieval corpora).
    """

    kind: Literal["query", "document"]
    texts: list[str]


@runtime_checkable
class Task(Protocol):
    """What the comparison runner relies on; every task class implements it. A task may also carry an
    ``instruction`` attribute (an mteb task: mteb's E5 instruction), which ``decemb.compare.plan.task_instruction``
    gives to a strategy that wants a task instruction."""

    name: str
    type: str  # "sts" | "retrieval" | "classification" | "clustering" (an mteb task: its type, lower-cased)
    main_metric: str  # a key of the dict returned by score()

    def requests(self) -> dict[str, EncodeRequest]: ...

    def score(self, embeddings: dict[str, np.ndarray]) -> dict[str, float]: ...

    def score_items(self, embeddings: dict[str, np.ndarray]) -> dict[str, ItemScores]:
        """Per metric of ``score``, the per-item data a bootstrap resamples (:mod:`decemb.tasks.items`)."""
        ...

    def size(self) -> int: ...


def check_embeddings(
    task_name: str, requests: Mapping[str, EncodeRequest], embeddings: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """Validate embeddings against the requests and return them as 2-D float64 arrays.

    Raises ``ValueError`` naming the task and the key when a key is missing or unexpected, an array is
    not 2-D, its row count differs from the request's text count, it holds non-finite values, or the
    groups do not share one embedding dimension.
    """
    missing = sorted(set(requests) - set(embeddings))
    extra = sorted(set(embeddings) - set(requests))
    if missing:
        raise ValueError(f"task {task_name!r}: embeddings missing for key(s) {missing}; expected {sorted(requests)}")
    if extra:
        raise ValueError(f"task {task_name!r}: unexpected embedding key(s) {extra}; expected {sorted(requests)}")
    out: dict[str, np.ndarray] = {}
    for key, request in requests.items():
        value = embeddings[key]
        if hasattr(value, "detach"):  # torch tensors, without importing torch
            value = value.detach().float().cpu().numpy()
        array = np.asarray(value, dtype=np.float64)
        if array.ndim != 2:
            raise ValueError(f"task {task_name!r}: embeddings[{key!r}] must be 2-D, got shape {array.shape}")
        if array.shape[0] != len(request.texts):
            raise ValueError(
                f"task {task_name!r}: embeddings[{key!r}] has {array.shape[0]} rows "
                f"but {len(request.texts)} texts were requested"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"task {task_name!r}: embeddings[{key!r}] contains NaN or infinite values")
        out[key] = array
    dims = {key: array.shape[1] for key, array in out.items()}
    if len(set(dims.values())) > 1:
        raise ValueError(f"task {task_name!r}: embedding dimensions differ between keys: {dims}")
    return out
