"""Every strategy is a real SentenceTransformer: save → reload, semantic_search, loading from a folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import CASE_IDS, CASES, tiny_backbone
from sentence_transformers import SentenceTransformer, util

import decemb
from decemb.loading import ModelSourceError

TEXTS = ["A man is playing a guitar.", "Hi", "{text} %%eos%%", "Dogs run in the park while children play."]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny Gemma-3 checkpoint on disk: the 'local model folder' source."""
    model, tokenizer = tiny_backbone("gemma3_text")
    folder = tmp_path_factory.mktemp("tiny-gemma3")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
def test_save_and_reload_gives_identical_vectors(tmp_path, tiny_folder, name, options):
    model = decemb.load(tiny_folder, name, max_length=64, **options)
    before = [model.encode(TEXTS), model.encode_query(TEXTS), model.encode_document(TEXTS)]
    model.save(str(tmp_path / "saved"))
    for again in (
        SentenceTransformer(str(tmp_path / "saved"), trust_remote_code=True),
        decemb.load(tmp_path / "saved"),
    ):
        after = [again.encode(TEXTS), again.encode_query(TEXTS), again.encode_document(TEXTS)]
        for x, y in zip(before, after):
            assert np.abs(x - y).max() <= 1e-6
        assert again[0].strategy_spec == model[0].strategy_spec
        assert again[0].max_length == 64


def test_saved_folder_is_also_a_backbone(tmp_path, tiny_folder):
    decemb.load(tiny_folder, "echo").save(str(tmp_path / "saved"))
    rewrapped = decemb.load(tmp_path / "saved", "mean")
    direct = decemb.load(tiny_folder, "mean")
    np.testing.assert_allclose(rewrapped.encode(TEXTS), direct.encode(TEXTS), atol=1e-6, rtol=0)


def test_semantic_search_and_similarity(tiny_folder):
    model = decemb.load(tiny_folder, "instruct", instruction="Find the same text.")
    corpus = model.encode_document(TEXTS, convert_to_tensor=True)
    queries = model.encode_query(TEXTS[:2], convert_to_tensor=True)
    hits = util.semantic_search(queries, corpus, top_k=2)
    assert len(hits) == 2 and all(len(h) == 2 for h in hits)
    scores = model.similarity(queries, corpus)
    expected = torch.nn.functional.normalize(queries, dim=-1) @ torch.nn.functional.normalize(corpus, dim=-1).T
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=0)
    assert hits[0][0]["score"] == pytest.approx(float(scores[0].max()), abs=1e-5)


def test_normalize_and_dimension(tiny_folder):
    model = decemb.load(tiny_folder, "sgpt", normalize=True)
    vectors = model.encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert model.get_embedding_dimension() == 32


def test_bad_sources_fail_clearly(tmp_path):
    with pytest.raises(ModelSourceError, match="does not exist"):
        decemb.load(tmp_path / "nope.gguf")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf at all")
    with pytest.raises(ModelSourceError, match="not a GGUF"):
        decemb.load(fake)
    with pytest.raises(ModelSourceError, match="Did you mean 'smollm2-135m'"):
        decemb.load("smollm2")
    with pytest.raises(ValueError, match="option 'poling'"):
        decemb.load("smollm2-135m", "echo", poling="last")  # validated before any loading


def test_uncached_hub_id_fails_fast_offline(monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelSourceError, match="not in the local Hugging Face cache and offline mode is on"):
        decemb.load("someone/not-a-cached-model")
    assert time.perf_counter() - start < 5
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr("decemb.loading._hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelSourceError, match="cannot be reached"):
        decemb.load("someone/not-a-cached-model")


@pytest.mark.slow
def test_multi_process_pool_encodes_like_one_process(tiny_folder):
    """sentence-transformers' multi-process pool (one worker per device) works with decemb models."""
    model = decemb.load(tiny_folder, "echo")
    texts = [f"text number {i} about cats" for i in range(40)]
    pool = model.start_multi_process_pool(["cpu", "cpu"])
    try:
        pooled = model.encode(texts, pool=pool, chunk_size=10)
    finally:
        model.stop_multi_process_pool(pool)
    np.testing.assert_allclose(pooled, model.encode(texts), atol=1e-5, rtol=0)


@pytest.mark.parametrize("strategy", ["mean", "echo", "llm2vec", "instruct"])
def test_eager_attention_and_bf16_follow_the_same_code_path(tiny_folder, strategy):
    """Masks are built by transformers for each attention implementation; dtype is only a load option."""
    reference = decemb.load(tiny_folder, strategy, attn_implementation="sdpa").encode(TEXTS)
    eager = decemb.load(tiny_folder, strategy, attn_implementation="eager").encode(TEXTS)
    np.testing.assert_allclose(eager, reference, atol=1e-5, rtol=0)
    half = decemb.load(tiny_folder, strategy, dtype="bfloat16")
    assert half[0].auto_model.dtype == torch.bfloat16
    vectors = half.encode(TEXTS)
    assert vectors.dtype == np.float32  # pooled in float32
    cosine = (vectors * reference).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() > 0.99


def test_encode_batches_are_sorted_by_token_count(tiny_folder):
    model = decemb.load(tiny_folder, "mean")
    tokenizer = model.tokenizer
    texts = [
        "The cat sat on the mat.",
        "zqxjzqxjzqxjzqxjzqxjzqxj",
        "Hi",
        "A man is playing a guitar in the park.",
        "qqq",
    ]
    seen: list[list[int]] = []
    original = model[0].preprocess

    def spy(inputs, *args, **kwargs):
        seen.append([len(tokenizer(x, add_special_tokens=False)["input_ids"]) for x in inputs])
        return original(inputs, *args, **kwargs)

    model[0].preprocess = spy
    vectors = model.encode(texts, batch_size=2)
    flat = [n for batch in seen for n in batch]
    assert flat == sorted(flat, reverse=True), "longest (in tokens) first, so batches hold similar lengths"
    del model[0].preprocess
    np.testing.assert_allclose(vectors, model.encode(texts, batch_size=8), atol=1e-5, rtol=0)
