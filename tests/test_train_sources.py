"""Multi-source training (``data: [{...}, {...}]``) on tiny random models: a dict of datasets and losses, batches
that never mix sources, weights honoured in the batch counts, Banking77 batches without two pairs of one intent,
``--set`` into every entry, errors naming the entry, a resumed run equal to a straight one, and a single mapping
training exactly as before (the loss values recorded from the code before multi-source training)."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import save_tiny_model
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler
from train_helpers import PAIRS, interrupt_at, write_pairs_csv

from decemb.errors import ConfigError
from decemb.train import train
from decemb.train.parsing import parse_train_config
from decemb.train.run import prepare_training
from decemb.train.sampler import WholePassNoDuplicatesBatchSampler

quiet = lambda _: None  # noqa: E731
INTENTS = {  # 8 texts of each of 3 intents: 12 same-intent pairs, 4 per intent
    intent: [f"{words} number {k}" for k in range(8)]
    for intent, words in (("card", "where is my card"), ("top_up", "my top up failed"), ("pin", "forgot my pin"))
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-sources")
    write_pairs_csv(root / "pairs.csv")
    with (root / "qa.jsonl").open("w") as handle:
        for i in range(6):
            handle.write(json.dumps({"q": f"question number {i}", "a": f"the answer is {i}"}) + "\n")
    banking = root / "data" / "banking77"
    banking.mkdir(parents=True)
    rows = ["text,category"] + [f"{text},{intent}" for intent, texts in INTENTS.items() for text in texts]
    (banking / "train.csv").write_text("\n".join(rows) + "\n")
    return {"root": root, "model": save_tiny_model(root / "tiny")}


SCORED = {"text1": "query", "text2": "doc", "score": "score"}
PAIR_COLUMNS = {"anchor": "query", "positive": "doc"}


def two_sources(files, weights=(1.0, 1.0), batch_size=2, **training) -> dict:
    return {
        "model": {"source": str(files["model"]), "strategy": "mean", "max_length": 32},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "data": [
            {"path": str(files["root"] / "pairs.csv"), "columns": SCORED, "loss": "cosent", "weight": weights[0]},
            {
                "path": str(files["root"] / "qa.jsonl"),
                "columns": {"anchor": "q", "positive": "a"},
                "loss": {"name": "mnrl", "temperature": 0.1},
                "weight": weights[1],
            },
        ],
        "training": {"batch_size": batch_size, "lr": 5e-3, "logging_steps": 1, "progress": False, **training},
    }


def _batches(run) -> list[list[int]]:
    return [list(batch) for batch in run.trainer.get_train_dataloader().batch_sampler]


def test_two_sources_make_a_dict_of_datasets_and_losses(files, tmp_path):
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss, MultipleNegativesRankingLoss

    run = prepare_training(two_sources(files), tmp_path / "out", report=quiet)
    try:
        assert list(run.trainer.train_dataset) == ["pairs", "qa"]
        assert len(run.trainer.train_dataset["pairs"]) == len(PAIRS) and len(run.trainer.train_dataset["qa"]) == 6
        assert isinstance(run.trainer.loss["pairs"], CoSENTLoss)
        mnrl = run.trainer.loss["qa"]
        assert isinstance(mnrl, MultipleNegativesRankingLoss) and mnrl.scale == pytest.approx(10.0)
        assert run.trainer.args.router_mapping == {
            "pairs": {"sentence1": "query", "sentence2": "query"},
            "qa": {"anchor": "query", "positive": "document"},
        }
    finally:
        run.close()


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.0, 2.0), (0.5, 3.0)])
def test_no_batch_mixes_sources_and_the_weights_set_the_counts(files, tmp_path, weights):
    run = prepare_training(two_sources(files, weights), tmp_path / "out", report=quiet)
    try:
        loader = run.trainer.get_train_dataloader()
        concatenated = loader.dataset
        counts: Counter[str] = Counter()
        for batch in _batches(run):
            names = {concatenated[i]["dataset_name"] for i in batch}
            assert len(names) == 1, f"a batch mixes sources: {names}"
            counts[names.pop()] += 1
        # independent count: a pass over n distinct rows is ceil(n / batch) batches, times the weight
        expected = {"pairs": round(weights[0] * math.ceil(8 / 2)), "qa": round(weights[1] * math.ceil(6 / 2))}
        assert dict(counts) == expected and len(loader) == sum(expected.values())
        # the mnrl source keeps the no-duplicates whole-pass sampler, the cosent one plain batches
        sampler = loader.batch_sampler
        assert isinstance(sampler.samplers[1], WholePassNoDuplicatesBatchSampler)
        assert not isinstance(sampler.samplers[0], NoDuplicatesBatchSampler)
        assert _batches(run) == _batches(run), "an epoch is a function of the seed and the epoch"
    finally:
        run.close()


def _banking_config(files, **data) -> dict:
    return {
        "data_root": str(files["root"] / "data"),
        "model": {"source": str(files["model"]), "strategy": "mean", "max_length": 32},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "data": {"preset": "banking77", **data},
        "training": {"batch_size": 3, "max_steps": 2, "progress": False},
    }


def test_banking77_batches_never_hold_two_pairs_of_one_intent(files, tmp_path):
    intent_of = {text: intent for intent, texts in INTENTS.items() for text in texts}
    run = prepare_training(_banking_config(files), tmp_path / "out", report=quiet)
    try:
        dataset = run.trainer.train_dataset
        intents = [intent_of[dataset[i]["anchor"]] for i in range(len(dataset))]
        assert all(intent_of[dataset[i]["positive"]] == intents[i] for i in range(len(dataset)))
        batches = _batches(run)
        assert sorted(i for batch in batches for i in batch) == list(range(len(dataset))), "a whole pass"
        for batch in batches:
            assert len({intents[i] for i in batch}) == len(batch), [intents[i] for i in batch]
        # the test can fail: the plain no-duplicates sampler does put two pairs of one intent together
        plain = [NoDuplicatesBatchSampler(dataset, 3, drop_last=False, seed=seed) for seed in range(3)]
        assert any(len({intents[i] for i in batch}) < len(batch) for sampler in plain for batch in sampler)
    finally:
        run.close()


def test_set_reaches_every_entry_and_bad_indices_or_keys_are_named(files):
    config = parse_train_config(two_sources(files), overrides=["data.1.limit=3", "data.0.loss.scale=10"])
    assert config.data[1].limit == 3 and config.data[0].loss.scale == 10.0
    with pytest.raises(ConfigError, match=r"'5' is not an index of a list of 2") as caught:
        parse_train_config(two_sources(files), overrides=["data.5.limit=3"])
    assert caught.value.key == "--set"
    with pytest.raises(ConfigError, match=r"did you mean 'limit'") as caught:
        parse_train_config(two_sources(files), overrides=["data.1.limt=3"])
    assert caught.value.key == "data[1].limt" and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("override", "key", "message"),
    [
        ("data.1.loss.scale=3", "data[1].loss.scale", "applies to loss cosent / angle"),
        ("data.0.loss.name=mnrl", "data[0].loss.name", "needs pairs"),
        ("data.1.columns.anchor=qq", "data[1].columns.anchor", "no column 'qq'"),
        ("data.0.hard_negatives=true", "data[0].hard_negatives.mine", "feed mnrl/cached_mnrl"),
    ],
)
def test_errors_name_the_entry(files, tmp_path, override, key, message):
    with pytest.raises(ConfigError, match=message) as caught:
        prepare_training(two_sources(files), tmp_path / "out", overrides=[override], report=quiet)
    assert caught.value.key == key
    assert not (tmp_path / "out.partial").exists(), "refused before any work"


def test_a_single_source_weight_or_a_loss_given_twice_is_refused(files, tmp_path):
    base = _banking_config(files)
    with pytest.raises(ConfigError, match="several sources") as caught:
        prepare_training({**base, "data": {"preset": "banking77", "weight": 2}}, tmp_path / "a", report=quiet)
    assert caught.value.key == "data.weight"
    twice = {**base, "loss": "mnrl", "data": {"preset": "banking77", "loss": "mnrl"}}
    with pytest.raises(ConfigError, match="given twice") as caught:
        prepare_training(twice, tmp_path / "b", report=quiet)
    assert caught.value.key == "data.loss"


def test_two_sources_train_resume_and_record_each_source(files, tmp_path):
    config = two_sources(files, (1.0, 2.0), max_steps=None, epochs=1, checkpoint_every=2)
    straight = train(config, tmp_path / "straight", report=quiet)
    assert straight.steps == 4 + 6 and straight.metrics["train"]["loss"] == {"pairs": "cosent", "qa": "mnrl"}
    sources = straight.metrics["data"]["sources"]
    assert [(s["name"], s["loss"], s["weight"], s["rows"]) for s in sources] == [
        ("pairs", "cosent", 1.0, 8),
        ("qa", "mnrl", 2.0, 6),
    ]
    losses = [entry["loss"] for entry in straight.metrics["train"]["losses"]]
    assert len(losses) >= 10 and all(np.isfinite(losses))

    prepared = prepare_training(config, tmp_path / "out", report=quiet)
    prepared.trainer.add_callback(interrupt_at(5))
    with pytest.raises(KeyboardInterrupt):
        prepared.run()
    resumed = train(config, tmp_path / "out", report=quiet)
    assert resumed.metrics["train"]["resumed_from"] == "checkpoint-4" and resumed.steps == 10
    texts = [query for query, _, _ in PAIRS]
    np.testing.assert_allclose(resumed.model.encode(texts), straight.model.encode(texts), atol=1e-5)


# Recorded from the code before multi-source training (commit 583f799) with this very config.
BEFORE = {
    "cosent": [7.68087, 5.32543, 9.35294, 5.25403, 0.71792, 2.20339],
    "mnrl": [2.37359, 3.05294, 1.87716, 1.10727, 1.12233, 1.16658],
}


@pytest.mark.parametrize(("loss", "columns", "strategy"), [("cosent", SCORED, "mean"), ("mnrl", None, "echo")])
def test_a_single_mapping_trains_exactly_as_before(files, tmp_path, loss, columns, strategy):
    config = {
        "model": {"source": str(files["model"]), "strategy": strategy, "max_length": 48},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "data": {"path": str(files["root"] / "pairs.csv"), "columns": columns or PAIR_COLUMNS},
        "loss": {"name": loss},
        "training": {"max_steps": 6, "batch_size": 4, "lr": 5e-3, "warmup_ratio": 0.0, "logging_steps": 1},
    }
    config["training"]["progress"] = False
    result = train(config, tmp_path / "out", report=quiet)
    losses = [entry["loss"] for entry in result.metrics["train"]["losses"]]
    np.testing.assert_allclose(losses, BEFORE[loss], atol=2e-5)
    assert result.metrics["data"]["shape"] == ("scored" if loss == "cosent" else "pairs")
    assert result.metrics["train"]["loss"] == loss
