"""Property-based tests of the renderer on arbitrary unicode text (hypothesis)."""

from __future__ import annotations

from helpers import tiny_backbone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decemb.strategies import build_strategy
from decemb.strategies.prompteol import SUFFIX

_, TOKENIZER = tiny_backbone("llama")  # adds <bos>; byte-level BPE, so every string has tokens
TEXT = st.text(min_size=1, max_size=200)
LIMIT = st.integers(min_value=40, max_value=100)  # above the longest template (instruct: 26)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ids(text: str) -> list[int]:
    return TOKENIZER(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def _render(name: str, text: str, max_length: int | None, **options):
    renderer = build_strategy(name, **options).renderer(TOKENIZER, "query", max_length=max_length)
    return renderer, renderer.render([text])[0]


@SETTINGS
@given(text=TEXT)
def test_mean_pools_exactly_the_texts_ids(text):
    _, rendered = _render("mean", text, None)
    pooled = [i for i, flag in zip(rendered.input_ids, rendered.pool_mask) if flag]
    assert pooled == _ids(text)
    assert rendered.input_ids == [TOKENIZER.bos_token_id, *pooled]


@SETTINGS
@given(text=TEXT, limit=LIMIT)
def test_echo_copies_are_equal_and_only_the_text_is_cut(text, limit):
    renderer, rendered = _render("echo", text, limit)
    ids, mask = rendered.input_ids, rendered.pool_mask
    assert len(ids) <= limit
    second = [i for i, flag in zip(ids, mask) if flag]
    assert mask[-len(second) :] == [True] * len(second) and ids[-len(second) :] == second
    full = _ids(" " + text)  # the template's space before the text is read with the text
    assert second == full[: len(second)] and len(second) == min(len(full), renderer.text_budget)
    head = [TOKENIZER.bos_token_id, *_ids("Rewrite the following sentence:")]
    middle = _ids("\nThe rewritten sentence:")
    assert ids == [*head, *second, *middle, *second], "template intact around two identical copies"


@SETTINGS
@given(text=TEXT, limit=LIMIT)
def test_suffix_and_eos_are_always_last(text, limit):
    _, rendered = _render("prompteol", text, limit)
    assert rendered.input_ids[-len(_ids(SUFFIX)) :] == _ids(SUFFIX) and rendered.pool_mask[-1]
    assert len(rendered.input_ids) <= limit
    for name, options in (("eos", {}), ("instruct", {}), ("llm2vec", {"pooling": "eos"})):
        _, rendered = _render(name, text, limit, **options)
        assert rendered.input_ids[-1] == TOKENIZER.eos_token_id and rendered.pool_mask[-1]
        assert rendered.input_ids.count(TOKENIZER.eos_token_id) == 1, "the text's '<eos>' stays text"
        assert len(rendered.input_ids) <= limit
