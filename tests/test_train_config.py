"""``decemb train`` config validation: every bad input is one line naming the key, raised before any training
step (and before the output folder is touched)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from helpers import save_tiny_model
from train_helpers import PAIRS, write_pairs_csv

from decemb.errors import ConfigError
from decemb.train import apply_overrides, load_train_config, parse_train_config
from decemb.train.cli import add_train_parser, run_train
from decemb.train.run import prepare_training


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-config")
    write_pairs_csv(root / "pairs.csv", PAIRS[:4])
    (root / "empty.csv").write_text("query,doc,score\n")
    (root / "blank.csv").write_text('query,doc,score\n"A text","",3\n')
    return {"model": save_tiny_model(root / "tiny"), "root": root}


def base(files: dict[str, Path], **changes) -> dict:
    config = {
        "model": {"source": str(files["model"]), "strategy": "mean", "max_length": 64},
        "data": {"path": str(files["root"] / "pairs.csv"), "columns": {"anchor": "query", "positive": "doc"}},
        "loss": {"name": "mnrl"},
        "training": {"max_steps": 1, "batch_size": 2},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            config.setdefault(section, {})[field] = value
        else:
            config[section] = value
    return config


def error_of(config: dict, tmp_path: Path, **kwargs) -> ConfigError:
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as caught:
        prepare_training(config, out, report=lambda _: None, **kwargs)
    line = str(caught.value)
    assert "\n" not in line, line
    assert not out.exists(), "the output folder is never created by a failed check"
    assert not list(tmp_path.glob("out.partial/checkpoints/*")), "no checkpoint, so no training step"
    return caught.value


# -- schema ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "key", "fragment"),
    [
        ({"loss": {"name": "mnrl", "temprature": 0.1}}, "loss.temprature", "did you mean 'temperature'"),
        ({"trainig": {"lr": 1e-4}}, "trainig", "did you mean 'training'"),
        ({"loss": "mnlr"}, "loss.name", "did you mean 'mnrl'"),
        ({"data": {"preset": "stbs"}}, "data.preset", "did you mean 'stsb'"),
        ({"training": {"batch_size": 0}}, "training.batch_size", "must be > 0"),
        ({"lora": {"dropout": 1.5}}, "lora.dropout", "must be < 1"),
        ({"lora": {"target_modules": 5}}, "lora.target_modules", "must be 'all-linear'"),
        ({"data": {"preset": "stsb", "path": "x.csv"}}, "data", "exactly one of data.preset or data.path"),
        ({"data": {"path": "x.csv"}}, "data", "needs data.columns"),
        ({"hard_negatives": {"range_min": 10, "range_max": 11, "num": 2}}, "hard_negatives", "fewer than num 2"),
        ({"hard_negatives": {"max_uses": 0}}, "hard_negatives.max_uses", "must be > 0"),
        ({"eval": {"tasks": [{"type": "stss", "name": "x"}]}}, "eval.tasks[0].type", "did you mean 'sts'"),
        (
            {"eval": {"tasks": [{"type": "sts", "name": "x", "path": "p", "format": "stsb", "limt": 3}]}},
            "eval.tasks[0].limt",
            "did you mean 'limit'",
        ),
    ],
)
def test_schema_errors_name_the_key_with_a_suggestion(mapping, key, fragment):
    data = {"data": {"preset": "stsb"}, **mapping}
    with pytest.raises(ConfigError) as caught:
        parse_train_config(data, file="c.yaml")
    assert caught.value.key == key, str(caught.value)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"c.yaml: {key}: ")


def test_shorthands_and_defaults():
    config = parse_train_config({"data": {"preset": "stsb"}, "loss": "cosent", "model": {"strategy": "echo"}})
    assert config.loss.name == "cosent" and config.model.strategy == {"name": "echo"}
    assert config.finetune == "lora" and config.lora.target_modules == "all-linear"
    assert parse_train_config({"data": {"preset": "stsb"}, "hard_negatives": True}).hard_negatives.mine


def test_set_overrides_parse_yaml_values():
    data = {"data": {"preset": "stsb"}, "loss": "mnrl", "eval": {"tasks": [{"limit": 3}]}}
    out = apply_overrides(
        data,
        [
            "training.lr=1e-4",
            "loss.temperature=0.02",
            "lora.target_modules=[q_proj, v_proj]",
            "eval.tasks.0.limit=7",
            "model.strategy={name: echo, pooling: last}",
            "save_adapter=true",
        ],
    )
    assert out["training"]["lr"] == 1e-4 and out["loss"] == {"name": "mnrl", "temperature": 0.02}
    assert out["lora"]["target_modules"] == ["q_proj", "v_proj"] and out["eval"]["tasks"][0]["limit"] == 7
    assert out["model"]["strategy"] == {"name": "echo", "pooling": "last"} and out["save_adapter"] is True
    assert data["loss"] == "mnrl", "the input mapping is not changed"
    for bad in ("training", "=3", "eval.tasks.5.limit=1", "data.preset.x=1"):
        with pytest.raises(ConfigError, match="--set"):
            apply_overrides(data, [bad])
    with pytest.raises(ConfigError) as caught:
        parse_train_config(data, overrides=["training.learning_rate=1"])
    assert caught.value.key == "training.learning_rate" and "did you mean 'lr'" in str(caught.value)


def test_yaml_file_errors(tmp_path):
    (tmp_path / "dup.yaml").write_text("loss: mnrl\nloss: cosent\n")
    (tmp_path / "bad.yaml").write_text("loss: [unclosed\n")
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    for name, fragment in [
        ("dup", "duplicate key"),
        ("bad", "invalid YAML"),
        ("empty", "empty"),
        ("none", "not found"),
    ]:
        with pytest.raises(ConfigError, match=fragment) as caught:
            load_train_config(tmp_path / f"{name}.yaml")
        assert str(caught.value).startswith(str(tmp_path / f"{name}.yaml"))


# -- semantic checks, before any training step ------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ({"model__strategy": "ecoh"}, "model.strategy", "Did you mean 'echo'"),
        ({"model__strategy": {"name": "echo", "poling": "last"}}, "model.strategy.poling", "did you mean 'pooling'"),
        ({"loss": {"name": "cosent"}}, "loss.name", "needs scored"),
        ({"loss": {"name": "simcse"}}, "loss.name", "needs texts"),
        ({"loss": {"name": "cosent", "temperature": 0.1}}, "loss.temperature", "applies to loss"),
        ({"loss": {"name": "mntp"}}, "loss.name", "llm2vec"),
        ({"data__columns": {"anchor": "qurey", "positive": "doc"}}, "data.columns.anchor", "did you mean 'query'"),
        ({"data__columns": {"anchor": "query"}}, "data.columns", "no known data shape"),
        ({"data__path": "missing.csv"}, "data.path", "file not found"),
        ({"data__min_score": 4.0}, "data.min_score", "scored pairs"),
        ({"hard_negatives": {"mine": True}, "loss": {"name": "cosent"}}, "hard_negatives.mine", "mnrl"),
        ({"finetune": "full", "lora": {"r": 4}}, "lora", "finetune is 'full'"),
        (
            {"eval": {"tasks": [{"type": "sts", "name": "t", "path": "nope.csv", "format": "stsb"}]}},
            "eval.tasks[0]",
            "not found",
        ),
        ({"model__max_length": 4, "model__strategy": "echo"}, "model.max_length", "max_length"),
        ({"model__layer": 9}, "model.layer", "out of range"),
        ({"lora": {"target_modules": ["q_prj"]}}, "lora.target_modules", "did you mean 'q_proj'"),
        ({"model__source": "/nonexistent/model"}, "model.source", "does not exist"),
    ],
)
def test_bad_input_fails_before_training(files, tmp_path, changes, key, fragment):
    config = base(files, **changes)
    if "data__path" in changes:
        config["data"]["path"] = str(files["root"] / changes["data__path"])
    if "data__min_score" in changes:
        config["data"]["columns"] = {"anchor": "query", "positive": "doc"}
    error = error_of(config, tmp_path)
    assert error.key == key, str(error)
    assert fragment in str(error), str(error)


def test_empty_data_and_blank_rows_name_the_file_and_line(files, tmp_path):
    empty = base(files, data__path=str(files["root"] / "empty.csv"))
    assert "no rows" in str(error_of(empty, tmp_path))
    blank = base(files, data__path=str(files["root"] / "blank.csv"))
    error = error_of(blank, tmp_path)
    assert error.key == "data.columns.positive" and "line 2" in str(error)


def test_bad_jsonl_lines_name_the_file_and_line(files, tmp_path):
    good = '{"query": "a", "doc": "b"}\n\n'
    for name, text, fragment in [
        ("broken.jsonl", good + '{"query": "c",\n', "line 3 is not valid JSON"),
        ("list.jsonl", good + '["c", "d"]\n', "line 3 is not a JSON object"),
    ]:
        path = tmp_path / name
        path.write_text(text)
        error = error_of(base(files, data__path=str(path)), tmp_path)
        assert error.key == "data.path" and str(path) in str(error) and fragment in str(error), str(error)


def test_existing_output_is_refused(files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="already exists") as caught:
        prepare_training(base(files), out, report=lambda _: None)
    assert caught.value.key == "--out" and (out / "keep.txt").exists()


def test_cli_parser_and_run(files, tmp_path):
    parser = argparse.ArgumentParser(prog="decemb")
    add_train_parser(parser.add_subparsers(dest="command"))
    config = tmp_path / "c.yaml"
    config.write_text(
        f"model: {{source: {files['model']}, strategy: mean, max_length: 32}}\n"
        f"data: {{path: {files['root'] / 'pairs.csv'}, columns: {{anchor: query, positive: doc}}}}\n"
        "training: {max_steps: 1, batch_size: 2, progress: false}\n"
    )
    args = parser.parse_args(
        ["train", str(config), "--out", str(tmp_path / "o"), "--set", "training.lr=1e-3", "--threads", "1"]
    )
    assert args.threads == 1 and args.overrides == ["training.lr=1e-3"]
    assert run_train(args) == 0
    assert (tmp_path / "o" / "model" / "modules.json").is_file() and not (tmp_path / "o.partial").exists()
    bad = parser.parse_args(["train", str(config), "--out", str(tmp_path / "p"), "--set", "loss.name=cosnet"])
    with pytest.raises(ConfigError, match="did you mean 'cosent'"):
        run_train(bad)


def test_missing_training_packages_are_one_line(files, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "datasets" else real(name, *a))
    error = error_of(base(files), tmp_path)
    assert "needs datasets" in str(error) and "decemb[train]" in str(error)


def test_module_entry_point_exits_2_with_one_line(files, tmp_path, capsys):
    from decemb.train.__main__ import main

    config = tmp_path / "c.yaml"
    config.write_text("data: {preset: stsb}\nloss: {name: mnrl, temprature: 1}\n")
    assert main([str(config), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "loss.temprature: unknown key (did you mean 'temperature'?)" in err
