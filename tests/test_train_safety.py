"""Safe to write: one ``decemb train`` per output folder (a second is refused at once, naming the process
that holds it, and never touches ``DIR.partial``); a resumed run's ``metrics.json`` reports the loss of the
whole run, as the uninterrupted run does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import save_tiny_model
from train_helpers import interrupt_at, write_pairs_csv

import decemb
from decemb.cli import main
from decemb.errors import ConfigError
from decemb.locks import FolderLock
from decemb.train import train
from decemb.train.run import prepare_training

TEXTS = ["A man is playing a guitar.", "what is rlhf?", "Dogs run in the park while children play football."]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-safety")
    write_pairs_csv(root / "pairs.csv")
    return {"root": root, "model": save_tiny_model(root / "tiny")}


def config_for(files: dict[str, Path], **training) -> dict:
    return {
        "model": {"source": str(files["model"]), "strategy": "mean", "max_length": 32},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "data": {"path": str(files["root"] / "pairs.csv"), "columns": {"anchor": "query", "positive": "doc"}},
        "loss": "mnrl",
        "training": {"max_steps": 4, "batch_size": 4, "lr": 5e-3, "logging_steps": 1, "progress": False, **training},
    }


def quiet(_: str) -> None:
    pass


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}


@pytest.mark.parametrize("held", ["out", "out.partial"])
def test_a_busy_output_is_refused_at_once(files, tmp_path, capsys, held):
    """The holder (this process, through its own lock) is named; the refusal comes before the data or the
    model is read (both are missing here) and leaves no trace of the refused run."""
    config = config_for(files)
    config["model"]["source"] = str(tmp_path / "no-such-model")
    config["data"]["path"] = str(tmp_path / "no-such-data.csv")
    (tmp_path / "c.yaml").write_text(json.dumps(config))
    out = tmp_path / "out"
    with FolderLock(tmp_path / held):
        rc = main(["train", str(tmp_path / "c.yaml"), "--out", str(out), "--threads", "1"])
        err = capsys.readouterr().err
        with pytest.raises(ConfigError, match=f"pid {os.getpid()}") as caught:
            train(config, out, report=quiet)
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert f"{tmp_path / held} is in use by another decemb run (pid {os.getpid()})" in err, err
    assert caught.value.key == "--out"
    assert not out.exists() and not (tmp_path / "out.partial").exists()


HOLD_SCRIPT = """
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from decemb.train.trainer import DecembTrainer

step = DecembTrainer.training_step
def held_step(self, *args, **kwargs):
    deadline = time.monotonic() + 180
    while self.state.global_step == 2 and not Path(sys.argv[3]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # after checkpoint-2, until the test says go
    return step(self, *args, **kwargs)
DecembTrainer.training_step = held_step

from decemb.train import train
train(json.loads(sys.argv[1]), sys.argv[2], report=lambda _: None)
"""


def test_a_second_run_on_the_same_out_is_refused_while_the_first_runs(files, tmp_path):
    config = config_for(files, checkpoint_every=2)
    out, go = tmp_path / "out", tmp_path / "go"
    (tmp_path / "hold.py").write_text(HOLD_SCRIPT)
    (tmp_path / "c.yaml").write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(decemb.__file__).parents[1])}
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(
        [sys.executable, str(tmp_path / "hold.py"), json.dumps(config), str(out), str(go)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    work = tmp_path / "out.partial"
    try:
        deadline = time.monotonic() + 180
        while not (work / "checkpoints" / "checkpoint-2" / "COMPLETE").is_file():
            assert first.poll() is None, f"the first run ended early: {(tmp_path / 'first.log').read_text()}"
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.1)
        before = snapshot(work)  # the first run waits for `go`: nothing changes DIR.partial meanwhile
        second = subprocess.run(
            [sys.executable, "-m", "decemb.train", str(tmp_path / "c.yaml"), "--out", str(out), "--threads", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert snapshot(work) == before, "the refused run touched DIR.partial"
        assert not out.exists()
    finally:
        go.touch()
        try:
            first.wait(timeout=300)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
            log.close()
    assert second.returncode == 2 and len(second.stderr.splitlines()) == 1, second.stderr
    assert f"{out} is in use by another decemb run (pid {first.pid})" in second.stderr
    assert first.returncode == 0, (tmp_path / "first.log").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 4 and metrics["train"]["resumed_from"] is None
    straight = train(config, tmp_path / "straight", report=quiet)
    np.testing.assert_allclose(decemb.load(out / "model").encode(TEXTS), straight.model.encode(TEXTS), atol=1e-5)


def test_a_resumed_run_reports_the_loss_of_the_whole_run(files, tmp_path):
    """Interrupted at step 6 of 8 (checkpoint at 4; losses logged every 3 steps, and at each checkpoint so
    that a resume continues the history exactly), then resumed in the same process, which works only if
    the interrupted run released its locks."""
    config = config_for(files, max_steps=8, checkpoint_every=4, logging_steps=3)
    out = tmp_path / "out"
    interrupted = prepare_training(config, out, report=quiet)
    interrupted.trainer.add_callback(interrupt_at(6))
    with pytest.raises(KeyboardInterrupt):
        interrupted.run()
    assert not out.exists() and (tmp_path / "out.partial" / "checkpoints" / "checkpoint-4" / "COMPLETE").is_file()

    resumed = train(config, out, report=quiet)
    straight = train(config, tmp_path / "straight", report=quiet)
    saved = json.loads((out / "metrics.json").read_text())["train"]
    whole = straight.metrics["train"]
    assert saved["resumed_from"] == "checkpoint-4" and saved["steps"] == whole["steps"] == 8
    assert saved["train_loss"] == pytest.approx(whole["train_loss"], abs=1e-4)
    assert [e["step"] for e in saved["losses"]] == [e["step"] for e in whole["losses"]] == [1, 3, 4, 6, 8]
    np.testing.assert_allclose([e["loss"] for e in saved["losses"]], [e["loss"] for e in whole["losses"]], atol=1e-4)
    np.testing.assert_allclose(resumed.model.encode(TEXTS), straight.model.encode(TEXTS), atol=1e-5)
    FolderLock(out).acquire().release()  # free again after the run
