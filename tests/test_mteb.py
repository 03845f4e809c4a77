"""decemb models in mteb, offline: a proper ModelMeta, the E5 instruction per task and side, and a full
``mteb.evaluate`` on small STS and retrieval tasks built here."""

from __future__ import annotations

from typing import Any

import pytest

mteb = pytest.importorskip("mteb")

from datasets import Dataset, DatasetDict  # noqa: E402
from helpers import tiny_backbone  # noqa: E402
from mteb.abstasks.retrieval import AbsTaskRetrieval  # noqa: E402
from mteb.abstasks.sts import AbsTaskSTS  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402
from mteb.types import PromptType  # noqa: E402

import decemb  # noqa: E402
from decemb.instructions import instruction_for  # noqa: E402
from decemb.mteb import MTEB_TASK_KEYS, as_mteb_model, e5_instruction, load_task_data, model_meta  # noqa: E402

GENERAL: dict[str, Any] = {
    "description": "a tiny task built in the test",
    "reference": "https://example.org/tiny",
    "dataset": {"path": "NA", "revision": "NA"},
    "category": "t2t",
    "eval_splits": ["test"],
    "eval_langs": ["eng-Latn"],
    "date": ("2024-01-01", "2024-01-01"),
    "dialect": ["Written"],
    "domains": [],
    "task_subtypes": [],
    "license": "cc-by-4.0",
    "annotations_creators": "derived",
    "modalities": ["text"],
    "sample_creation": "found",
    "bibtex_citation": "",
}
SENTENCES = ["A man is playing a guitar.", "The cat sat on the mat.", "A woman is slicing an onion."]
PARTNERS = ["A man plays the guitar.", "Dogs run in the park.", "Someone cuts an onion."]


class TinySTS(AbsTaskSTS):
    metadata = TaskMetadata(type="STS", name="STSBenchmark", main_score="cosine_spearman", **GENERAL)
    min_score, max_score = 0, 5

    def load_data(self, **kwargs: Any) -> None:
        pairs = {"sentence1": SENTENCES, "sentence2": PARTNERS, "score": [4.8, 0.5, 4.0]}
        self.dataset = DatasetDict({"test": Dataset.from_dict(pairs)})
        self.data_loaded = True


class TinyRetrieval(AbsTaskRetrieval):
    metadata = TaskMetadata(type="Retrieval", name="SciFact", main_score="ndcg_at_10", **GENERAL)

    def load_data(self, **kwargs: Any) -> None:
        corpus = Dataset.from_dict({"id": ["d1", "d2", "d3"], "title": ["", "", ""], "text": PARTNERS})
        queries = Dataset.from_dict({"id": ["q1", "q2"], "text": ["who plays the guitar", "cutting an onion"]})
        split = {"corpus": corpus, "queries": queries, "relevant_docs": {"q1": {"d1": 1}, "q2": {"d3": 1}}}
        self.dataset = {"default": {"test": {**split, "top_ranked": None}}}
        self.data_loaded = True


def _spy(model: Any) -> list[tuple[str, str | None]]:
    """Record (side, prompt) of every encode call the wrapper makes."""
    calls: list[tuple[str, str | None]] = []
    for side in ("encode_query", "encode_document"):
        real = getattr(model, side)

        def record(texts: Any, *args: Any, _real: Any = real, _side: str = side, **kwargs: Any) -> Any:
            calls.append((_side, kwargs.get("prompt")))
            return _real(texts, *args, **kwargs)

        setattr(model, side, record)
    return calls


def test_every_mapped_task_is_an_mteb_task_with_an_e5_instruction():
    tasks = {task.metadata.name: task for task in mteb.get_tasks(tasks=list(MTEB_TASK_KEYS))}
    assert set(tasks) == set(MTEB_TASK_KEYS)
    for name, key in MTEB_TASK_KEYS.items():
        query = PromptType.query if tasks[name].metadata.type == "Retrieval" else None
        assert e5_instruction(tasks[name].metadata, query) == instruction_for(key)


