"""``type: mteb`` tasks in ``decemb compare``, offline: mteb's data layout and evaluator, decemb's encoding.

The local datasets are built here in the layout of mteb's Hub datasets. The reference is an independent path:
``mteb.evaluate`` on ``as_mteb_model`` of the same strategy, which encodes through sentence-transformers'
``encode_query``/``encode_document`` instead of the comparison runner's engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

mteb = pytest.importorskip("mteb")

from helpers import DATA_ROOT, isolate, make_config, save_tiny_model  # noqa: E402

import decemb  # noqa: E402
from decemb.compare import ConfigError, parse_config, run_comparison  # noqa: E402
from decemb.instructions import instruction_for  # noqa: E402
from decemb.mteb import as_mteb_model  # noqa: E402
from decemb.tasks import TaskDataError, load_task  # noqa: E402
from decemb.tasks.mteb_replay import ReplayEncoder  # noqa: E402

SENTENCES = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("The cat sat on the mat.", "Dogs run in the park.", 0.5),
    ("A woman is slicing an onion.", "Someone cuts an onion.", 4.0),
    ("Kids are swimming in a lake.", "Children swim in a lake.", 4.6),
    ("The stock market fell today.", "A chef is cooking pasta.", 0.2),
    ("A dog chases a ball.", "A puppy runs after a ball.", 3.9),
    ("He is reading a book.", "She is reading a novel.", 2.8),
    ("The sun sets over the sea.", "Rain falls on the city.", 1.1),
]
DOCS = {f"d{i}": text for i, (_, text, _) in enumerate(SENTENCES)}
QUERIES = {"q0": "who plays the guitar", "q2": "cutting an onion", "q3": "swimming children", "q5": "dog and ball"}
QRELS = {"q0": "d0", "q2": "d2", "q3": "d3", "q5": "d5"}


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with ``sts/`` (STSBenchmark's layout) and ``scifact/`` (mteb/scifact's: three configs)."""
    root = tmp_path_factory.mktemp("mteb-data")
    _jsonl(root / "sts" / "test.jsonl", [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in SENTENCES])
    _jsonl(root / "scifact" / "corpus" / "corpus.jsonl", [{"_id": i, "title": "", "text": t} for i, t in DOCS.items()])
    _jsonl(root / "scifact" / "queries" / "queries.jsonl", [{"_id": i, "text": t} for i, t in QUERIES.items()])
    _jsonl(
        root / "scifact" / "qrels" / "test.jsonl",
        [{"query-id": q, "corpus-id": d, "score": 1} for q, d in QRELS.items()],
    )
    configs = [("corpus", "corpus", "corpus/corpus.jsonl"), ("queries", "queries", "queries/queries.jsonl")]
    lines = ["---", "configs:"]
    for name, split, path in [*configs, ("default", "test", "qrels/test.jsonl")]:
        lines += [f"- config_name: {name}", "  data_files:", f"  - split: {split}", f"    path: {path}"]
    (root / "scifact" / "README.md").write_text("\n".join([*lines, "---", ""]))
    topics = ["my card was declined", "a transfer is pending", "the atm kept my card"]
    for split, count in (("train", 24), ("test", 12)):
        rows = [{"text": f"{topics[i % 3]} ({split} {i})", "label": i % 3} for i in range(count)]
        _jsonl(root / "banking" / f"{split}.jsonl", rows)
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from isolate(tmp_path, monkeypatch)


STS = {"type": "mteb", "task": "STSBenchmark", "path": "sts"}
BANKING = {"type": "mteb", "task": "Banking77Classification", "path": "banking"}
FOLDERS = {"STSBenchmark": "sts", "SciFact": "scifact", "Banking77Classification": "banking"}
SCIFACT = {"type": "mteb", "task": "SciFact", "path": "scifact", "metrics": ["recall_at_10", "mrr_at_10"]}


def _config(model_dir: Path, tmp_path: Path, data: Path, tasks: list[dict], strategies=("mean", "instruct")) -> dict:
    return {**make_config(model_dir, tmp_path, strategies=strategies, tasks=tasks), "data_root": str(data)}


def _reference(model_dir: Path, strategy: str, task: str, data: Path) -> dict[str, float]:
    """``mteb.evaluate`` of ``as_mteb_model`` on the same local data: mteb's own scores, x100."""
    from decemb.mteb import load_task_data, with_local_data

    st = decemb.load(str(model_dir), strategy)
    local = with_local_data(mteb.get_task(task), str(data / FOLDERS[task]))
    result = mteb.evaluate(as_mteb_model(st), load_task_data(local), cache=None, show_progress_bar=False)
    scores = result.task_results[0].scores["test"][0]
    return {key: 100 * value for key, value in scores.items() if isinstance(value, float)}


