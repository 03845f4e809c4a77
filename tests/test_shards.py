"""Sharded encode without Ray: input plans and shard reads for every format, the shard folder (manifest,
resume, refusals), and one-line errors for bad input."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import isolate, save_tiny_model

from decemb.cli import main
from decemb.distributed import EncodeJob, encode_shards, open_source, plan_input, read_shard, read_vectors

TEXTS = [f"Document {i}: " + " ".join(["word"] * (i % 13)) + ("\u00e9t\u00e9" if i % 5 == 0 else "") for i in range(23)]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private decemb cache, no data root from the environment, one torch thread."""
    yield from isolate(tmp_path, monkeypatch)


def write_corpus(folder: Path, fmt: str, texts: list[str] = TEXTS, ids: list[str] | None = None) -> Path:
    """The corpus in one format (ids ``d0``, ``d1``…), with a BOM, blank lines and multi-line CSV fields."""
    ids = ids or [f"d{i}" for i in range(len(texts))]
    path = folder / f"corpus.{fmt}"
    if fmt == "jsonl":
        lines = [
            json.dumps({"key": i, "body": t}) + ("\n\n" if n == 3 else "\n") for n, (i, t) in enumerate(zip(ids, texts))
        ]
        path.write_text("".join(lines), encoding="utf-8")
    elif fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        rows = [f'{i}{sep}"{t}{chr(10) + "more" if n == 2 else ""}"' for n, (i, t) in enumerate(zip(ids, texts))]
        path.write_text("\ufeffkey" + sep + "body\n" + "\n".join(rows) + "\n", encoding="utf-8")
    elif fmt == "txt":
        path.write_text("\ufeff" + "\n".join(t if n != 4 else t + "\n" for n, t in enumerate(texts)) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path.mkdir()
        half = len(texts) // 2
        for part, rows in (("a", slice(0, half)), ("b", slice(half, None))):
            table = pa.table({"key": ids[rows], "body": texts[rows]})
            pq.write_table(table, path / f"{part}.parquet", row_group_size=4)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama as a model folder (what ``--model`` names)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama-shards"))


def expected_texts(fmt: str) -> list[str]:
    return [t + ("\nmore" if fmt in ("csv", "tsv") and n == 2 else "") for n, t in enumerate(TEXTS)]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "tsv", "txt", "parquet"])
def test_every_shard_reads_back_its_own_rows(fmt: str, tmp_path: Path) -> None:
    columns = {} if fmt == "txt" else {"column": "body", "id_column": "key"}
    source = open_source(write_corpus(tmp_path, fmt), **columns)
    plan = plan_input(source, shard_size=5)
    assert plan.rows == len(TEXTS) and [s.stop - s.start for s in plan.shards] == [5, 5, 5, 5, 3]
    ids, texts = zip(*(pair for shard in plan.shards for pair in zip(*read_shard(source, shard))))
    assert list(texts) == expected_texts(fmt)
    assert list(ids) == ([str(i) for i in range(len(TEXTS))] if fmt == "txt" else [f"d{i}" for i in range(len(TEXTS))])
    assert plan_input(source, shard_size=7).digest == plan.digest  # the digest is the content's, not the cut's


