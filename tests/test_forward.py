"""The shared forward: layer selection without running the layers above, and the prefix KV cache."""

from __future__ import annotations

import pytest
import torch
from helpers import ARCHITECTURES, tiny_backbone

import decemb
from decemb.forward import decoder_layers, hidden_states, shared_prefix_length

TEXTS = ["Who is there?", "Hi", "A man is playing a guitar in the park.", "The cat sat."]


def _features(arch: str, strategy: str, padding_side: str = "right", **options):
    model, tokenizer = tiny_backbone(arch)
    st = decemb.from_backbone(model, tokenizer, strategy, padding_side=padding_side, **options)
    return model, st[0].preprocess(TEXTS)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_intermediate_layers_equal_transformers_hidden_states_and_skip_the_rest(arch):
    model, features = _features(arch, "mean", padding_side="left")
    ids, mask = features["input_ids"], features["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        reference = model(input_ids=ids, attention_mask=mask, position_ids=positions, output_hidden_states=True)
    calls = []
    handle = decoder_layers(model)[-1].register_forward_hook(lambda *args: calls.append(1))
    try:
        with torch.inference_mode():
            got = hidden_states(model, ids, mask, "causal", layers=(0, 1))
    finally:
        handle.remove()
    assert calls == [], "the top block must not run when only lower layers are pooled"
    real = mask.bool()
    for layer in (0, 1):
        torch.testing.assert_close(got[layer][real], reference.hidden_states[layer][real], rtol=0, atol=1e-6)
    with torch.inference_mode():
        top = hidden_states(model, ids, mask, "causal", layers=(-1, 2))
    torch.testing.assert_close(top[-1][real], reference.last_hidden_state[real], rtol=0, atol=1e-6)
    torch.testing.assert_close(top[2], top[-1], rtol=0, atol=0)


@pytest.mark.parametrize("strategy", ["instruct", "echo", "prompteol"])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_prefix_cache_matches_the_uncached_forward(arch, strategy):
    model, features = _features(arch, strategy)
    ids, mask = features["input_ids"], features["attention_mask"]
    prefix = shared_prefix_length(ids, mask)
    assert prefix >= 4, "the rendered inputs share their opening tokens"
    seen = []
    handle = model.get_input_embeddings().register_forward_hook(lambda m, a, out: seen.append(out.shape[1]))
    try:
        with torch.inference_mode():
            cached = hidden_states(model, ids, mask, "causal", layers=(1, -1))
    finally:
        handle.remove()
    assert seen == [prefix, ids.shape[1] - prefix], "the shared prefix is run once, then only the rest"
    with torch.inference_mode():
        plain = hidden_states(model, ids, mask, "causal", layers=(1, -1), prefix_cache=False)
    real = mask.bool()
    for layer in (1, -1):
        torch.testing.assert_close(cached[layer][real], plain[layer][real], rtol=0, atol=1e-4)


def test_no_prefix_cache_under_bidirectional_attention():
    model, features = _features("llama", "llm2vec", instruction="Retrieve semantically similar text:")
    seen = []
    handle = model.get_input_embeddings().register_forward_hook(lambda m, a, out: seen.append(out.shape[1]))
    try:
        with torch.inference_mode():
            hidden_states(model, features["input_ids"], features["attention_mask"], "bidirectional")
    finally:
        handle.remove()
    assert seen == [features["input_ids"].shape[1]]
