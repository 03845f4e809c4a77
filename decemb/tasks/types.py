"""The task-type registry: each type's config class and loader, registered once.

``TaskConfig`` (the union of the config classes, discriminated on ``type``), ``TASK_TYPES`` (type →
config class) and :func:`decemb.tasks.load_task` all derive from ``TASK_REGISTRY``; a new task type is
one more entry here.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter

from decemb.registry import Registry
from decemb.tasks.base import Task
from decemb.tasks.classification import load_classification
from decemb.tasks.clustering import load_clustering
from decemb.tasks.config import ClassificationTaskConfig, ClusteringTaskConfig, RetrievalTaskConfig, STSTaskConfig
from decemb.tasks.mteb_task import MtebTaskConfig, load_mteb
from decemb.tasks.retrieval import load_retrieval
from decemb.tasks.sts import load_sts

__all__ = ["TASK_REGISTRY", "TASK_TYPES", "TaskConfig", "TaskType", "parse_task_config", "task_type_of"]


@dataclass(frozen=True)
class TaskType:
    """A task type: its config class (whose ``type`` field's default is the type's name) and its loader
    ``(config, data_root) -> Task``."""

    config: type[BaseModel]
    load: Callable[[Any, Path], Task]

    @property
    def name(self) -> str:
        return str(self.config.model_fields["type"].default)


TASK_REGISTRY: Registry[TaskType] = Registry("task type")
for _type in (
    TaskType(STSTaskConfig, load_sts),
    TaskType(RetrievalTaskConfig, load_retrieval),
    TaskType(ClassificationTaskConfig, load_classification),
    TaskType(ClusteringTaskConfig, load_clustering),
    TaskType(MtebTaskConfig, load_mteb),
):
    TASK_REGISTRY.add(_type.name, _type)

TASK_TYPES: dict[str, type[BaseModel]] = {name: TASK_REGISTRY.get(name).config for name in TASK_REGISTRY}

TaskConfig = Annotated[functools.reduce(operator.or_, TASK_TYPES.values()), Field(discriminator="type")]

_ADAPTER: TypeAdapter[Any] = TypeAdapter(TaskConfig)


def parse_task_config(data: Mapping[str, Any]) -> Any:
    """Validate a mapping (e.g. one YAML entry) into the config class selected by its ``type``."""
    return _ADAPTER.validate_python(data)


def task_type_of(config: Any) -> TaskType:
    """The registered type of a task config object (``TypeError`` for anything else)."""
    name = getattr(config, "type", None)
    if not isinstance(name, str) or name not in TASK_REGISTRY or not isinstance(config, TASK_REGISTRY.get(name).config):
        raise TypeError(f"not a task config: {type(config).__name__}")
    return TASK_REGISTRY.get(name)
