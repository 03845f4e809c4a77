"""The comparison runner (decemb.compare): config semantics, shared forwards, the cache, reports."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import DATA_ROOT, OWN_DATA, OWN_TASKS, isolate, make_config, parse_report, save_tiny_model

import decemb
from decemb.compare import (
    ConfigError,
    Result,
    format_report,
    load_config,
    parse_config,
    read_results,
    resolve_cache_path,
    resolve_data_root,
    run_comparison,
    task_instruction,
    write_outputs,
)
from decemb.outputs import MARKER
from decemb.tasks import load_task

METRICS = {
    "sts": {"spearman", "pearson"},
    "retrieval": {"ndcg@10", "mrr@10", "map@100", "recall@10", "recall@100", "accuracy@1"},
    "classification": {"accuracy", "f1_macro"},
    "clustering": {"v_measure"},
}

needs_data = pytest.mark.skipif(not DATA_ROOT.is_dir(), reason=f"evaluation data not found at {DATA_ROOT}")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from isolate(tmp_path, monkeypatch)


def run(data: dict, **kwargs):
    return run_comparison(parse_config(data), show_progress=False, **kwargs)


def by_key(results) -> dict:
    return {(r.model, r.strategy, r.layer, r.task, r.metric): r.value for r in results}


def unique_texts(data: dict) -> int:
    """Distinct (kind, text) pairs over the config's tasks: one forward each when strategies share renderings."""
    seen = set()
    for task_config in data["tasks"]:
        for request in load_task(task_config, data["data_root"]).requests().values():
            seen.update((request.kind, text) for text in request.texts)
    return len(seen)


# -- config --------------------------------------------------------------------------------------


