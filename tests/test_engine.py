"""The shared-forward engine and its on-disk cache."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from helpers import ARCHITECTURES, tiny_backbone

import decemb
from decemb.cache import EmbeddingCache
from decemb.engine import EmbeddingJob, Engine, batches
from decemb.settings import EncodeSettings
from decemb.strategies import build_strategy

TEXTS = ["A man is playing a guitar.", "Hi", "The cat sat on the mat.", "Dogs run in the park while children play."]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_engine_matches_sentence_transformer_encode(arch):
    model, tokenizer = tiny_backbone(arch)
    cases = [("mean", {}), ("sgpt", {}), ("echo", {"pooling": "last"}), ("llm2vec", {}), ("instruct", {})]
    jobs = [EmbeddingJob(build_strategy(n, **o), kind, TEXTS) for n, o in cases for kind in ("query", "document")]
    got = Engine(model, tokenizer, EncodeSettings(batch_size=3)).embed(jobs)
    for job, vectors in zip(jobs, got):
        st = decemb.from_backbone(model, tokenizer, job.strategy)
        encode = st.encode_query if job.kind == "query" else st.encode_document
        np.testing.assert_allclose(vectors, encode(TEXTS), atol=1e-5, rtol=0)


def test_strategies_with_identical_inputs_share_one_forward():
    model, tokenizer = tiny_backbone("llama")
    engine = Engine(model, tokenizer, EncodeSettings(batch_size=64))
    jobs = [EmbeddingJob(build_strategy(name), "query", TEXTS) for name in ("mean", "last", "sgpt")]
    jobs += [EmbeddingJob(build_strategy("mean"), "query", TEXTS, layer=layer) for layer in (0, 1)]
    engine.embed(jobs)
    assert engine.stats.sequences_run == len(TEXTS)  # not 5 × len(TEXTS)
    assert engine.stats.forward_passes == 1
    echo = [EmbeddingJob(build_strategy("echo", pooling=p), "query", TEXTS) for p in ("mean", "last")]
    engine.embed(echo)
    assert engine.stats.sequences_run == 2 * len(TEXTS)


def test_layers_pool_the_right_hidden_state():
    model, tokenizer = tiny_backbone("qwen2")
    strategy = build_strategy("mean")
    per_layer = Engine(model, tokenizer).embed([EmbeddingJob(strategy, "query", TEXTS, layer=k) for k in (0, 1, -1)])
    for k, vectors in zip((0, 1, -1), per_layer):
        st = decemb.from_backbone(model, tokenizer, "mean", layer=k)
        np.testing.assert_allclose(vectors, st.encode(TEXTS), atol=1e-5, rtol=0)
    assert not np.allclose(per_layer[0], per_layer[2])


def test_cache_makes_a_rerun_free_and_identical(tmp_path):
    model, tokenizer = tiny_backbone("gpt2")
    jobs = [EmbeddingJob(build_strategy(name), "query", TEXTS) for name in ("mean", "prompteol")]
    first = Engine(model, tokenizer, cache=EmbeddingCache(tmp_path / "c.sqlite"))
    a = first.embed(jobs)
    assert first.stats.cache_misses == 2 * len(TEXTS) and first.stats.forward_passes > 0
    second = Engine(model, tokenizer, cache=EmbeddingCache(tmp_path / "c.sqlite"))
    b = second.embed(jobs)
    assert second.stats.forward_passes == 0 and second.stats.cache_hits == 2 * len(TEXTS)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    # A new strategy costs only its own work.
    third = Engine(model, tokenizer, cache=EmbeddingCache(tmp_path / "c.sqlite"))
    third.embed([*jobs, EmbeddingJob(build_strategy("eos"), "query", TEXTS)])
    assert third.stats.sequences_run == len(TEXTS) and third.stats.cache_hits == 2 * len(TEXTS)


def test_corrupt_cache_entry_is_detected_and_recomputed(tmp_path, caplog):
    model, tokenizer = tiny_backbone("llama")
    path = tmp_path / "c.sqlite"
    job = EmbeddingJob(build_strategy("mean"), "query", TEXTS)
    clean = Engine(model, tokenizer, cache=EmbeddingCache(path)).embed([job])[0]
    with sqlite3.connect(path) as db:  # flip bytes of one stored vector, keep its old checksum
        key, blob = db.execute("SELECT key, vector FROM embeddings LIMIT 1").fetchone()
        db.execute("UPDATE embeddings SET vector = ? WHERE key = ?", (bytes(b ^ 0xFF for b in blob), key))
    engine = Engine(model, tokenizer, cache=EmbeddingCache(path))
    again = engine.embed([job])[0]
    np.testing.assert_array_equal(again, clean)
    assert engine.cache.corrupt_entries == 1 and engine.stats.sequences_run == 1
    assert "corrupt" in caplog.text


def test_token_budget_batches():
    lengths = [5, 50, 7, 49, 3, 10]
    plan = batches(lengths, batch_size=10, max_batch_tokens=100)
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
    for batch in plan:
        assert max(lengths[i] for i in batch) * len(batch) <= 100 or len(batch) == 1
    assert plan[0] == [1, 3]  # longest first, two of ~50 tokens fill the budget
    assert batches(lengths, batch_size=2, max_batch_tokens=None) == [[1, 3], [5, 2], [0, 4]]


def test_batches_keep_one_template_together_for_the_prefix_cache():
    model, tokenizer = tiny_backbone("llama")
    seen: list[int] = []
    handle = model.get_input_embeddings().register_forward_hook(lambda m, a, out: seen.append(out.shape[1]))
    try:
        engine = Engine(model, tokenizer, EncodeSettings(batch_size=64))
        jobs = [EmbeddingJob(build_strategy(name), "query", TEXTS) for name in ("echo", "prompteol")]
        engine.embed(jobs)
    finally:
        handle.remove()
    assert engine.stats.forward_passes == 2, "one batch per template, not one mixed batch"
    assert len(seen) == 4, "each batch runs its shared opening once (prefix), then the rest"
