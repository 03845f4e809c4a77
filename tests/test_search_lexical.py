"""BM25 (bm25s) against the Lucene formula computed by hand, its save/load round trip, and rank fusion
against hand-computed RRF and min-max weighted sums."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest
from pydantic import ValidationError

from decemb.search.fusion import FusionSettings, fuse
from decemb.search.lexical import Bm25Settings, LexicalIndex

DOCS = [
    "the cat sat on the mat",
    "dogs chase cats and the cat runs",
    "a treatise on quantum chromodynamics",
    "cat cat cat",
    "mat making for beginners on a budget",
]
PLAIN = Bm25Settings(stopwords=None, stemmer=None)


def lucene_bm25(query: str, docs: list[str], k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Lucene's BM25 (Kamphuis et al. 2020) on bm25s' default tokens (lower case, words of 2+ characters)."""
    tokens = [re.findall(r"(?u)\b\w\w+\b", d.lower()) for d in docs]
    avg = sum(map(len, tokens)) / len(tokens)
    terms = re.findall(r"(?u)\b\w\w+\b", query.lower())
    scores = []
    for doc in tokens:
        counts, total = Counter(doc), 0.0
        for term in terms:
            df = sum(term in d for d in tokens)
            if not counts[term]:
                continue
            idf = math.log(1 + (len(tokens) - df + 0.5) / (df + 0.5))
            total += idf * counts[term] / (k1 * (1 - b + b * len(doc) / avg) + counts[term])
        scores.append(total)
    return scores


@pytest.mark.parametrize("query", ["cat", "the mat", "quantum cat budget"])
def test_bm25_scores_are_lucenes_formula(query):
    expected = lucene_bm25(query, DOCS)
    got = LexicalIndex.build(DOCS, PLAIN).search([query], top_k=len(DOCS))[0]
    ranked = sorted((p for p in range(len(DOCS)) if expected[p] > 0), key=lambda p: (-expected[p], p))
    assert [p for p, _ in got] == ranked
    for position, score in got:
        assert score == pytest.approx(expected[position], rel=1e-5)


def test_top_k_ties_unknown_terms_and_bad_arguments():
    index = LexicalIndex.build(["alpha beta", "alpha beta", "gamma"], PLAIN)
    assert [p for p, _ in index.search(["alpha"], top_k=5)[0]] == [0, 1]  # a tie: by position
    assert [p for p, _ in index.search(["alpha"], top_k=1)[0]] == [0]
    assert index.search(["zeta omega", "gamma"], top_k=3)[0] == []  # no known term: nothing, not noise
    for bad in (0, -5, True, 2.0):
        with pytest.raises(ValueError, match=f"top_k must be a positive int \\(got {bad!r}\\)"):
            index.search(["alpha"], top_k=bad)
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        Bm25Settings(b=1.5)


def test_stemming_and_stopwords_by_default():
    index = LexicalIndex.build(DOCS)
    assert index.search(["the"], top_k=5)[0] == []  # a stopword alone matches nothing
    assert {p for p, _ in index.search(["running cats"], top_k=5)[0]} == {0, 1, 3}  # cats -> cat, runs ~ running


def test_save_and_load_give_the_same_rankings(tmp_path):
    index = LexicalIndex.build(DOCS)
    index.save(tmp_path / "bm25")
    again = LexicalIndex.load(tmp_path / "bm25")
    queries = ["cat on a mat", "quantum", "beginners budget"]
    assert again.search(queries, 3) == index.search(queries, 3) and again.settings == index.settings
    (tmp_path / "bm25" / "decemb_bm25.json").write_text("{")
    with pytest.raises(ValueError, match=r"decemb_bm25.json is missing or damaged"):
        LexicalIndex.load(tmp_path / "bm25")


LEXICAL = [("a", 9.0), ("b", 5.0), ("c", 1.0)]
DENSE = [("c", 0.9), ("d", 0.8), ("a", 0.7)]


def test_rrf_is_the_sum_of_reciprocal_ranks():
    fused = dict(fuse([LEXICAL, DENSE], FusionSettings(method="rrf", k=60, weights=(1.0, 1.0))))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62) and fused["d"] == pytest.approx(1 / 62)
    order = [doc for doc, _ in fuse([LEXICAL, DENSE], FusionSettings(method="rrf", k=60, weights=(1.0, 1.0)))]
    assert order == ["a", "c", "b", "d"]  # ties: best rank anywhere, then the lexical list first
    weighted = dict(fuse([LEXICAL, DENSE], FusionSettings(method="rrf", k=60, weights=(2.0, 1.0))))
    assert weighted["d"] == pytest.approx(1 / 62) and weighted["b"] == pytest.approx(2 / 62)


def test_weighted_fusion_normalises_each_list():
    fused = dict(fuse([LEXICAL, DENSE], FusionSettings(method="weighted", weights=(0.3, 0.7))))
    assert fused["a"] == pytest.approx(0.3 * 1.0 + 0.7 * 0.0)
    assert fused["b"] == pytest.approx(0.3 * 0.5)
    assert fused["c"] == pytest.approx(0.3 * 0.0 + 0.7 * 1.0)
    assert fused["d"] == pytest.approx(0.7 * 0.5)
    assert dict(fuse([[("x", 3.0)], []], FusionSettings(weights=(1.0, 1.0)))) == {"x": 1.0}
    shallow = fuse([LEXICAL, DENSE], FusionSettings(method="rrf", depth=1))
    assert [doc for doc, _ in shallow] == ["a", "c"]


def test_the_default_is_the_measured_weighted_fusion():
    default = dict(fuse([LEXICAL, DENSE]))
    assert default == pytest.approx(dict(fuse([LEXICAL, DENSE], FusionSettings(method="weighted", weights=(0.8, 0.2)))))
    assert default["a"] == pytest.approx(0.8) and default["d"] == pytest.approx(0.2 * 0.5)


def test_fusion_settings_are_validated():
    with pytest.raises(ValidationError, match="extra"):
        FusionSettings(metod="rrf")
    with pytest.raises(ValidationError, match="not all 0"):
        FusionSettings(weights=(0.0, 0.0))
    with pytest.raises(ValueError, match="3 rankings for 2 fusion weights"):
        fuse([LEXICAL, DENSE, DENSE])


def test_one_file_round_trip_and_a_damaged_file(tmp_path):
    index = LexicalIndex.build(DOCS)
    with (tmp_path / "bm25.npz").open("wb") as handle:
        index.write(handle)
    again = LexicalIndex.read(tmp_path / "bm25.npz")
    assert again.search(["cat on a mat", "budget"], 5) == index.search(["cat on a mat", "budget"], 5)
    (tmp_path / "bm25.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match=r"bm25.npz is not a readable BM25 index"):
        LexicalIndex.read(tmp_path / "bm25.npz")
