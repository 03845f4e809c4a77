"""A comparison's rerank stage (issue 11): a retrieval task's `rerank:` key, run after the bi-encoder's scoring,
reported before/after side by side with latency per query per stage; config errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from helpers import OWN_DATA, build_tokenizer, isolate, make_config, parse_report, save_tiny_model, tiny_config
from transformers import AutoModelForCausalLM

import decemb
import decemb.rerank
from decemb.compare import ConfigError, format_report, parse_config, read_results, run_comparison, write_outputs
from decemb.outputs import MARKER
from decemb.search import evaluate_rerank
from decemb.tasks import load_task

METRICS = ["ndcg@10", "mrr@10", "map@100", "recall@10", "recall@100", "accuracy@1"]


def save_tiny_reranker(folder: Path, *, constant: bool = False) -> Path:
    """A tiny random causal LM with its head; ``constant``: a zero head, so every pair scores exactly 0."""
    tokenizer = build_tokenizer(add_bos=True)
    tokenizer.add_tokens([" yes", " no"])  # the plain template's answer words, one token each
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("llama", len(tokenizer))).eval()
    if constant:
        torch.nn.init.zeros_(model.lm_head.weight)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rerank-models")
    return {
        "model": save_tiny_model(root / "model"),
        "reranker": save_tiny_reranker(root / "reranker"),
        "constant": save_tiny_reranker(root / "constant", constant=True),
    }


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from isolate(tmp_path, monkeypatch)


def rerank_config(dirs: dict[str, Path], tmp_path: Path, reranker: str = "reranker", **rerank) -> dict:
    data = make_config(dirs["model"], tmp_path, strategies=["mean", "echo"], tasks=["retrieval", "sts"])
    data["tasks"][0]["rerank"] = {"source": str(dirs[reranker]), "top_k": 5, "batch_size": 4, **rerank}
    return data


def run(data: dict):
    return run_comparison(parse_config(data), show_progress=False)


def test_rerank_stage_matches_evaluate_rerank_and_is_reported_side_by_side(dirs, tmp_path: Path) -> None:
    data = rerank_config(dirs, tmp_path)
    results = run(data)
    plain = [r for r in results if r.stage is None]
    reranked = [r for r in results if r.stage == "rerank"]
    assert len(plain) == 2 * (6 + 2) and len(reranked) == 2 * 6  # the sts task has no rerank stage
    assert {r.task for r in reranked} == {"own-retrieval"} and {r.metric for r in reranked} == set(METRICS)
    without = run({**data, "tasks": [{k: v for k, v in t.items() if k != "rerank"} for t in data["tasks"]]})
    fields = [(r.task, r.strategy, r.metric, r.value, r.ci_low, r.ci_high) for r in plain]
    assert fields == [(r.task, r.strategy, r.metric, r.value, r.ci_low, r.ci_high) for r in without]

    # The same numbers as the library's evaluate_rerank on the same model's embeddings.
    task = load_task({k: v for k, v in data["tasks"][0].items() if k != "rerank"}, OWN_DATA)
    for strategy in ("mean", "echo"):
        st = decemb.load(str(dirs["model"]), strategy=strategy)
        embeddings = {"queries": st.encode_query(task.queries), "corpus": st.encode_document(task.docs)}
        expected = evaluate_rerank(task, decemb.rerank.load_reranker(dirs["reranker"]), top_k=5, embeddings=embeddings)
        rows = {r.metric: r for r in reranked if r.strategy == strategy}
        for metric in METRICS:
            assert rows[metric].value == pytest.approx(expected.after[metric], abs=1e-9)
            assert rows[metric].info["before"] == pytest.approx(expected.before[metric], abs=1e-9)
            assert rows[metric].info["change"] == pytest.approx(expected.gain(metric), abs=1e-9)
        info = rows["ndcg@10"].info
        assert info["top_k"] == 5 and info["reranker"] == "reranker"
        assert set(info["latency_ms"]) == {"retrieve", "rerank"}
        assert all(ms > 0 for ms in info["latency_ms"].values())
    assert any(r.info["change"] != 0 for r in reranked), "a random reranker should move something"

    report = format_report(results)
    section = report.split("### own-retrieval: reranked", 1)[1].split("\n## ", 1)[0]
    assert "`rerank top 5` reorders each query's top 5 by the reranker `reranker`" in section
    header = "| model | strategy | layer | stage | " + " | ".join(METRICS) + " | ms/query | Δ ndcg@10 |"
    assert header in section
    lines = [line for line in section.splitlines() if line.startswith("| tiny |")]
    assert [line.split(" | ")[1:4] for line in lines] == [
        [s, "-1", stage] for s in ("mean", "echo") for stage in ("retrieve", "rerank top 5")
    ]
    mean_rerank = next(r for r in reranked if r.strategy == "mean" and r.main)
    assert f"| {mean_rerank.info['latency_ms']['rerank']:.2f} | {mean_rerank.info['change']:+.2f} [" in lines[1]
    assert f"| {mean_rerank.info['latency_ms']['retrieve']:.2f} |  |" in lines[0]
    assert "| rerank s |" in report  # the timing table has the stage's seconds
    assert len(parse_report(report)) == len(plain)  # the task tables hold the bi-encoder's scores only

    written = write_outputs(results, tmp_path / "out")
    assert {"own-retrieval.png", "own-sts.png", "report.md"} <= set(written)
    assert read_results(tmp_path / "out" / "results.json") == list(results)
    assert (tmp_path / "out" / "report.md").read_text() == report
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != MARKER) == sorted(written)


def test_a_reranker_that_scores_every_pair_alike_changes_nothing(dirs, tmp_path: Path) -> None:
    results = run(rerank_config(dirs, tmp_path, reranker="constant", top_k=8))
    before = {(r.strategy, r.metric): r for r in results if r.stage is None and r.task == "own-retrieval"}
    reranked = [r for r in results if r.stage == "rerank"]
    assert len(reranked) == 2 * 6
    for r in reranked:
        same = before[(r.strategy, r.metric)]
        assert r.value == pytest.approx(same.value, abs=1e-9) and r.info["change"] == 0
        assert (r.ci_low, r.ci_high) == pytest.approx((same.ci_low, same.ci_high), abs=1e-9)
        assert r.info["change_ci"] == [0.0, 0.0]
    assert "+0.00 [+0.00, +0.00]" in format_report(results)


def test_each_reranker_loads_once_per_run(dirs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads = []
    original = decemb.rerank.load_reranker

    def counting(source, **kwargs):
        loads.append((str(source), kwargs.get("adapter")))
        return original(source, **kwargs)

    monkeypatch.setattr(decemb.rerank, "load_reranker", counting)
    data = rerank_config(dirs, tmp_path)
    second = {**data["tasks"][0], "name": "again", "rerank": {**data["tasks"][0]["rerank"], "max_length": 96}}
    data["tasks"].append(second)
    results = run(data)
    assert loads == [(str(dirs["reranker"]), None)]
    assert {r.task for r in results if r.stage == "rerank"} == {"own-retrieval", "again"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["tasks"][1].update(rerank={"source": "smollm2-135m"}),
            r"^tasks\[1\]\.rerank: a rerank stage applies only to retrieval tasks \(this task is 'sts'\)$",
        ),
        (
            lambda d: d["tasks"][0]["rerank"].update(topk=3),
            r"^tasks\[0\]\.rerank\.topk: unknown key \(did you mean 'top_k'\?\)$",
        ),
        (lambda d: d["tasks"][0]["rerank"].update(top_k=0), r"^tasks\[0\]\.rerank\.top_k: must be > 0"),
        (lambda d: d["tasks"][0]["rerank"].update(top_k=101), r"^tasks\[0\]\.rerank\.top_k: must be at most 100"),
        (lambda d: d["tasks"][0]["rerank"].update(source="no/such/folder"), r"^tasks\[0\]\.rerank\.source: "),
        (lambda d: d["tasks"][0]["rerank"].pop("source"), r"^tasks\[0\]\.rerank\.source: required key missing"),
        (lambda d: d["tasks"][0]["rerank"].update(batch_size=-1), r"^tasks\[0\]\.rerank\.batch_size: must be > 0"),
    ],
    ids=["not-retrieval", "typo", "top-k-0", "top-k-101", "missing-source", "no-source", "batch-size"],
)
def test_config_errors_are_one_line_naming_the_key(dirs, tmp_path: Path, change, expected) -> None:
    data = rerank_config(dirs, tmp_path)
    change(data)
    with pytest.raises(ConfigError, match=expected) as error:
        parse_config(data)
    assert "\n" not in str(error.value)


def test_a_reranker_that_cannot_load_fails_before_anything_is_encoded(dirs, tmp_path: Path, monkeypatch) -> None:
    import decemb.engine

    monkeypatch.setattr(decemb.engine.Engine, "embed", lambda *a, **k: pytest.fail("encoded before the check"))
    data = rerank_config(dirs, tmp_path)
    data["tasks"][0]["rerank"]["source"] = str(dirs["model"])  # a base model: no LM head
    with pytest.raises(ConfigError, match=r"^tasks\[0\]\.rerank: model .* has no LM head weights"):
        run(data)


@pytest.mark.parametrize(
    ("max_length", "expected"),
    [
        (12, r"max_length=12 leaves no room for a query and a document"),  # found when the reranker loads
        (66, r"task 'own-retrieval': pair \d+: the query is \d+ tokens"),  # found at the first long query
    ],
)
def test_a_max_length_too_short_names_the_key(dirs, tmp_path: Path, max_length: int, expected: str) -> None:
    with pytest.raises(ConfigError, match=rf"^tasks\[0\]\.rerank\.max_length: {expected}"):
        run(rerank_config(dirs, tmp_path, max_length=max_length))


def test_cli_refuses_a_misplaced_rerank_without_loading_torch(dirs, tmp_path: Path) -> None:
    data = rerank_config(dirs, tmp_path)
    data["tasks"][1]["rerank"] = {"source": str(dirs["reranker"])}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    probe = "import json, sys; from decemb.cli import main; main(sys.argv[1:]); print(json.dumps(sorted(sys.modules)))"
    argv = [sys.executable, "-c", probe, "compare", str(tmp_path / "c.yaml")]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert "torch" not in json.loads(done.stdout)
    message = "tasks[1].rerank: a rerank stage applies only to retrieval tasks (this task is 'sts')"
    assert done.stderr.strip().endswith(message)
    assert len(done.stderr.strip().splitlines()) == 1
