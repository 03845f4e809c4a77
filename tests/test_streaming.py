"""Streaming encode to .npy / .npz equals an in-memory encode, chunk boundaries included; no temporary file
is left behind, whether the encode succeeds or fails."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import tiny_backbone

import decemb
from decemb.engine import Engine
from decemb.strategies import build_strategy
from decemb.streaming import encode_to_npy, encode_to_npz

TEXTS = [f"Sentence number {i} about {'cats' if i % 2 else 'dogs'} and more." for i in range(23)]


def only(folder, *names: str) -> bool:
    """The folder holds exactly ``names`` (no temporary ``.<name>.*.tmp`` file)."""
    return sorted(p.name for p in folder.iterdir()) == sorted(names)


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
    assert only(tmp_path, "out.npy")


def test_npz_stream_holds_embeddings_and_ids_like_savez(tmp_path):
    model, tokenizer = tiny_backbone("llama")
    engine, strategy = Engine(model, tokenizer), build_strategy("mean")
    ids = [f"id-{i}" for i in range(len(TEXTS))]
    path = encode_to_npz(engine, TEXTS, tmp_path / "out.npz", ids=ids, strategy=strategy, chunk_size=4, normalize=True)
    expected = decemb.from_backbone(model, tokenizer, strategy).encode(TEXTS)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    with np.load(path) as saved:
        assert sorted(saved.files) == ["embeddings", "ids"]
        assert saved["embeddings"].dtype == np.float32 and list(saved["ids"]) == ids
        np.testing.assert_allclose(saved["embeddings"], expected, atol=1e-5, rtol=0)
    with np.load(encode_to_npz(engine, TEXTS[:3], tmp_path / "bare.npz", strategy=strategy)) as saved:
        assert saved.files == ["embeddings"] and saved["embeddings"].shape == (3, 32)
    with pytest.raises(ValueError, match="2 ids for 23 texts"):
        encode_to_npz(engine, TEXTS, tmp_path / "bad.npz", ids=ids[:2], strategy=strategy)
    assert only(tmp_path, "out.npz", "bare.npz")


def test_sentence_transformer_stream_and_failures_leave_no_file(tmp_path):
    model, tokenizer = tiny_backbone("gpt2")
    st = decemb.from_backbone(model, tokenizer, "mean")
    path = encode_to_npy(st, TEXTS, tmp_path / "st.npy", chunk_size=7)
    np.testing.assert_allclose(np.load(path), st.encode(TEXTS), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="empty string"):
        encode_to_npy(st, [*TEXTS, ""], tmp_path / "bad.npy", chunk_size=7)
    with pytest.raises(ValueError, match="empty string"):
        encode_to_npz(st, [*TEXTS, ""], tmp_path / "bad.npz", chunk_size=7)
    with pytest.raises(ValueError, match="no texts"):
        encode_to_npy(st, [], tmp_path / "none.npy")
    assert only(tmp_path, "st.npy")
