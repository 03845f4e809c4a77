"""Safe to load, safe to write: one writer at a time on a search index (concurrent adds keep every document,
a writer past its wait is refused naming the holder), readers never see half a commit, a full or read-only
disk is one line with the previous index intact and no orphan file, and counts (top_k, ...) are checked."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest
from helpers import (
    CORPUS,
    OWN_DATA,
    OWN_TASKS,
    build_index,
    folder_files,
    save_tiny_model,
    search_embedder,
)

import decemb
from decemb.cli import main
from decemb.locks import FolderLock
from decemb.search import (
    DuplicateIdError,
    IndexExistsError,
    SearchError,
    SearchIndex,
    SearchPipeline,
    evaluate_rerank,
    exact_rankings,
    rerank_hits,
)
from decemb.search import index as index_module
from decemb.search import store as store_module
from decemb.search.errors import IndexBusyError, IndexWriteError
from decemb.tasks import load_task

IDS = [f"d{i}" for i in range(len(CORPUS))]
ROUNDS, PER_ROUND = 4, 2


@pytest.fixture(scope="module")
def embedder():
    return search_embedder()


def build(folder, embedder, ids=IDS, texts=CORPUS, **options):
    return build_index(folder, embedder, ids, texts, **options)


files = folder_files


GEN1 = ["bm25-1.npz", "docs-1.jsonl", "manifest.json", "vectors-1.faiss"]
GEN2 = ["bm25-2.npz", "docs-2.jsonl", "manifest.json", "vectors-2.faiss"]


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and "rebuild" not in text and "corrupt" not in text.lower(), text
    return text


# -- concurrent writers ------------------------------------------------------------------------------


def round_docs(name: str, number: int) -> tuple[list[str], list[str]]:
    ids = [f"{name}-{number}-{j}" for j in range(PER_ROUND)]
    return ids, [f"{CORPUS[(number + j) % len(CORPUS)]} ({name}, round {number})" for j in range(PER_ROUND)]


def _writer(folder: str, model_dir: str, name: str, barrier, failures) -> None:
    """A writer process: each round it opens the index, meets the other writer, and adds its documents."""
    try:
        model = decemb.load(model_dir, "mean")
        for number in range(ROUNDS):
            index = SearchIndex.open(folder, model)
            barrier.wait(timeout=120)
            index.add(*round_docs(name, number), model)
    except BaseException as error:
        barrier.abort()
        failures.put(f"{name}: {type(error).__name__}: {error}")
        raise SystemExit(1) from None


def test_two_writer_processes_keep_every_document(tmp_path):
    model_dir = save_tiny_model(tmp_path / "model")
    folder = tmp_path / "idx"
    SearchIndex.build(folder, IDS[:3], CORPUS[:3], decemb.load(str(model_dir), "mean"), source=str(model_dir))
    context = multiprocessing.get_context("spawn")
    barrier, failures = context.Barrier(2), context.Queue()
    writers = [
        context.Process(target=_writer, args=(str(folder), str(model_dir), name, barrier, failures))
        for name in ("a", "b")
    ]
    for process in writers:
        process.start()
    seen, errors, deadline = [], [], time.monotonic() + 240
    while any(process.is_alive() for process in writers) and time.monotonic() < deadline:
        try:  # a reader meanwhile: never a half-written index, never fewer documents than before
            seen.append(SearchIndex.open(folder).count)
        except SearchError as error:
            errors.append(str(error))
        time.sleep(0.05)
    for process in writers:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
    reported = []
    while not failures.empty():
        reported.append(failures.get(timeout=1))
    assert [process.exitcode for process in writers] == [0, 0], reported
    assert errors == [] and seen == sorted(seen)
    index = SearchIndex.open(folder, check=True)
    expected = {doc for name in "ab" for number in range(ROUNDS) for doc in round_docs(name, number)[0]}
    assert set(index.ids) == {*IDS[:3], *expected} and index.count == 3 + 2 * ROUNDS * PER_ROUND
    assert index.manifest["generation"] == 1 + 2 * ROUNDS  # one commit per add, none lost
    generation = index.manifest["generation"]
    assert files(folder) == [
        f"bm25-{generation}.npz",
        f"docs-{generation}.jsonl",
        "manifest.json",
        f"vectors-{generation}.faiss",
    ]


def test_a_stale_index_object_adds_on_top_of_another_writers_commit(tmp_path, embedder):
    folder = tmp_path / "idx"
    build(folder, embedder, ids=IDS[:4], texts=CORPUS[:4])
    first, second = SearchIndex.open(folder, embedder), SearchIndex.open(folder, embedder)
    assert first.add(IDS[4:7], CORPUS[4:7], embedder) == 3
    assert second.add(IDS[7:], CORPUS[7:], embedder) == 4  # read before the first add: reloads, then adds
    assert second.ids == IDS and SearchIndex.open(folder, embedder).ids == IDS
    queries = embedder.encode_query(["dogs in the park", "a man with a guitar"])
    full = build(tmp_path / "full", embedder)
    assert [[h.doc_id for h in row] for row in second.search(queries, 11)] == [
        [h.doc_id for h in row] for row in full.search(queries, 11)
    ]
    with pytest.raises(DuplicateIdError, match=r"document id 'd8' is already in the index$"):
        first.add(["new", "d8"], ["fresh text", "added by the other writer"], embedder)  # stale: knows no d8
    assert SearchIndex.open(folder).ids == IDS and files(folder) == [
        "bm25-3.npz",
        "docs-3.jsonl",
        "manifest.json",
        "vectors-3.faiss",
    ]


def test_a_writer_waits_for_the_lock_then_adds(tmp_path, embedder):
    folder = tmp_path / "idx"
    index = build(folder, embedder, ids=IDS[:6], texts=CORPUS[:6])
    lock = FolderLock(folder).acquire()  # another writer, busy for half a second
    threading.Timer(0.5, lock.release).start()
    started = time.monotonic()
    assert index.add(IDS[6:], CORPUS[6:], embedder, lock_wait=30) == 5
    assert time.monotonic() - started >= 0.4 and SearchIndex.open(folder).ids == IDS
    assert (tmp_path / ".idx.decemb-lock").is_file() and files(folder) == GEN2


def test_a_writer_past_its_wait_is_refused_naming_the_holder(tmp_path, embedder):
    folder = tmp_path / "idx"
    index = build(folder, embedder, ids=IDS[:6], texts=CORPUS[:6])
    with FolderLock(folder):
        with pytest.raises(IndexBusyError) as raised:
            index.add(IDS[6:], CORPUS[6:], embedder, lock_wait=0.2)
        assert f"(pid {os.getpid()}) is writing this index" in one_line(raised.value)
        assert raised.value.holder == f"pid {os.getpid()}"
        with pytest.raises(IndexBusyError):
            build(folder, embedder, overwrite=True, lock_wait=0)
    assert index.count == 6 and files(folder) == GEN1
    with FolderLock(tmp_path / "new"), pytest.raises(IndexBusyError):
        build(tmp_path / "new", embedder, lock_wait=0.1)
    assert not (tmp_path / "new").exists()
    assert SearchIndex.open(folder, embedder).ids == IDS[:6]
    assert index.add(IDS[6:], CORPUS[6:], embedder, lock_wait=0) == 5  # free again
    with pytest.raises(SearchError, match=r"lock_wait: must be a number of seconds >= 0 \(got -1\)"):
        index.add(["x"], ["y"], embedder, lock_wait=-1)


def test_a_build_that_raced_another_build_is_refused(tmp_path, embedder, monkeypatch):
    folder = tmp_path / "idx"
    real, raced = index_module.embed_documents, []

    def embed_while_another_builds(model, texts, batch_size, show_progress):
        if not raced:  # the other writer builds the folder while this one embeds
            raced.append(folder)
            build(folder, embedder, ids=IDS[:3], texts=CORPUS[:3])
        return real(model, texts, batch_size, show_progress)

    monkeypatch.setattr(index_module, "embed_documents", embed_while_another_builds)
    with pytest.raises(IndexExistsError, match="an index exists here"):
        build(folder, embedder)
    assert raced and SearchIndex.open(folder).ids == IDS[:3] and files(folder) == GEN1


def test_a_reader_that_loses_the_race_with_a_commit_reads_the_new_generation(tmp_path, embedder, monkeypatch):
    folder = tmp_path / "idx"
    build(folder, embedder, ids=IDS[:6], texts=CORPUS[:6])
    writer, real, calls = SearchIndex.open(folder), store_module.verify, []

    def verify_while_a_writer_commits(where, manifest):
        if not calls:  # between reading the manifest and its files, a commit removes generation 1's files
            calls.append(writer.add(IDS[6:], CORPUS[6:], embedder))
        return real(where, manifest)

    monkeypatch.setattr(store_module, "verify", verify_while_a_writer_commits)
    reader = SearchIndex.open(folder, embedder)
    assert calls == [5] and reader.ids == IDS and reader.manifest["generation"] == 2


# -- a full or read-only disk --------------------------------------------------------------------------


def disk_full_at(where: str, monkeypatch) -> None:
    """ENOSPC part-way: half of the documents file written (after the vectors file), or at the manifest."""
    if where == "manifest":

        def no_room(path, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        monkeypatch.setattr(store_module, "write_text", no_room)
        return
    real = store_module._write

    def half_then_full(path, write, binary):
        if not path.name.startswith("docs-"):
            return real(path, write, binary)

        def half(handle):
            handle.write('{"id": "d0", "text": "half a li')
            handle.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write(2) says it: no file name

        return real(path, half, binary)

    monkeypatch.setattr(store_module, "_write", half_then_full)


@pytest.mark.parametrize("where", ["docs", "manifest"])
def test_a_full_disk_is_one_line_and_leaves_the_index_as_it_was(tmp_path, embedder, monkeypatch, where):
    folder = tmp_path / "idx"
    index = build(folder, embedder, ids=IDS[:6], texts=CORPUS[:6])
    before = (folder / "manifest.json").read_text()
    disk_full_at(where, monkeypatch)
    for _retry in range(3):  # each failed retry leaves nothing behind either
        with pytest.raises(IndexWriteError) as raised:
            index.add(IDS[6:], CORPUS[6:], embedder)
        named = "docs-2.jsonl" if where == "docs" else "manifest.json"
        assert f"{folder}: cannot write the index (No space left on device: {named})" in one_line(raised.value)
        assert raised.value.errno == errno.ENOSPC and files(folder) == GEN1
        assert index.count == 6 and "d6" not in index
    with pytest.raises(IndexWriteError):
        build(tmp_path / "new", embedder)
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    assert (folder / "manifest.json").read_text() == before
    assert SearchIndex.open(folder, embedder).ids == IDS[:6]
    assert index.add(IDS[6:], CORPUS[6:], embedder) == 5
    assert files(folder) == GEN2


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder (see the EROFS test)")
def test_a_read_only_folder_is_one_line_and_leaves_the_index_as_it_was(tmp_path, embedder):
    folder = tmp_path / "idx"
    index = build(folder, embedder, ids=IDS[:6], texts=CORPUS[:6])
    folder.chmod(0o555)
    try:
        with pytest.raises(IndexWriteError, match="Permission denied") as raised:
            index.add(IDS[6:], CORPUS[6:], embedder)
        one_line(raised.value)
        assert files(folder) == GEN1 and SearchIndex.open(folder, embedder).count == 6 and index.count == 6
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("where", ["data", "lock"])
def test_a_read_only_file_system_is_one_line_and_leaves_the_index_as_it_was(tmp_path, embedder, monkeypatch, where):
    folder = tmp_path / "idx"
    index = build(folder, embedder, ids=IDS[:6], texts=CORPUS[:6])

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(getattr(path, "path", path)))

    if where == "data":
        monkeypatch.setattr(store_module, "atomic_file", read_only)
    else:  # the lock file next to the folder cannot be made either
        monkeypatch.setattr(FolderLock, "acquire", read_only)
    with pytest.raises(IndexWriteError) as raised:
        index.add(IDS[6:], CORPUS[6:], embedder)
    assert "Read-only file system" in one_line(raised.value) and raised.value.errno == errno.EROFS
    monkeypatch.undo()
    assert files(folder) == GEN1 and SearchIndex.open(folder, embedder).ids == IDS[:6] and index.count == 6


# -- the command line ------------------------------------------------------------------------------------


@pytest.fixture
def cli_index(tmp_path):
    model_dir = save_tiny_model(tmp_path / "model")
    corpus, more = tmp_path / "corpus.jsonl", tmp_path / "more.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(IDS[:6], CORPUS[:6])))
    more.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(IDS[6:], CORPUS[6:])))
    folder = tmp_path / "idx"
    args = ["search", "build", str(corpus), str(folder), "--model", str(model_dir), "--strategy", "mean"]
    assert main([*args, "-q", "--threads", "1"]) == 0
    return folder, ["search", "build", str(more), str(folder), "--add", "-q", "--threads", "1"]


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("decemb search: error: ") and "Traceback" not in err, err
    return lines[0]


def test_cli_add_on_a_full_disk_prints_one_line(cli_index, capsys, monkeypatch):
    folder, add = cli_index
    capsys.readouterr()
    disk_full_at("docs", monkeypatch)
    assert main(add) == 2
    assert "No space left on device" in error_line(capsys) and files(folder) == GEN1
    monkeypatch.undo()
    assert SearchIndex.open(folder).ids == IDS[:6]


def test_cli_add_waits_for_another_writer_or_is_refused_after_lock_wait(cli_index, capsys):
    folder, add = cli_index
    capsys.readouterr()
    with FolderLock(folder):
        assert main([*add, "--lock-wait", "0.2"]) == 2
        line = error_line(capsys)
        assert f"(pid {os.getpid()}) is writing this index" in line and "rebuild" not in line
    assert SearchIndex.open(folder).ids == IDS[:6] and files(folder) == GEN1
    lock = FolderLock(folder).acquire()
    threading.Timer(0.5, lock.release).start()
    assert main([*add, "--lock-wait", "60"]) == 0
    assert "added 5 documents" in capsys.readouterr().err and SearchIndex.open(folder).ids == IDS
    assert main([*add, "--lock-wait", "-1"]) == 2 and "--lock-wait" in capsys.readouterr().err


# -- counts -------------------------------------------------------------------------------------------------


class NoWork:
    """An embedder and reranker that fail the test if any work is done (a count must be checked first)."""

    def encode_query(self, *args, **kwargs):
        raise AssertionError("worked before checking the counts")

    encode_document = predict = encode_query


class Counting:
    """A reranker that counts the pairs it scores."""

    pairs = 0

    def predict(self, pairs, **kwargs):
        self.pairs += len(pairs)
        return [float(-i) for i in range(len(pairs))]


@pytest.mark.parametrize("value", [-5, 0, True, 2.5, "3", None])
def test_a_bad_count_is_refused_before_any_work(tmp_path, embedder, value):
    index, task = build(tmp_path / "idx", embedder), load_task(OWN_TASKS["retrieval"], OWN_DATA)
    pipeline = SearchPipeline(index, NoWork(), NoWork(), top_k=3, rerank_top_k=2, check=False)
    vectors, hits = embedder.encode_query(["cats"]), index.search_texts(["cats"], embedder, 5)[0]
    calls = [
        ("top_k", lambda: index.search(vectors, value)),
        ("top_k", lambda: index.search_texts(["cats"], NoWork(), top_k=value)),
        ("top_k", lambda: SearchPipeline(index, embedder, top_k=value)),
        ("rerank_top_k", lambda: SearchPipeline(index, embedder, NoWork(), rerank_top_k=value)),
        ("rerank_top_k", lambda: rerank_hits("cats", hits, NoWork(), value)),
        ("batch_size", lambda: rerank_hits("cats", hits, NoWork(), 2, batch_size=value)),
        ("top_k", lambda: evaluate_rerank(task, NoWork(), top_k=value, embedder=NoWork())),
        ("batch_size", lambda: evaluate_rerank(task, NoWork(), batch_size=value, embedder=NoWork())),
        ("top_k", lambda: exact_rankings(task, {}, top_k=value)),
    ]
    if value is not None:  # None: the pipeline's default, or no ef_search override
        calls += [
            ("ef_search", lambda: index.search(vectors, 3, ef_search=value)),
            ("top_k", lambda: pipeline.search("cats", top_k=value)),
            ("top_k", lambda: pipeline.search_many(["a", "b"], value)),
            ("rerank_top_k", lambda: pipeline.search("cats", rerank_top_k=value)),
            ("rerank_top_k", lambda: pipeline.search_many(["a", "b"], rerank_top_k=value)),
        ]
    for name, call in calls:
        with pytest.raises(ValueError, match=rf"^{name}: must be .*\(got {value!r}\)$".replace("'", ".")):
            call()


def test_counts_that_are_fine_give_that_many(tmp_path, embedder):
    index, reranker = build(tmp_path / "idx", embedder), Counting()
    found = SearchPipeline(index, embedder, reranker, top_k=np.int64(3)).search("cats", rerank_top_k=np.int64(2))
    assert [r.rerank_score is not None for r in found.results] == [True, True, False] and reranker.pairs == 2
    assert len(index.search_texts(["cats"], embedder, top_k=50)[0]) == len(CORPUS)  # capped by the corpus
    assert len(rerank_hits("cats", index.search_texts(["cats"], embedder, 5)[0], reranker, 4)) == 5
    assert reranker.pairs == 6