def test_labels_shorthand_and_defaults(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = make_config(
        tiny_model_dir,
        tmp_path,
        strategies=["mean", {"name": "echo", "pooling": "mean"}, {"name": "echo", "pooling": "last"}],
    )
    data["strategies"].append({"name": "llm2vec", "pooling": "eos", "label": "bi-eos"})
    config = parse_config(data)
    assert [s.display_label for s in config.strategies] == ["mean", "echo", "echo(pooling=last)", "bi-eos"]
    assert config.strategies[2].spec == decemb.build_strategy("echo", pooling="last")
    assert config.layers == [-1]
    assert config.models[0].max_length == 512


def test_output_and_cache_defaults(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = make_config(tiny_model_dir, tmp_path)
    del data["output"], data["cache"]
    path = tmp_path / "my-run.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    assert config.output_dir() == Path("runs") / "my-run"
    assert resolve_cache_path(config) == tmp_path / "decemb-cache" / "embeddings.sqlite"  # $DECEMB_CACHE
    assert resolve_cache_path(config, cache=False) is None
    assert resolve_cache_path(config, cache=tmp_path / "x.sqlite") == tmp_path / "x.sqlite"
    assert resolve_cache_path(parse_config({**data, "cache": False})) is None


def test_data_root_precedence(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one precedence of every data root (decemb.config_base.data_root): the argument, the config's
    data_root, $DECEMB_DATA, ../shared/data."""
    config = parse_config(make_config(tiny_model_dir, tmp_path))
    unset = parse_config({**make_config(tiny_model_dir, tmp_path), "data_root": None})
    assert resolve_data_root(config) == OWN_DATA
    monkeypatch.setenv("DECEMB_DATA", str(tmp_path / "env"))
    assert resolve_data_root(config) == OWN_DATA
    assert resolve_data_root(unset) == tmp_path / "env"
    assert resolve_data_root(config, tmp_path / "arg") == tmp_path / "arg"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(strategy=[]), r"^strategy: unknown key \(did you mean 'strategies'\?\)"),
        (
            lambda d: d["strategies"].append("sgtp"),
            r"^strategies\[1\]\.name: unknown strategy 'sgtp'\. Did you mean 'sgpt'",
        ),
        (
            lambda d: d["strategies"].append({"name": "echo", "poling": "last"}),
            r"^strategies\[1\]\.poling: unknown option for strategy 'echo' \(did you mean 'pooling'\?\)",
        ),
        (
            lambda d: d["strategies"].append({"name": "echo", "pooling": "max"}),
            r"^strategies\[1\]\.pooling: .*'mean' or 'last'",
        ),
        (lambda d: d["strategies"].append({"name": "mean", "label": "mean"}), r"^strategies\[1\]\.label: duplicate"),
        (lambda d: d["tasks"][0].update(limit=0), r"^tasks\[0\]\.limit: must be > 0"),
        (
            lambda d: d["tasks"][0].update(type="sst"),
            r"^tasks\[0\]\.type: unknown task type 'sst' \(did you mean 'sts'\?\)",
        ),
        (lambda d: d.update(layers=[-1, "last"]), r"^layers\[1\]: must be a valid integer"),
        (lambda d: d["models"][0].update(source="smollm2-135"), r"^models\[0\]\.source: .*did you mean 'smollm2-135m'"),
        (lambda d: d["models"][0].update(batch_size=0), r"^models\[0\]\.batch_size: must be > 0"),
    ],
)
def test_config_errors_name_the_key(tiny_model_dir: Path, tmp_path: Path, change, expected: str) -> None:
    data = make_config(tiny_model_dir, tmp_path)
    change(data)
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert re.search(expected, str(caught.value), flags=re.IGNORECASE), str(caught.value)
    assert "\n" not in str(caught.value)


# -- running -------------------------------------------------------------------------------------


def test_all_task_types_end_to_end_on_own_data(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = make_config(tiny_model_dir, tmp_path, strategies=["mean", "instruct"], tasks=list(OWN_TASKS), layers=[-1, 1])
    results = run(data)
    sizes = {"own-sts": 10, "own-retrieval": 4, "own-classification": 6, "own-clustering": 12}
    for task_type, task_config in OWN_TASKS.items():
        rows = [r for r in results if r.task == task_config["name"]]
        assert {r.metric for r in rows} == METRICS[task_type]
        assert len(rows) == 2 * 2 * len(METRICS[task_type])  # strategies × layers × metrics
        assert all(r.task_type == task_type and r.n == sizes[r.task] for r in rows)
        assert all(math.isfinite(r.value) for r in rows)
        assert sum(r.main for r in rows) == 4
    assert all(r.seconds >= 0 and r.encode_seconds > 0 for r in results)
    assert set(results.encode_seconds) == {("tiny", name) for name in sizes}


@needs_data
def test_each_task_type_on_real_data_slices(tiny_model_dir: Path, tmp_path: Path) -> None:
    tasks = [
        {"type": "sts", "name": "stsb-dev", "path": "stsbenchmark/sts-dev.csv", "format": "stsb", "limit": 24},
        {"type": "retrieval", "name": "scifact", "path": "scifact", "split": "test", "limit": 6, "corpus_limit": 30},
        {
            "type": "classification",
            "name": "banking77",
            "path": "banking77",
            "format": "csv",
            "text": "text",
            "label": "category",
            "limit": 154,
        },
        {
            "type": "clustering",
            "name": "agnews",
            "path": "ag_news/test.csv",
            "format": "csv",
            "header": False,
            "text": [1, 2],
            "label": 0,
            "limit": 40,
        },
    ]
    data = make_config(tiny_model_dir, tmp_path, strategies=["sgpt", {"name": "echo", "pooling": "last"}], tasks=tasks)
    data["data_root"] = str(DATA_ROOT)
    results = run(data)
    expected_n = {"stsb-dev": 24, "scifact": 6, "banking77": 154, "agnews": 40}
    for task in tasks:
        rows = [r for r in results if r.task == task["name"]]
        assert {r.metric for r in rows} == METRICS[task["type"]]
        assert {r.strategy for r in rows} == {"sgpt", "echo(pooling=last)"}
        assert all(r.n == expected_n[task["name"]] and math.isfinite(r.value) for r in rows)


def test_limit_caps_every_task(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = make_config(tiny_model_dir, tmp_path, tasks=["sts", "clustering"])
    results = run(data, limit=6, cache=False)
    assert {r.task: r.n for r in results} == {"own-sts": 6, "own-clustering": 6}
    assert results.config.tasks[0].limit == 6


def test_shared_forward_mean_last_sgpt_and_layers(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = make_config(tiny_model_dir, tmp_path, strategies=["mean", "last", "sgpt"], tasks=["sts"], layers=[-1, 0, 1])
    texts = unique_texts(data)
    assert texts < 20  # the STS fixture repeats sentences across pairs: they are embedded once
    results = run(data, cache=False)
    assert results.stats["tiny"].sequences_run == texts  # not 3 strategies × 3 layers × 20 sentences
    alone = run(make_config(tiny_model_dir, tmp_path, strategies=["mean"], tasks=["sts"]), cache=False)
    assert alone.stats["tiny"].forward_passes == results.stats["tiny"].forward_passes
    for metric in ("spearman", "pearson"):  # sharing changes nothing
        key = ("tiny", "mean", -1, "own-sts", metric)
        assert by_key(results)[key] == pytest.approx(by_key(alone)[key], abs=1e-9)


def test_second_run_is_free_and_identical(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = make_config(tiny_model_dir, tmp_path, strategies=["mean", "prompteol"], tasks=["sts", "retrieval"])
    first = run(data)
    assert first.total("forward_passes") > 0 and first.total("cache_hits") == 0
    second = run(data)
    assert second.total("forward_passes") == 0 and second.total("cache_misses") == 0
    assert second.total("cache_hits") == first.total("cache_misses")
    assert by_key(first) == by_key(second)


def test_adding_a_strategy_costs_only_its_own_forwards(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = make_config(tiny_model_dir, tmp_path, strategies=["mean"], tasks=["sts", "retrieval"])
    texts = unique_texts(data)
    run(data)
    data["strategies"].append({"name": "echo", "pooling": "last"})
    data["strategies"].append({"name": "echo", "pooling": "mean"})
    both = run(data)
    stats = both.stats["tiny"]
    assert stats.sequences_run == texts  # the echo renderings, once for both echo poolings; mean from cache
    assert stats.cache_hits == texts and stats.cache_misses == 2 * texts


def test_instruct_without_instruction_uses_the_task_instruction(tiny_model_dir: Path, tmp_path: Path) -> None:
    sts = load_task(OWN_TASKS["sts"], OWN_DATA)
    named = load_task({**OWN_TASKS["classification"], "name": "banking77"}, OWN_DATA)
    plain = decemb.build_strategy("instruct")
    assert task_instruction(plain, sts) == decemb.instruction_for("sts")  # unknown name → the type's
    assert task_instruction(plain, named) == decemb.instruction_for("banking77")
    assert task_instruction(decemb.build_strategy("instruct", instruction="Hi"), sts) is None
    assert task_instruction(decemb.build_strategy("instruct", task="scifact"), sts) is None
    assert task_instruction(decemb.build_strategy("echo"), sts) is None

    explicit = {"name": "instruct", "instruction": decemb.instruction_for("clustering"), "label": "explicit"}
    data = make_config(tiny_model_dir, tmp_path, strategies=["instruct", explicit], tasks=["clustering"])
    values = by_key(run(data, cache=False))
    assert values[("tiny", "instruct", -1, "own-clustering", "v_measure")] == pytest.approx(
        values[("tiny", "explicit", -1, "own-clustering", "v_measure")], abs=1e-9
    )


def test_run_time_errors_name_key_and_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = make_config(tiny_model_dir, tmp_path, layers=[-1, 7])
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"c\.yaml: layers\[1\]: layer 7 is out of range .*model 'tiny'"):
        run_comparison(path, show_progress=False)
    data = make_config(tiny_model_dir, tmp_path, tasks=[{**OWN_TASKS["sts"], "path": "nope.csv"}])
    with pytest.raises(ConfigError, match=r"tasks\[0\]: .*nope\.csv"):
        run(data)


def test_templates_are_checked_at_the_capped_max_length(tmp_path: Path) -> None:
    """GPT-2 learns 12 positions here: the default max_length is capped at 12 before the templates are
    checked, so echo's long template is refused up front, keyed to the model's max_length."""
    from helpers import build_tokenizer
    from transformers import AutoModel, GPT2Config

    tokenizer = build_tokenizer(add_bos=False)
    config = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=12, vocab_size=len(tokenizer))
    AutoModel.from_config(config).save_pretrained(tmp_path / "gpt2")
    tokenizer.save_pretrained(tmp_path / "gpt2")
    data = make_config(tmp_path / "gpt2", tmp_path, strategies=["mean", "echo"])
    with pytest.raises(ConfigError, match=r"^models\[0\]\.max_length: max_length=12 leaves no room .*'echo'"):
        run(data)


# -- outputs -------------------------------------------------------------------------------------


def test_outputs_are_consistent_and_atomic(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = make_config(tiny_model_dir, tmp_path, strategies=["mean", "last", "eos"], tasks=["sts", "clustering"])
    results = run(data)
    out = tmp_path / "report"
    written = write_outputs(results, out)
    assert set(written) == {"results.json", "results.csv", "run.json", "report.md", "own-sts.png", "own-clustering.png"}
    assert sorted(p.name for p in out.iterdir() if p.name != MARKER) == sorted(written)  # no temporary files left
    assert (out / "own-sts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    records = json.loads((out / "results.json").read_text())
    assert records == [r.to_dict() for r in results]
    assert set(records[0]) >= {"model", "strategy", "strategy_name", "options", "layer", "task", "task_type"}
    assert set(records[0]) >= {"metric", "value", "n", "seconds"}
    assert read_results(out / "results.json") == list(results)
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert len(csv_lines) == len(results) + 1 and csv_lines[0].startswith("model,strategy,strategy_name,options")
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["engine_stats"]["tiny"]["sequences_run"] == results.stats["tiny"].sequences_run

    report = (out / "report.md").read_text()
    assert report == format_report(results)
    table = parse_report(report)
    assert len(table) == len(results)
    for r in results:
        value, bold = table[(r.task, r.model, r.strategy, r.layer, r.metric)]
        assert value == pytest.approx(r.value, abs=0.005)
        best = max(x.value for x in results if x.task == r.task and x.metric == r.metric)
        assert bold == (r.value == best)


def test_report_handles_nan_and_json_null() -> None:
    rows = [
        Result("m", s, s, {}, -1, "t", "sts", metric, value, 3, 0.1, 1.0, metric == "spearman")
        for s, values in (("a", (math.nan, 1.0)), ("b", (2.0, 0.5)))
        for metric, value in zip(("spearman", "pearson"), values)
    ]
    report = format_report(rows)
    assert "| m | a | -1 | nan | **1.00** |" in report and "| m | b | -1 | **2.00** | 0.50 |" in report
    assert rows[0].to_dict()["value"] is None and math.isnan(Result.from_dict(rows[0].to_dict()).value)


def test_interrupted_write_keeps_the_previous_file(tmp_path: Path) -> None:
    from decemb.files import atomic_write

    target = tmp_path / "results.json"
    target.write_text("old")

    def fail(handle) -> None:
        handle.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fail)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["results.json"]


def test_progress_callback_and_encode_timing(tiny_model_dir: Path, tmp_path: Path) -> None:
    seen = []
    data = make_config(tiny_model_dir, tmp_path, tasks=["sts", "clustering"])
    results = run_comparison(parse_config(data), show_progress=False, on_progress=lambda r: seen.append(len(r)))
    assert seen == [2, 3]  # after each (model, task): 2 STS metrics, then 1 clustering metric
    assert results.load_seconds["tiny"] > 0
    assert np.isfinite(list(results.encode_seconds.values())).all()
