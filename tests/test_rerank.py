"""The decoder reranker: a real sentence-transformers CrossEncoder whose score is logit("yes") - logit("no")
at the last position of the pair rendered through the tokenizer's template family, only the document cut."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import CORPUS, tiny_config
from sentence_transformers import CrossEncoder
from sentence_transformers.cross_encoder.modules import LogitScore
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoModel, AutoModelForCausalLM, PreTrainedTokenizerFast

from decemb.errors import ModelSourceError
from decemb.rerank import (
    DecembPairEncoder,
    PairTemplate,
    PairTooLongError,
    load_causal_lm,
    load_reranker,
    reranker_from_causal_lm,
)

ARCHS = ["llama", "mistral", "qwen2", "gemma3_text", "gpt2"]
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
EXTRA = [
    'Query: a claim\nDocument: a text\nIs the document relevant to the query? Answer only "yes" or "no".\nAnswer: yes',
    "Answer: no. yes no",
]
QUERY = "A man is playing a guitar."
DOCS = ["A man plays the guitar.", "The cat sat on the mat. " * 6, "Dogs run in the park while children play."]


def tokenizer(chat: bool, bos: bool = True) -> PreTrainedTokenizerFast:
    """A tiny byte-level BPE tokenizer that knows the template's words; ChatML markers when ``chat``."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    special = ["<pad>", "<bos>", "<eos>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator((CORPUS + EXTRA) * 3, trainer=trainer)
    if bos:
        backend.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", padding_side="right"
    )
    if chat:
        tok.chat_template = CHATML
    return tok


def causal_lm(arch: str, tok: PreTrainedTokenizerFast) -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_config(arch, len(tok))).eval()


def independent_score(model, tok, template: PairTemplate, query: str, doc: str) -> float:
    """The whole prompt tokenized as one string, one unpadded forward, yes/no ids from the vocabulary."""
    text = template.prefix + query + template.middle + doc + template.suffix
    ids = tok(text, add_special_tokens=template.special_tokens)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    yes = tok.convert_tokens_to_ids(tok.tokenize(template.yes)[0])
    no = tok.convert_tokens_to_ids(tok.tokenize(template.no)[0])
    return float(logits[yes] - logits[no])


@pytest.mark.parametrize("prefix_cache", [True, False], ids=["prefix-cache", "no-cache"])
@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat"])
@pytest.mark.parametrize("arch", ARCHS)
def test_score_is_yes_minus_no_logit_of_an_independent_forward(arch, chat, prefix_cache):
    tok = tokenizer(chat, bos=arch in ("llama", "gemma3_text"))
    model = causal_lm(arch, tok)
    reranker = reranker_from_causal_lm(model, tok, max_length=None, prefix_cache=prefix_cache)
    template = reranker[0].pair_template
    pairs = [(QUERY, doc) for doc in DOCS] + [("What do cats do?", DOCS[1])]
    scores = reranker.predict(pairs, batch_size=4)  # mixed lengths: left padding, one shared-prefix batch
    expected = [independent_score(model, tok, template, q, d) for q, d in pairs]
    assert scores == pytest.approx(expected, abs=1e-4)
    alone = [float(reranker.predict([pair])[0]) for pair in pairs]
    assert alone == pytest.approx(expected, abs=1e-4)


def test_rendering_matches_running_text_tokenization():
    tok = tokenizer(chat=True)
    reranker = reranker_from_causal_lm(causal_lm("llama", tok), tok, max_length=None)
    template = reranker[0].pair_template
    for doc in DOCS:
        whole = tok(template.prefix + QUERY + template.middle + doc + template.suffix, add_special_tokens=False)
        assert reranker[0].renderer.render([(QUERY, doc)])[0] == whole["input_ids"]


def test_template_family_follows_the_tokenizer_not_the_model_name():
    plain_tok, chat_tok = tokenizer(chat=False), tokenizer(chat=True)
    model = causal_lm("llama", plain_tok)
    model.config.name_or_path = "Qwen/Qwen3-Reranker-0.6B"  # a name that would suggest a chat model
    plain = reranker_from_causal_lm(model, plain_tok)[0].pair_template
    chat = reranker_from_causal_lm(causal_lm("llama", chat_tok), chat_tok)[0].pair_template
    assert (plain.family, plain.special_tokens, plain.yes, plain.suffix.endswith("Answer:")) == (
        "plain",
        True,
        " yes",
        True,
    )
    assert (chat.family, chat.special_tokens, chat.yes) == ("chat", False, "yes")
    assert chat.prefix.startswith("<|im_start|>user\n") and chat.suffix.endswith("<|im_start|>assistant\n")


