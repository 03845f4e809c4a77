"""Template syntax, rendering details, registries and option validation."""

from __future__ import annotations

import pytest
from helpers import tiny_backbone

import decemb
from decemb.registry import UnknownNameError
from decemb.rendering import Renderer, special_affixes
from decemb.templates import Template, TemplateError


def test_parse_parts_and_variables():
    template = Template.parse("{!Instruct: %%instruction%%\nQuery: }{%%text%%%%eos%%}")
    kinds = [(p.kind, p.value, p.pooled) for p in template.pieces]
    assert kinds == [
        ("literal", "Instruct: ", False),
        ("variable", "instruction", False),
        ("literal", "\nQuery: ", False),
        ("text", "text", True),
        ("special", "eos", True),
    ]
    assert Template.parse(str(template)) == template


def test_escaped_braces_and_outside_text_is_context():
    template = Template.parse("{{x}} %%text%% {%%text%%}")
    assert [(p.kind, p.value, p.pooled) for p in template.pieces] == [
        ("literal", "{x} ", False),
        ("text", "text", False),
        ("literal", " ", False),
        ("text", "text", True),
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{%%text%%", "unclosed"),
        ("%%text%%}", "unmatched"),
        ("{{%%text%%}}", "pooled part"),
        ("{a {%%text%%}}", "nested"),
        ("{no text}", "must contain the user's text"),
        ("{!%%text%%}", "pooled part"),
    ],
)
def test_malformed_templates(source, message):
    with pytest.raises(TemplateError, match=message):
        Template.parse(source)


def test_missing_variable_and_missing_special_token():
    _, tokenizer = tiny_backbone("llama")
    with pytest.raises(TemplateError, match="without a value: instruction"):
        Renderer(tokenizer, Template.parse("%%instruction%%{%%text%%}"))
    eos = tokenizer.eos_token
    tokenizer.eos_token = None
    try:
        with pytest.raises(TemplateError, match="no eos token"):
            Renderer(tokenizer, Template.parse("{%%text%%%%eos%%}")).segments  # noqa: B018
    finally:
        tokenizer.eos_token = eos


def test_special_affixes_follow_the_tokenizer():
    assert special_affixes(tiny_backbone("llama")[1]) == ([1], [])
    assert special_affixes(tiny_backbone("gpt2")[1]) == ([], [])


def test_custom_echo_template_with_instruction():
    model, tokenizer = tiny_backbone("gpt2")
    st = decemb.from_backbone(
        model, tokenizer, "echo", template="{!%%instruction%% %%text%% again: }{%%text%%}", instruction="Say"
    )
    features = st[0].preprocess(["a cat"])
    plain = tokenizer("Say", add_special_tokens=False)["input_ids"]
    assert features["input_ids"][0, : len(plain)].tolist() == plain
    with pytest.raises(ValueError, match="unknown template variable"):
        decemb.build_strategy("echo", template="{%%text%%%%who%%}")


def test_unknown_strategy_suggests_a_near_match():
    with pytest.raises(UnknownNameError, match="Did you mean 'echo'") as info:
        decemb.build_strategy("ecko")
    assert info.value.suggestions[0] == "echo"
    assert decemb.list_strategies() == ["echo", "eos", "instruct", "last", "llm2vec", "mean", "prompteol", "sgpt"]


def test_unknown_or_bad_option_names_the_key():
    with pytest.raises(ValueError, match=r"option 'poling'.*did you mean 'pooling'"):
        decemb.build_strategy("echo", poling="mean")
    with pytest.raises(ValueError, match=r"option 'pooling'"):
        decemb.build_strategy("echo", pooling="max")
    with pytest.raises(ValueError, match="Did you mean 'scifact'"):
        decemb.build_strategy("instruct", task="scifakt")


def test_instruct_task_table_and_per_call_prompt():
    model, tokenizer = tiny_backbone("gpt2")
    st = decemb.from_backbone(model, tokenizer, "instruct", task="scifact")
    expected = "Given a scientific claim, retrieve documents that support or refute the claim"
    assert st[0].renderer("query").variables == {"instruction": expected}
    by_prompt = st.encode_query(["x y"], prompt="Find it")
    by_option = decemb.from_backbone(model, tokenizer, "instruct", instruction="Find it").encode_query(["x y"])
    assert abs(by_prompt - by_option).max() == 0
    with pytest.raises(ValueError, match="takes no prompt"):
        decemb.from_backbone(model, tokenizer, "mean").encode(["x"], prompt="Find it")


def test_prompteol_authors_preprocessing():
    from decemb.strategies.prompteol import authors_preprocessing

    assert authors_preprocessing('He said "hi"') == "He said 'hi'"  # ends in a quote: no period added
    assert authors_preprocessing('A "b" c') == "A 'b' c."
    assert authors_preprocessing("Is it?") == "Is it."
    assert authors_preprocessing("Done.") == "Done."


def test_empty_and_non_string_inputs_name_the_callers_index():
    model, tokenizer = tiny_backbone("gpt2")
    for strategy in ("mean", "prompteol", "echo"):
        st = decemb.from_backbone(model, tokenizer, strategy)
        with pytest.raises(ValueError, match="input 2 is an empty string"):
            st.encode(["a much longer text than the others", "ok", ""])  # ST sorts batches; the index is ours
        with pytest.raises(ValueError, match="input 1 is an empty string"):
            st[0].preprocess(["ok", ""])  # plain sentence-transformers path: the batch's index
    st = decemb.from_backbone(model, tokenizer, "mean")
    for bad, message in [
        (None, "got NoneType"),
        (3, "got int"),
        (b"x", "got bytes"),
        (["a", None], "input 1 is a NoneType"),
        (["a", ["b"]], "input 1 is a list"),
        (["a", 2.5], "input 1 is a float"),
    ]:
        with pytest.raises(TypeError, match=message):
            st.encode(bad)
    assert st.encode("one text").shape == (32,)
    assert st.encode([]).shape == (0,)


def test_non_string_input_names_the_index():
    model, tokenizer = tiny_backbone("gpt2")
    with pytest.raises(TypeError, match="input 1 is a int"):
        decemb.from_backbone(model, tokenizer, "mean")[0].preprocess(["ok", 3])


def test_space_before_the_text_is_glued_only_for_space_marking_tokenizers():
    from tokenizers import Tokenizer, models, pre_tokenizers

    from decemb.rendering import glues_leading_space

    _, bpe = tiny_backbone("gpt2")
    assert glues_leading_space(bpe)
    vocab = {"<unk>": 0, "▁Hello": 1, "▁world": 2, "▁": 3, "Hello": 4, "world": 5}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always")  # SentencePiece dummy prefix
    from transformers import PreTrainedTokenizerFast

    sentencepiece_like = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    assert not glues_leading_space(sentencepiece_like)
    rendered = Renderer(sentencepiece_like, Template.parse("Hello {%%text%%}")).render(["world"])[0]
    assert rendered.input_ids[-1] == 2 and rendered.pool_mask[-1]


def test_special_token_strings_in_the_text_stay_text():
    model, tokenizer = tiny_backbone("gpt2")
    st = decemb.from_backbone(model, tokenizer, "eos")
    ids = st[0].preprocess(["stop <eos> here"])["input_ids"][0].tolist()
    assert ids.count(tokenizer.eos_token_id) == 1 and ids[-1] == tokenizer.eos_token_id
