"""The report's numbers (issue 14): bootstrap intervals over each task's items (table cells and chart error
bars), token counts that agree with the progress bar, and encode time per strategy with shared forwards
attributed."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import OWN_DATA, OWN_TASKS, isolate, make_config, save_tiny_model
from scipy import stats
from sklearn.metrics import f1_score

import decemb.engine
from decemb.compare import Result, format_report, parse_config, run_comparison
from decemb.compare.charts import plot_task
from decemb.compare.stats import bootstrap_ci
from decemb.compare.tables import task_tables
from decemb.tasks import load_task
from decemb.tasks.items import macro_f1, mean_items, pearson, spearman

CELL = re.compile(r"^(\*\*)?-?\d+\.\d\d(\*\*)? \[-?\d+\.\d\d, -?\d+\.\d\d\]$")
MEAN_METRICS = {"ndcg@10", "mrr@10", "map@100", "recall@10", "recall@100", "accuracy@1", "accuracy"}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from isolate(tmp_path, monkeypatch)


def run(data: dict):
    return run_comparison(parse_config(data), show_progress=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


# -- per-item scores and the bootstrap ------------------------------------------------------------


@pytest.mark.parametrize("kind", list(OWN_TASKS))
def test_per_item_scores_reproduce_each_tasks_score(kind: str) -> None:
    task = load_task(OWN_TASKS[kind], OWN_DATA)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        embeddings = {key: rng.normal(size=(len(r.texts), 16)) for key, r in task.requests().items()}
        scores, items = task.score(embeddings), task.score_items(embeddings)
        assert set(items) == set(scores)
        for metric, value in scores.items():
            assert items[metric].value() == pytest.approx(value, abs=1e-9), metric
            assert items[metric].n == task.size()


def test_vectorized_statistics_match_scipy_and_sklearn_per_resample() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 30)), rng.integers(0, 5, size=(6, 30)).astype(float)  # ties in y
    true, predicted = rng.integers(0, 4, size=(6, 30)), rng.integers(0, 5, size=(6, 30))  # label 4: never true
    for row in range(6):
        assert spearman(x, y)[row] == pytest.approx(100 * stats.spearmanr(x[row], y[row]).statistic, abs=1e-9)
        assert pearson(x, y)[row] == pytest.approx(100 * stats.pearsonr(x[row], y[row]).statistic, abs=1e-9)
        expected = f1_score(true[row], predicted[row], average="macro", zero_division=0)
        assert macro_f1(true, predicted)[row] == pytest.approx(100 * expected, abs=1e-9)
    assert math.isnan(float(pearson(np.ones(5), np.arange(5.0))))  # constant side: NaN, as scipy


def test_bootstrap_is_seeded_brackets_the_score_and_narrows_with_more_items() -> None:
    rng = np.random.default_rng(1)
    small, large = mean_items(rng.normal(50, 10, 30)), mean_items(rng.normal(50, 10, 3000))
    low, high = bootstrap_ci(small)
    assert (low, high) == bootstrap_ci(small) and low < small.value() < high
    assert high - low == pytest.approx(2 * 1.96 * 10 / math.sqrt(30), rel=0.35)
    large_low, large_high = bootstrap_ci(large)
    assert large_high - large_low < (high - low) / 5
    assert bootstrap_ci(mean_items([70.0] * 8)) == (70.0, 70.0)
    assert bootstrap_ci(mean_items([70.0])) is None  # one item: no interval
    assert bootstrap_ci(mean_items([1.0, math.nan])) is None


# -- the report ------------------------------------------------------------------------------------


def test_every_score_has_its_interval_in_records_report_and_chart(model_dir, tmp_path: Path, monkeypatch) -> None:
    data = make_config(model_dir, tmp_path, strategies=["mean", "echo"], tasks=list(OWN_TASKS))
    results = run(data)
    assert all(r.ci_low is not None and r.ci_low <= r.ci_high for r in results)
    assert all(r.ci_low <= r.value <= r.ci_high for r in results if r.metric in MEAN_METRICS)
    again = run(data)  # from the cache: same embeddings, same seeded resamples
    assert [(r.ci_low, r.ci_high) for r in again] == [(r.ci_low, r.ci_high) for r in results]

    report = format_report(results)
    assert "[low, high]: 95% bootstrap confidence interval over the task's items" in report
    for text in ("over the 10 pairs", "over the 4 queries", "over the 6 test texts", "over the 12 texts; k-means"):
        assert text in report
    for r in results:
        row = next(line for line in report.splitlines() if line.startswith(f"| tiny | {r.strategy} | -1 |"))
        assert all(CELL.match(cell.strip()) for cell in row.strip("|").split("|")[3:]), row
        assert f"{r.value:.2f}** [{r.ci_low:.2f}, {r.ci_high:.2f}]" in report or (
            f"{r.value:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]" in report
        )

    from matplotlib.axes import Axes

    drawn, original = [], Axes.errorbar

    def errorbar(self, x, y, **kwargs):
        drawn.append((x, kwargs["xerr"]))
        return original(self, x, y, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", errorbar)
    table = task_tables(results)[0]
    plot_task(table, tmp_path / "sts.png")
    ((values, (below, above)),) = drawn
    for row, value, low, high in zip(table.rows, values, below, above, strict=True):
        interval = table.intervals[row][table.main_metric]
        assert (value - low, value + high) == pytest.approx(interval)


def test_token_counts_agree_with_the_progress_bar(model_dir, tmp_path: Path, monkeypatch) -> None:
    bars = []

    class Bar:
        def __init__(self, total=None, desc="", **kwargs) -> None:
            self.total, self.desc, self.n = total, desc, 0
            bars.append(self)

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc) -> None:
            return None

        def update(self, n: int = 1) -> None:
            self.n += n

    monkeypatch.setattr(decemb.engine, "tqdm", Bar)
    strategies = ["mean", "last", "sgpt", "echo"]
    results = run(make_config(model_dir, tmp_path, strategies=strategies, tasks=["sts", "retrieval"]))
    shown = {bar.desc.split()[1]: bar.n for bar in bars}
    assert all(bar.n == bar.total for bar in bars) and set(shown) == {"own-sts", "own-retrieval"}
    report = format_report(results)
    for task, tokens in shown.items():
        assert f"| tiny | {task} | " in report
        row = next(line for line in report.splitlines() if line.startswith(f"| tiny | {task} | ") and "." in line)
        assert row.split(" | ")[4] == f"{tokens:,}"
        per_strategy = sum(r.encode_share_tokens for r in results if r.task == task and r.main)
        assert per_strategy == pytest.approx(tokens)
    stats_ = results.stats["tiny"]
    assert stats_.tokens_rendered == sum(shown.values()) < stats_.tokens_run  # padding is counted apart
    assert f"| {stats_.tokens_rendered:,} | {stats_.tokens_run:,} |" in report


def test_shared_forwards_are_attributed_evenly_and_cache_hits_cost_nothing(model_dir, tmp_path: Path) -> None:
    data = make_config(model_dir, tmp_path, strategies=["mean", "last", "sgpt", "echo"])
    results = run(data)
    main = {r.strategy: r for r in results if r.main}
    tokens = {name: r.encode_share_tokens for name, r in main.items()}
    assert tokens["mean"] == tokens["last"] == tokens["sgpt"] > 0  # one forward, read by three strategies
    assert tokens["echo"] > 2 * tokens["mean"]  # echo reads its text twice, plus a template, alone
    seconds = [r.encode_share_seconds for r in main.values()]
    assert all(s > 0 for s in seconds) and sum(seconds) <= main["mean"].encode_seconds
    # (which strategy took longer is a timing, left to benchmarks: on a busy machine any one call can stall)
    report = format_report(results)
    assert "### Encode time per strategy" in report and "split evenly among them" in report
    cached = run(data)
    assert all(r.encode_share_tokens == 0 for r in cached)
    assert cached.stats["tiny"].tokens_rendered == 0


def test_records_without_the_new_fields_still_read_and_report() -> None:
    old = {
        "model": "m", "strategy": "mean", "strategy_name": "mean", "options": {}, "layer": -1, "task": "t",
        "task_type": "sts", "metric": "spearman", "value": 50.0, "n": 3, "seconds": 0.1, "encode_seconds": 1.0,
        "main": True,
    }  # fmt: skip
    result = Result.from_dict({**old, "a_future_key": 1})
    assert (result.stage, result.interval, result.encode_share_tokens, result.info) == (None, None, None, {})
    report = format_report([result])
    assert "| m | mean | -1 | **50.00** |" in report
    assert "[low, high]" not in report and "Encode time per strategy" not in report