def test_truncation_cuts_only_the_document():
    tok = tokenizer(chat=True)
    reranker = reranker_from_causal_lm(causal_lm("llama", tok), tok, max_length=80)
    renderer = reranker[0].renderer
    long_doc = "The rewritten sentence is long. " * 40
    row = renderer.render([(QUERY, long_doc)])[0]
    prefix, query_lead, middle, doc_lead, suffix = renderer.pieces
    query = tok(query_lead + QUERY, add_special_tokens=False)["input_ids"]
    doc = tok(doc_lead + long_doc, add_special_tokens=False)["input_ids"]
    assert len(row) == 80
    assert row[: len(prefix) + len(query) + len(middle)] == prefix + query + middle  # the query whole
    assert row[-len(suffix) :] == suffix  # the closing question and the assistant turn whole
    kept = row[len(prefix) + len(query) + len(middle) : -len(suffix)]
    assert kept == doc[: len(kept)] and 0 < len(kept) < len(doc)
    assert tok.decode(row[-len(suffix) :]).startswith("\nIs the document relevant")


def test_a_query_that_leaves_no_room_is_an_error_naming_the_callers_pair():
    tok = tokenizer(chat=False)
    reranker = reranker_from_causal_lm(causal_lm("llama", tok), tok, max_length=60)
    pairs = [(QUERY, DOCS[0]), (QUERY, DOCS[1]), ("A man is playing a guitar. " * 20, DOCS[0])]
    with pytest.raises(PairTooLongError, match=r"^pair 2: the query is \d+ tokens") as error:
        reranker.predict(pairs)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([(QUERY, "")], "pair 0: the document is an empty string"),
        ([(QUERY, DOCS[0]), (None, DOCS[0])], "pair 1: the query is a NoneType"),
        ([(QUERY, DOCS[0], "extra")], "pair 0 is not a (query, document) pair"),
    ],
)
def test_bad_pairs_are_one_line_errors(pairs, message):
    tok = tokenizer(chat=False)
    reranker = reranker_from_causal_lm(causal_lm("llama", tok), tok)
    with pytest.raises((ValueError, TypeError)) as error:
        reranker.predict(pairs)
    assert str(error.value).startswith(message)


def test_is_a_sentence_transformers_cross_encoder_built_on_logit_score(tmp_path):
    tok = tokenizer(chat=True)
    reranker = reranker_from_causal_lm(causal_lm("qwen2", tok), tok)
    assert isinstance(reranker, CrossEncoder)
    first, score = list(reranker)
    assert isinstance(first, DecembPairEncoder) and isinstance(score, LogitScore)
    assert (score.true_token_id, score.false_token_id) == (first.yes_id, first.no_id)
    ranked = reranker.rank(QUERY, DOCS)
    scores = reranker.predict([(QUERY, d) for d in DOCS])
    assert [r["corpus_id"] for r in ranked] == sorted(range(3), key=lambda i: -scores[i])
    reranker.save(str(tmp_path / "saved"))
    assert load_reranker(tmp_path / "saved").predict([(QUERY, d) for d in DOCS]) == pytest.approx(scores, abs=1e-5)
    plain = CrossEncoder(str(tmp_path / "saved"), trust_remote_code=True)
    assert plain.predict([(QUERY, d) for d in DOCS]) == pytest.approx(scores, abs=1e-5)
    saved = json.loads((tmp_path / "saved" / "decemb_reranker_config.json").read_text())
    assert saved["template"]["family"] == "chat" and saved["max_length"] == 256  # capped at the position table


def test_loader_keeps_the_head_and_refuses_a_headless_checkpoint(tmp_path):
    tok = tokenizer(chat=False)
    model = causal_lm("llama", tok)
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    loaded, _ = load_causal_lm(tmp_path / "lm")
    assert torch.equal(loaded.get_output_embeddings().weight, model.get_output_embeddings().weight)
    base = AutoModel.from_config(tiny_config("llama", len(tok)))  # untied head, base weights only
    base.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    with pytest.raises(ModelSourceError, match="no LM head weights"):
        load_causal_lm(tmp_path / "base")


def test_adapter_is_merged_and_a_foreign_one_refused(tmp_path):
    from peft import LoraConfig, get_peft_model

    tok = tokenizer(chat=False)
    model = causal_lm("llama", tok)
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    lora = get_peft_model(causal_lm("llama", tok), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    for name, param in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    lora.save_pretrained(tmp_path / "adapter")
    pair = [(QUERY, DOCS[0])]
    base = load_reranker(tmp_path / "lm").predict(pair)
    adapted = load_reranker(tmp_path / "lm", adapter=tmp_path / "adapter").predict(pair)
    assert abs(float(adapted[0]) - float(base[0])) > 1e-4
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelSourceError, match="does not fit"):
        load_reranker(tmp_path / "lm", adapter=tmp_path / "bad")


@pytest.mark.slow
def test_smollm2_reranker_uses_its_chat_template_and_yes_no_tokens():
    reranker = load_reranker("smollm2-135m")
    first = reranker[0]
    assert first.pair_template.family == "chat"
    assert reranker.tokenizer.convert_ids_to_tokens([first.yes_id, first.no_id]) == ["yes", "no"]
    scores = reranker.predict([("what is rlhf?", "RLHF is reinforcement learning from human feedback.")])
    assert scores.shape == (1,)
