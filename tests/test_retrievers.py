"""A comparison's retrieval task with ``retriever: dense | bm25 | hybrid``: each score equals nDCG@10 computed
here by hand from the retriever's own ranking (BM25 by the Lucene formula, dense by cosine, hybrid by RRF of
the two); BM25 encodes nothing; misplaced options are one-line config errors."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import OWN_DATA, OWN_TASKS, isolate, make_config, rrf_order, save_tiny_model

import decemb
from decemb.compare import ConfigError, parse_config, run_comparison
from decemb.search.lexical import LexicalIndex
from decemb.tasks import load_task

RETRIEVAL = OWN_TASKS["retrieval"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from isolate(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("retrievers") / "model")


def ndcg10(ranking: list[str], relevant: set[str]) -> float:
    gain = sum(1 / math.log2(rank + 2) for rank, doc in enumerate(ranking[:10]) if doc in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(relevant), 10)))
    return 100 * gain / ideal


def task_config(retriever: str, **extra) -> dict:
    return {**RETRIEVAL, "name": f"own-{retriever}", "retriever": retriever, **extra}


def test_each_retriever_scores_its_own_ranking(model_dir: Path, tmp_path: Path) -> None:
    tasks = [
        task_config("dense"),
        task_config("bm25"),
        task_config("hybrid", fusion={"method": "rrf", "k": 60, "weights": [1, 1]}),
    ]
    results = run_comparison(parse_config(make_config(model_dir, tmp_path, tasks=tasks)), show_progress=False)
    got = {r.task: r.value for r in results if r.metric == "ndcg@10"}

    task = load_task(RETRIEVAL, OWN_DATA)
    model = decemb.load(model_dir, "mean")
    queries = model.encode(task.queries, normalize_embeddings=True)
    docs = model.encode(task.docs, normalize_embeddings=True)
    cosine = queries @ docs.T
    dense = [[task.doc_ids[i] for i in np.argsort(-row, kind="stable")] for row in cosine]
    lexical = [[task.doc_ids[p] for p, _ in hits] for hits in LexicalIndex.build(task.docs).search(task.queries)]
    hybrid = [rrf_order(a, b) for a, b in zip(lexical, dense)]
    for name, rankings in [("own-dense", dense), ("own-bm25", lexical), ("own-hybrid", hybrid)]:
        expected = np.mean([ndcg10(r, task.relevant[q]) for r, q in zip(rankings, task.query_ids)])
        assert got[name] == pytest.approx(expected, abs=1e-6), name
    assert len({got["own-dense"], got["own-bm25"]}) == 2  # really two different rankings


def test_bm25_alone_encodes_nothing(model_dir: Path, tmp_path: Path) -> None:
    data = make_config(model_dir, tmp_path, tasks=[task_config("bm25")])
    results = run_comparison(parse_config(data), show_progress=False)
    assert results.stats["tiny"].forward_passes == 0
    assert {r.metric for r in results} >= {"ndcg@10", "recall@100"}


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (task_config("dense", fusion={"method": "rrf"}), "tasks[0].fusion: fusion applies only to retriever hybrid"),
        (task_config("dense", bm25={"k1": 1.2}), "tasks[0].bm25: bm25 applies only to retriever bm25 or hybrid"),
        (task_config("hybrid", fusion={"methd": "rrf"}), "tasks[0].fusion.methd"),
        (task_config("hybrid", fusion={"weights": [0, 0]}), "not all 0"),
        (task_config("bm2"), "tasks[0].retriever"),
    ],
)
def test_misplaced_retriever_options_are_one_line(model_dir: Path, tmp_path: Path, task: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(make_config(model_dir, tmp_path, tasks=[task]))
    assert message in str(caught.value) and "\n" not in str(caught.value)
