"""benchmarks/gpu_check.py, the prepared GPU check, in its CPU version (``--tiny``): every check gives its rows with
finite, sane figures (a Spearman and a token count recomputed here independently), an item or a check that fails
is one row and the rest still run, and the deadline interrupts a check and skips what is left."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CORPUS

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import _common  # noqa: E402
import _gpu_env  # noqa: E402
import gpu_check  # noqa: E402

import decemb  # noqa: E402

WORDS = " ".join(CORPUS).split()
TINY = ["--tiny", "--threads", "1"]
PASSAGES = "passages of 4, batch 8"  # the long-text throughput row of --tiny
TINY_PAIRS = gpu_check.SIZES["pairs"][1]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """STS-B test and train files in STS-B's layout (tab-separated, score in column 4, sentences in 5 and 6): 48
    pairs of 2-20 words each from the tests' corpus, with seeded scores in 0..5."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "stsbenchmark"
    folder.mkdir()
    rng = random.Random(0)
    for split in ("test", "train"):
        lines = []
        for i in range(48):
            first, second = (" ".join(rng.choices(WORDS, k=rng.randint(2, 20))) for _ in range(2))
            lines.append(f"main-captions\tMSRvid\t2012{split}\t{i:04d}\t{rng.uniform(0, 5):.3f}\t{first}\t{second}\n")
        (folder / f"sts-{split}.csv").write_text("".join(lines), encoding="utf-8")
    return root


def rows_of(report: dict) -> dict[tuple[str, str], dict]:
    return {(row["check"], row["item"]): row for row in report["rows"]}


def test_the_tiny_run_gives_every_row_with_sane_figures(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    started = time.perf_counter()
    report = gpu_check.main([*TINY, "--data-root", str(data_root), "--out", str(out)])
    assert time.perf_counter() - started < 60
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))  # the file holds the returned table
    rows = rows_of(report)
    strategies = decemb.list_strategies()
    expected = {
        ("precision", "load fp32 + bf16"), *(("precision", name) for name in strategies),
        ("invariance", "sdpa: load"), *(("invariance", f"sdpa: {name}") for name in strategies),
        ("invariance", "flash_attention_2"), ("throughput", "gemm ceiling"),
        *(("throughput", f"{alias}: {part}") for alias in gpu_check.MODELS for part in ("load", "batch 8", PASSAGES)),
        ("train", "lora step (smollm2-135m, bf16)"),
        ("ray", "decemb encode --ray"),
    }  # fmt: skip
    assert set(rows) == expected and len(report["rows"]) == len(expected)
    skipped = {("invariance", "flash_attention_2"), ("ray", "decemb encode --ray")}  # CPU: no flash; no --with-ray
    for key, row in rows.items():
        assert row["status"].startswith("skipped: ") if key in skipped else row["status"] == "ok", (key, row)
        numbers = [v for v in row["figures"].values() if isinstance(v, float)]
        assert all(np.isfinite(numbers)), (key, row["figures"])
        assert row["peak_mib"] is None  # CPU: no CUDA memory to report
    for name in strategies:
        figures = rows[("precision", name)]["figures"]
        assert 0.99 <= figures["cos_min"] <= figures["cos_mean"] <= 1.0 + 1e-9, (name, figures)
        assert -100 <= figures["spearman_bf16"] <= 100 and -100 <= figures["spearman_fp32"] <= 100
        assert figures["spearman_delta"] == pytest.approx(figures["spearman_bf16"] - figures["spearman_fp32"])
        invariance = rows[("invariance", f"sdpa: {name}")]["figures"]
        assert invariance["max_diff_default"] <= 1e-5, (name, invariance)  # float32, as tests/test_robustness.py
        assert invariance["max_diff_deterministic"] <= (0.0 if torch.get_num_threads() == 1 else 1e-5), name
    for alias in gpu_check.MODELS:
        short, long = (rows[("throughput", f"{alias}: {part}")]["figures"] for part in ("batch 8", PASSAGES))
        assert short["texts"] == 32 and long["texts"] == 8  # 16 pairs' sentences; joined 4 by 4
        for figures in (short, long):
            assert figures["tokens_per_s"] > 0 and figures["padded_tokens_per_s"] >= figures["tokens_per_s"]
            assert figures["mfu"] is None and 0 < figures["of_gemm"] < 2  # no datasheet peak on CPU; vs measured GEMM
    train = rows[("train", "lora step (smollm2-135m, bf16)")]["figures"]
    assert train["steps_timed"] == 3 and train["samples_per_s"] > 0 and train["tokens_per_s"] > 0
    assert train["rows_timed"] == 3 * 4  # 3 timed steps of --train-batch 4 pairs (no repeated text: full batches)
    assert train["samples_per_s"] * 3 * train["step_ms"] / 1000 == pytest.approx(12, rel=0.5)  # median vs mean step
    assert report["machine"]["device"] == "cpu" and report["machine"]["tiny"] is True
    recomputed_independently(rows, data_root, tmp_path)


