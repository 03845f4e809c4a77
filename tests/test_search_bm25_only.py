"""A BM25-only index (``SearchIndex.build(..., None)``, ``decemb search build --retriever bm25``): built and
queried without any model, ranked as bm25s ranks on its own, extended by adds, and refusing every vector
search in one line that says how to add vectors."""

from __future__ import annotations

import argparse
import json

import bm25s
import numpy as np
import pytest
import Stemmer
from helpers import CORPUS, SEARCH_IDS, folder_files

import decemb
from decemb.errors import ConfigError
from decemb.search import SearchIndex, SearchPipeline
from decemb.search.cli import add_search_parser, run_search
from decemb.search.errors import NoVectorsError

QUERIES = ["a man playing guitar", "cat on a mat", "children play football in the park"]


def bm25s_ids(texts: list[str], ids: list[str], query: str, k: int) -> list[str]:
    """bm25s called directly (Lucene BM25, k1 1.5, b 0.75, English stopwords, Snowball stemmer)."""
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    terms = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)[0]
    scores = np.asarray(retriever.get_scores(terms))
    order = np.lexsort((np.arange(len(texts)), -scores))
    return [ids[i] for i in order if scores[i] > 0][:k]


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="decemb")
    add_search_parser(parser.add_subparsers(dest="command"))
    return run_search(parser.parse_args(["search", *argv]))


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a BM25-only index must not load a model")

    monkeypatch.setattr(decemb, "load", refuse)


def test_a_bm25_only_index_ranks_as_bm25s_and_follows_adds(tmp_path, embedder):
    folder = tmp_path / "idx"
    index = SearchIndex.build(folder, SEARCH_IDS[:8], CORPUS[:8], None)
    assert (index.kind, index.dim, index.has_vectors, index.identity) == ("bm25", None, False, {})
    assert folder_files(folder) == ["bm25-1.npz", "docs-1.jsonl", "manifest.json"]
    for query in QUERIES:
        expected = bm25s_ids(CORPUS[:8], SEARCH_IDS[:8], query, 5)
        assert [h.doc_id for h in index.search_lexical([query], 5)[0]] == expected
        assert [h.doc_id for h in SearchIndex.open(folder).search_lexical([query], 5)[0]] == expected
    assert SearchIndex.open(folder).add(SEARCH_IDS[8:], CORPUS[8:], None) == len(CORPUS) - 8
    again = SearchIndex.open(folder)
    assert again.count == len(CORPUS) and folder_files(folder) == ["bm25-2.npz", "docs-2.jsonl", "manifest.json"]
    for query in QUERIES:  # document frequencies changed: the stored BM25 index is the whole corpus's
        found = SearchPipeline(again, None, retriever="bm25", top_k=4).search(query)
        assert [r.doc_id for r in found.results] == bm25s_ids(CORPUS, SEARCH_IDS, query, 4)


def test_vector_searches_on_a_bm25_only_index_are_one_line_refusals(tmp_path, embedder):
    folder = tmp_path / "idx"
    index = SearchIndex.build(folder, SEARCH_IDS, CORPUS, None)
    refusals = [
        lambda: index.search(embedder.encode_query(["cats"]), 3),
        lambda: index.search_texts(["cats"], embedder, 3),
        lambda: SearchIndex.open(folder, embedder),
        lambda: SearchPipeline(index, embedder, retriever="dense"),
        lambda: SearchPipeline(index, embedder, retriever="hybrid"),
        lambda: index.add(["new"], ["A new text."], embedder),
    ]
    for call in refusals:
        with pytest.raises(NoVectorsError, match=r"holds no vectors .* --overwrite --model SOURCE$") as caught:
            call()
        assert "\n" not in str(caught.value) and str(caught.value).startswith(f"{folder}: ")
    with pytest.raises(ValueError, match="vectors need the model"):
        SearchIndex.build(tmp_path / "other", SEARCH_IDS, CORPUS, None, vectors=np.ones((len(CORPUS), 4)))
    dense = SearchIndex.build(tmp_path / "dense", SEARCH_IDS, CORPUS, embedder)
    with pytest.raises(ValueError, match="model: this index holds vectors"):
        dense.add(["new"], ["A new text."], None)
    assert SearchPipeline(index, embedder, retriever="bm25").search("cats").results  # an embedder is not needed


def test_cli_builds_adds_and_queries_bm25_only_without_a_model(tmp_path, capsys, no_model):
    corpus, more = tmp_path / "corpus.jsonl", tmp_path / "more.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(SEARCH_IDS[:8], CORPUS[:8])))
    more.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(SEARCH_IDS[8:], CORPUS[8:])))
    index = str(tmp_path / "idx")
    assert cli("build", str(corpus), index, "--retriever", "bm25", "-q") == 0
    assert "BM25 only, no vectors" in capsys.readouterr().err
    assert cli("build", str(more), index, "--add", "-q") == 0
    capsys.readouterr()
    assert cli("query", index, QUERIES[2], "--retriever", "bm25", "--json", "-q", "--top-k", "3") == 0
    record = json.loads(capsys.readouterr().out)
    assert [r["doc_id"] for r in record["results"]] == bm25s_ids(CORPUS, SEARCH_IDS, QUERIES[2], 3)
    for retriever in ("dense", "hybrid"):
        with pytest.raises(NoVectorsError, match=rf"cannot search with --retriever {retriever}; .* --model SOURCE$"):
            cli("query", index, "cats", "--retriever", retriever, "-q")
    for flag in (["--model", "m"], ["--strategy", "mean"], ["--option", "pooling=mean"], ["--layer", "0"]):
        with pytest.raises(ConfigError, match=rf"^{flag[0]}: --retriever bm25 builds a BM25 index only"):
            cli("build", str(corpus), str(tmp_path / "new"), "--retriever", "bm25", *flag, "-q")
    with pytest.raises(ConfigError, match=r"^--model: the index is BM25 only"):
        cli("build", str(more), index, "--add", "--model", "m", "-q")
    assert not (tmp_path / "new").exists()
