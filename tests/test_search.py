"""The search index: faiss exact/HNSW over a decemb bi-encoder's vectors, written atomically with the model's
identity, incremental adds, and one-line errors (nothing half-written) for every bad input."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from helpers import CORPUS, SEARCH_IDS, build_index, folder_files, tiny_backbone

import decemb
from decemb.engine import fingerprint
from decemb.search import (
    CorpusError,
    CorruptIndexError,
    DuplicateIdError,
    EmptyCorpusError,
    IndexExistsError,
    IndexMismatchError,
    IndexNotFoundError,
    SearchIndex,
    read_corpus,
)
from decemb.search import store as store_module

IDS = SEARCH_IDS


build = build_index


files = folder_files


def brute_force(embedder, query: str, k: int) -> list[str]:
    docs = np.asarray(embedder.encode_document(CORPUS), dtype=np.float64)
    vec = np.asarray(embedder.encode_query([query]), dtype=np.float64)[0]
    scores = docs @ vec / np.linalg.norm(docs, axis=1) / np.linalg.norm(vec)
    return [IDS[i] for i in np.argsort(-scores, kind="stable")[:k]]


def test_exact_search_is_the_brute_force_cosine_ranking(tmp_path, embedder):
    index = build(tmp_path / "idx", embedder)
    assert index.kind == "exact" and index.count == len(CORPUS)
    for query in ("A man plays guitar", "cats on mats", "children in a park"):
        hits = index.search_texts([query], embedder, top_k=5)[0]
        assert [h.doc_id for h in hits] == brute_force(embedder, query, 5)
        assert hits[0].text == CORPUS[IDS.index(hits[0].doc_id)]
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_hnsw_index_finds_what_exact_finds_on_a_small_corpus(tmp_path, embedder):
    exact, hnsw = build(tmp_path / "e", embedder), build(tmp_path / "h", embedder, kind="hnsw", hnsw_m=8)
    assert hnsw.kind == "hnsw"
    queries = embedder.encode_query(["A man plays guitar", "cats", "feedback"])
    got = [[h.doc_id for h in row] for row in hnsw.search(queries, 5)]
    assert got == [[h.doc_id for h in row] for row in exact.search(queries, 5)]
    assert [[h.doc_id for h in row] for row in SearchIndex.open(tmp_path / "h").search(queries, 5)] == got


def test_manifest_records_fingerprint_strategy_and_settings(tmp_path, embedder):
    index = build(tmp_path / "idx", embedder)
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["model"]["fingerprint"] == fingerprint(embedder[0].auto_model)
    assert manifest["model"]["strategy"] == {"name": "mean", "options": {}}
    assert manifest["model"]["settings"] == {"max_length": 512, "layer": -1, "add_special_tokens": True}
    assert manifest["model"]["source"] == "tiny"
    assert (manifest["kind"], manifest["count"], manifest["dim"], manifest["metric"]) == ("exact", 11, 32, "cosine")
    assert files(tmp_path / "idx") == ["bm25-1.npz", "docs-1.jsonl", "manifest.json", "vectors-1.faiss"]
    assert index.manifest == manifest


def test_incremental_add_commits_a_new_generation(tmp_path, embedder):
    index = build(tmp_path / "idx", embedder, ids=IDS[:6], texts=CORPUS[:6])
    assert index.add(IDS[6:], CORPUS[6:], embedder) == 5
    assert files(tmp_path / "idx") == ["bm25-2.npz", "docs-2.jsonl", "manifest.json", "vectors-2.faiss"]
    reopened = SearchIndex.open(tmp_path / "idx", embedder)
    assert reopened.count == 11 and reopened.ids == IDS
    full = build(tmp_path / "full", embedder)
    queries = embedder.encode_query(["dogs in the park"])
    assert [h.doc_id for h in reopened.search(queries, 11)[0]] == [h.doc_id for h in full.search(queries, 11)[0]]


def test_adding_a_known_id_is_refused_and_changes_nothing(tmp_path, embedder):
    index = build(tmp_path / "idx", embedder, ids=IDS[:6], texts=CORPUS[:6])
    before = (tmp_path / "idx" / "manifest.json").read_text()
    with pytest.raises(DuplicateIdError, match=r"idx: document id 'd2' is already in the index$"):
        index.add(["d9", "d2"], ["new text", "another"], embedder)
    assert (tmp_path / "idx" / "manifest.json").read_text() == before and index.count == 6


@pytest.mark.parametrize(
    ("ids", "texts", "error", "message"),
    [
        ([], [], EmptyCorpusError, "the corpus is empty"),
        (["a", "b", "a"], ["x", "y", "z"], DuplicateIdError, "duplicate document id 'a' (documents 0 and 2)"),
        (["a", "b"], ["x", "   "], CorpusError, "document 'b' has no text"),
        (["a", ""], ["x", "y"], CorpusError, "document 1 has id ''"),
        (["a"], ["x", "y"], CorpusError, "1 ids but 2 texts"),
    ],
)
def test_bad_corpus_is_a_one_line_error_and_nothing_is_written(tmp_path, embedder, ids, texts, error, message):
    with pytest.raises(error) as raised:
        build(tmp_path / "idx", embedder, ids=ids, texts=texts)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "idx").exists()


def test_an_index_built_with_another_model_or_strategy_is_refused(tmp_path, embedder):
    build(tmp_path / "idx", embedder)
    model, tok = tiny_backbone("llama")
    with pytest.raises(IndexMismatchError, match="built with strategy mean, this model embeds with last"):
        SearchIndex.open(tmp_path / "idx", decemb.from_backbone(model, tok, "last"))
    with pytest.raises(IndexMismatchError, match="other encode settings: max_length=512 \\(this model: 64\\)"):
        SearchIndex.open(tmp_path / "idx", decemb.from_backbone(model, tok, "mean", max_length=64))
    other, tok2 = tiny_backbone("qwen2")
    with pytest.raises(IndexMismatchError, match="built with another model"):
        SearchIndex.open(tmp_path / "idx", decemb.from_backbone(other, tok2, "mean"))
    with pytest.raises(IndexMismatchError):
        SearchIndex.open(tmp_path / "idx").add(["new"], ["text"], decemb.from_backbone(model, tok, "last"))


def test_changed_weights_are_another_model(tmp_path, embedder):
    import copy

    build(tmp_path / "idx", embedder)
    changed = copy.deepcopy(embedder[0].auto_model)
    with torch.no_grad():
        next(changed.parameters()).add_(1e-3)
    with pytest.raises(IndexMismatchError, match="fingerprint"):
        SearchIndex.open(tmp_path / "idx", decemb.from_backbone(changed, embedder[0].tokenizer, "mean"))


@pytest.mark.parametrize("damage", ["flip-vectors", "truncate-docs", "delete-vectors", "garbage-manifest", "bad-json"])
def test_a_corrupted_index_is_a_one_line_error(tmp_path, embedder, damage):
    build(tmp_path / "idx", embedder)
    folder = tmp_path / "idx"
    vectors, docs, manifest = folder / "vectors-1.faiss", folder / "docs-1.jsonl", folder / "manifest.json"
    if damage == "flip-vectors":
        data = bytearray(vectors.read_bytes())
        data[len(data) // 2] ^= 0xFF
        vectors.write_bytes(bytes(data))
    elif damage == "truncate-docs":
        docs.write_bytes(docs.read_bytes()[:-10])
    elif damage == "delete-vectors":
        vectors.unlink()
    elif damage == "garbage-manifest":
        manifest.write_text("{not json")
    else:
        record = json.loads(manifest.read_text())
        record["files"]["docs"] = {"name": "docs-1.jsonl", "size": docs.stat().st_size, "sha256": "0" * 64}
        manifest.write_text(json.dumps(record))
    with pytest.raises(CorruptIndexError) as raised:
        SearchIndex.open(folder, embedder)
    assert str(raised.value).startswith(str(folder)) and "\n" not in str(raised.value)


def test_an_interrupted_commit_leaves_the_previous_index(tmp_path, embedder, monkeypatch):
    index = build(tmp_path / "idx", embedder, ids=IDS[:6], texts=CORPUS[:6])

    def crash(path, text):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module, "write_text", crash)
    with pytest.raises(KeyboardInterrupt):
        index.add(IDS[6:], CORPUS[6:], embedder)
    monkeypatch.undo()
    assert index.count == 6  # the in-memory index went back to the disk's
    assert SearchIndex.open(tmp_path / "idx", embedder).count == 6
    assert files(tmp_path / "idx") == [
        "bm25-1.npz",
        "docs-1.jsonl",
        "manifest.json",
        "vectors-1.faiss",
    ]  # its files removed
    (tmp_path / "idx" / "vectors-2.faiss").write_bytes(b"left by a killed write")
    (tmp_path / "idx" / ".docs-2.jsonl.x1.tmp").write_text("half")
    index.add(IDS[6:], CORPUS[6:], embedder)  # skips the killed write's generation, then sweeps its files
    assert files(tmp_path / "idx") == ["bm25-3.npz", "docs-3.jsonl", "manifest.json", "vectors-3.faiss"]


def test_build_refuses_an_existing_index_unless_overwriting(tmp_path, embedder):
    build(tmp_path / "idx", embedder, ids=IDS[:3], texts=CORPUS[:3])
    with pytest.raises(IndexExistsError, match="an index exists here"):
        build(tmp_path / "idx", embedder)
    assert build(tmp_path / "idx", embedder, overwrite=True).count == 11
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="not empty and holds no index"):
        build(tmp_path / "other", embedder)
    with pytest.raises(IndexNotFoundError, match="no such index folder"):
        SearchIndex.open(tmp_path / "missing")


def test_read_corpus_formats(tmp_path):
    beir = tmp_path / "c.jsonl"
    beir.write_text('{"_id": "a", "title": "T", "text": "body"}\n\n{"_id": "b", "title": "", "text": "two"}\n')
    assert read_corpus(beir) == (["a", "b"], ["T body", "two"])
    table = tmp_path / "c.tsv"
    table.write_text("id\ttext\nx\tfirst\ny\tsecond\n")
    assert read_corpus(table) == (["x", "y"], ["first", "second"])
    lines = tmp_path / "c.txt"
    lines.write_text("one\n\nthree\n")
    assert read_corpus(lines) == (["1", "3"], ["one", "three"])
    with pytest.raises(CorpusError, match=r"c.tsv: no field 'body'"):
        read_corpus(table, text_fields=["body"])
    (tmp_path / "bad.jsonl").write_text('{"_id": "a", "text": "x"}\nnot json\n')
    with pytest.raises(CorpusError, match="line 2 is not JSON"):
        read_corpus(tmp_path / "bad.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(EmptyCorpusError):
        read_corpus(tmp_path / "empty.jsonl")
