"""Retrieve → rerank: results with both scores and per-stage timings, the comparison hook's before/after
metrics (the task's own), and the ``decemb search build|query`` command functions."""

from __future__ import annotations

import argparse
import itertools
import json

import pytest
import torch
from helpers import CORPUS, OWN_DATA, OWN_TASKS, build_tokenizer, save_tiny_model, tiny_backbone, tiny_config
from transformers import AutoModelForCausalLM

import decemb
from decemb.errors import ConfigError
from decemb.rerank import PairTemplate, reranker_from_causal_lm
from decemb.search import (
    SearchIndex,
    SearchPipeline,
    evaluate_rerank,
    exact_rankings,
    latency_summary,
    score_rankings,
)
from decemb.search.cli import add_search_parser, run_search
from decemb.tasks import load_task

IDS = [f"d{i}" for i in range(len(CORPUS))]
TEMPLATE = PairTemplate(prefix="Query: ", middle="\nText: ", suffix="\nSame?", yes=" man", no=" the", family="test")


@pytest.fixture(scope="module")
def embedder():
    model, tok = tiny_backbone("llama")
    return decemb.from_backbone(model, tok, "mean")


@pytest.fixture(scope="module")
def reranker():
    tok = build_tokenizer(add_bos=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("llama", len(tok))).eval()
    return reranker_from_causal_lm(model, tok, template=TEMPLATE, max_length=128)


class Constant:
    """A stand-in reranker scoring every pair the same: reranking must then keep the retrieval order."""

    def rank(self, query, documents, batch_size=32, **kwargs):  # CrossEncoder.rank's output, best first
        return [{"corpus_id": i, "score": 0.0} for i in range(len(documents))]


def test_pipeline_reranks_the_head_and_keeps_the_tail(tmp_path, embedder, reranker):
    index = SearchIndex.build(tmp_path / "idx", IDS, CORPUS, embedder)
    pipeline = SearchPipeline(index, embedder, reranker, top_k=8, rerank_top_k=5)
    found = pipeline.search("A man plays guitar")
    retrieved = index.search_texts(["A man plays guitar"], embedder, top_k=8)[0]
    head, tail = found.results[:5], found.results[5:]
    assert [r.rank for r in found.results] == list(range(1, 9))
    assert {r.doc_id for r in head} == {h.doc_id for h in retrieved[:5]}
    assert all(a.rerank_score >= b.rerank_score for a, b in itertools.pairwise(head))
    expected = reranker.predict([("A man plays guitar", h.text) for h in retrieved[:5]])
    by_id = {h.doc_id: float(s) for h, s in zip(retrieved[:5], expected)}
    assert all(r.rerank_score == pytest.approx(by_id[r.doc_id], abs=1e-5) for r in head)
    assert [r.doc_id for r in tail] == [h.doc_id for h in retrieved[5:]] and all(r.rerank_score is None for r in tail)
    assert all(r.retrieval_score == pytest.approx(retrieved[r.retrieval_rank - 1].score) for r in found.results)
    assert set(found.timings) == {"embed", "search", "lexical", "fuse", "rerank"} and found.timings["rerank"] > 0
    assert found.timings["lexical"] == found.timings["fuse"] == 0.0  # dense: those stages did not run
    summary = latency_summary(pipeline.search_many(["cats", "guitar"]))
    assert set(summary) == {"embed", "search", "lexical", "fuse", "rerank", "total"} and summary["total"]["mean_ms"] > 0


def test_pipeline_without_reranker_and_with_the_wrong_model(tmp_path, embedder):
    index = SearchIndex.build(tmp_path / "idx", IDS, CORPUS, embedder)
    found = SearchPipeline(index, embedder, top_k=3).search("cats")
    assert [r.rerank_score for r in found.results] == [None] * 3 and found.timings["rerank"] == 0.0
    model, tok = tiny_backbone("llama")
    with pytest.raises(ConfigError, match="built with strategy mean"):
        SearchPipeline(index, decemb.from_backbone(model, tok, "sgpt"))


