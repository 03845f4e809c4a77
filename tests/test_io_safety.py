"""Safe to load, safe to write: a shard folder is trusted only through the sha256 its manifest records (a
changed shard is re-encoded on resume and refused by ``read_vectors``), and every csv/tsv reader refuses a
row with too few or too many cells in one line naming the file and the line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import isolate, save_tiny_model

from decemb.cli import main
from decemb.distributed import EncodeJob, open_source, plan_input, read_vectors
from decemb.distributed.sources import Shard
from decemb.distributed.worker import SHARD_FIELDS, ShardEncoder
from decemb.encode import read_texts
from decemb.errors import ConfigError
from decemb.search.corpus import read_corpus
from decemb.search.errors import CorpusError
from decemb.tasks._io import read_table
from decemb.tasks.base import TaskDataError

TEXTS = [f"Text number {i} " + "word " * (i % 7) for i in range(12)]
FLIPPED = "shard-000001.parquet"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from isolate(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama-io"))


# -- shard integrity ---------------------------------------------------------------------------------


def encode_folder(model: Path, tmp_path: Path, out: Path) -> int:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"key": f"d{i}", "body": t}) + "\n" for i, t in enumerate(TEXTS)))
    argv = ["encode", "-q", "--model", model, "--column", "body", "--id-column", "key", "--shard-size", "4"]
    return main([str(arg) for arg in [*argv, corpus, out]])


def flip_middle(path: Path, count: int = 16) -> None:
    """Invert ``count`` bytes in the middle of the shard's vector data (its footer stays whole and readable)."""
    import pyarrow.parquet as pq

    chunk = pq.read_metadata(path).row_group(0).column(2)
    data = bytearray(path.read_bytes())
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    middle = start + chunk.total_compressed_size // 2
    data[middle : middle + count] = bytes(b ^ 0xFF for b in data[middle : middle + count])
    path.write_bytes(bytes(data))


def test_resume_reencodes_a_shard_that_fails_its_sha256(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert encode_folder(tiny_model_dir, tmp_path, out) == 0
    ids, vectors = read_vectors(out)
    capsys.readouterr()
    flip_middle(out / FLIPPED)
    flipped = (out / FLIPPED).read_bytes()
    assert encode_folder(tiny_model_dir, tmp_path, out) == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if FLIPPED in line]
    assert len(said) == 1 and "sha256" in said[0] and "encoding it again" in said[0], err
    assert "(2 finished by an earlier run)" in err  # the third one was re-encoded
    assert (out / FLIPPED).read_bytes() != flipped
    again_ids, again = read_vectors(out)
    assert again_ids == ids
    np.testing.assert_array_equal(again, vectors)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sha256"] == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.glob("shard-*")}


def test_read_vectors_refuses_a_flipped_shard_in_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert encode_folder(tiny_model_dir, tmp_path, out) == 0
    flip_middle(out / FLIPPED)
    for partial in (False, True):
        with pytest.raises(ConfigError) as caught:
            read_vectors(out, partial=partial)
        message = str(caught.value)
        assert "\n" not in message and FLIPPED in message and "sha256" in message and str(out) in message, message