def test_mteb_tasks_score_as_mteb_evaluate_does_with_e5_instructions(model_dir, tmp_path, data):
    config = _config(model_dir, tmp_path, data, [STS, SCIFACT, BANKING])
    results = run_comparison(parse_config(config), show_progress=False)
    got = {(r.strategy, r.task, r.metric): r for r in results}
    assert {metric for _, task, metric in got if task == "SciFact"} == {"ndcg_at_10", "recall_at_10", "mrr_at_10"}
    assert {metric for _, task, metric in got if task == "STSBenchmark"} == {"cosine_spearman"}
    for strategy in ("mean", "instruct"):
        for task in FOLDERS:
            reference = _reference(model_dir, strategy, task, data)
            for (s, t, metric), record in got.items():
                if (s, t) == (strategy, task):
                    assert record.value == pytest.approx(reference[metric], abs=1e-4), (strategy, task, metric)
                    assert record.main == (metric in ("cosine_spearman", "ndcg_at_10", "accuracy"))
                    assert record.ci_low is None
    assert (
        got[("mean", "SciFact", "ndcg_at_10")].n == len(QRELS)
        and got[("mean", "STSBenchmark", "cosine_spearman")].n == 8
    )
    # instruct's queries carry the E5 instruction of the mteb task; its documents none; mean none at all
    assert (
        got[("instruct", "STSBenchmark", "cosine_spearman")].value
        != got[("mean", "STSBenchmark", "cosine_spearman")].value
    )
    task = load_task(SCIFACT, data)
    assert task.instruction == instruction_for("scifact") and set(task.requests()) == {"query", "document"}
    assert sorted(task.requests()["document"].texts) == sorted(DOCS.values())
    assert mteb.get_task("SciFact").metadata.dataset["path"] == "mteb/scifact"  # mteb's shared metadata untouched


def test_limit_samples_rows_and_queries_with_a_seed(data):
    sts = load_task({**STS, "limit": 3}, data)
    assert sts.size() == 3 and len(sts.requests()["query"].texts) == 6
    assert load_task({**STS, "limit": 3}, data).requests() == sts.requests()
    assert load_task({**STS, "limit": 3, "seed": 1}, data).requests() != sts.requests()
    scifact = load_task({**SCIFACT, "limit": 2}, data)
    assert scifact.size() == 2 and len(scifact.requests()["query"].texts) == 2
    assert len(scifact.requests()["document"].texts) == len(DOCS)  # the corpus stays whole
    banking = load_task({**BANKING, "limit": 6}, data)  # the test split is sampled, mteb's train split is not
    assert banking.size() == 6 and len([t for t in banking.requests()["query"].texts if "(test" in t]) == 6
    assert banking.type == "classification" and banking.main_metric == "accuracy"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"task": "SciFakt"},
            r"tasks\[0\]: task 'SciFakt': task = 'SciFakt': 'SciFakt' not found. Did you mean: 'SciFact'",
        ),
        (
            {"split": "tset"},
            r"tasks\[0\]: .*split = 'tset': mteb task SciFact has no such split \(did you mean 'test'\?\)",
        ),
        (
            {"metrics": ["recall_at_100", "ndgc_at_10"]},
            r"tasks\[0\]: .*metrics\[1\] = 'ndgc_at_10'.*did you mean 'ndcg_at_10'",
        ),
        ({"subsets": ["english"]}, r"tasks\[0\]: .*subsets\[0\] = 'english': mteb task SciFact has no such subset"),
        ({"path": "nowhere"}, r"tasks\[0\]: task 'SciFact': path = 'nowhere': folder not found"),
        ({"nmae": "x"}, r"tasks\[0\]\.nmae: unknown key"),
    ],
)
def test_bad_mteb_entries_fail_in_one_line_before_any_model_loads(model_dir, tmp_path, data, change, message):
    config = _config(model_dir / "missing-model", tmp_path, data, [{**SCIFACT, **change}])
    config["models"][0]["source"] = str(model_dir)  # a real source: the error must come from the task
    with pytest.raises(ConfigError, match=message) as raised:
        run_comparison(parse_config(config), show_progress=False)
    assert "\n" not in str(raised.value)


