"""Hard-negative mining with the model itself: negatives from the corpus, never the pair's own positive, on the
document side; pairs without a negative that passes the filters are dropped, and dropping more than
``min_kept`` allows is a one-line error before training (checked against the cosines computed here)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from helpers import tiny_backbone

import decemb
from decemb.errors import ConfigError
from decemb.train.config import HardNegativesSection
from decemb.train.mining import choose_negatives, mine
from decemb.train.records import TrainData

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
ANCHORS = [f"question {w}" for w in WORDS]
POSITIVES = [f"answer about {w} here" for w in WORDS]
CORPUS = POSITIVES + [
    f"unrelated text {i} {w}" for i, w in enumerate(["red", "green", "blue", "cyan", "magenta", "yellow"])
]


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return decemb.from_backbone(*tiny_backbone("llama"), "mean")


def _data() -> TrainData:
    columns = {"anchor": list(ANCHORS), "positive": list(POSITIVES)}
    return TrainData("pairs", columns, {"anchor": "query", "positive": "document"}, "test", corpus=list(CORPUS))


def _section(**options) -> HardNegativesSection:
    options = {"max_uses": None, **options}  # the cap has tests of its own below
    return HardNegativesSection(mine=True, range_min=0, range_max=len(CORPUS), corpus="all", **options)


def _lowest_negative_scores(model) -> list[float]:
    """Per anchor, the lowest cosine to a corpus document other than its positive (query vs document side)."""
    queries = model.encode_query(ANCHORS, convert_to_numpy=True, normalize_embeddings=True)
    documents = model.encode_document(CORPUS, convert_to_numpy=True, normalize_embeddings=True)
    scores = queries @ documents.T
    return [
        min(float(scores[i, j]) for j, doc in enumerate(CORPUS) if doc != POSITIVES[i]) for i in range(len(ANCHORS))
    ]


def test_every_pair_gets_a_negative_from_the_corpus_that_is_not_its_positive(model):
    mined = mine(model, _data(), _section(num=2))
    assert len(mined) == len(ANCHORS) and list(mined.columns) == ["anchor", "positive", "negative_1", "negative_2"]
    assert mined.sides == {
        "anchor": "query",
        "positive": "document",
        "negative_1": "document",
        "negative_2": "document",
    }
    for row in range(len(mined)):
        negatives = {mined.columns["negative_1"][row], mined.columns["negative_2"][row]}
        assert len(negatives) == 2 and negatives <= set(CORPUS) and mined.columns["positive"][row] not in negatives
    assert mined.info["pairs_before_mining"] == len(ANCHORS) and mined.info["mined_rows"] == len(ANCHORS)


def test_dropped_pairs_are_those_without_a_candidate_under_max_score_and_too_many_is_an_error(model):
    lowest = _lowest_negative_scores(model)
    threshold = float(np.median(lowest))
    expected = [anchor for anchor, score in zip(ANCHORS, lowest, strict=True) if score <= threshold]
    assert 0 < len(expected) < len(ANCHORS)
    with pytest.raises(ConfigError) as raised:
        mine(model, _data(), _section(max_score=threshold))  # min_kept 0.9 by default
    message = str(raised.value)
    expected_start = f"hard_negatives.min_kept: mining found 1 negative(s) for only {len(expected)} of 6 pairs"
    assert message.startswith(expected_start)
    assert "max_score" in message and "\n" not in message
    kept = mine(model, _data(), _section(max_score=threshold, min_kept=0.0))
    assert kept.columns["anchor"] == expected
    with pytest.raises(ConfigError, match=r"only 0 of 6 pairs \(0%; min_kept 0\)"):
        mine(model, _data(), _section(max_score=-1.0, min_kept=0.0))  # nothing left is never a training set


# -- the cap on how many pairs one document may serve as a negative ------------------------------------

HUBS = ["hub one", "hub two", "hub three"]


def _hub_candidates(rows: int) -> list[list[str]]:
    """What an untrained last-token state mines among the training positives: the same few hub documents
    first for every pair, then other pairs' positives."""
    return [HUBS + [f"positive {(row + step) % rows}" for step in range(1, 9)] for row in range(rows)]


def _batches(candidates, chosen, batch_size: int) -> list[int]:
    """Batch sizes of the epoch the trainer's no-duplicates sampler makes of the mined rows."""
    from datasets import Dataset

    from decemb.train.sampler import WholePassNoDuplicatesBatchSampler

    kept = [row for row, negatives in enumerate(chosen) if negatives is not None]
    rows = {
        "anchor": [f"query {row}" for row in kept],
        "positive": [f"positive {row}" for row in kept],
        "negative_1": [chosen[row][0] for row in kept],
    }
    sampler = WholePassNoDuplicatesBatchSampler(Dataset.from_dict(rows), batch_size, drop_last=False, seed=0)
    sizes = [len(batch) for batch in sampler]
    assert len(sampler) == len(sizes)  # the epoch the trainer counts is the whole pass
    return sizes


