"""Classification: logistic regression on train embeddings, accuracy and macro-F1 on test embeddings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decemb.tasks._io import read_labelled, resolve_path
from decemb.tasks._sampling import stratified_indices, stratified_split
from decemb.tasks.base import EncodeRequest, TaskDataError, check_embeddings
from decemb.tasks.config import ClassificationTaskConfig, default_header
from decemb.tasks.items import ItemScores, codes, macro_f1, mean_items

logger = logging.getLogger(__name__)


@dataclass
class ClassificationTask:
    """Scores (x100): ``accuracy`` (``sklearn.metrics.accuracy_score``) and ``f1_macro``
    (``sklearn.metrics.f1_score(average="macro")``) of a ``StandardScaler`` + ``LogisticRegression``
    (``max_iter``, ``random_state=seed``) pipeline fitted on the train embeddings and applied to the
    test embeddings. Both splits are ``query``-kind requests.
    """

    name: str
    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]
    seed: int = 0
    max_iter: int = 1000
    info: dict[str, Any] = field(default_factory=dict)
    type: str = field(default="classification", init=False)
    main_metric: str = field(default="accuracy", init=False)

    def requests(self) -> dict[str, EncodeRequest]:
        return {
            "train": EncodeRequest("query", list(self.train_texts)),
            "test": EncodeRequest("query", list(self.test_texts)),
        }

    def _predict(self, embeddings: dict[str, np.ndarray]) -> np.ndarray:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        arrays = check_embeddings(self.name, self.requests(), embeddings)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=self.max_iter, random_state=self.seed))
        model.fit(arrays["train"], self.train_labels)
        return model.predict(arrays["test"])

    def score(self, embeddings: dict[str, np.ndarray]) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score

        predicted = self._predict(embeddings)
        return {
            "accuracy": float(accuracy_score(self.test_labels, predicted)) * 100,
            "f1_macro": float(f1_score(self.test_labels, predicted, average="macro", zero_division=0)) * 100,
        }

    def score_items(self, embeddings: dict[str, np.ndarray]) -> dict[str, ItemScores]:
        """Per test text: (gold, predicted) label, with the classifier fitted once on the train split."""
        true, predicted = codes(self.test_labels, list(self._predict(embeddings)))
        correct = mean_items(100.0 * (true == predicted))
        return {"accuracy": correct, "f1_macro": ItemScores((true, predicted), macro_f1)}

    def size(self) -> int:
        return len(self.test_texts)


def _split_files(config: ClassificationTaskConfig, data_root: Path) -> tuple[Path, Path | None]:
    """(train file, test file or None when one file is to be split)."""
    task, ext = config.name, config.format
    if config.train is not None:
        base = data_root
        if config.path is not None:
            base = resolve_path(config.path, root=data_root, task=task, key="path", kind="folder")
        train = resolve_path(config.train, root=base, task=task, key="train")
        test = resolve_path(config.test, root=base, task=task, key="test") if config.test else None
        return train, test
    assert config.path is not None
    path = resolve_path(config.path, root=data_root, task=task, key="path", kind="path")
    if path.is_file():
        return path, None
    train = resolve_path(f"train.{ext}", root=path, task=task, key="path", configured=config.path)
    return train, resolve_path(f"test.{ext}", root=path, task=task, key="path", configured=config.path)


def load_classification(config: ClassificationTaskConfig, data_root: Path) -> ClassificationTask:
    """Read train/test (or split one file); rows with a blank text or label are skipped and counted.

    ``limit`` caps each split with a seeded stratified sample. Fewer than 2 train classes is a
    ``TaskDataError``.
    """
    task = config.name
    header = default_header(config.format, config.header)
    train_path, test_path = _split_files(config, data_root)

    def read(path: Path) -> tuple[list[str], list[str], int]:
        return read_labelled(path, config.format, header, config.text, config.label, config.text_separator, task=task)

    x_train, y_train, skipped = read(train_path)
    if test_path is None:
        train_idx, test_idx = stratified_split(
            list(zip(x_train, y_train, strict=True)), y_train, config.test_fraction, config.seed
        )
        x_test, y_test = [x_train[i] for i in test_idx], [y_train[i] for i in test_idx]
        x_train, y_train = [x_train[i] for i in train_idx], [y_train[i] for i in train_idx]
    else:
        x_test, y_test, skipped_test = read(test_path)
        skipped += skipped_test
    if skipped:
        logger.warning("task %r: skipped %d rows with a blank text or label", task, skipped)

    def cap(texts: list[str], labels: list[str]) -> tuple[list[str], list[str]]:
        keep = stratified_indices(list(zip(texts, labels, strict=True)), labels, config.limit, config.seed)
        return [texts[i] for i in keep], [labels[i] for i in keep]

    x_train, y_train = cap(x_train, y_train)
    x_test, y_test = cap(x_test, y_test)
    if len(set(y_train)) < 2:
        raise TaskDataError(f"task {task!r}: train data {train_path} needs at least 2 classes, found {set(y_train)}")
    if not x_test:
        raise TaskDataError(f"task {task!r}: no test rows (from {test_path or train_path})")
    return ClassificationTask(
        name=task,
        train_texts=x_train,
        train_labels=y_train,
        test_texts=x_test,
        test_labels=y_test,
        seed=config.seed,
        max_iter=config.max_iter,
        info={
            "train": str(train_path),
            "test": str(test_path or train_path),
            "skipped": skipped,
            "classes": len(set(y_train) | set(y_test)),
        },
    )