def test_offline_hub_task_without_local_data_is_a_one_line_error(monkeypatch, model_dir, tmp_path, data):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    config = _config(model_dir, tmp_path, data, [{"type": "mteb", "task": "SciFact"}])
    with pytest.raises(ConfigError, match=r"tasks\[0\]: task 'SciFact': mteb task 'SciFact' cannot load .*offline"):
        run_comparison(parse_config(config), show_progress=False)


def test_replay_refuses_a_text_that_was_not_recorded():
    import numpy as np
    from mteb.types import PromptType

    replay = ReplayEncoder("t", {"query": {"a": 0}}, {"query": np.ones((1, 4))})
    assert replay.encode([{"text": ["a"]}], task_metadata=None, hf_split="test", hf_subset="default").shape == (1, 4)
    with pytest.raises(TaskDataError, match=r"task 't': mteb asked for a document text .*'b'"):
        replay.encode(
            [{"text": ["b"]}], task_metadata=None, hf_split="test", hf_subset="default", prompt_type=PromptType.document
        )


def test_a_second_run_reads_every_mteb_text_from_the_cache(model_dir, tmp_path, data):
    config = _config(model_dir, tmp_path, data, [STS], strategies=("mean",))
    first = run_comparison(parse_config(config), show_progress=False)
    again = run_comparison(parse_config(config), show_progress=False)
    assert first.stats["tiny"].cache_misses == 16 and first.stats["tiny"].cache_hits == 0  # 8 pairs, 16 texts
    assert again.stats["tiny"].cache_hits == 16 and again.stats["tiny"].forward_passes == 0
    assert [r.value for r in again] == [r.value for r in first]


def test_decemb_compare_reports_an_mteb_task_beside_its_own_tasks(model_dir, tmp_path, data):
    import yaml

    from decemb.cli import main

    own = {
        "type": "sts",
        "name": "own-sts",
        "path": str(data / "own.tsv"),
        "format": "tsv",
        "columns": {"text1": 0, "text2": 1, "score": 2},
    }
    (data / "own.tsv").write_text("".join(f"{a}\t{b}\t{s}\n" for a, b, s in SENTENCES))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_config(model_dir, tmp_path, data, [SCIFACT, own], strategies=("mean",))))
    assert main(["compare", str(config), "--quiet", "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## SciFact\n\nretrieval, n = 4, main metric: ndcg_at_10; no intervals (mteb tasks" in report
    assert "| model | strategy | layer | ndcg_at_10 | recall_at_10 | mrr_at_10 |" in report
    assert "## own-sts\n\nsts, n = 8, main metric: spearman; intervals over the 8 pairs" in report
    assert (tmp_path / "out" / "SciFact.png").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_ROOT / "stsbenchmark").is_dir(), reason=f"STS-B not found under {DATA_ROOT}")
def test_real_stsb_scores_the_same_as_mteb_task_and_as_decemb_task(tmp_path):
    """SmolLM2 on the whole STS-B test set, twice in one comparison: decemb's own STS task and mteb's
    STSBenchmark on a local copy in its Hub layout. One set of vectors (the second task reads the cache), two
    implementations of Spearman over cosines: they must agree."""
    rows = []
    for line in (DATA_ROOT / "stsbenchmark" / "sts-test.csv").read_text(encoding="utf-8").splitlines():
        cells = line.split("\t")
        if len(cells) >= 7 and cells[5].strip() and cells[6].strip():
            # decemb's reader strips cells; mteb's jsonl keeps what it is given (9 texts end in a space)
            rows.append({"sentence1": cells[5].strip(), "sentence2": cells[6].strip(), "score": float(cells[4])})
    _jsonl(tmp_path / "mteb-stsb" / "test.jsonl", rows)
    own = {"type": "sts", "name": "stsb", "path": str(DATA_ROOT / "stsbenchmark" / "sts-test.csv"), "format": "stsb"}
    config = {
        "cache": str(tmp_path / "cache.sqlite"),
        "models": [{"name": "smollm2", "source": "smollm2-135m", "max_length": 128}],
        "strategies": ["mean"],
        "tasks": [own, {"type": "mteb", "task": "STSBenchmark", "path": str(tmp_path / "mteb-stsb")}],
    }
    results = {(r.task, r.metric): r for r in run_comparison(parse_config(config), show_progress=False)}
    assert results[("STSBenchmark", "cosine_spearman")].n == results[("stsb", "spearman")].n == len(rows) == 1379
    assert results[("STSBenchmark", "cosine_spearman")].value == pytest.approx(
        results[("stsb", "spearman")].value, abs=1e-6
    )
    assert 30 < results[("stsb", "spearman")].value < 45  # SmolLM2 mean, zero-shot: 35.5 on 400 pairs (docs)
