"""Training on tiny random models: every loss lowers itself on a toy set; the trainer's inputs are exactly the
inference inputs (sides, templates, pooled spans); gradients reach the LoRA weights and nothing else; gradient
checkpointing gives the same loss as a plain forward."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import save_tiny_model
from train_helpers import PAIRS, write_pairs_csv

from decemb.train import train
from decemb.train.losses import LOSS_SHAPES
from decemb.train.run import prepare_training


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-losses")
    write_pairs_csv(root / "pairs.csv")
    with (root / "texts.jsonl").open("w") as handle:
        for query, doc, _ in PAIRS:
            handle.write(json.dumps({"t": query}) + "\n" + json.dumps({"t": doc}) + "\n")
    model = save_tiny_model(root / "tiny")
    tied = root / "tiny-tied"  # tied input/output embeddings: MNTP's LM head is the embedding matrix
    config = json.loads((model / "config.json").read_text())
    tied.mkdir()
    for item in model.iterdir():
        (tied / item.name).write_bytes(item.read_bytes())
    (tied / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": True}))
    return {"root": root, "model": model, "tied": tied}


COLUMNS = {
    "pairs": {"anchor": "query", "positive": "doc"},
    "scored": {"text1": "query", "text2": "doc", "score": "score"},
    "texts": {"text": "t"},
}


def config_for(files: dict[str, Path], loss: str, strategy="mean", **training) -> dict:
    shape = LOSS_SHAPES[loss]
    data = {
        "path": str(files["root"] / ("texts.jsonl" if shape == "texts" else "pairs.csv")),
        "columns": COLUMNS[shape],
    }
    loss_section = {"name": loss, **({"mini_batch_size": 3} if loss == "cached_mnrl" else {})}
    # MNTP on a 32-wide random model barely moves through LoRA; it runs the full fine-tuning path instead.
    tuning = {"finetune": "full"} if loss == "mntp" else {"lora": {"r": 8, "alpha": 16, "dropout": 0.0}}
    return {
        "model": {"source": str(files["tied" if loss == "mntp" else "model"]), "strategy": strategy, "max_length": 48},
        **tuning,
        "data": data,
        "loss": loss_section,
        "training": {
            "max_steps": 12,
            "batch_size": 16 if shape == "texts" else 8,
            "lr": 5e-3,
            "warmup_ratio": 0.0,
            "logging_steps": 1,
            "progress": False,
            **training,
        },
    }


@pytest.mark.parametrize(
    ("loss", "strategy"),
    [
        ("mnrl", "echo"),
        ("cached_mnrl", "mean"),
        ("cosent", "prompteol"),
        ("angle", "eos"),
        ("simcse", "mean"),
        ("mntp", "llm2vec"),
    ],
)
def test_each_loss_lowers_itself(files, tmp_path, loss, strategy):
    result = train(config_for(files, loss, strategy), tmp_path / "out", report=lambda _: None)
    losses = [entry["loss"] for entry in result.metrics["train"]["losses"]]
    assert len(losses) >= 12 and all(value == value for value in losses), losses
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first * 0.9, f"{loss}: {losses}"
    assert result.steps == 12 and (result.model_dir / "modules.json").is_file()


def _prepare(files, tmp_path, loss="mnrl", strategy="mean", **training):
    return prepare_training(config_for(files, loss, strategy, **training), tmp_path / "out", report=lambda _: None)


def test_trainer_inputs_are_the_inference_inputs(files, tmp_path):
    run = _prepare(files, tmp_path, strategy={"name": "instruct", "instruction": "Find the answer."})
    embedder = run.model[0]
    query, doc = PAIRS[5][0], PAIRS[5][1]
    batch = run.trainer.data_collator([{"anchor": query, "positive": doc}])
    for column, text, side in (("anchor", query, "query"), ("positive", doc, "document")):
        expected = embedder.preprocess([text], task=side)
        for key in ("input_ids", "attention_mask", "pool_mask"):
            assert torch.equal(batch[f"{column}_{key}"], expected[key]), (column, key)
    tokenizer = embedder.tokenizer
    assert "Instruct: Find the answer." in tokenizer.decode(batch["anchor_input_ids"][0])
    assert "Instruct" not in tokenizer.decode(batch["positive_input_ids"][0]), "documents carry no instruction"


def test_echo_trains_on_the_second_copy_and_symmetric_data_stays_on_the_query_side(files, tmp_path):
    config = config_for(files, "cosent", {"name": "echo", "pooling": "mean"})
    run = prepare_training(config, tmp_path / "out", report=lambda _: None)
    text = "A man is playing a guitar."
    batch = run.trainer.data_collator([{"sentence1": text, "sentence2": PAIRS[0][1], "score": 0.9}])
    expected = run.model[0].preprocess([text], task="query")
    assert torch.equal(batch["sentence1_input_ids"], expected["input_ids"])
    assert torch.equal(batch["sentence1_pool_mask"], expected["pool_mask"])
    ids, pooled = batch["sentence1_input_ids"][0], batch["sentence1_pool_mask"][0]
    tokenizer = run.model[0].tokenizer
    assert tokenizer.decode(ids).count("guitar") == 2, "the text is read twice"
    span = tokenizer.decode(ids[pooled])
    assert span.strip() == text and pooled.nonzero().min() > len(ids) // 2, "pooled: the second copy only"
    assert batch["sentence1_task"] == batch["sentence2_task"] == "query"


def _batch_loss(run, rows):
    batch = run.trainer.data_collator(rows)
    return run.trainer.compute_loss(run.model, batch)


def test_gradients_reach_lora_weights_only(files, tmp_path):
    run = _prepare(files, tmp_path, strategy="echo")
    model = run.model
    lora = {name: p for name, p in model.named_parameters() if "lora_" in name}
    frozen = {name: p for name, p in model.named_parameters() if "lora_" not in name}
    assert lora and all(p.requires_grad for p in lora.values())
    assert not any(p.requires_grad for p in frozen.values())
    rows = [{"anchor": q, "positive": d} for q, d, _ in PAIRS]
    _batch_loss(run, rows).backward()
    grads_b = [p.grad for name, p in lora.items() if "lora_B" in name]
    assert all(g is not None and g.abs().sum() > 0 for g in grads_b), "every LoRA B matrix gets a gradient"
    assert all(p.grad is None for p in frozen.values())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    run.trainer.train()
    changed = [name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())]
    assert changed and all("lora_" in name for name in changed), "only LoRA weights move"
    assert any("lora_A" in name for name in changed) and any("lora_B" in name for name in changed)


def test_gradient_checkpointing_gives_the_plain_loss(files, tmp_path):
    rows = [{"anchor": q, "positive": d} for q, d, _ in PAIRS]
    plain = _prepare(files, tmp_path / "a", strategy="echo")
    checkpointed = _prepare(files, tmp_path / "b", strategy="echo", gradient_checkpointing=True)
    for run in (plain, checkpointed):
        run.model.train()
    expected = _batch_loss(plain, rows)
    got = _batch_loss(checkpointed, rows)
    assert torch.allclose(expected, got, atol=1e-5), (expected, got)
    got.backward()
    assert all(p.grad is not None for name, p in checkpointed.model.named_parameters() if "lora_B" in name)


def test_simcse_dropout_is_on_while_training_and_restored(files, tmp_path):
    run = _prepare(files, tmp_path, loss="simcse")
    model = run.model
    model.train()
    features = model[0].preprocess(["A man is playing a guitar."] * 2)
    first, second = model(dict(features))["sentence_embedding"]
    assert not torch.allclose(first, second), "two passes of one text differ: dropout is the noise"
    attention = [m for m in model.modules() if isinstance(m.__dict__.get("attention_dropout"), float)]
    assert attention and all(m.attention_dropout == 0.1 for m in attention)
    result = run.run()
    assert all(m.attention_dropout == 0.0 for m in attention), "restored before saving"
    saved = json.loads((result.model_dir / "config.json").read_text())
    assert saved.get("attention_dropout", 0.0) == 0.0


def test_rows_sharing_a_text_are_all_trained_in_an_epoch_and_thin_batches_are_reported(files, tmp_path):
    """8 rows over 2 distinct documents: the no-duplicates sampler fits at most 2 rows in a batch of 4, so a
    pass takes 4 batches where ``ceil(8 / 4)`` is 2. The epoch is those 4 batches (every row once, none
    sharing a text with a batchmate, the same batches as the trainer then draws) and the thin batches are
    reported before training; distinct rows say nothing."""
    shared = tmp_path / "shared.csv"
    write_pairs_csv(shared, [(f"question number {i}", f"document {i % 2}", 1.0) for i in range(8)])
    config = config_for(files, "mnrl", batch_size=4, max_steps=None, epochs=1)
    config["data"]["path"] = str(shared)
    lines: list[str] = []
    prepared = prepare_training(config, tmp_path / "out", report=lines.append)
    warnings = [line for line in lines if line.startswith("warning:")]
    assert warnings == [
        "warning: rows that share a text cannot share a batch: 8 rows make 4 batches of 2.0 rows on average "
        "(batch_size 4), so each row meets fewer in-batch negatives; de-duplicate the data or spread the hard "
        "negatives (hard_negatives.max_uses)"
    ]
    loader = prepared.trainer.get_train_dataloader()
    batches = [list(batch) for batch in loader.batch_sampler]
    assert len(loader) == len(batches) == 4 and sorted(i for b in batches for i in b) == list(range(8))
    dataset = prepared.trainer.train_dataset
    for batch in batches:
        documents = [dataset[i]["positive"] for i in batch]
        assert len(set(documents)) == len(documents)
    steps = [len(batch["anchor_input_ids"]) for batch in loader]  # what the trainer iterates: the same sizes
    assert steps == [len(b) for b in batches]
    result = prepared.run()  # one epoch is the 4 batches: every row trained once
    assert result.steps == 4 and result.metrics["train"]["epochs"] == 1.0
    lines.clear()
    prepare_training(config_for(files, "mnrl", batch_size=4), tmp_path / "out2", report=lines.append)
    assert not [line for line in lines if line.startswith("warning:")]