def own_retrieval():
    return load_task(OWN_TASKS["retrieval"], OWN_DATA)


def embeddings(task, embedder):
    return {"queries": embedder.encode_query(task.queries), "corpus": embedder.encode_document(task.docs)}


def test_score_rankings_gives_the_tasks_own_metrics(embedder):
    task = own_retrieval()
    vectors = embeddings(task, embedder)
    assert score_rankings(task, exact_rankings(task, vectors)) == task.score(vectors)


def test_evaluate_rerank_reports_before_after_and_latency(embedder, reranker):
    task = own_retrieval()
    vectors = embeddings(task, embedder)
    report = evaluate_rerank(task, reranker, top_k=4, embeddings=vectors)
    assert report.before == task.score(vectors)
    assert set(report.after) == set(report.before) and report.after["recall@100"] == report.before["recall@100"]
    assert set(report.latency_ms) == {"retrieve", "rerank"} and report.latency_ms["rerank"] > 0
    unchanged = evaluate_rerank(task, Constant(), top_k=4, rankings=exact_rankings(task, vectors))
    assert unchanged.after == unchanged.before and unchanged.gain() == 0.0
    with_embedder = evaluate_rerank(task, Constant(), top_k=2, embedder=embedder)
    assert "embed_queries" in with_embedder.latency_ms and with_embedder.before == report.before
    with pytest.raises(TypeError, match="needs a retrieval task"):
        evaluate_rerank(load_task(OWN_TASKS["sts"], OWN_DATA), reranker, embeddings=vectors)


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="decemb")
    add_search_parser(parser.add_subparsers(dest="command"))
    return run_search(parser.parse_args(["search", *argv]))


def test_cli_build_add_and_query(tmp_path, capsys):
    model_dir = save_tiny_model(tmp_path / "model")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(IDS[:6], CORPUS[:6])))
    more = tmp_path / "more.txt"
    more.write_text("Cats sleep in the sun.\nDogs bark.\n")  # a text file's ids are its line numbers
    index = str(tmp_path / "idx")
    assert cli("build", str(corpus), index, "--model", str(model_dir), "--strategy", "mean", "-q") == 0
    assert "indexed 6 documents (32-d, exact)" in capsys.readouterr().err
    assert cli("build", str(more), index, "--add", "-q") == 0  # model and strategy: the index's own
    assert "added 2 documents" in capsys.readouterr().err
    assert SearchIndex.open(index).ids == [*IDS[:6], "1", "2"]
    with pytest.raises(ConfigError, match=r"idx: document id '1' is already in the index$"):
        cli("build", str(more), index, "--add", "-q")
    with pytest.raises(ConfigError, match="built with strategy mean, this model embeds with last"):
        cli("build", str(more), index, "--add", "--strategy", "last", "-q")


def test_cli_query_json_and_errors(tmp_path, capsys):
    model_dir = save_tiny_model(tmp_path / "model")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(IDS, CORPUS)))
    index = str(tmp_path / "idx")
    cli("build", str(corpus), index, "--model", str(model_dir), "--strategy", "mean", "-q")
    capsys.readouterr()
    assert cli("query", index, "A man plays guitar", "cats", "--top-k", "3", "--json", "-q") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["query"] for line in lines] == ["A man plays guitar", "cats"]
    assert all(len(line["results"]) == 3 and line["results"][0]["rank"] == 1 for line in lines)
    with pytest.raises(ConfigError, match="an index exists here"):
        cli("build", str(corpus), index, "--model", str(model_dir), "-q")
    with pytest.raises(ConfigError, match="no such index folder"):
        cli("query", str(tmp_path / "missing"), "x")
    with pytest.raises(ConfigError, match="give at least one QUERY"):
        cli("query", index)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="the corpus is empty"):
        cli("build", str(empty), str(tmp_path / "idx2"), "--model", str(model_dir), "-q")
    assert not (tmp_path / "idx2").exists()
