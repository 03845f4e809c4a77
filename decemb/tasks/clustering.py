"""Clustering: k-means on embeddings, V-measure against the gold labels."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decemb.tasks._io import read_labelled, resolve_path
from decemb.tasks._sampling import stratified_indices
from decemb.tasks.base import EncodeRequest, TaskDataError, check_embeddings, l2_normalize
from decemb.tasks.config import ClusteringTaskConfig, default_header
from decemb.tasks.items import ItemScores, codes

logger = logging.getLogger(__name__)


@dataclass
class ClusteringTask:
    """Score (x100): ``v_measure`` (``sklearn.metrics.v_measure_score``) of
    ``sklearn.cluster.KMeans(n_clusters, n_init, random_state=seed)`` fitted on the L2-normalised
    embeddings (so Euclidean k-means follows cosine geometry). Texts are a ``query``-kind request.
    """

    name: str
    texts: list[str]
    labels: list[str]
    n_clusters: int
    seed: int = 0
    n_init: int = 10
    info: dict[str, Any] = field(default_factory=dict)
    type: str = field(default="clustering", init=False)
    main_metric: str = field(default="v_measure", init=False)

    def requests(self) -> dict[str, EncodeRequest]:
        return {"texts": EncodeRequest("query", list(self.texts))}

    def _clusters(self, embeddings: dict[str, np.ndarray]) -> np.ndarray:
        from sklearn.cluster import KMeans

        arrays = check_embeddings(self.name, self.requests(), embeddings)
        kmeans = KMeans(n_clusters=self.n_clusters, n_init=self.n_init, random_state=self.seed)
        return kmeans.fit_predict(l2_normalize(arrays["texts"]))

    def score(self, embeddings: dict[str, np.ndarray]) -> dict[str, float]:
        from sklearn.metrics import v_measure_score

        return {"v_measure": float(v_measure_score(self.labels, self._clusters(embeddings))) * 100}

    def score_items(self, embeddings: dict[str, np.ndarray]) -> dict[str, ItemScores]:
        """Per text: (gold label, cluster), with k-means fitted once on all texts; a resample scores those
        pairs again without refitting, so an interval covers the choice of texts, not k-means' own variance."""
        gold, clusters = codes(self.labels)[0], np.asarray(self._clusters(embeddings))
        return {"v_measure": ItemScores((gold, clusters), _v_measure, vectorized=False)}

    def size(self) -> int:
        return len(self.texts)


def _v_measure(gold: np.ndarray, clusters: np.ndarray, axis: int = -1) -> float:
    from sklearn.metrics import v_measure_score

    return float(v_measure_score(gold, clusters)) * 100


def load_clustering(config: ClusteringTaskConfig, data_root: Path) -> ClusteringTask:
    """Read one labelled file; rows with a blank text or label are skipped and counted.

    ``limit`` keeps a seeded stratified sample. ``n_clusters`` defaults to the number of distinct
    labels kept; more clusters than texts is a ``TaskDataError``.
    """
    task = config.name
    path = resolve_path(config.path, root=data_root, task=task, key="path")
    header = default_header(config.format, config.header)
    texts, labels, skipped = read_labelled(
        path, config.format, header, config.text, config.label, config.text_separator, task=task
    )
    if skipped:
        logger.warning("task %r: skipped %d rows with a blank text or label in %s", task, skipped, path)
    keep = stratified_indices(list(zip(texts, labels, strict=True)), labels, config.limit, config.seed)
    texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    n_clusters = config.n_clusters or len(set(labels))
    if n_clusters < 2 or n_clusters > len(texts):
        raise TaskDataError(
            f"task {task!r}: n_clusters = {n_clusters} needs 2 <= n_clusters <= number of texts "
            f"({len(texts)} in {path})"
        )
    return ClusteringTask(
        name=task,
        texts=texts,
        labels=labels,
        n_clusters=n_clusters,
        seed=config.seed,
        n_init=config.n_init,
        info={"path": str(path), "skipped": skipped, "classes": len(set(labels))},
    )
