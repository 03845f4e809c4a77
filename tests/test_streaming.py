"""Streaming encode to a .npy memmap equals an in-memory encode, chunk boundaries included."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import tiny_backbone

import decemb
from decemb.engine import Engine
from decemb.strategies import build_strategy
from decemb.streaming import encode_to_npy

TEXTS = [f"Sentence number {i} about {'cats' if i % 2 else 'dogs'} and more." for i in range(23)]


@pytest.mark.parametrize("kind", ["query", "document"])
def test_engine_stream_matches_direct_encode(tmp_path, kind):
    model, tokenizer = tiny_backbone("qwen2")
    strategy = build_strategy("instruct")
    path = encode_to_npy(
        Engine(model, tokenizer), TEXTS, tmp_path / "out.npy", kind=kind, strategy=strategy, chunk_size=5
    )
    st = decemb.from_backbone(model, tokenizer, strategy)
    expected = (st.encode_query if kind == "query" else st.encode_document)(TEXTS)
    np.testing.assert_allclose(np.load(path), expected, atol=1e-5, rtol=0)
    assert not list(tmp_path.glob(".*partial"))


def test_sentence_transformer_stream_and_failures_leave_no_file(tmp_path):
    model, tokenizer = tiny_backbone("gpt2")
    st = decemb.from_backbone(model, tokenizer, "mean")
    path = encode_to_npy(st, TEXTS, tmp_path / "st.npy", chunk_size=7)
    np.testing.assert_allclose(np.load(path), st.encode(TEXTS), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="empty string"):
        encode_to_npy(st, [*TEXTS, ""], tmp_path / "bad.npy", chunk_size=7)
    assert not (tmp_path / "bad.npy").exists() and not list(tmp_path.glob(".*partial"))
