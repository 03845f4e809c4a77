"""Bidirectional attention is a per-call input: proven on every architecture we claim."""

from __future__ import annotations

import pytest
import torch
from helpers import BIDIRECTIONAL_ARCHITECTURES, tiny_backbone
from transformers import AutoModel, PhiConfig

import decemb
from decemb.attention import BIDIRECTIONAL_MASK_BUILDERS, UnsupportedArchitectureError
from decemb.forward import hidden_states


def test_every_claimed_architecture_is_tested():
    tested, claimed = set(BIDIRECTIONAL_ARCHITECTURES), set(BIDIRECTIONAL_MASK_BUILDERS)
    assert claimed - tested == set(), "claimed bidirectional but never tested"
    assert tested - claimed == set(), "tested but not claimed"
    assert {tiny_backbone(arch)[0].config.model_type for arch in tested} == claimed


@pytest.mark.parametrize("padding_side", ["left", "right"])
@pytest.mark.parametrize("arch", BIDIRECTIONAL_ARCHITECTURES)
def test_later_token_reaches_token_zero_only_when_bidirectional(arch, padding_side):
    model, tokenizer = tiny_backbone(arch)
    st = decemb.from_backbone(model, tokenizer, "mean", padding_side=padding_side)
    # A batch with a shorter neighbour, so padding is present on the chosen side.
    features = st[0].preprocess(["A man is playing a guitar.", "Hi"])
    ids, mask = features["input_ids"], features["attention_mask"]
    n = int(mask[0].sum())
    first = ids.shape[1] - n if padding_side == "left" else 0
    changed = ids.clone()
    changed[0, first + n - 1] = (changed[0, first + n - 1] + 7) % len(tokenizer)
    for mode, should_change in (("causal", False), ("bidirectional", True)):
        before = hidden_states(model, ids, mask, mode)[-1][0, first]
        after = hidden_states(model, changed, mask, mode)[-1][0, first]
        moved = (before - after).abs().max().item()
        assert (moved > 1e-4) == should_change, f"{arch} {mode}: token 0 moved by {moved}"


def test_bidirectional_leaves_the_model_unchanged():
    model, tokenizer = tiny_backbone("gemma3_text")
    ids = torch.tensor([tokenizer("A man is playing a guitar.")["input_ids"]])
    mask = torch.ones_like(ids)
    causal_before = hidden_states(model, ids, mask, "causal")[-1]
    hidden_states(model, ids, mask, "bidirectional")
    torch.testing.assert_close(hidden_states(model, ids, mask, "causal")[-1], causal_before, rtol=0, atol=0)


def test_unverified_architecture_is_refused_before_any_work():
    config = PhiConfig(vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    model = AutoModel.from_config(config)
    _, tokenizer = tiny_backbone("llama")
    with pytest.raises(UnsupportedArchitectureError, match=r"'phi'.*verified: gemma"):
        decemb.from_backbone(model, tokenizer, "llm2vec")
    decemb.from_backbone(model, tokenizer, "mean")  # causal strategies work on any architecture
