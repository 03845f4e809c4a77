"""Faults: out-of-memory batches are split and retried; every other error propagates at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_backbone

import decemb
import decemb.forward as forward
from decemb.engine import EmbeddingJob, Engine
from decemb.settings import EncodeSettings
from decemb.strategies import build_strategy

TEXTS = ["A man is playing a guitar.", "Hi", "The cat sat on the mat.", "Dogs run.", "One more text here."]


def _failing_above(limit: int, error: BaseException, calls: list[int]):
    real = forward.hidden_states

    def fake(model, input_ids, *args, **kwargs):
        calls.append(input_ids.shape[0])
        if input_ids.shape[0] > limit:
            raise error
        return real(model, input_ids, *args, **kwargs)

    return fake


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory."),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried"),
    ],
)
def test_out_of_memory_batches_are_split_with_identical_results(monkeypatch, error):
    model, tokenizer = tiny_backbone("llama")
    st = decemb.from_backbone(model, tokenizer, "echo")
    expected = st.encode(TEXTS, batch_size=8)
    engine_expected = Engine(model, tokenizer, EncodeSettings(batch_size=8)).embed(
        [EmbeddingJob(build_strategy("echo"), "query", TEXTS)]
    )
    calls: list[int] = []
    monkeypatch.setattr(forward, "hidden_states", _failing_above(2, error, calls))
    np.testing.assert_allclose(st.encode(TEXTS, batch_size=8), expected, atol=1e-5, rtol=0)
    assert calls == [5, 2, 3, 1, 2]  # 5 fails, 2 runs, 3 fails again and splits into 1 + 2
    engine = Engine(model, tokenizer, EncodeSettings(batch_size=8))
    got = engine.embed([EmbeddingJob(build_strategy("echo"), "query", TEXTS)])
    np.testing.assert_allclose(got[0], engine_expected[0], atol=1e-5, rtol=0)


def test_other_errors_are_not_retried(monkeypatch):
    model, tokenizer = tiny_backbone("llama")
    st = decemb.from_backbone(model, tokenizer, "mean")
    calls: list[int] = []
    monkeypatch.setattr(forward, "hidden_states", _failing_above(0, RuntimeError("shape mismatch"), calls))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        st.encode(TEXTS, batch_size=8)
    assert calls == [5]


def test_single_row_out_of_memory_propagates(monkeypatch):
    model, tokenizer = tiny_backbone("gpt2")
    st = decemb.from_backbone(model, tokenizer, "mean")
    calls: list[int] = []
    monkeypatch.setattr(forward, "hidden_states", _failing_above(0, torch.OutOfMemoryError("oom"), calls))
    with pytest.raises(torch.OutOfMemoryError):
        st.encode(TEXTS[:2], batch_size=8)
    assert calls == [2, 1]
