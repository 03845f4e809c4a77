"""LoadOptions at every entry point: the comparison's model entry, the training config's model section and the
command-line flags of encode / search build / search query / serve / diagnose take the same keys from it, pass
them to the loader in one piece, and name a bad value's key in one line; training refuses the int8 backend."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch
from helpers import OWN_DATA, OWN_TASKS, isolate, make_config, save_tiny_model
from scipy import stats

import decemb
from decemb.cli import build_parser, main
from decemb.cli_args import add_load_options, literal_choices, load_flag, load_options_from_args
from decemb.compare import ConfigError, parse_config, run_comparison
from decemb.compare.config import ModelConfig
from decemb.int8 import RowInt8Linear
from decemb.load_options import LOAD_KEYS, LoadOptions
from decemb.strategies import strategy_of
from decemb.tasks import load_task
from decemb.train.config import ModelSection
from decemb.train.model import build_model
from decemb.train.output import fingerprint
from decemb.train.parsing import parse_train_config

LOADING_COMMANDS = [("encode",), ("search", "build"), ("search", "query"), ("serve",), ("diagnose",)]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from isolate(tmp_path, monkeypatch)


def _subparser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


# -- the same field list everywhere ---------------------------------------------------------------


@pytest.mark.parametrize("config", [ModelConfig, ModelSection])
def test_every_load_key_is_a_config_key_with_loadoptions_own_validation(config) -> None:
    assert set(LOAD_KEYS) <= set(config.model_fields)
    assert issubclass(config, LoadOptions)  # one definition: the keys, descriptions and validators are inherited
    for key in LOAD_KEYS:
        assert config.model_fields[key].description, f"{config.__name__}.{key} has no description"


@pytest.mark.parametrize("path", LOADING_COMMANDS, ids=" ".join)
def test_every_load_key_is_a_flag_of_each_loading_command(path) -> None:
    actions = {option: action for action in _subparser(path)._actions for option in action.option_strings}
    for key, field in LoadOptions.model_fields.items():
        action = actions.get(load_flag(key))
        assert action is not None, f"decemb {' '.join(path)} has no {load_flag(key)}"
        assert action.dest == key and action.default is None
        assert action.help.split()[0] == field.description.split()[0]  # its description is the help
        assert action.choices == literal_choices(field.annotation)


def test_flags_round_trip_into_loadoptions_and_absent_flags_keep_its_defaults() -> None:
    parser = _subparser(("encode",))
    base = ["--model", "m", "in.txt", "out.npy"]
    assert load_options_from_args(parser.parse_args(base)) == LoadOptions()
    given = ["--dtype", "bf16", "--device", "cpu", "--device-map", "auto", "--attn-implementation", "eager"]
    given += ["--revision", "v1", "--adapter", "lora", "--trust-remote-code", "--backend", "int8"]
    expected = LoadOptions(
        dtype="bf16", device="cpu", device_map="auto", attn_implementation="eager", revision="v1",
        adapter="lora", trust_remote_code=True, backend="int8",
    )  # fmt: skip
    assert load_options_from_args(parser.parse_args([*base, *given])) == expected


def test_literal_values_become_choices_and_exclude_drops_a_flag() -> None:
    assert literal_choices(Literal["a", "b"] | None) == ["a", "b"]
    assert literal_choices(str | None) is None
    parser = argparse.ArgumentParser()
    add_load_options(parser, exclude=("adapter",))
    options = {option for action in parser._actions for option in action.option_strings}
    assert "--adapter" not in options and "--backend" in options


# -- one line naming the key ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"backend": "int9"}, "models[0].backend: unknown backend 'int9'. Did you mean 'int8'?"),
        ({"dtype": "fp8"}, "models[0].dtype: unknown dtype 'fp8'; expected one of float32"),
        ({"trust_remote_code": "maybe"}, "models[0].trust_remote_code: "),
        ({"backnd": "int8"}, "models[0].backnd: unknown key (did you mean 'backend'?)"),
    ],
)
def test_a_bad_compare_model_key_is_one_line_naming_it(entry, expected, tiny_model_dir, tmp_path) -> None:
    data = make_config(tiny_model_dir, tmp_path)
    data["models"][0].update(entry)
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--backend", "int9"], "--backend: unknown backend 'int9'. Did you mean 'int8'?"),
        (["--dtype", "fp8"], "--dtype: unknown dtype 'fp8'"),
    ],
)
@pytest.mark.parametrize("command", [["encode", "--model", "nowhere", "in.txt", "out.npy"], ["diagnose", "nowhere"]])
def test_a_bad_flag_value_is_one_line_naming_the_flag_before_anything_loads(command, flags, expected, capsys) -> None:
    assert main([*command, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err


# -- backend int8 through a comparison's model entry ----------------------------------------------


def _pearson_from(model) -> float:
    task = load_task(OWN_TASKS["sts"], OWN_DATA)
    one, two = model.encode(task.text1), model.encode(task.text2)
    cosine = (one * two).sum(1) / np.linalg.norm(one, axis=1) / np.linalg.norm(two, axis=1)
    return float(stats.pearsonr(cosine, task.gold).statistic) * 100


def test_backend_int8_in_a_compare_model_entry_runs_the_int8_backend(tiny_model_dir, tmp_path) -> None:
    def pearson(backend: str) -> float:
        data = make_config(tiny_model_dir, tmp_path)  # one shared cache: the backend's fingerprint keeps them apart
        data["models"][0]["backend"] = backend
        results = run_comparison(parse_config(data), show_progress=False)
        return next(r.value for r in results if r.metric == "pearson")

    float32, int8 = pearson("torch"), pearson("int8")
    expected_float = _pearson_from(decemb.load(str(tiny_model_dir), "mean"))
    expected_int8 = _pearson_from(decemb.load(str(tiny_model_dir), "mean", backend="int8"))
    assert float32 == pytest.approx(expected_float, abs=1e-4)
    assert int8 == pytest.approx(expected_int8, abs=1e-4)
    assert abs(expected_int8 - expected_float) > 1e-3  # int8 really differs, so the two checks above tell them apart


def test_an_int8_model_entry_stays_on_cpu_where_cuda_is_the_default(tiny_model_dir, tmp_path, monkeypatch) -> None:
    from decemb.compare import runner

    monkeypatch.setattr(runner, "_default_device", lambda: "cuda")  # as on a GPU machine
    entry = ModelConfig(source=str(tiny_model_dir), backend="int8")
    model, _ = runner._load(entry, 0, None, show_progress=False)
    assert any(isinstance(module, RowInt8Linear) for module in model.modules())
    assert model.get_input_embeddings().weight.device.type == "cpu"


# -- training: the loading keys in one piece, int8 refused ----------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({"backend": "int8"}, "model.backend: training runs on the 'torch' backend"),
        ({"device": "cuda"}, "model.device: training places the model itself: set training.device"),
        ({"dtype": "fp8"}, "model.dtype: unknown dtype 'fp8'; expected one of float32, fp32, bfloat16, bf16"),
    ],
)
def test_training_refuses_int8_and_names_the_key(model, expected) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_train_config({"model": model, "data": {"preset": "stsb"}})
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value)


def test_training_loads_with_every_loading_key_of_its_model_section(tiny_model_dir) -> None:
    section = ModelSection(source=str(tiny_model_dir), dtype="bf16", attn_implementation="eager")
    assert section.dtype == "bfloat16"  # LoadOptions' names, kept canonical in the saved config
    st = build_model(section, strategy_of("mean"))
    backbone = st[0].auto_model
    assert backbone.dtype == torch.bfloat16 and backbone.config._attn_implementation == "eager"


def test_a_run_identity_is_unchanged_by_the_new_keys_at_their_defaults() -> None:
    identity = fingerprint(parse_train_config({"data": {"preset": "stsb"}}))["model"]
    assert set(identity) == {"source", "strategy", "max_length", "layer", "dtype", "attn_implementation"}
    revised = fingerprint(parse_train_config({"data": {"preset": "stsb"}, "model": {"revision": "v2"}}))["model"]
    assert revised == {**identity, "revision": "v2"}
