"""What ``decemb train`` leaves behind: ``DIR/model`` (merged weights) that ``decemb.load`` and plain
``SentenceTransformer`` reload with identical vectors, ``DIR/adapter`` usable as ``decemb.load(..., adapter=)``,
``DIR/metrics.json``; never a half-written ``DIR``; a run killed with SIGKILL resumes from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import save_tiny_model
from sentence_transformers import SentenceTransformer
from train_helpers import write_pairs_csv

import decemb
from decemb.errors import ConfigError
from decemb.train import train

TEXTS = ["A man is playing a guitar.", "what is rlhf?", "Dogs run in the park while children play football."]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-outputs")
    write_pairs_csv(root / "pairs.csv")
    return {"root": root, "model": save_tiny_model(root / "tiny")}


def config_for(files: dict[str, Path], strategy="echo", **changes) -> dict:
    config = {
        "model": {"source": str(files["model"]), "strategy": strategy, "max_length": 48},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "data": {"path": str(files["root"] / "pairs.csv"), "columns": {"anchor": "query", "positive": "doc"}},
        "loss": "mnrl",
        "training": {"max_steps": 4, "batch_size": 4, "lr": 5e-3, "logging_steps": 1, "progress": False},
        "eval": {
            "tasks": [
                {
                    "type": "sts",
                    "name": "toy",
                    "path": str(files["root"] / "pairs.csv"),
                    "format": "csv",
                    "columns": {"text1": "query", "text2": "doc", "score": "score"},
                }
            ],
            "every": 2,
        },
    }
    config.update(changes)
    return config


def quiet(_: str) -> None:
    pass


@pytest.mark.parametrize("strategy", ["echo", {"name": "instruct", "instruction": "Find it."}, "llm2vec"])
def test_saved_model_reloads_with_identical_vectors(files, tmp_path, strategy):
    result = train(config_for(files, strategy, save_adapter=True), tmp_path / "out", report=quiet)
    assert sorted(p.name for p in result.out_dir.iterdir()) == ["adapter", "config.json", "metrics.json", "model"]
    trained = result.model
    for reload in (decemb.load(result.model_dir), SentenceTransformer(str(result.model_dir), trust_remote_code=True)):
        for encode in ("encode_query", "encode_document"):
            np.testing.assert_array_equal(getattr(trained, encode)(TEXTS), getattr(reload, encode)(TEXTS))
    base = decemb.load(
        files["model"],
        strategy if isinstance(strategy, str) else strategy["name"],
        max_length=48,
        **({} if isinstance(strategy, str) else {"instruction": "Find it."}),
    )
    before = base.encode(TEXTS)
    assert np.abs(before - trained.encode(TEXTS)).max() > 1e-4, "training changed the vectors"
    via_adapter = decemb.load(files["model"], base[0].strategy_spec, max_length=48, adapter=str(result.adapter_dir))
    np.testing.assert_allclose(via_adapter.encode(TEXTS), trained.encode(TEXTS), atol=1e-5)
    assert not any("lora" in name for name, _ in decemb.load(result.model_dir).named_parameters())


def test_metrics_json_holds_before_during_and_after(files, tmp_path):
    result = train(config_for(files), tmp_path / "out", report=quiet)
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    assert set(metrics["before"]["toy"]) == {"spearman", "pearson"} and set(metrics["after"]["toy"]) == {
        "spearman",
        "pearson",
    }
    assert [entry["step"] for entry in metrics["during"]] == [2, 4]
    assert metrics["train"]["steps"] == 4 and [e["step"] for e in metrics["train"]["losses"]] == [1, 2, 3, 4]
    assert metrics["adapter"] is None and not (result.out_dir / "adapter").exists()
    assert json.loads((result.out_dir / "config.json").read_text())["loss"]["name"] == "mnrl"


def test_full_fine_tuning_saves_and_reloads(files, tmp_path):
    config = config_for(files, "mean", finetune="full")
    del config["lora"]
    result = train(config, tmp_path / "out", report=quiet)
    np.testing.assert_array_equal(result.model.encode(TEXTS), decemb.load(result.model_dir).encode(TEXTS))


def test_output_is_replaced_only_with_overwrite(files, tmp_path):
    out = tmp_path / "out"
    train(config_for(files, eval={}), out, report=quiet)
    first = (out / "model" / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        train(config_for(files, eval={}), out, report=quiet)
    train(
        config_for(files, eval={}, overwrite=True, training={"max_steps": 2, "batch_size": 4, "lr": 1e-2}),
        out,
        report=quiet,
    )
    assert (out / "model" / "model.safetensors").read_bytes() != first
    assert not list(tmp_path.glob(".out.old-*")) and not (tmp_path / "out.partial").exists()


SLOW_SCRIPT = """
import json, sys, time
import torch
torch.set_num_threads(1)
from decemb.train.trainer import DecembTrainer

step = DecembTrainer.training_step
def slow_step(self, *args, **kwargs):
    time.sleep(0.25)
    return step(self, *args, **kwargs)
DecembTrainer.training_step = slow_step

from decemb.train import train
train(json.loads(sys.argv[1]), sys.argv[2], report=lambda _: None)
"""


def test_resume_after_kill_9(files, tmp_path):
    config = config_for(files, "echo")
    config["training"] = {
        "max_steps": 16,
        "batch_size": 4,
        "lr": 5e-3,
        "checkpoint_every": 2,
        "progress": False,
        "logging_steps": 1,
    }
    out = tmp_path / "out"
    script = tmp_path / "slow_train.py"
    script.write_text(SLOW_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(decemb.__file__).parents[1])}
    process = subprocess.Popen(
        [sys.executable, str(script), json.dumps(config), str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = tmp_path / "out.partial" / "checkpoints"
    deadline = time.monotonic() + 240
    try:
        while not list(checkpoints.glob("checkpoint-*/COMPLETE")):
            assert process.poll() is None, "the training process ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.1)
        time.sleep(0.6)  # killed somewhere between checkpoints (maybe while writing one)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "killed mid-run, not finished"
    assert not out.exists(), "a killed run leaves no output folder"
    (checkpoints / "checkpoint-15").mkdir()  # an incomplete checkpoint, as a kill mid-write leaves: never resumed
    (checkpoints / "checkpoint-15" / "trainable.safetensors").write_bytes(b"cut")

    resumed = train(config, out, report=quiet)
    step = int(resumed.metrics["train"]["resumed_from"].removeprefix("checkpoint-"))
    assert 2 <= step < 16 and step % 2 == 0
    assert resumed.steps == 16 and resumed.metrics["before"] and resumed.metrics["after"]
    assert [entry["step"] for entry in resumed.metrics["during"]] == [2, 4, 6, 8, 10, 12, 14, 16]
    assert not (tmp_path / "out.partial").exists()

    straight = train(config, tmp_path / "straight", report=quiet)
    np.testing.assert_allclose(resumed.model.encode(TEXTS), straight.model.encode(TEXTS), atol=1e-5)
    np.testing.assert_array_equal(resumed.model.encode(TEXTS), decemb.load(resumed.model_dir).encode(TEXTS))


def test_a_changed_config_does_not_resume_another_run(files, tmp_path):
    (tmp_path / "out.partial").mkdir()
    (tmp_path / "out.partial" / "run.json").write_text('{"other": 1}')
    with pytest.raises(ConfigError, match="different config") as caught:
        train(config_for(files), tmp_path / "out", report=quiet)
    assert caught.value.key == "resume"
    result = train(config_for(files, resume=False), tmp_path / "out", report=quiet)
    assert result.metrics["train"]["resumed_from"] is None
