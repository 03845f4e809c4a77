"""MNTP (LLM2Vec step 2): which tokens are masked, the i−1 shift, and the loss against an independent
computation with a plain bidirectional forward of the base model."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import tiny_backbone
from transformers import AutoModelForCausalLM

import decemb
from decemb.errors import ConfigError
from decemb.train.mntp import (
    IGNORE,
    MNTPLoss,
    lm_head_weight,
    mask_token_id,
    mask_tokens,
    maskable_positions,
    mntp_loss,
)


def test_only_real_non_special_tokens_after_the_first_are_maskable():
    ids = torch.tensor([[1, 5, 6, 7, 2, 0, 0], [1, 8, 9, 2, 0, 0, 0]])
    attention = (ids != 0).long()
    allowed = maskable_positions(ids, attention, special_ids=[0, 1, 2])
    assert allowed.tolist() == [
        [False, True, True, True, False, False, False],
        [False, True, True, False, False, False, False],
    ]
    first = maskable_positions(torch.tensor([[5, 6]]), torch.ones(1, 2), special_ids=[0])
    assert first.tolist() == [[False, True]], "position 0 has no state before it to predict from"


def test_masking_rates_targets_and_untouched_tokens():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 400, (64, 128), generator=generator)
    maskable = torch.rand(64, 128, generator=generator) < 0.7
    masked, targets = mask_tokens(ids, maskable, mask_id=3, probability=0.2, vocab_size=400, generator=generator)
    chosen = targets != IGNORE
    assert not (chosen & ~maskable).any(), "only maskable positions are chosen"
    assert torch.equal(targets[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen]), "nothing else changes"
    rate = chosen.sum() / maskable.sum()
    assert 0.18 < rate < 0.22
    as_mask = (masked[chosen] == 3).float().mean()
    unchanged = (masked[chosen] == ids[chosen]).float().mean()
    assert 0.76 < as_mask < 0.84 and 0.07 < unchanged < 0.14


def test_every_row_gets_a_mask():
    ids = torch.arange(20).reshape(4, 5) + 10
    maskable = torch.zeros(4, 5, dtype=torch.bool)
    maskable[:, 3] = True
    maskable[3] = False  # a row with nothing maskable stays unmasked
    _, targets = mask_tokens(ids, maskable, 3, probability=1e-6, vocab_size=50, generator=torch.Generator())
    assert (targets[:3] != IGNORE).sum(dim=1).tolist() == [1, 1, 1] and (targets[3] == IGNORE).all()


def test_loss_predicts_token_i_from_state_i_minus_1():
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(3, 6, 8, generator=generator)
    weight = torch.randn(20, 8, generator=generator)
    targets = torch.full((3, 6), IGNORE)
    targets[0, 2], targets[0, 5], targets[2, 1] = 7, 3, 11
    expected = []
    for row, col in ((0, 2), (0, 5), (2, 1)):
        logits = hidden[row, col - 1] @ weight.T
        expected.append(-torch.log_softmax(logits, dim=-1)[targets[row, col]])
    torch.testing.assert_close(mntp_loss(hidden, weight, targets), torch.stack(expected).mean())


def _tied_llama():
    model, tokenizer = tiny_backbone("llama")
    model = copy.deepcopy(model)
    model.config.tie_word_embeddings = True
    return model, tokenizer


def test_mntp_loss_matches_a_plain_bidirectional_forward():
    model, tokenizer = _tied_llama()
    st = decemb.from_backbone(model, tokenizer, "llm2vec", max_length=64)
    text = "A man is playing a guitar in the park."
    features = st[0].preprocess([text])
    mask_id = mask_token_id(tokenizer, None)
    loss = MNTPLoss(st, lm_head_weight(model, "unused"), mask_id, 0.3, tokenizer.all_special_ids, seed=3)
    got = loss([dict(features)])

    # The same masks, drawn again from the same seed, then an independent forward: a 4-D all-visible mask.
    ids = features["input_ids"]
    allowed = maskable_positions(ids, features["attention_mask"], tokenizer.all_special_ids)
    masked, targets = mask_tokens(ids, allowed, mask_id, 0.3, model.config.vocab_size, torch.Generator().manual_seed(3))
    visible = torch.zeros(1, 1, ids.shape[1], ids.shape[1])
    with torch.no_grad():
        hidden = model(input_ids=masked, attention_mask=visible).last_hidden_state[0]
    terms = []
    for i in (targets[0] != IGNORE).nonzero().flatten().tolist():
        logits = hidden[i - 1] @ model.get_input_embeddings().weight.T
        terms.append(torch.nn.functional.cross_entropy(logits[None], targets[0, i : i + 1]))
    torch.testing.assert_close(got, torch.stack(terms).mean(), atol=1e-4, rtol=1e-4)

    # Bidirectional: the state at i−1 (which predicts token i) sees tokens after i.
    later = masked.clone()
    later[0, -2] = (later[0, -2] + 1) % model.config.vocab_size
    with torch.no_grad():
        changed = st[0]({**features, "input_ids": later})["token_embeddings"][0, 1]
        plain = st[0]({**features, "input_ids": masked})["token_embeddings"][0, 1]
    assert not torch.allclose(changed, plain)


def test_lm_head_untied_from_a_causal_checkpoint_or_a_clear_error(tmp_path):
    model, tokenizer = tiny_backbone("llama")
    assert not model.config.tie_word_embeddings
    causal = AutoModelForCausalLM.from_config(model.config)
    causal.save_pretrained(tmp_path / "causal")
    tokenizer.save_pretrained(tmp_path / "causal")
    weight = lm_head_weight(model, str(tmp_path / "causal"))
    torch.testing.assert_close(weight, causal.lm_head.weight.detach())
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    with pytest.raises(ConfigError, match="LM head") as caught:
        lm_head_weight(model, str(tmp_path / "base"))
    assert caught.value.key == "loss.name"


def test_mask_token_must_be_one_token():
    _, tokenizer = tiny_backbone("llama")
    assert isinstance(mask_token_id(tokenizer, None), int)
    with pytest.raises(ConfigError, match="give one token"):
        mask_token_id(tokenizer, "a very long mask token")
