"""Real model, real data (slow: ``RUN_SLOW=1`` or ``-m slow``): a few LoRA steps on SmolLM2-135M, whose base
comes from a GGUF file, save → reload with identical vectors, the adapter reloads on the GGUF base."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DATA_ROOT
from sentence_transformers import SentenceTransformer

import decemb
from decemb.train import train

pytestmark = pytest.mark.slow

TEXTS = ["A man is playing a guitar.", "what is rlhf?", "The cat sat on the mat."]


@pytest.mark.parametrize(("strategy", "loss", "preset"), [("echo", "cosent", "stsb"), ("instruct", "mnrl", "scifact")])
def test_gguf_base_trains_saves_and_reloads_identically(tmp_path, strategy, loss, preset):
    if not (DATA_ROOT / "stsbenchmark").is_dir():
        pytest.skip(f"no shared data at {DATA_ROOT}")
    config = {
        "data_root": str(DATA_ROOT),
        "model": {"source": "smollm2-135m", "strategy": strategy, "max_length": 64},
        "lora": {"r": 4, "alpha": 8},
        "data": {"preset": preset, "limit": 24},
        "loss": loss,
        "training": {"max_steps": 3, "batch_size": 8, "lr": 1e-3, "progress": False},
        "save_adapter": True,
    }
    result = train(config, tmp_path / "out", report=lambda _: None)
    trained = result.model
    for reload in (decemb.load(result.model_dir), SentenceTransformer(str(result.model_dir), trust_remote_code=True)):
        for encode in ("encode_query", "encode_document"):
            np.testing.assert_array_equal(getattr(trained, encode)(TEXTS), getattr(reload, encode)(TEXTS))
    via_adapter = decemb.load("smollm2-135m", strategy, max_length=64, adapter=str(result.adapter_dir))
    np.testing.assert_allclose(via_adapter.encode(TEXTS), trained.encode(TEXTS), atol=1e-4)
    base = decemb.load("smollm2-135m", strategy, max_length=64)
    assert np.abs(base.encode(TEXTS) - trained.encode(TEXTS)).max() > 1e-5
