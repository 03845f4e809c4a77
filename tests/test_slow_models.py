"""Real models (the packaged SmolLM2 and Gemma-3 GGUFs) and real data. Slow: run with RUN_SLOW=1 -m slow."""

from __future__ import annotations

import time

import numpy as np
import pytest
from helpers import DATA_ROOT
from scipy.stats import spearmanr

import decemb
from decemb.engine import EmbeddingJob, Engine
from decemb.loading import load_backbone
from decemb.strategies import build_strategy

pytestmark = pytest.mark.slow


def _stsb(split: str) -> tuple[list[str], list[str], np.ndarray]:
    path = DATA_ROOT / "stsbenchmark" / f"sts-{split}.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    rows = [line.rstrip("\n").split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r[5] for r in rows], [r[6] for r in rows], np.array([float(r[4]) for r in rows])


def _spearman(a: np.ndarray, b: np.ndarray, gold: np.ndarray) -> float:
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return 100 * float(spearmanr(cosine, gold).statistic)


def test_smollm2_stsb_dev_echo_and_prompteol_beat_their_baselines():
    first, second, gold = _stsb("dev")
    model, tokenizer = load_backbone("smollm2-135m")
    engine = Engine(model, tokenizer, batch_size=32)
    names = {"mean": {}, "echo": {"pooling": "mean"}, "last": {}, "prompteol": {}}
    jobs = [EmbeddingJob(build_strategy(n, **o), "query", first + second) for n, o in names.items()]
    scores = {
        name: _spearman(vectors[: len(first)], vectors[len(first) :], gold)
        for name, vectors in zip(names, engine.embed(jobs))
    }
    print(scores)
    assert scores["echo"] >= scores["mean"] + 15, scores
    assert scores["prompteol"] > scores["last"], scores


def test_gguf_is_cached_and_second_load_is_fast():
    load_backbone("smollm2-135m")  # ensures the cache exists
    start = time.perf_counter()
    model, _ = load_backbone("smollm2-135m")
    assert time.perf_counter() - start < 5
    assert type(model).__name__ == "LlamaModel" and not hasattr(model, "lm_head")


@pytest.mark.parametrize("strategy", ["echo", "llm2vec", "prompteol", "instruct"])
def test_gemma3_real_model_batch_invariance_and_bidirectionality(strategy):
    model = decemb.load("gemma3-270m", strategy)
    assert model.tokenizer.padding_side == "left"
    texts = ["A man is playing a guitar.", "Hi", "A long sentence about a cat that sat on a mat all day long."]
    alone = model.encode(texts[:1])
    batch = model.encode(texts)
    np.testing.assert_allclose(batch[:1], alone, atol=1e-4, rtol=0)
    assert np.isfinite(batch).all()