def test_instructions_on_queries_only_with_fallbacks():
    scifact = mteb.get_task("SciFact").metadata
    assert e5_instruction(scifact, PromptType.query) == instruction_for("scifact")
    assert e5_instruction(scifact, PromptType.document) is None
    own = TaskMetadata(
        type="Retrieval", name="OwnRetrieval", main_score="ndcg_at_10", prompt={"query": "Find it"}, **GENERAL
    )
    assert e5_instruction(own, PromptType.query) == "Find it"
    bare = TaskMetadata(type="Clustering", name="OwnClustering", main_score="v_measure", **GENERAL)
    assert e5_instruction(bare) == instruction_for("clustering")


def test_model_meta_names_the_base_model_strategy_and_options():
    model, tokenizer = tiny_backbone("llama")
    echo = decemb.from_backbone(model, tokenizer, "echo", pooling="last", base_model="HuggingFaceTB/SmolLM2-135M")
    meta = model_meta(echo)
    assert meta.name == "decemb/SmolLM2-135M__echo(pooling=last)"
    assert meta.adapted_from == "HuggingFaceTB/SmolLM2-135M" and meta.reference.endswith("/SmolLM2-135M")
    assert meta.embed_dim == 32 and meta.max_tokens == 512 and meta.similarity_fn_name.value == "cosine"
    assert len(meta.revision) == 12 and meta.revision == model_meta(echo).revision  # stable
    other = decemb.from_backbone(model, tokenizer, "echo", pooling="last", max_length=64)
    assert model_meta(other).revision != meta.revision  # settings are part of the revision
    assert model_meta(other).name == "decemb/decoder__echo(pooling=last)"  # no known base model


def test_evaluate_offline_with_e5_instructions_on_instruct_queries(tmp_path):
    st = decemb.from_backbone(*tiny_backbone("llama"), "instruct")
    model = as_mteb_model(st)
    calls = _spy(st)
    results = mteb.evaluate(model, [TinySTS(), TinyRetrieval()], cache=None, show_progress_bar=False)
    scores = {result.task_name: result.get_score() for result in results.task_results}
    assert set(scores) == {"STSBenchmark", "SciFact"} and all(-1 <= value <= 1 for value in scores.values())
    assert results.model_name == model.mteb_model_meta.name and results.model_revision == model.mteb_model_meta.revision
    assert ("encode_query", instruction_for("stsb")) in calls  # both STS sides are queries
    assert ("encode_query", instruction_for("scifact")) in calls
    assert ("encode_document", None) in calls and all(p is None for side, p in calls if side == "encode_document")


@pytest.mark.parametrize(("instructions", "expected"), [(None, None), (True, "stsb"), (False, None)])
def test_echo_and_llm2vec_take_task_instructions_only_when_asked(instructions, expected):
    for name in ("echo", "llm2vec"):
        st = decemb.from_backbone(*tiny_backbone("gpt2"), name)
        calls = _spy(st)
        mteb.evaluate(as_mteb_model(st, instructions=instructions), TinySTS(), cache=None, show_progress_bar=False)
        assert {prompt for _, prompt in calls} == {instruction_for(expected) if expected else None}


def test_explicit_instruction_wins_and_plain_strategies_get_none():
    explicit = as_mteb_model(decemb.from_backbone(*tiny_backbone("llama"), "instruct", instruction="Mine"))
    assert explicit.instruction(TinySTS.metadata, None) is None  # the strategy keeps its own
    mean = as_mteb_model(decemb.from_backbone(*tiny_backbone("llama"), "mean"), instructions=True)
    assert mean.instruction(TinySTS.metadata, None) is None  # mean takes no instruction
    assert mean.mteb_model_meta.use_instructions is False


def test_refuses_a_non_decemb_model_and_explains_missing_task_data(monkeypatch):
    import datasets
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    with pytest.raises(TypeError, match="needs a decemb model"):
        as_mteb_model(SentenceTransformer(modules=[Pooling(4)]))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match=r"mteb task 'SciFact' cannot load its data 'mteb/scifact'.*offline"):
        load_task_data(mteb.get_task("SciFact"))


def test_custom_name():
    st = decemb.from_backbone(*tiny_backbone("llama"), "mean")
    assert as_mteb_model(st, name="me/my-model").mteb_model_meta.name == "me/my-model"
