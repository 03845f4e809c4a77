"""The jobs of one (model, task): every strategy × layer × side over the task's distinct texts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from decemb.strategies import Strategy
from decemb.tasks import Task

__all__ = ["Plan", "plan_task", "task_instruction"]


def task_instruction(strategy: Strategy, task: Task) -> str | None:
    """The per-call instruction ``strategy`` wants for ``task`` (``None``: its own setting); see
    :meth:`decemb.strategies.Strategy.task_instruction`. A task that names its own instruction (an mteb task:
    mteb's E5 instruction, as ``decemb.mteb.as_mteb_model`` gives it) gives that one to a strategy that wants
    a task instruction."""
    wanted = strategy.task_instruction(task.name, task.type)
    own = getattr(task, "instruction", None)
    return own if wanted is not None and own else wanted


if TYPE_CHECKING:
    from decemb.engine import EmbeddingJob, JobCost


@dataclass
class Plan:
    """The jobs of one (model, task) and how to map their rows back onto the task's requests."""

    jobs: list[EmbeddingJob] = field(default_factory=list)
    job_index: dict[tuple[int, int, str], int] = field(default_factory=dict)  # (strategy, layer, kind) → job
    rows: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)  # request key → (kind, row indices)

    def embeddings(self, arrays: Sequence[np.ndarray], strategy: int, layer: int) -> dict[str, np.ndarray]:
        return {key: arrays[self.job_index[(strategy, layer, kind)]][rows] for key, (kind, rows) in self.rows.items()}

    def share(self, costs: Sequence[JobCost], strategy: int, layer: int) -> dict[str, float]:
        """A strategy × layer's share of the encode (its jobs' :class:`~decemb.engine.JobCost`, all sides)."""
        if len(costs) != len(self.jobs):  # an engine that keeps no per-job costs
            return {}
        jobs = [job for (s, k, _), job in self.job_index.items() if (s, k) == (strategy, layer)]
        return {
            "encode_share_seconds": sum(costs[job].seconds for job in jobs),
            "encode_share_tokens": sum(costs[job].tokens for job in jobs),
        }


def plan_task(task: Task, strategies: Sequence[Strategy], layers: Sequence[int]) -> Plan:
    """One job per strategy × layer × side, each over the side's distinct texts (in first-seen order)."""
    from decemb.engine import EmbeddingJob  # torch loads here, not when a config is validated

    plan = Plan()
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
                plan.jobs.append(
                    EmbeddingJob(strategy=strategy, kind=kind, texts=list(texts), layer=layer, instruction=instruction)
                )
    return plan
