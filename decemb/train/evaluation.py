"""Evaluation during training: comparison-format tasks scored before, every N steps (by
:class:`TaskEvaluator`, a sentence-transformers ``SentenceEvaluator`` the trainer runs) and after; the
discrimination gap of :mod:`decemb.diagnose.gap` for bare text lists."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from decemb.errors import ConfigError
from decemb.tasks import Task, load_task
from decemb.train.config import EvalSection

__all__ = ["TaskEvaluator", "discrimination_gap", "evaluate", "load_eval_tasks", "read_history", "summary"]

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
    """``{related, unrelated, gap}`` of :func:`decemb.diagnose.gap.discrimination_gap` (the one
    implementation: related = mean cosine of pairs with gold >= ``related_min``, unrelated = each first text
    against the second text of another pair, a seeded shuffle) for bare lists of texts."""
    from decemb.diagnose.gap import Pairs
    from decemb.diagnose.gap import discrimination_gap as gap_of

    pairs = Pairs("pairs", list(text1), list(text2), [float(value) for value in gold])
    summary = gap_of(model, pairs, related_min=related_min, seed=seed, batch_size=batch_size).summary()
    return {key: float(summary[key]) for key in ("related", "unrelated", "gap")}


class TaskEvaluator(SentenceEvaluator):
    """The evaluation tasks as a ``SentenceEvaluator``: the trainer runs it every ``eval_steps`` steps. Each
    result is appended to ``history_file`` (one JSON line, so an interrupted run keeps what it measured) and
    passed to ``report``; the trainer logs the flat ``{task}_{metric}`` values (``eval_`` prefixed)."""

    def __init__(
        self,
        tasks: list[Task],
        batch_size: int,
        history_file: Path,
        report: Callable[[str], None] = print,
    ) -> None:
        super().__init__()
        self.tasks, self.batch_size, self.history_file, self.report = tasks, batch_size, history_file, report
        self.greater_is_better = True
        if tasks:
            self.primary_metric = f"{tasks[0].name}_{tasks[0].main_metric}"

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        scores = evaluate(model, self.tasks, self.batch_size)
        entry = {"step": int(steps), "scores": scores}
        with self.history_file.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        self.report(f"eval @ step {steps}: {summary(scores)}")
        return {f"{task}_{metric}": value for task, metrics in scores.items() for metric, value in metrics.items()}


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
