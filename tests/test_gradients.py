"""Gradients flow through every strategy (fine-tuning works) and respect each strategy's attention.

Per-position gradients are read at the input embeddings' output; causal attention must give exactly
zero gradient to every position after the pooled one, bidirectional attention a nonzero one.
"""

from __future__ import annotations

import pytest
import torch
from helpers import _CACHE, ARCHITECTURES, CASE_IDS, CASES, tiny_backbone

import decemb

BIDIRECTIONAL = {"llm2vec"}
TEXTS = ["A man is playing a guitar.", "Dogs run in the park."]  # different lengths and first words


@pytest.fixture(autouse=True)
def _drop_gradients():
    yield
    for model, _ in _CACHE.values():  # the cached models are shared with the other tests
        model.zero_grad(set_to_none=True)


def decoder_blocks(model) -> torch.nn.ModuleList:
    return next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == 2)


def has_prefix(name: str, options: dict) -> bool:
    """Whether the template puts context (beyond a BOS) before the pooled span."""
    return name in ("echo", "instruct") or options.get("style") == "cpt-text" or bool(options.get("instruction"))


def sentence_loss(st, features: dict) -> torch.Tensor:
    return st(features)["sentence_embedding"].pow(2).sum()


def backprop(st, features: dict, loss=sentence_loss) -> torch.Tensor:
    """Train-mode forward + backward of ``loss``; the gradient norm at each [row, position]."""
    model = st[0].auto_model
    captured: list[torch.Tensor] = []

    def keep(module, args, output):
        output.retain_grad()
        captured.append(output)

    handle = model.get_input_embeddings().register_forward_hook(keep)
    model.zero_grad(set_to_none=True)
    st.train()
    torch.manual_seed(0)  # GPT-2's dropout
    try:
        loss(st, features).backward()
    finally:
        handle.remove()
        st.eval()  # tiny_backbone caches the model for the other tests
    # A shared prefix may run once ([1, P]) before the rest ([B, L - P]): lay the pieces side by side.
    batch = features["input_ids"].shape[0]
    parts = [torch.zeros(c.shape[:2]) if c.grad is None else c.grad.norm(dim=-1) for c in captured]
    return torch.cat([part.expand(batch, -1) for part in parts], dim=1)


def positions(features: dict) -> torch.Tensor:
    return torch.arange(features["input_ids"].shape[1]).expand_as(features["input_ids"])


def first_pooled(pool_mask: torch.Tensor) -> torch.Tensor:
    return pool_mask.long().argmax(dim=1, keepdim=True)


def last_pooled(pool_mask: torch.Tensor) -> torch.Tensor:
    return torch.where(pool_mask, positions({"input_ids": pool_mask}), -1).max(dim=1, keepdim=True).values


def test_every_registered_strategy_is_covered():
    assert {name for name, _ in CASES} == set(decemb.list_strategies())


@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_gradient_reaches_the_pooled_span_and_its_context(arch, name, options):
    model, tokenizer = tiny_backbone(arch)
    st = decemb.from_backbone(model, tokenizer, name, max_length=64, **options)
    features = st[0].preprocess(TEXTS)
    grad = backprop(st, features)
    pool, real, pos = features["pool_mask"], features["attention_mask"].bool(), positions(features)
    assert (grad[pool] > 0).all(), f"pooled positions without gradient: {(pool & (grad == 0)).nonzero().tolist()}"
    context = real & (pos < first_pooled(pool))
    assert (grad[context] > 0).all(), "context before the pooled span gets no gradient"
    if has_prefix(name, options):
        not_bos = features["input_ids"] != tokenizer.bos_token_id
        assert (context & not_bos).any(dim=1).all(), "the template should put context before the pooled span"
    assert (grad[~real] == 0).all(), "padding gets gradient"
    if name not in BIDIRECTIONAL:
        assert (grad[pos > last_pooled(pool)] == 0).all(), "causal: a position after the pooled one has gradient"


@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_pooling_one_position_shows_the_attention_direction(arch, name, options):
    """Backprop from each row's first pooled token alone: the real tokens after it get gradient iff the
    strategy's attention is bidirectional."""
    model, tokenizer = tiny_backbone(arch)
    st = decemb.from_backbone(model, tokenizer, name, max_length=64, **options)
    features = st[0].preprocess(TEXTS)
    pos, real = positions(features), features["attention_mask"].bool()
    k = first_pooled(features["pool_mask"])
    rows = torch.arange(len(TEXTS))

    def at_k(st, features):
        return st[0](features)["token_embeddings"][rows, k[:, 0]].pow(2).sum()

    grad = backprop(st, features, at_k)
    after = real & (pos > k)
    assert after.sum(dim=1).min() >= 2, "test needs real tokens after the pooled position"
    assert (grad[real & (pos <= k)] > 0).all()
    assert (grad[~real] == 0).all()
    if name in BIDIRECTIONAL:
        assert (grad[after] > 0).all(), "bidirectional: a later token does not reach the pooled one"
    else:
        assert (grad[after] == 0).all(), f"causal: later tokens reach the pooled one: {grad[after].max().item()}"


@pytest.mark.parametrize("name", ["mean", "instruct", "llm2vec"])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_an_inner_layer_trains_only_the_layers_below_it(arch, name):
    model, tokenizer = tiny_backbone(arch)
    embeddings = [module for module in model.modules() if isinstance(module, torch.nn.Embedding)]
    below = {id(p) for module in [*embeddings, decoder_blocks(model)[0]] for p in module.parameters()}
    named = dict(model.named_parameters())
    top_runs: list[int] = []
    for layer, expected in ((1, {n for n, p in named.items() if id(p) in below}), (-1, set(named))):
        st = decemb.from_backbone(model, tokenizer, name, max_length=64, layer=layer)
        features = st[0].preprocess(TEXTS)
        top_runs.clear()
        handle = decoder_blocks(model)[1].register_forward_pre_hook(lambda *_: top_runs.append(1))
        try:
            grad = backprop(st, features)
        finally:
            handle.remove()
        assert bool(top_runs) == (layer == -1), f"layer={layer}: the top layer ran {len(top_runs)} times"
        assert (grad[features["attention_mask"].bool()] > 0).all(), f"layer={layer}: a token gets no gradient"
        reached = {n for n, p in named.items() if p.grad is not None and p.grad.any()}
        assert reached == expected, f"layer={layer}: unexpected {reached ^ expected}"
