"""A comparison's task entries: the task configs of :mod:`decemb.tasks`, where a retrieval task may add a
``rerank`` stage.

    tasks:
      - type: retrieval
        name: scifact
        path: scifact
        format: beir
        rerank: {source: smollm2-135m, top_k: 20, max_length: 512, batch_size: 16}

``rerank`` keys: ``source`` (any decemb model source, or a folder saved by a trained reranker; required),
``adapter`` (a PEFT adapter merged in), ``top_k`` (candidates reranked per query, 1..100: the bi-encoder
retrieves 100), ``max_length`` (pair tokens; only the document is cut), ``batch_size`` (pairs per forward).
Unknown keys are errors, and ``rerank`` on a task of another type is a one-line error naming the key.
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, PositiveInt, field_validator

from decemb.config_base import StrictModel
from decemb.errors import ModelSourceError
from decemb.loading import resolve_source
from decemb.models import MODEL_ALIASES
from decemb.tasks import TASK_TYPES, RetrievalTaskConfig

__all__ = [
    "ComparisonTaskConfig",
    "ModelSource",
    "RerankConfig",
    "RetrievalRerankTaskConfig",
    "check_source",
    "misplaced_rerank",
]

RETRIEVED = 100  # candidates the bi-encoder retrieves per query (decemb.tasks.retrieval.TOP_K)


def check_source(value: str) -> str:
    """A model source that can be found without loading it (an alias resolves, maybe downloads, at load time)."""
    if value not in MODEL_ALIASES:
        try:
            resolve_source(value)
        except ModelSourceError as error:
            raise ValueError(str(error)) from None
    return value


ModelSource = Annotated[str, Field(min_length=1), AfterValidator(check_source)]


class RerankConfig(StrictModel):
    """A retrieval task's rerank stage: a decoder reranker (:func:`decemb.rerank.load_reranker`) rescores each
    query's ``top_k`` bi-encoder candidates; the rest keep their order behind them."""

    source: ModelSource = Field(
        description="The reranker's backbone: an alias, a folder, a ``.gguf`` file or a Hub id."
    )
    adapter: str | None = Field(default=None, min_length=1, description="A trained reranker adapter (a folder).")
    top_k: PositiveInt = Field(default=20, description="How many of each query's candidates are rescored.")
    max_length: PositiveInt | None = Field(default=512, description="Tokens per (query, document) pair.")
    batch_size: PositiveInt = Field(default=16, description="Pairs per forward pass.")

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, value: int) -> int:
        if value > RETRIEVED:
            raise ValueError(f"must be at most {RETRIEVED}, the candidates the bi-encoder retrieves per query")
        return value

    @property
    def key(self) -> tuple[str, str | None]:
        """What identifies a loaded reranker: a run loads each once."""
        return (self.source, self.adapter)

    @property
    def label(self) -> str:
        """A short display name: the source's last path part, plus the adapter's."""
        label = Path(self.source.rstrip("/\\")).name or self.source
        if self.adapter:
            label += f" + {Path(self.adapter.rstrip('/')).name or self.adapter}"
        return label


class RetrievalRerankTaskConfig(RetrievalTaskConfig):
    """A retrieval task of a comparison: :class:`~decemb.tasks.RetrievalTaskConfig` plus an optional
    ``rerank`` stage."""

    rerank: RerankConfig | None = None


def _entry(config: type[BaseModel]) -> type[BaseModel]:
    return RetrievalRerankTaskConfig if config is RetrievalTaskConfig else config


ComparisonTaskConfig = Annotated[
    functools.reduce(operator.or_, [_entry(config) for config in TASK_TYPES.values()]),
    Field(discriminator="type"),
]


def misplaced_rerank(tasks: Any) -> str | None:
    """The one-line error for a ``rerank`` key on a task that is not a retrieval task (``None``: none)."""
    if not isinstance(tasks, list):
        return None
    for index, task in enumerate(tasks):
        kind = task.get("type") if isinstance(task, dict) else None
        if kind in TASK_TYPES and kind != "retrieval" and "rerank" in task:
            return f"tasks[{index}].rerank: a rerank stage applies only to retrieval tasks (this task is {kind!r})"
    return None
