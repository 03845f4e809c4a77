"""``decemb encode --ray`` on a local Ray cluster of 2 CPUs: the same vectors as the in-process encode, in input
order; a run killed mid-way (``kill -9`` of the driver) resumes to the identical output; an unreachable
cluster fails at once in one line; the command line still starts without importing Ray."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import isolate, save_tiny_model

from decemb.cli import main
from decemb.distributed import EncodeJob, RayOptions, encode_shards, open_source, read_vectors

ray = pytest.importorskip("ray", reason="Ray is the optional 'ray' extra")

WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "rain", "falls", "on", "hills")


def corpus_rows(count: int) -> list[dict[str, str]]:
    """Texts of many lengths (the length-sorted batches then differ between the two paths)."""
    return [{"doc": f"id-{i:05d}", "text": " ".join(WORDS[(i + k) % len(WORDS)] for k in range(1 + i % 41))}
            for i in range(count)]  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One local Ray cluster for the module (2 CPUs: 2 CPU actors); yields its address."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama-ray"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in corpus_rows(600)), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from isolate(tmp_path, monkeypatch)


def encode_args(model: Path, corpus: Path, output: Path, *extra: str) -> list[str]:
    base = ["encode", "-q", "--model", model, "--column", "text", "--id-column", "doc", "--threads", "1"]
    return [str(arg) for arg in [*base, *extra, corpus, output]]


@pytest.fixture(scope="module")
def reference(cluster: str, tiny_model_dir: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted Ray run with 2 actors (shards of 5 rows)."""
    out = tmp_path_factory.mktemp("ray") / "reference"
    job = EncodeJob(str(tiny_model_dir), "mean")
    run = encode_shards(job, open_source(corpus, "text", "doc"), out, shard_size=5, ray=RayOptions(actors=2))
    assert (run.rows, run.shards, run.embedded, run.hidden_size) == (600, 120, 120, 32)
    return out


def test_ray_vectors_equal_the_in_process_encode_in_input_order(
    reference: Path, tiny_model_dir: Path, corpus: Path, tmp_path: Path
) -> None:
    assert main(encode_args(tiny_model_dir, corpus, tmp_path / "e.npz")) == 0
    ids, vectors = read_vectors(reference)
    with np.load(tmp_path / "e.npz") as saved:
        assert ids == list(saved["ids"]) == [row["doc"] for row in corpus_rows(600)]
        np.testing.assert_allclose(vectors, saved["embeddings"], atol=1e-5, rtol=0)
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["complete"] and manifest["identity"]["strategy"] == {"name": "mean", "options": {}}
    assert len(manifest["identity"]["fingerprint"]) == 64


def test_a_killed_run_resumes_to_the_identical_output(
    cluster: str, reference: Path, tiny_model_dir: Path, corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    argv = encode_args(tiny_model_dir, corpus, out, "--shard-size", "5", "--ray-address", cluster, "--actors", "2")
    log = tmp_path / "driver.log"  # a file, not a pipe nobody reads: a full pipe would stall the driver
    with log.open("wb") as stderr:
        driver = subprocess.Popen(
            [sys.executable, "-m", "decemb.cli", *argv], stdout=subprocess.DEVNULL, stderr=stderr,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while len(list(out.glob("shard-*.parquet"))) < 3 and driver.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(driver.pid, signal.SIGKILL)  # the driver, mid-way
            driver.wait(timeout=30)
        finally:
            if driver.poll() is None:
                os.kill(driver.pid, signal.SIGKILL)
    time.sleep(2)  # the killed job's actors are stopped by Ray
    written = len(list(out.glob("shard-*.parquet")))
    tail = log.read_text(errors="replace")[-2000:]
    assert 3 <= written < 120, f"the run was not killed mid-way ({written} of 120 shards); driver stderr: {tail}"
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    assert main(argv) == 0  # this process joins the cluster as the new driver
    ids, vectors = read_vectors(out)
    expected_ids, expected = read_vectors(reference)
    assert ids == expected_ids
    np.testing.assert_array_equal(vectors, expected)
    for shard in sorted(reference.glob("shard-*.parquet")):
        assert (out / shard.name).read_bytes() == shard.read_bytes(), shard.name


def test_an_unreachable_cluster_fails_at_once_in_one_line(tiny_model_dir: Path, corpus: Path, tmp_path: Path) -> None:
    start = time.perf_counter()
    argv = encode_args(tiny_model_dir, corpus, tmp_path / "out", "--ray-address", "127.0.0.1:1")
    done = subprocess.run([sys.executable, "-m", "decemb.cli", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "decemb encode: error: --ray-address: no Ray cluster answers at 127.0.0.1:1 (Connection refused); "
        "start one with 'ray start --head' or check the address"
    ]
    assert time.perf_counter() - start < 60


def test_encode_help_imports_neither_ray_nor_torch() -> None:
    probe = "import sys; from decemb.cli import main; main(['encode', '--help']); print(sorted(m for m in "
    probe += "('ray', 'torch', 'pyarrow') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "--ray-address ADDR" in done.stdout and done.stdout.strip().endswith("[]")


@pytest.mark.slow
def test_smollm2_on_ray_equals_in_process(cluster: str, tmp_path: Path) -> None:
    """The real model (SmolLM2-135M, echo) on 200 AG News texts: Ray with 2 actors against the in-process path."""
    import csv

    data = Path(os.environ.get("DECEMB_DATA", Path(__file__).parents[2] / "shared" / "data")) / "ag_news" / "test.csv"
    if not data.exists():
        pytest.skip(f"no AG News at {data}")
    with data.open(encoding="utf-8") as handle:
        rows = [{"doc": f"ag{i}", "text": f"{r[1]}. {r[2]}"} for i, r in zip(range(200), csv.reader(handle))]
    corpus = tmp_path / "ag.jsonl"
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    extra = ["--strategy", "echo", "--shard-size", "50"]
    assert main(encode_args(Path("smollm2-135m"), corpus, tmp_path / "local", *extra)) == 0
    assert main(encode_args(Path("smollm2-135m"), corpus, tmp_path / "ray", *extra, "--ray", "--actors", "2")) == 0
    local, remote = read_vectors(tmp_path / "local"), read_vectors(tmp_path / "ray")
    assert local[0] == remote[0]
    np.testing.assert_allclose(remote[1], local[1], atol=1e-5, rtol=0)


def test_search_index_built_on_ray_equals_the_in_process_index(
    cluster: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import decemb
    from decemb.search import SearchIndex

    rows = corpus_rows(40)
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"_id": r["doc"], "text": r["text"]}) + "\n" for r in rows), encoding="utf-8")
    base = ["search", "build", "-q", "--model", str(tiny_model_dir), "--strategy", "mean", "--threads", "1"]
    assert main([*base, str(corpus), str(tmp_path / "local")]) == 0
    assert main([*base, "--ray", "--actors", "2", str(corpus), str(tmp_path / "on-ray")]) == 0
    model = decemb.load(tiny_model_dir, "mean")
    queries = ["the quick fox", "rain on hills", "a lazy dog while"]
    local = SearchIndex.open(tmp_path / "local", model).search_texts(queries, model, top_k=10)
    remote = SearchIndex.open(tmp_path / "on-ray", model).search_texts(queries, model, top_k=10)
    for mine, theirs in zip(local, remote, strict=True):
        assert [h.doc_id for h in mine] == [h.doc_id for h in theirs]
        np.testing.assert_allclose([h.score for h in mine], [h.score for h in theirs], atol=1e-5)
    assert main([*base, "--ray", "--add", str(corpus), str(tmp_path / "local")]) == 2  # one-line refusal
