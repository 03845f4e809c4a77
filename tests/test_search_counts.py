"""Count arguments (``top_k``, ``rerank_top_k``, ``ef_search``, batch sizes) are checked in every library
call of :mod:`decemb.search`, before any embedding or reranking; valid ones give exactly that many."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import CORPUS, OWN_DATA, OWN_TASKS, SEARCH_IDS, build_index

from decemb.search import SearchPipeline, evaluate_rerank, exact_rankings, rerank_hits
from decemb.tasks import load_task

IDS = SEARCH_IDS


build = build_index


class NoWork:
    """An embedder and reranker that fail the test if any work is done (a count must be checked first)."""

    def encode_query(self, *args, **kwargs):
        raise AssertionError("worked before checking the counts")

    encode_document = rank = encode_query


class Counting:
    """A reranker that counts the pairs it scores."""

    pairs = 0

    def rank(self, query, documents, **kwargs):  # CrossEncoder.rank's output: scores -0, -1, ... best first
        self.pairs += len(documents)
        return [{"corpus_id": i, "score": float(-i)} for i in range(len(documents))]


@pytest.mark.parametrize("value", [-5, 0, True, 2.5, "3", None])
def test_a_bad_count_is_refused_before_any_work(tmp_path, embedder, value):
    index, task = build(tmp_path / "idx", embedder), load_task(OWN_TASKS["retrieval"], OWN_DATA)
    pipeline = SearchPipeline(index, NoWork(), NoWork(), top_k=3, rerank_top_k=2, check=False)
    vectors, hits = embedder.encode_query(["cats"]), index.search_texts(["cats"], embedder, 5)[0]
    calls = [
        ("top_k", lambda: index.search(vectors, value)),
        ("top_k", lambda: index.search_texts(["cats"], NoWork(), top_k=value)),
        ("top_k", lambda: SearchPipeline(index, embedder, top_k=value)),
        ("rerank_top_k", lambda: SearchPipeline(index, embedder, NoWork(), rerank_top_k=value)),
        ("rerank_top_k", lambda: rerank_hits("cats", hits, NoWork(), value)),
        ("batch_size", lambda: rerank_hits("cats", hits, NoWork(), 2, batch_size=value)),
        ("top_k", lambda: evaluate_rerank(task, NoWork(), top_k=value, embedder=NoWork())),
        ("batch_size", lambda: evaluate_rerank(task, NoWork(), batch_size=value, embedder=NoWork())),
        ("top_k", lambda: exact_rankings(task, {}, top_k=value)),
    ]
    if value is not None:  # None: the pipeline's default, or no ef_search override
        calls += [
            ("ef_search", lambda: index.search(vectors, 3, ef_search=value)),
            ("top_k", lambda: pipeline.search("cats", top_k=value)),
            ("top_k", lambda: pipeline.search_many(["a", "b"], value)),
            ("rerank_top_k", lambda: pipeline.search("cats", rerank_top_k=value)),
            ("rerank_top_k", lambda: pipeline.search_many(["a", "b"], rerank_top_k=value)),
        ]
    for name, call in calls:
        with pytest.raises(ValueError, match=rf"^{name}: must be .*\(got {value!r}\)$".replace("'", ".")):
            call()


def test_counts_that_are_fine_give_that_many(tmp_path, embedder):
    index, reranker = build(tmp_path / "idx", embedder), Counting()
    found = SearchPipeline(index, embedder, reranker, top_k=np.int64(3)).search("cats", rerank_top_k=np.int64(2))
    assert [r.rerank_score is not None for r in found.results] == [True, True, False] and reranker.pairs == 2
    assert len(index.search_texts(["cats"], embedder, top_k=50)[0]) == len(CORPUS)  # capped by the corpus
    assert len(rerank_hits("cats", index.search_texts(["cats"], embedder, 5)[0], reranker, 4)) == 5
    assert reranker.pairs == 6
