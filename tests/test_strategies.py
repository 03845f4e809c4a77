"""Every strategy × every tiny architecture: batch invariance, an independent recomputation, truncation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import ARCHITECTURES, CASE_IDS, CASES, tiny_backbone

import decemb
from decemb.strategies.prompteol import PREFIX, SUFFIX

TARGET = "A man is playing a guitar."
OTHERS = ["Hi", "Dogs run in the park while children play football, and the cat sat on the mat."]


def st_model(arch: str, name: str, options: dict, **kwargs):
    model, tokenizer = tiny_backbone(arch)
    return decemb.from_backbone(model, tokenizer, name, **options, **kwargs)


@pytest.mark.parametrize("padding_side", ["left", "right"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_alone_equals_in_batch(arch, name, options, padding_side):
    model = st_model(arch, name, options, padding_side=padding_side)
    for encode in (model.encode_query, model.encode_document):
        alone = encode([TARGET])[0]
        batch = encode([OTHERS[0], TARGET, OTHERS[1]], batch_size=8)
        assert np.isfinite(batch).all()
        np.testing.assert_allclose(batch[1], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_padding_side_does_not_change_vectors(arch):
    for name, options in CASES:
        left = st_model(arch, name, options, padding_side="left").encode([TARGET, *OTHERS])
        right = st_model(arch, name, options, padding_side="right").encode([TARGET, *OTHERS])
        np.testing.assert_allclose(left, right, atol=1e-5, rtol=0, err_msg=f"{name} {options}")


# --- an independent computation: ids assembled by hand, one plain forward, pooling by hand ---------------


def _plain(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _expected_input(arch: str, name: str, options: dict, kind: str) -> tuple[list[int], list[int]]:
    """(ids, positions to pool) written out from each paper's recipe, not from decemb's renderer."""
    _, tok = tiny_backbone(arch)
    bos = [tok.bos_token_id] if arch in ("llama", "gemma3_text") else []
    text = _plain(tok, TARGET)
    if name in ("mean", "last", "sgpt"):
        ids = bos + text
        return ids, list(range(len(bos), len(ids)))
    spaced = _plain(tok, " " + TARGET)  # a template's space before the text is read as part of the text
    if name == "echo":
        ids = bos + _plain(tok, "Rewrite the following sentence:") + spaced
        ids += _plain(tok, "\nThe rewritten sentence:") + spaced
        return ids, list(range(len(ids) - len(spaced), len(ids)))
    if name == "prompteol":
        demos = "".join(
            f'{PREFIX}{d["sentence"]}" means in one word:"{d["word"]}".\n' for d in options.get("demonstrations", [])
        )
        ids = bos + (_plain(tok, demos + PREFIX) if demos else _plain(tok, PREFIX)) + text + _plain(tok, SUFFIX)
        return ids, [len(ids) - 1]
    if name == "eos":
        opening, closing = ("[", "]") if options.get("style") == "cpt-text" and kind == "query" else ("", "")
        if options.get("style") == "cpt-text" and kind == "document":
            opening, closing = "{", "}"
        ids = bos + (_plain(tok, opening) if opening else []) + text
        ids += (_plain(tok, closing) if closing else []) + [tok.eos_token_id]
        return ids, [len(ids) - 1]
    if name == "instruct":
        if kind == "document":
            return [*bos, *text, tok.eos_token_id], [len(bos) + len(text)]
        ids = bos + _plain(tok, f"Instruct: {options['instruction']}\nQuery:") + spaced + [tok.eos_token_id]
        return ids, [len(ids) - 1]
    if name == "llm2vec":
        instruction = options.get("instruction", "") if kind == "query" else ""
        head, body = (_plain(tok, instruction), spaced) if instruction else ([], text)
        ids = bos + head + body
        if options["pooling"] == "eos":
            return [*ids, tok.eos_token_id], [len(ids)]
        return ids, list(range(len(bos) + len(head), len(ids)))
    raise AssertionError(name)


def _plain_forward(arch: str, ids: list[int], bidirectional: bool) -> torch.Tensor:
    model, _ = tiny_backbone(arch)
    input_ids = torch.tensor([ids])
    kwargs = {}
    if bidirectional:  # an all-visible additive mask, written by hand (windows are longer than the input)
        full = torch.zeros((1, 1, len(ids), len(ids)))
        kwargs["attention_mask"] = (
            {"full_attention": full, "sliding_attention": full} if arch in ("qwen2", "gemma3_text") else full
        )
    with torch.inference_mode():
        return model(input_ids=input_ids, **kwargs).last_hidden_state[0]


@pytest.mark.parametrize("kind", ["query", "document"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_matches_independent_computation(arch, name, options, kind):
    model = st_model(arch, name, options)
    got = (model.encode_query if kind == "query" else model.encode_document)([TARGET])[0]
    ids, positions = _expected_input(arch, name, options, kind)
    hidden = _plain_forward(arch, ids, bidirectional=name == "llm2vec")[positions].double()
    pooling = options.get("pooling", "mean") if name in ("echo", "llm2vec") else name
    if name == "sgpt" or pooling == "weighted_mean":
        weights = torch.arange(1, len(positions) + 1, dtype=torch.double)
        expected = (hidden * (weights / weights.sum())[:, None]).sum(0)
    elif name == "mean" or pooling == "mean":
        expected = hidden.mean(0)
    else:
        expected = hidden[-1]
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5, rtol=0)


# --- truncation: the text is cut, never the template ---------------------------------------------------

LONG = " ".join(["Dogs run in the park while children play football."] * 20)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
def test_truncation_keeps_template(arch, name, options):
    _, tok = tiny_backbone(arch)
    # Room for the short text in full (plus a little), far too little for the long one.
    limit = max(len(_expected_input(arch, name, options, kind)[0]) for kind in ("query", "document")) + 3
    model = st_model(arch, name, options, max_length=limit)
    for kind in ("query", "document"):
        features = model[0].preprocess([LONG, TARGET], task=kind)
        full_ids, positions = _expected_input(arch, name, options, kind)
        for row in range(2):
            n = int(features["attention_mask"][row].sum())
            ids = features["input_ids"][row, :n].tolist()
            assert n <= limit
            if row == 1:  # a short text is not touched at all
                assert ids == full_ids
                pooled = features["pool_mask"][row, :n].nonzero().flatten().tolist()
                # "last" poolings read only the final pooled position; the others read them all.
                assert pooled[-1] == positions[-1]
                if model[0].strategy_spec.pooling_name != "last":
                    assert pooled == positions
                continue
            lead, text_ids, starts = _locate_text(tok, full_ids)
            long_ids = _plain(tok, lead + LONG)
            if name in ("prompteol", "eos", "instruct") or options.get("pooling") == "eos":
                tail = full_ids[starts[-1] + len(text_ids) :]
                assert tail and ids[-len(tail) :] == tail, "the template's suffix / EOS must stay last"
                kept = ids[starts[-1] : n - len(tail)]
                assert kept == long_ids[: len(kept)] and len(kept) > 0, "the text is cut at its end"
                assert ids[: starts[-1]] == full_ids[: starts[-1]], "the template's head is untouched"
            if name == "echo":
                pooled = features["pool_mask"][row, :n].nonzero().flatten().tolist()
                second = [ids[i] for i in pooled]
                fixed = len(full_ids) - 2 * len(text_ids)
                assert len(second) == (limit - fixed) // 2
                head = starts[0]
                assert ids[head : head + len(second)] == second, "both echo copies must be identical"
                assert second == long_ids[: len(second)]
                assert pooled[-1] == n - 1


def _locate_text(tok, full_ids: list[int]) -> tuple[str, list[int], list[int]]:
    """Where the short text sits in a hand-built input, read with or without a leading space."""
    for lead in (" ", ""):
        text_ids = _plain(tok, lead + TARGET)
        starts = [i for i in range(len(full_ids)) if full_ids[i : i + len(text_ids)] == text_ids]
        if starts:
            return lead, text_ids, starts
    raise AssertionError("text not found")


def test_template_longer_than_max_length_is_an_error():
    with pytest.raises(ValueError, match="max_length=5 leaves no room"):
        st_model("llama", "prompteol", {}, max_length=5)


@pytest.mark.parametrize("name", ["echo", "prompteol", "eos", "instruct", "mean"])
def test_template_syntax_in_text_is_plain_text(name):
    model = st_model("llama", name, {})
    _, tok = tiny_backbone("llama")
    for tricky in ["{text}", "{!x} {y}", "%%text%%", "%%eos%% }}{{", "{"]:
        features = model[0].preprocess([tricky])
        ids = features["input_ids"][0].tolist()
        variants = [_plain(tok, tricky), _plain(tok, " " + tricky)]  # read with or without a leading space
        pooled = [i for i, flag in zip(ids, features["pool_mask"][0].tolist()) if flag]
        assert any(ids[i : i + len(v)] == v for v in variants for i in range(len(ids))), tricky
        assert tok.eos_token_id not in variants[0]
        if name in ("echo", "mean"):
            assert pooled in variants, "the pooled span is exactly the text's own tokens"


def test_strategy_mapping_equals_name_plus_options():
    """The config form ``{name: ..., option: ...}`` builds the same strategy as the name plus keywords."""
    model, tokenizer = tiny_backbone("llama")
    by_name = decemb.from_backbone(model, tokenizer, "eos", style="cpt-text", append_eos=False)
    by_mapping = decemb.from_backbone(model, tokenizer, {"name": "eos", "style": "cpt-text"}, append_eos=False)
    assert by_mapping[0].strategy_spec == by_name[0].strategy_spec
    assert by_mapping[0].strategy_spec.style == "cpt-text" and by_mapping[0].strategy_spec.append_eos is False
    np.testing.assert_array_equal(by_mapping.encode_query([TARGET]), by_name.encode_query([TARGET]))


@pytest.mark.parametrize(
    ("strategy", "options", "message"),
    [
        ({"style": "cpt-text"}, {}, r"needs a 'name' key"),
        ({"name": "eos", "style": "cpt-text"}, {"style": "plain"}, r"option 'style' given both"),
        (decemb.build_strategy("echo"), {"pooling": "last"}, r"'echo' is already built; option\(s\) \['pooling'\]"),
        ({"name": "eco"}, {}, r"unknown strategy 'eco'\. Did you mean 'echo'"),
    ],
)
def test_strategy_spec_errors_before_the_model_loads(strategy, options, message, tmp_path):
    """Options are never dropped silently; every error comes before ``load`` touches the source."""
    with pytest.raises(ValueError, match=message):
        decemb.load(tmp_path / "no-such-model", strategy, **options)
