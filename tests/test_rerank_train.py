"""Reranker training: mined hard negatives, BCE and listwise losses through sentence-transformers'
CrossEncoderTrainer with LoRA, merged and saved so that it reloads with the same scores."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import build_tokenizer, tiny_backbone, tiny_config
from transformers import AutoModelForCausalLM

import decemb
from decemb.rerank import (
    PairTemplate,
    RerankExample,
    bce_dataset,
    examples_from_rankings,
    listwise_dataset,
    load_reranker,
    mine_examples,
    reranker_from_causal_lm,
    train_reranker,
)

# The shared tiny tokenizer never saw "yes"/"no": answer with words it has single tokens for.
TEMPLATE = PairTemplate(prefix="Query: ", middle="\nText: ", suffix="\nSame?", yes=" man", no=" the", family="test")
QUERY = "A man is playing a guitar."
POSITIVE = "A man plays the guitar."
NEGATIVES = ("The cat sat on the mat.", "Dogs run in the park while children play football.")


def reranker():
    tok = build_tokenizer(add_bos=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("llama", len(tok))).eval()
    return reranker_from_causal_lm(model, tok, template=TEMPLATE, max_length=96)


def margin(model) -> float:
    scores = model.predict([(QUERY, POSITIVE), *((QUERY, n) for n in NEGATIVES)])
    return float(scores[0] - max(scores[1:]))


def test_examples_from_rankings_take_non_relevant_hard_negatives_in_range():
    texts = {f"d{i}": f"text {i}" for i in range(10)}
    rankings = {"q1": ["d3", "d0", "d4", "d5", "d6", "d7"], "q2": ["d1"], "q3": ["d2", "d8"]}
    relevant = {"q1": {"d0", "d3"}, "q2": {"d1"}, "q3": {"d9"}}
    queries = {"q1": "one", "q2": "two", "q3": "three"}
    examples = examples_from_rankings(queries, relevant, rankings, texts, num_negatives=2, range_min=1, range_max=4)
    by_query = {e.query: e for e in examples}
    assert set(by_query) == {"one", "three"}  # q2 has no negative left
    assert by_query["one"].positives == ("text 0", "text 3")
    assert set(by_query["one"].negatives) <= {"text 4", "text 5"} and len(by_query["one"].negatives) == 2
    assert by_query["three"].negatives == ("text 8",)
    bce = bce_dataset(examples)
    assert sorted(bce["label"]) == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    lists = listwise_dataset(examples)
    assert [sorted(labels) for labels in lists["labels"]] == [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0]]


def test_mine_examples_uses_the_bi_encoders_ranking():
    model, tok = tiny_backbone("llama")
    embedder = decemb.from_backbone(model, tok, "mean")
    corpus = {f"d{i}": text for i, text in enumerate([POSITIVE, *NEGATIVES, "The rewritten sentence"])}
    examples = mine_examples(embedder, {"q": QUERY}, {"q": {"d0"}}, corpus, num_negatives=2, range_max=3)
    assert len(examples) == 1 and examples[0].positives == (POSITIVE,)
    assert POSITIVE not in examples[0].negatives and len(examples[0].negatives) == 2


@pytest.mark.parametrize("loss", ["bce", "listnet", "lambda"])
def test_training_separates_positives_from_hard_negatives_and_saves(tmp_path, loss):
    model = reranker()
    before = margin(model)
    examples = [RerankExample(QUERY, (POSITIVE,), NEGATIVES)] * 8
    result = train_reranker(
        model, examples, tmp_path / "run", loss=loss, epochs=10, batch_size=4, learning_rate=2e-2, show_progress=False
    )
    assert result.reranker is model and result.steps > 0 and result.train_loss is not None
    assert not hasattr(model[0].auto_model, "merge_and_unload")  # the adapter is merged
    after = margin(model)
    assert after > before + 0.5
    summary = json.loads((tmp_path / "run" / "train.json").read_text())
    assert summary["loss"] == loss and summary["examples"] == 8
    pairs = [(QUERY, POSITIVE), (QUERY, NEGATIVES[0])]
    reloaded = load_reranker(tmp_path / "run" / "model")
    assert reloaded.predict(pairs) == pytest.approx(model.predict(pairs), abs=1e-4)


def test_unknown_loss_and_empty_examples_are_refused():
    with pytest.raises(ValueError, match="unknown reranker loss 'pairwise'"):
        train_reranker(reranker(), [RerankExample(QUERY, (POSITIVE,), NEGATIVES)], loss="pairwise")
    with pytest.raises(ValueError, match="no training examples"):
        train_reranker(reranker(), [])