def recomputed_independently(rows: dict[tuple[str, str], dict], data_root: Path, tmp_path: Path) -> None:
    """The mean strategy's float32 Spearman (scipy on the cosines of the same seeded STS-B sample) and the real tokens
    the encode throughput counted (the tiny tokenizer, rebuilt here, on the same sentences)."""
    from scipy.stats import spearmanr

    from decemb.tasks.config import STSTaskConfig
    from decemb.tasks.sts import load_sts

    models = _gpu_env.tiny_models(tmp_path, _common.sts_sentences(data_root, 32))  # seeded: the run's own models
    task = load_sts(
        STSTaskConfig(name="s", path="stsbenchmark/sts-test.csv", format="stsb", limit=TINY_PAIRS), data_root
    )
    model = decemb.load(models["smollm2-135m"], "mean")
    a, b = model.encode(task.text1), model.encode(task.text2)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    expected = spearmanr(cosine, task.gold).statistic * 100
    assert rows[("precision", "mean")]["figures"]["spearman_fp32"] == pytest.approx(expected, abs=1e-6)
    tokenizer = model[0].tokenizer
    real = sum(len(tokenizer(text)["input_ids"]) for text in _common.sts_sentences(data_root, 16))  # BOS + text
    figures = rows[("throughput", "smollm2-135m: batch 8")]["figures"]
    assert figures["tokens_per_s"] * figures["seconds"] == pytest.approx(real, rel=1e-9)


def test_a_failing_check_or_item_does_not_stop_the_others(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decemb, "list_strategies", lambda: ["mean", "no-such-strategy", "last"])
    args = ["--data-root", str(data_root), "--checks", "precision,invariance", "--fail", "precision"]
    rows = rows_of(gpu_check.main([*TINY, *args]))
    assert rows[("precision", "(check)")]["status"] == "error: RuntimeError: injected failure (--fail precision)"
    assert [key for key in rows if key[0] == "precision"] == [("precision", "(check)")]
    assert rows[("invariance", "sdpa: no-such-strategy")]["status"].startswith("error: ")
    assert "no-such-strategy" in rows[("invariance", "sdpa: no-such-strategy")]["status"]
    assert rows[("invariance", "sdpa: mean")]["status"] == rows[("invariance", "sdpa: last")]["status"] == "ok"


def test_the_deadline_interrupts_a_check_and_skips_the_rest(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def endless(ctx):  # a check that would never end: only the alarm stops it
        while True:
            time.sleep(0.05)
        yield

    monkeypatch.setitem(gpu_check.CHECKS, "throughput", endless)
    started = time.perf_counter()
    args = ["--data-root", str(data_root), "--budget-s", "4", "--checks", "throughput,invariance"]
    report = gpu_check.main([*TINY, *args])
    assert time.perf_counter() - started < 4 + 3
    assert [(row["check"], row["item"], row["status"]) for row in report["rows"]] == [
        ("throughput", "(rest)", "skipped: budget (interrupted)"),
        ("invariance", "(all)", "skipped: budget"),
    ]


def test_bad_arguments_are_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in (
        (["--checks", "precision,speed"], "--checks: unknown check 'speed'"),
        (["--throughput-models", "llama-7b"], "--throughput-models: unknown model 'llama-7b'"),
        (["--source", "gpt2=/x"], "--source 'gpt2': expected ALIAS=PATH"),
    ):
        with pytest.raises(SystemExit):
            gpu_check.main([*TINY, *argv])
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_the_ray_check_runs_on_cpu_with_ray(data_root: Path) -> None:
    pytest.importorskip("ray")
    rows = rows_of(gpu_check.main([*TINY, "--data-root", str(data_root), "--checks", "ray", "--with-ray"]))
    figures = rows[("ray", "decemb encode --ray")]["figures"]
    assert rows[("ray", "decemb encode --ray")]["status"] == "ok"
    assert figures["texts"] == 40 and figures["max_diff_vs_in_process"] <= 1e-5
    assert figures["cos_min_vs_in_process"] > 0.9999
