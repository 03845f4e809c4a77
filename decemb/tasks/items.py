"""The per-item data behind each metric: what a bootstrap resamples to put a confidence interval on a score.

``Task.score_items(embeddings)`` returns ``{metric: ItemScores}`` for the metrics of ``Task.score``. Each
:class:`ItemScores` holds ``data``, arrays whose last axis runs over the task's items (STS pairs, retrieval
queries, classification test texts, clustering texts), resampled together, and ``statistic(*data, axis=-1)``,
the metric (x100) of a sample, vectorized over leading axes as ``scipy.stats.bootstrap`` expects
(``vectorized=False``: called on one sample at a time). On the full data it gives the task's own score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ItemScores", "codes", "macro_f1", "mean", "mean_items", "pearson", "spearman"]


@dataclass(frozen=True)
class ItemScores:
    """One metric's per-item data (last axis = items) and the statistic that turns a sample into the metric."""

    data: tuple[np.ndarray, ...]
    statistic: Callable[..., Any]
    vectorized: bool = True

    @property
    def n(self) -> int:
        return int(self.data[0].shape[-1])

    def value(self) -> float:
        """The metric on the full data (equals the task's ``score()`` for this metric)."""
        return float(self.statistic(*self.data, axis=-1))


def mean(values: np.ndarray, axis: int = -1) -> Any:
    return np.mean(values, axis=axis)


def mean_items(values: Sequence[float] | np.ndarray) -> ItemScores:
    """A metric that is the mean of per-item values (already x100): accuracy, nDCG@10, recall@k, ..."""
    return ItemScores((np.asarray(values, dtype=np.float64),), mean)


def codes(*label_lists: Sequence[Any]) -> list[np.ndarray]:
    """Labels as integer codes shared across the lists (so resampled arrays stay numeric)."""
    index: dict[Any, int] = {}
    return [np.asarray([index.setdefault(label, len(index)) for label in labels]) for labels in label_lists]


def pearson(x: np.ndarray, y: np.ndarray, axis: int = -1) -> Any:
    """Pearson correlation x100 along ``axis`` (NaN where either side is constant, as scipy)."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    y = np.moveaxis(np.asarray(y, dtype=np.float64), axis, -1)
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100 * (x * y).sum(axis=-1) / np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))


def spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> Any:
    """Spearman correlation x100 along ``axis``: Pearson of the ranks (ties averaged, as scipy)."""
    from scipy.stats import rankdata

    return pearson(rankdata(x, axis=axis), rankdata(y, axis=axis), axis=axis)


def macro_f1(true: np.ndarray, predicted: np.ndarray, axis: int = -1) -> Any:
    """Macro-F1 x100 of integer label codes along ``axis``, over the labels present in either array of each
    sample, a label's F1 being 2·TP / (2·TP + FP + FN): sklearn's ``f1_score(average="macro",
    zero_division=0)``."""
    true = np.moveaxis(np.asarray(true), axis, -1)
    predicted = np.moveaxis(np.asarray(predicted), axis, -1)
    total = np.zeros(true.shape[:-1])
    present = np.zeros(true.shape[:-1])
    for label in np.union1d(true, predicted):
        is_true, is_predicted = true == label, predicted == label
        hits = (is_true & is_predicted).sum(axis=-1)
        seen = is_true.sum(axis=-1) + is_predicted.sum(axis=-1)  # 2·TP + FP + FN
        total += np.where(seen > 0, 2 * hits / np.maximum(seen, 1), 0.0)
        present += seen > 0
    return 100 * total / np.maximum(present, 1)
