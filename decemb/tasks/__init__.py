"""Evaluation tasks for comparing embedders: STS, retrieval, classification and clustering.

A task names groups of texts to embed (:meth:`Task.requests`) and scores the embeddings the caller
produced for them (:meth:`Task.score`); it never touches a model. Build one from a config with
:func:`load_task`. All metrics are reported x100.

Config examples (YAML, paths relative to the data root)::

    - {type: sts, name: stsb, path: stsbenchmark/sts-test.csv, format: stsb}
    - {type: retrieval, name: scifact, path: scifact, format: beir, limit: 100, corpus_limit: 2000}
    - {type: classification, name: banking77, path: banking77, format: csv, text: text, label: category}
    - {type: clustering, name: agnews, path: ag_news/test.csv, format: csv, header: false,
       text: [1, 2], label: 0, limit: 2000}

Requests and metrics (``main_metric`` first):

* sts: ``text1``/``text2`` (query) -> ``spearman``, ``pearson``
* retrieval: ``queries`` (query), ``corpus`` (document) -> ``ndcg@10``, ``mrr@10``, ``map@100``,
  ``recall@10``, ``recall@100``, ``accuracy@1``
* classification: ``train``/``test`` (query) -> ``accuracy``, ``f1_macro``
* clustering: ``texts`` (query) -> ``v_measure``

``Task.score_items`` gives, per metric, the per-item data behind it (pairs, queries, test texts, texts), which
the comparison runner resamples for bootstrap confidence intervals (:mod:`decemb.tasks.items`).
"""

from __future__ import annotations

from decemb.tasks.base import EncodeRequest, Task, TaskDataError, TaskFileNotFoundError
from decemb.tasks.classification import ClassificationTask
from decemb.tasks.clustering import ClusteringTask
from decemb.tasks.config import (
    ClassificationTaskConfig,
    ClusteringTaskConfig,
    RetrievalFields,
    RetrievalTaskConfig,
    STSColumns,
    STSTaskConfig,
)
from decemb.tasks.items import ItemScores
from decemb.tasks.loader import default_data_root, load_task
from decemb.tasks.retrieval import RetrievalTask
from decemb.tasks.sts import STSTask
from decemb.tasks.types import TASK_REGISTRY, TASK_TYPES, TaskConfig, TaskType, parse_task_config

__all__ = [
    "TASK_REGISTRY",
    "TASK_TYPES",
    "ClassificationTask",
    "ClassificationTaskConfig",
    "ClusteringTask",
    "ClusteringTaskConfig",
    "EncodeRequest",
    "ItemScores",
    "RetrievalFields",
    "RetrievalTask",
    "RetrievalTaskConfig",
    "STSColumns",
    "STSTask",
    "STSTaskConfig",
    "Task",
    "TaskConfig",
    "TaskDataError",
    "TaskFileNotFoundError",
    "TaskType",
    "default_data_root",
    "load_task",
    "parse_task_config",
]
