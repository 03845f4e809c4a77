"""Hard-negative mining with the model itself: negatives from the corpus, never the pair's own positive, on the
document side; pairs without a negative that passes the filters are dropped, and dropping more than
``min_kept`` allows is a one-line error before training (checked against the cosines computed here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_backbone

import decemb
from decemb.errors import ConfigError
from decemb.train.config import HardNegativesSection
from decemb.train.mining import mine
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
    return HardNegativesSection(mine=True, range_min=0, range_max=None, corpus="all", **options)


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
    assert message.startswith(f"hard_negatives.min_kept: mining found a negative for only {len(expected)} of 6 pairs")
    assert "max_score" in message and "\n" not in message
    kept = mine(model, _data(), _section(max_score=threshold, min_kept=0.0))
    assert kept.columns["anchor"] == expected
    with pytest.raises(ConfigError, match=r"only 0 of 6 pairs \(0%; min_kept 0\)"):
        mine(model, _data(), _section(max_score=-1.0, min_kept=0.0))  # nothing left is never a training set
