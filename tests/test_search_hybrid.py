"""The lexical side of a search index: a BM25 index stored in each generation beside the vectors (equal to a
fresh one over the same documents, also after an add), and the pipeline's ``bm25`` / ``hybrid`` first stages
against rankings computed here (RRF by hand), through the library and ``decemb search query``."""

from __future__ import annotations

import argparse
import json

import pytest
from helpers import CORPUS, OWN_DATA, OWN_TASKS, rrf_order, save_tiny_model, tiny_backbone

import decemb
from decemb.errors import ConfigError
from decemb.search import SearchIndex, SearchPipeline, evaluate_rerank
from decemb.search.cli import add_search_parser, run_search
from decemb.search.fusion import FusionSettings
from decemb.search.lexical import LexicalIndex
from decemb.tasks import load_task

IDS = [f"d{i}" for i in range(len(CORPUS))]
QUERIES = ["a man playing guitar", "cat on a mat", "children play football in the park"]


@pytest.fixture(scope="module")
def embedder():
    return decemb.from_backbone(*tiny_backbone("llama"), "mean")


def lexical_ids(texts: list[str], ids: list[str], query: str, k: int) -> list[str]:
    return [ids[p] for p, _ in LexicalIndex.build(texts).search([query], k)[0]]


def test_the_bm25_index_is_stored_with_the_vectors_and_follows_adds(tmp_path, embedder):
    index = SearchIndex.build(tmp_path / "idx", IDS[:8], CORPUS[:8], embedder)
    assert index.manifest["files"]["bm25"]["name"] == "bm25-1.npz" and (tmp_path / "idx" / "bm25-1.npz").is_file()
    again = SearchIndex.open(tmp_path / "idx", embedder)
    for query in QUERIES:
        expected = lexical_ids(CORPUS[:8], IDS[:8], query, 5)
        assert [h.doc_id for h in index.search_lexical([query], 5)[0]] == expected
        assert [h.doc_id for h in again.search_lexical([query], 5)[0]] == expected
    again.add(IDS[8:], CORPUS[8:], embedder)
    assert sorted(p.name for p in (tmp_path / "idx").glob("bm25-*")) == ["bm25-2.npz"]
    reopened = SearchIndex.open(tmp_path / "idx")
    for query in QUERIES:  # document frequencies changed: the same as a fresh index over all documents
        hits = reopened.search_lexical([query], 5)[0]
        assert [h.doc_id for h in hits] == lexical_ids(CORPUS, IDS, query, 5)
        assert all(h.text == CORPUS[IDS.index(h.doc_id)] for h in hits)
    with pytest.raises(ValueError, match="top_k: must be > 0"):
        reopened.search_lexical(QUERIES, 0)


def test_an_index_written_before_bm25_was_stored_still_searches_lexically(tmp_path, embedder):
    folder = tmp_path / "idx"
    SearchIndex.build(folder, IDS, CORPUS, embedder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / manifest["files"].pop("bm25")["name"]).unlink()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    old = SearchIndex.open(folder, embedder)
    assert [h.doc_id for h in old.search_lexical([QUERIES[1]], 3)[0]] == lexical_ids(CORPUS, IDS, QUERIES[1], 3)
    old.add(["new"], ["A new text about a guitar."], embedder)
    assert "bm25" in SearchIndex.open(folder).manifest["files"]


def test_pipeline_retrievers(tmp_path, embedder):
    index = SearchIndex.build(tmp_path / "idx", IDS, CORPUS, embedder)
    for query in QUERIES:
        lexical = SearchPipeline(index, None, retriever="bm25", top_k=5).search(query)
        assert [r.doc_id for r in lexical.results] == lexical_ids(CORPUS, IDS, query, 5)
        assert lexical.timings["embed"] == 0.0 and lexical.timings["lexical"] > 0
        dense = [h.doc_id for h in index.search_texts([query], embedder, top_k=len(IDS))[0]]
        rrf_k60 = FusionSettings(method="rrf", k=60, weights=(1.0, 1.0))
        hybrid = SearchPipeline(index, embedder, retriever="hybrid", top_k=4, fusion=rrf_k60).search(query)
        expected = rrf_order(lexical_ids(CORPUS, IDS, query, len(IDS)), dense)[:4]
        assert [r.doc_id for r in hybrid.results] == expected
        assert all(hybrid.timings[stage] > 0 for stage in ("embed", "search", "lexical"))
    with pytest.raises(ValueError, match=r"unknown retriever 'hybird' \(did you mean 'hybrid'\?\)"):
        SearchPipeline(index, embedder, retriever="hybird")
    with pytest.raises(ValueError, match="retriever 'dense' needs the embedder"):
        SearchPipeline(index, None)


class Constant:
    def rank(self, query, documents, batch_size=32, **kwargs):  # CrossEncoder.rank's output, best first
        return [{"corpus_id": i, "score": 0.0} for i in range(len(documents))]


def test_a_rerank_evaluation_reranks_the_tasks_own_first_stage():
    task = load_task({**OWN_TASKS["retrieval"], "retriever": "bm25"}, OWN_DATA)
    report = evaluate_rerank(task, Constant(), top_k=3)  # nothing to encode for bm25
    assert report.before == report.after == task.score({})


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="decemb")
    add_search_parser(parser.add_subparsers(dest="command"))
    return run_search(parser.parse_args(["search", *argv]))


def test_cli_query_with_bm25_loads_no_model(tmp_path, capsys, monkeypatch):
    model_dir = save_tiny_model(tmp_path / "model")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(IDS, CORPUS)))
    index = str(tmp_path / "idx")
    assert cli("build", str(corpus), index, "--model", str(model_dir), "--strategy", "mean", "-q") == 0
    capsys.readouterr()

    def no_model(*args, **kwargs):
        raise AssertionError("bm25 must not load a model")

    monkeypatch.setattr(decemb, "load", no_model)
    assert cli("query", index, QUERIES[1], "--retriever", "bm25", "--json", "-q", "--top-k", "3") == 0
    record = json.loads(capsys.readouterr().out)
    assert [r["doc_id"] for r in record["results"]] == lexical_ids(CORPUS, IDS, QUERIES[1], 3)
    with pytest.raises(ConfigError, match=r"--fusion-weights: weights must be >= 0 and not all 0"):
        cli("query", index, "x", "--retriever", "hybrid", "--fusion-weights", "0", "0", "-q")