def test_a_shard_without_a_recorded_sha256_is_reencoded(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert encode_folder(tiny_model_dir, tmp_path, out) == 0
    ids, vectors = read_vectors(out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.get("sha256", {}).pop("shard-000002.parquet", None)  # as before digests were kept
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"shard-000002\.parquet has no recorded sha256"):
        read_vectors(out)
    capsys.readouterr()
    assert encode_folder(tiny_model_dir, tmp_path, out) == 0
    err = capsys.readouterr().err
    assert "shard-000002.parquet has no recorded sha256" in err and "(2 finished by an earlier run)" in err, err
    again_ids, again = read_vectors(out)
    assert again_ids == ids
    np.testing.assert_array_equal(again, vectors)


def test_the_ray_actor_entry_returns_each_shards_sha256(tiny_model_dir: Path, tmp_path: Path) -> None:
    """What ``map_batches`` calls on a Ray actor: its result rows carry the written file's sha256, which the
    driver records (the in-process path reports through the same ``run``)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS) + "\n")
    plan = plan_input(open_source(corpus), 5)
    encoder = ShardEncoder(EncodeJob(str(tiny_model_dir)), plan.source, str(tmp_path / "out"), "key")
    shards: list[Shard] = list(plan.shards)
    batch = {name: [getattr(shard, name) for shard in shards] for name in SHARD_FIELDS}
    result = encoder(batch)
    assert result["error"] == ["", "", ""]
    files = [tmp_path / "out" / f"shard-{i:06d}.parquet" for i in range(3)]
    assert result["sha256"] == [hashlib.sha256(path.read_bytes()).hexdigest() for path in files]


# -- table readers -----------------------------------------------------------------------------------

GOOD = "key,body,note\nd1,first text,x\nd2,second text,y\n\n  \n\n"  # blank trailing lines are fine
BAD_ROWS = [("d3,third text", 2, "too few"), ("d3,third text,z,extra", 4, "too many")]
TRAIN_ROWS = [
    ("A cat sits.,A cat is sitting.", 2, "too few"),
    ("A cat sits.,A cat is sitting.,3.5,extra", 4, "too many"),
]


def table_file(tmp_path: Path, name: str, row: str | None, sep: str = ",") -> Path:
    text = GOOD if row is None else GOOD.replace("\n\n  \n\n", f"\n{row}\n\n")
    path = tmp_path / name
    path.write_text(text.replace(",", sep))
    return path


@pytest.mark.parametrize(("fmt", "sep"), [("csv", ","), ("tsv", "\t")])
def test_task_tables_refuse_rows_with_the_wrong_cell_count(fmt: str, sep: str, tmp_path: Path) -> None:
    """What compare's tasks (and train's eval tasks) read through, with or without a header; only a caller that
    says so (``ragged``: STS-B's layout, whose rows may carry extra trailing cells) reads ragged rows."""
    good = read_table(table_file(tmp_path, f"good.{fmt}", None, sep), fmt, True, task="t")
    assert good.header == ["key", "body", "note"] and len(good.rows) == 2
    for row, cells, word in BAD_ROWS:
        path = table_file(tmp_path, f"bad.{fmt}", row.replace(",", sep), sep)
        with pytest.raises(TaskDataError) as caught:
            read_table(path, fmt, True, task="t")
        assert str(caught.value) == f"task 't': {path}: line 4 has {cells} cells, the header has 3 ({word})"
        assert len(read_table(path, fmt, False, task="t", ragged=True).rows) == 4
        with pytest.raises(TaskDataError) as caught:  # no header: the first row sets the width
            read_table(path, fmt, False, task="t")
        assert str(caught.value) == f"task 't': {path}: line 4 has {cells} cells, the first row has 3 ({word})"


@pytest.mark.parametrize(("fmt", "sep"), [("csv", ","), ("tsv", "\t")])
def test_encode_inputs_refuse_rows_with_the_wrong_cell_count(fmt: str, sep: str, tmp_path: Path) -> None:
    """Both csv/tsv readers of ``decemb encode``: the in-memory one (.npy/.npz) and the shard planner."""
    good = table_file(tmp_path, f"good.{fmt}", None, sep)
    assert read_texts(good, column="body", id_column="key") == (["first text", "second text"], ["d1", "d2"])
    assert plan_input(open_source(good, "body", "key"), 10).rows == 2
    for row, cells, word in BAD_ROWS:
        path = table_file(tmp_path, f"bad.{fmt}", row.replace(",", sep), sep)
        expected = f"bad.{fmt}: line 4 has {cells} cells, the header has 3 ({word})"
        with pytest.raises(ConfigError) as caught:
            read_texts(path, column="body", id_column="key")
        assert str(caught.value) == f"{path}: line 4 has {cells} cells, the header has 3 ({word})"
        with pytest.raises(ConfigError) as caught:
            plan_input(open_source(path, "body", "key"), 10)
        assert str(caught.value).endswith(expected) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("row", "cells", "word"), TRAIN_ROWS)
def test_train_data_with_a_bad_row_fails_before_any_model_loads(
    row: str, cells: int, word: str, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    import decemb.train.run

    monkeypatch.setattr(decemb.train.run, "build_model", lambda *a, **k: pytest.fail("the model was loaded"))
    data = tmp_path / "train.csv"
    data.write_text(f"sentence1,sentence2,score\nA man plays.,A man is playing.,4.5\n\n{row}\n\n")
    config = tmp_path / "train.yaml"
    config.write_text(
        f"model: {{source: {tiny_model_dir}, strategy: mean}}\n"
        f"data: {{path: {data}, columns: {{text1: sentence1, text2: sentence2, score: score}}}}\n"
        "loss: {name: cosent}\ntraining: {max_steps: 1, batch_size: 2, progress: false}\n"
    )
    assert main(["train", str(config), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{data}: line 4 has {cells} cells, the header has 3 ({word})" in err
    assert not (tmp_path / "o").exists()


def test_a_ray_run_records_every_shards_sha256(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    """``--ray`` (a local cluster of one CPU actor) writes the same manifest digests; an in-process re-run of
    its folder re-encodes the flipped shard to the same vectors."""
    pytest.importorskip("ray", reason="Ray is the optional 'ray' extra")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"key": f"d{i}", "body": t}) + "\n" for i, t in enumerate(TEXTS)))
    argv = ["encode", "-q", "--model", tiny_model_dir, "--column", "body", "--id-column", "key", "--shard-size", "4"]
    out = tmp_path / "out"
    assert main([str(arg) for arg in [*argv, "--ray", "--threads", "1", corpus, out]]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sha256"] == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.glob("shard-*")}
    ids, vectors = read_vectors(out)
    flip_middle(out / FLIPPED)
    capsys.readouterr()
    assert encode_folder(tiny_model_dir, tmp_path, out) == 0
    assert f"{FLIPPED} fails its sha256 check" in capsys.readouterr().err
    again_ids, again = read_vectors(out)
    assert again_ids == ids
    np.testing.assert_allclose(again, vectors, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("fmt", "sep"), [("csv", ","), ("tsv", "\t")])
def test_search_corpus_files_refuse_rows_with_the_wrong_cell_count(fmt: str, sep: str, tmp_path: Path) -> None:
    """``decemb search build``'s corpus reader: csv.DictReader used to fill short rows with None and file
    extra cells under a None key."""
    ids, texts = read_corpus(table_file(tmp_path, f"good.{fmt}", None, sep), id_field="key", text_fields=["body"])
    assert ids == ["d1", "d2"] and texts == ["first text", "second text"]
    for row, cells, word in BAD_ROWS:
        path = table_file(tmp_path, f"bad.{fmt}", row.replace(",", sep), sep)
        with pytest.raises(CorpusError) as caught:
            read_corpus(path, id_field="key", text_fields=["body"])
        assert str(caught.value) == f"{path}: line 4 has {cells} cells, the header has 3 ({word})"
