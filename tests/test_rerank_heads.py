"""Reranker heads and losses: a linear last-token head (RankLLaMA's form) that starts as the yes/no score,
trains, saves and reloads with identical scores and never runs code from its folder; every loss trains a
step; and training candidates taken from the named first stage (BM25, checked against bm25s called here)."""

from __future__ import annotations

import json

import bm25s
import numpy as np
import pytest
import Stemmer
import torch
from helpers import OWN_DATA, OWN_TASKS, build_tokenizer, tiny_config
from transformers import AutoModelForCausalLM

from decemb.rerank import PairTemplate, RerankExample, load_reranker, reranker_from_causal_lm, train_reranker
from decemb.rerank.head import score_head_of, with_score_head
from decemb.rerank.hidden_encoder import DecembPairHiddenEncoder
from decemb.rerank.train_data import examples_from_task
from decemb.tasks import load_task
from decemb.trust import UnsafeModelError

TEMPLATE = PairTemplate(prefix="Query: ", middle="\nText: ", suffix="\nSame?", yes=" man", no=" the", family="test")
QUERY = "A man is playing a guitar."
POSITIVE = "A man plays the guitar."
NEGATIVES = ("The cat sat on the mat.", "Dogs run in the park while children play football.")
PAIRS = [(QUERY, POSITIVE), *((QUERY, n) for n in NEGATIVES)]
EXAMPLES = [RerankExample(QUERY, (POSITIVE,), NEGATIVES)] * 4


def reranker(seed: int = 0):
    tok = build_tokenizer(add_bos=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config("llama", len(tok))).eval()
    return reranker_from_causal_lm(model, tok, template=TEMPLATE, max_length=96)


def test_a_new_linear_head_scores_as_the_yes_no_logits_and_back():
    logit = reranker()
    linear = with_score_head(logit, "linear")
    assert isinstance(linear[0], DecembPairHiddenEncoder) and score_head_of(linear) == "linear"
    assert linear[0].auto_model is logit[0].auto_model  # shared, not copied
    assert linear.predict(PAIRS) == pytest.approx(logit.predict(PAIRS), abs=1e-5)
    with torch.no_grad():
        linear[1].linear.weight.mul_(-1.0)  # the head is its own parameter, not a view of the LM head
    assert linear.predict(PAIRS) == pytest.approx(-logit.predict(PAIRS), abs=1e-5)
    back = with_score_head(linear, "logit")
    assert score_head_of(back) == "logit" and back.predict(PAIRS) == pytest.approx(logit.predict(PAIRS), abs=1e-6)
    assert with_score_head(logit, "logit") is logit
    with pytest.raises(ValueError, match="unknown score head 'rank'; expected one of logit, linear"):
        with_score_head(logit, "rank")


@pytest.mark.parametrize("head", ["logit", "linear"])
@pytest.mark.parametrize("loss", ["bce", "listnet", "lambda"])
def test_each_loss_trains_a_step_and_changes_the_scores(loss, head):
    model = reranker()
    before = model.predict(PAIRS)
    options = {"pos_weight": 2.0} if loss == "bce" else {}
    result = train_reranker(
        model, EXAMPLES, loss=loss, head=head, max_steps=1, batch_size=2, learning_rate=1e-2, warmup_ratio=0.0,
        show_progress=False,
        **options,
    )  # fmt: skip
    assert result.steps == 1 and result.head == head and np.isfinite(result.train_loss)
    assert np.abs(result.reranker.predict(PAIRS) - before).max() > 1e-3


def test_pos_weight_is_for_bce_only_and_positive():
    for loss, weight in (("listnet", 2.0), ("bce", 0.0), ("bce", -1.0)):
        with pytest.raises(ValueError, match=rf"pos_weight is for loss 'bce' and must be > 0 \(got {weight}"):
            train_reranker(reranker(), EXAMPLES, loss=loss, pos_weight=weight)


def test_a_trained_linear_head_saves_reloads_identically_and_runs_no_folder_code(tmp_path):
    result = train_reranker(
        reranker(), EXAMPLES, tmp_path / "run", loss="listnet", head="linear", epochs=2, batch_size=2,
        learning_rate=1e-2, show_progress=False,
    )  # fmt: skip
    assert json.loads((tmp_path / "run" / "train.json").read_text())["head"] == "linear"
    folder = tmp_path / "run" / "model"
    reloaded = load_reranker(folder)  # no trust_remote_code: installed module classes only
    assert score_head_of(reloaded) == "linear"
    assert reloaded.predict(PAIRS) == pytest.approx(result.reranker.predict(PAIRS), abs=1e-5)
    marker = tmp_path / "planted-code-ran"
    modules = json.loads((folder / "modules.json").read_text())
    head_config = folder / modules[1]["path"] / "config.json"
    config = json.loads(head_config.read_text())
    head_config.write_text(json.dumps({**config, "auto_map": {"AutoModel": "evil.Evil"}}))
    (folder / modules[1]["path"] / "evil.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    with pytest.raises(UnsafeModelError, match=r"config.json: key 'auto_map'"):
        load_reranker(folder)
    head_config.write_text(json.dumps(config))
    modules[1]["type"] = "decemb.Evil"
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "decemb.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nclass Evil: pass\n")
    with pytest.raises(UnsafeModelError, match=r"modules.json: module type 'decemb.Evil'"):
        load_reranker(folder)
    assert not marker.exists()


def test_training_candidates_come_from_the_named_first_stage():
    task = load_task({**OWN_TASKS["retrieval"], "retriever": "bm25"}, OWN_DATA)
    stemmer = Stemmer.Stemmer("english")
    bm25 = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    bm25.index(bm25s.tokenize(task.docs, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    examples = {e.query: e for e in examples_from_task(task, num_negatives=100, range_max=3)}
    assert examples
    for query_id, query in zip(task.query_ids, task.queries):
        terms = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)[0]
        scores = np.asarray(bm25.get_scores(terms))
        ranked = [task.doc_ids[i] for i in np.lexsort((np.arange(len(scores)), -scores)) if scores[i] > 0][:3]
        pool = {task.docs[task.doc_ids.index(d)] for d in ranked if d not in task.relevant[query_id]}
        if query in examples:
            assert set(examples[query].negatives) == pool and len(examples[query].negatives) == len(pool)
        else:
            assert not pool  # skipped only when BM25's top 3 holds no non-relevant document
    dense = load_task({**OWN_TASKS["retrieval"], "retriever": "dense"}, OWN_DATA)
    with pytest.raises(ValueError):
        examples_from_task(dense)  # dense and hybrid first stages need the task's embeddings
