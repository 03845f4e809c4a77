"""Evaluation during training: comparison-format tasks scored before, every N steps and after; the
discrimination gap (mean cosine of related pairs minus mean cosine of unrelated pairs)."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from transformers import TrainerCallback

from decemb.errors import ConfigError
from decemb.tasks import Task, load_task
from decemb.train.config import EvalSection

__all__ = ["EvalCallback", "discrimination_gap", "evaluate", "load_eval_tasks"]

logger = logging.getLogger(__name__)
Scores = dict[str, dict[str, float]]


def load_eval_tasks(section: EvalSection, data_root: Path) -> list[Task]:
    """Load every configured task now (a missing file or bad column is a one-line error before training)."""
    tasks = []
    for index, config in enumerate(section.tasks):
        try:
            tasks.append(load_task(config, data_root))
        except (ValueError, OSError) as error:
            raise ConfigError(str(error), key=f"eval.tasks[{index}]") from None
    return tasks


def _encode(model: SentenceTransformer, texts: list[str], kind: str, batch_size: int) -> np.ndarray:
    encode = model.encode_document if kind == "document" else model.encode_query
    return np.asarray(encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False))


def evaluate(model: SentenceTransformer, tasks: list[Task], batch_size: int = 32) -> Scores:
    """``{task name: {metric: value}}`` (x100, main metric first) with the model in eval mode, no gradients."""
    was_training = model.training
    model.eval()
    scores: Scores = {}
    try:
        with torch.no_grad():
            for task in tasks:
                embeddings = {
                    key: _encode(model, request.texts, request.kind, batch_size)
                    for key, request in task.requests().items()
                }
                scores[task.name] = {key: round(float(value), 4) for key, value in task.score(embeddings).items()}
    finally:
        model.train(was_training)
    return scores


def discrimination_gap(
    model: SentenceTransformer,
    text1: list[str],
    text2: list[str],
    gold: list[float],
    related_min: float = 4.0,
    seed: int = 0,
    batch_size: int = 32,
) -> dict[str, float]:
    """Mean cosine of related pairs (gold ≥ ``related_min``) minus mean cosine of unrelated pairs (each first
    text against the second text of another, random pair). Untrained decoders put everything near 0.9+."""
    first = _encode(model, text1, "query", batch_size)
    second = _encode(model, text2, "query", batch_size)
    first /= np.maximum(np.linalg.norm(first, axis=1, keepdims=True), 1e-12)
    second /= np.maximum(np.linalg.norm(second, axis=1, keepdims=True), 1e-12)
    cosine = (first * second).sum(axis=1)
    related = cosine[np.asarray(gold) >= related_min]
    order = list(range(len(text2)))
    random.Random(seed).shuffle(order)
    order = [j if j != i else (j + 1) % len(order) for i, j in enumerate(order)]
    unrelated = (first * second[order]).sum(axis=1)
    out = {"related": float(related.mean()), "unrelated": float(unrelated.mean())}
    out["gap"] = out["related"] - out["unrelated"]
    return {key: round(value, 4) for key, value in out.items()}


class EvalCallback(TrainerCallback):
    """Scores the tasks every ``every`` optimizer steps; each result is appended to ``history_file`` (one JSON
    line, so an interrupted run keeps what it measured) and passed to ``report``."""

    def __init__(
        self,
        model: SentenceTransformer,
        tasks: list[Task],
        every: int,
        batch_size: int,
        history_file: Path,
        report: Callable[[str], None] = print,
    ) -> None:
        self.model, self.tasks, self.every, self.batch_size = model, tasks, every, batch_size
        self.history_file, self.report = history_file, report

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self.every or not self.tasks or state.global_step % self.every or not state.is_world_process_zero:
            return
        scores = evaluate(self.model, self.tasks, self.batch_size)
        entry = {"step": state.global_step, "scores": scores}
        with self.history_file.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        self.report(f"eval @ step {state.global_step}: {summary(scores)}")


def read_history(history_file: Path, up_to_step: int | None = None) -> list[dict[str, Any]]:
    """The evaluations recorded (also by an interrupted run before a resume), one per step, up to ``up_to_step``."""
    if not history_file.is_file():
        return []
    entries: dict[int, dict[str, Any]] = {}
    for line in history_file.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        step = int(entry.get("step", 0))
        if up_to_step is None or step <= up_to_step:
            entries[step] = entry  # a step evaluated again after a resume: the later result
    return [entries[step] for step in sorted(entries)]


def summary(scores: Scores) -> str:
    """``stsb-test spearman=71.2, scifact ndcg@10=55.0`` (each task's main metric, the first key)."""
    parts = []
    for task, metrics in scores.items():
        if metrics:
            metric, value = next(iter(metrics.items()))
            parts.append(f"{task} {metric}={value:.2f}")
    return ", ".join(parts) or "no tasks"
