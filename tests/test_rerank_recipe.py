"""A reranker training recipe (``python -m decemb.rerank train CONFIG``): checked before any model loads (no
test split, one line naming a bad key), candidates from its first stage, trained and saved with a record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from helpers import OWN_DATA, build_tokenizer, save_tiny_model, tiny_config
from transformers import AutoModelForCausalLM

import decemb
from decemb.errors import ConfigError
from decemb.rerank import PairTemplate, load_reranker
from decemb.rerank.__main__ import main
from decemb.rerank.head import score_head_of
from decemb.rerank.recipe import recipe_examples
from decemb.rerank.recipe_config import RerankerRecipe, read_recipe
from decemb.rerank.train_data import examples_from_task
from decemb.tasks import load_task

TEMPLATE = PairTemplate(prefix="Query: ", middle="\nText: ", suffix="\nSame?", yes=" man", no=" the", family="test")


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """The own retrieval fixture with its qrels as a train split."""
    root = tmp_path / "data"
    shutil.copytree(OWN_DATA / "retrieval", root / "retrieval")
    shutil.copy(root / "retrieval" / "qrels" / "test.tsv", root / "retrieval" / "qrels" / "train.tsv")
    return root


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    tokenizer = build_tokenizer(add_bos=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("llama", len(tokenizer)))
    model.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    return tmp_path / "lm"


def recipe(model_dir: Path, **sections) -> dict:
    return {
        "model": {"source": str(model_dir), "max_length": 96, "template": TEMPLATE.to_dict()},
        "data": {"path": "retrieval", "queries": None},
        "candidates": {"retriever": "bm25", "num_negatives": 2, "range_max": 5},
        "training": {"epochs": 1, "batch_size": 2, "lr": 1e-2, "logging_steps": 1},
        **sections,
    }


def write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"split": "test"}}, r"data: .*never trains on test queries"),
        ({"loss": {"name": "listnet", "pos_weight": 2}}, r"loss: .*pos_weight is for loss bce, not listnet"),
        ({"head": "mlp"}, r"head: .*'logit' or 'linear'"),
        ({"candidates": {"retriever": "hybrid"}}, r"candidates: .*needs candidates.bi_encoder"),
        ({"training": {"epoch": 3}}, r"training.epoch: unknown key \(did you mean 'epochs'\?\)"),
    ],
)
def test_a_bad_recipe_is_one_line_naming_the_key(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message) as caught:
        read_recipe(write(tmp_path, change))
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(tmp_path / "recipe.yaml"))


def test_the_recipes_candidates_are_its_first_stages(tmp_path, data_root, model_dir):
    config = RerankerRecipe.model_validate(recipe(model_dir))
    task = load_task({**config.task_config(), "retriever": "bm25"}, data_root)
    expected = examples_from_task(task, num_negatives=2, range_max=5)
    assert recipe_examples(config, data_root) == expected and expected


def test_hybrid_candidates_use_the_recipes_bi_encoder(tmp_path, data_root, model_dir):
    encoder = save_tiny_model(tmp_path / "bi-encoder")
    candidates = {"retriever": "hybrid", "num_negatives": 2, "range_max": 4, "bi_encoder": {"source": str(encoder)}}
    config = RerankerRecipe.model_validate(recipe(model_dir, candidates=candidates))
    task = load_task(config.task_config(), data_root)
    assert task.retriever == "hybrid"
    model = decemb.load(encoder, "mean", max_length=128)
    vectors = {"queries": model.encode_query(task.queries), "corpus": model.encode_document(task.docs)}
    expected = examples_from_task(task, vectors, num_negatives=2, range_max=4)
    assert recipe_examples(config, data_root) == expected and expected


@pytest.mark.parametrize(
    ("head", "loss"), [("linear", {"name": "bce", "pos_weight": 2.0}), ("logit", {"name": "lambda"})]
)
def test_the_command_trains_saves_and_records(tmp_path, data_root, model_dir, capsys, head, loss):
    config = write(tmp_path, recipe(model_dir, head=head, loss=loss))
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out), "--data-root", str(data_root), "-q", "--threads", "1"]) == 0
    record = json.loads((out / "recipe.json").read_text())
    assert record["recipe"]["head"] == head and record["training"]["loss"] == loss["name"]
    assert record["training"]["steps"] > 0 and record["seconds"]["per_step"] > 0
    assert record["train_queries"] == len(recipe_examples(RerankerRecipe.model_validate(recipe(model_dir)), data_root))
    assert score_head_of(load_reranker(out / "model")) == head
    assert main(["train", str(write(tmp_path, {"head": "mlp"})), "--out", str(out)]) == 2
    assert "error: " in capsys.readouterr().err