def test_shard_folder_equals_the_in_process_encode_and_resumes(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    corpus = write_corpus(tmp_path, "jsonl")
    args = ["--model", tiny_model_dir, "--column", "body", "--id-column", "key", "-q"]
    assert main([str(a) for a in ["encode", *args, corpus, tmp_path / "e.npz"]]) == 0
    assert main([str(a) for a in ["encode", *args, "--shard-size", "6", corpus, tmp_path / "out"]]) == 0
    assert "in 4 shard(s)" in capsys.readouterr().err
    ids, vectors = read_vectors(tmp_path / "out")
    with np.load(tmp_path / "e.npz") as saved:
        assert ids == list(saved["ids"])
        np.testing.assert_allclose(vectors, saved["embeddings"], atol=1e-5, rtol=0)
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").glob("shard-*")}
    (tmp_path / "out" / "shard-000002.parquet").unlink()
    (tmp_path / "out" / ".shard-000003.parquet.x1.tmp").write_bytes(b"half")  # a killed writer's leftover
    assert main([str(a) for a in ["encode", *args, "--shard-size", "6", corpus, tmp_path / "out"]]) == 0
    assert "(3 finished by an earlier run)" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").glob("shard-*")} == before
    assert not list((tmp_path / "out").glob(".shard-*"))


def test_library_run_reports_what_it_did(tiny_model_dir: Path, tmp_path: Path) -> None:
    source = open_source(write_corpus(tmp_path, "txt"))
    job = EncodeJob(str(tiny_model_dir), "last", settings={"max_batch_tokens": 64}, normalize=True)
    run = encode_shards(job, source, tmp_path / "out", shard_size=10)
    assert (run.rows, run.shards, run.embedded, run.hidden_size) == (len(TEXTS), 3, 3, 32)
    ids, vectors = read_vectors(tmp_path / "out")
    assert ids == [str(i) for i in range(len(TEXTS))]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encode_shards(job, source, tmp_path / "out", shard_size=10).embedded == 0


def encode_error(capsys, *argv: object) -> str:
    code = main([str(arg) for arg in ["encode", "-q", *argv]])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("fmt", "args", "expected"),
    [
        ("jsonl", ["--id-column", "uid"], r"--id-column 'uid': no such column on line 1 \(columns: key, body\)"),
        ("csv", ["--id-column", "uid"], r"corpus\.csv: --id-column 'uid': no such column \(columns: key, body\)"),
        ("parquet", ["--id-column", "uid"], r"--id-column 'uid': no such column in a\.parquet \(columns: key, body\)"),
        ("parquet", ["--column", "text"], r"--column 'text': no such column in a\.parquet"),
        ("txt", ["--id-column", "key"], r"corpus\.txt: --column/--id-column need a \.csv, \.tsv, \.jsonl or \.parquet"),
    ],
)
def test_missing_columns_are_one_line(fmt, args, expected, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    corpus = write_corpus(tmp_path, fmt)
    column = [] if fmt == "txt" else ["--column", "body"]
    err = encode_error(capsys, "--model", tiny_model_dir, *column, *args, corpus, tmp_path / "out")
    assert re.search(expected, err), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("fmt", "where"), [("jsonl", "lines 2 and 7"), ("csv", "lines 3 and 8"), ("parquet", "rows 1 and 5")]
)
def test_duplicate_ids_are_refused(fmt: str, where: str, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    ids = [f"d{i}" for i in range(len(TEXTS))]
    ids[5] = "d1"
    corpus = write_corpus(tmp_path, fmt, ids=ids)
    err = encode_error(
        capsys, "--model", tiny_model_dir, "--column", "body", "--id-column", "key", corpus, tmp_path / "o"
    )
    assert f"--id-column 'key': duplicate id 'd1' ({where})" in err


def test_empty_text_and_bad_json_name_the_line(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"key": "a", "body": "fine"}\n{"key": "b", "body": " "}\n')
    err = encode_error(capsys, "--model", tiny_model_dir, "--column", "body", corpus, tmp_path / "o")
    assert "c.jsonl: --column 'body': empty value on line 2" in err
    corpus.write_text('{"key": "a", "body": "fine"}\n{"key": \n')
    assert "c.jsonl: line 2 is not valid JSON" in encode_error(capsys, "--model", tiny_model_dir, "--column", "body",
                                                              corpus, tmp_path / "o")  # fmt: skip


def test_output_folders_that_are_not_this_run_are_refused(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    corpus = write_corpus(tmp_path, "txt")
    base = ["--model", tiny_model_dir, "--shard-size", "8", corpus]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("x")
    assert "holds files that are not a decemb shard run (mine.txt)" in encode_error(capsys, *base, tmp_path / "notes")
    (tmp_path / "file").write_text("x")
    assert "exists and is not a folder" in encode_error(capsys, *base, tmp_path / "file")
    assert main([str(a) for a in ["encode", "-q", *base, tmp_path / "out"]]) == 0
    capsys.readouterr()
    other = ["--strategy", "last"]
    assert "holds shards of another run (strategy differ)" in encode_error(capsys, *base, *other, tmp_path / "out")
    (tmp_path / "other").mkdir()
    save_tiny_model(tmp_path / "other")  # the same architecture, other random weights
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tmp_path / "other")
    model.get_input_embeddings().weight.data.mul_(2)
    model.save_pretrained(tmp_path / "other")
    capsys.readouterr()
    err = encode_error(capsys, "--model", tmp_path / "other", "--shard-size", "8", corpus, tmp_path / "out")
    assert re.search(r"out: holds shards of another model \(fingerprint \w{12}, source '.*tiny-llama-shards", err), err
    corpus.write_text(corpus.read_text() + "one more text\n")
    assert "input differ" in encode_error(capsys, *base, tmp_path / "out")


def test_a_stray_shard_of_another_run_is_refused(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    corpus = write_corpus(tmp_path, "txt")
    for name, strategy in (("a", "mean"), ("b", "last")):
        argv = ["encode", "-q", "--model", tiny_model_dir, "--strategy", strategy, "--shard-size", "8", corpus]
        assert main([str(a) for a in [*argv, tmp_path / name]]) == 0
    capsys.readouterr()
    (tmp_path / "a" / "shard-000001.parquet").unlink()
    shutil.copy(tmp_path / "b" / "shard-000001.parquet", tmp_path / "a")
    err = encode_error(capsys, "--model", tiny_model_dir, "--shard-size", "8", corpus, tmp_path / "a")
    assert "shard-000001.parquet is a shard of another run" in err


@pytest.mark.parametrize(
    ("args", "output", "expected"),
    [
        (["--ray"], "e.npy", "e.npy: Ray writes Parquet shards into a folder"),
        (["--actors", "2"], "out", "--actors: --actors, --cpus-per-actor and --gpus-per-actor need --ray"),
        (["--ray", "--device", "cuda"], "out", "--device: CUDA actors need GPUs: pass --gpus-per-actor"),
    ],
)
def test_ray_option_mistakes(args, output, expected, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    err = encode_error(capsys, "--model", tiny_model_dir, *args, write_corpus(tmp_path, "txt"), tmp_path / output)
    assert expected in err