def test_hub_negatives_make_short_batches_and_the_cap_removes_them():
    candidates = _hub_candidates(64)
    uncapped = choose_negatives(candidates, HardNegativesSection(mine=True, max_uses=None))
    assert all(negatives == ["hub one"] for negatives in uncapped)
    assert _batches(candidates, uncapped, 16) == [1] * 64  # every row shares "hub one": one row per batch
    capped = choose_negatives(candidates, HardNegativesSection(mine=True, max_uses=2))
    uses = Counter(negatives[0] for negatives in capped if negatives is not None)
    assert None not in capped and max(uses.values()) == 2
    assert all(capped[row][0] in candidates[row] for row in range(64))
    sizes = _batches(candidates, capped, 16)
    assert sum(sizes) == 64 and sizes[:3] == [16, 16, 16] and len(sizes) <= 5  # near-full batches


def test_top_takes_the_best_candidate_under_the_cap_and_pairs_left_short_are_dropped():
    candidates = [["a", "b", "c"], ["a", "b", "c"], ["a", "b", "c"], ["a", "b", "c"]]
    section = HardNegativesSection(mine=True, num=2, max_uses=2, range_min=0, range_max=3)
    chosen = choose_negatives(candidates, section, seed=3)
    kept = [negatives for negatives in chosen if negatives is not None]
    # the first two pairs served take a and b twice each; then only c is under the cap: the rest are dropped
    assert kept == [["a", "b"], ["a", "b"]] and chosen.count(None) == 2
    assert choose_negatives(candidates, section, seed=3) == chosen
    assert choose_negatives(candidates, section.model_copy(update={"max_uses": 3}), seed=3).count(None) == 1


def test_random_sampling_is_seeded_and_draws_from_the_ranked_candidates():
    candidates = [[f"doc {i}" for i in range(20)] for _ in range(30)]
    section = HardNegativesSection(mine=True, num=3, sampling="random", max_uses=None, range_min=0, range_max=20)
    first = choose_negatives(candidates, section, seed=1)
    assert first == choose_negatives(candidates, section, seed=1)
    assert first != choose_negatives(candidates, section, seed=2)
    assert all(n == sorted(n, key=candidates[0].index) and len(set(n)) == 3 for n in first)
    assert len({tuple(n) for n in first}) > 20  # not the same top three for every pair


def test_mining_with_the_model_respects_the_cap(model):
    mined = mine(model, _data(), _section(num=1, max_uses=1))
    negatives = mined.columns["negative_1"]
    assert len(negatives) == len(set(negatives)) == len(ANCHORS)
    assert mined.info["most_uses_of_a_negative"] == 1 and mined.info["distinct_negatives"] == len(ANCHORS)


def test_bm25_mining_takes_the_best_lexical_match_that_is_not_a_positive():
    """Lexical mining needs no model (None here). 'question alpha' shares 'alpha' with its two positives and
    with 'alpha' (a one-word document: the highest BM25 score), and 'question' with every distractor."""
    anchors = [*ANCHORS, ANCHORS[0]]
    positives = [*POSITIVES, "second alpha answer"]
    corpus = [*positives, *(f"a question on {c}" for c in ["red", "green", "blue"]), "alpha", "alpha question too"]
    columns = {"anchor": anchors, "positive": positives}
    data = TrainData("pairs", columns, {"anchor": "query", "positive": "document"}, "test", corpus=corpus)
    section = HardNegativesSection(mine=True, miner="bm25", range_min=0, range_max=3, corpus="all", max_uses=None)
    mined = mine(None, data, section)  # type: ignore[arg-type]
    assert len(mined) == len(anchors)
    negatives = dict(zip(mined.columns["positive"], mined.columns["negative_1"], strict=True))
    assert negatives[POSITIVES[0]] == negatives["second alpha answer"] == "alpha question too"  # both terms
    assert negatives[POSITIVES[1]] in {"a question on red", "a question on green", "a question on blue"}
    for row, anchor in enumerate(mined.columns["anchor"]):
        own = {p for a, p in zip(anchors, positives) if a == anchor}
        assert mined.columns["negative_1"][row] not in own
    with pytest.raises(ValueError, match="relative_margin is a cosine threshold of miner 'model'"):
        HardNegativesSection(mine=True, miner="bm25", relative_margin=0.05)
