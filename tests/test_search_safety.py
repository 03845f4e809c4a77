"""One writer at a time on a search index: concurrent adds keep every document, a writer past its wait is
refused naming the holder, racing builds never replace each other, and readers never see half a commit.
Full or read-only disks: tests/test_search_disk.py; count arguments: tests/test_search_counts.py."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest
from helpers import (
    CORPUS,
    SEARCH_IDS,
    build_index,
    folder_files,
    generation_files,
    one_line_not_damaged,
    save_tiny_model,
)

import decemb
from decemb.locks import FolderLock
from decemb.search import (
    DuplicateIdError,
    IndexExistsError,
    SearchError,
    SearchIndex,
)
from decemb.search import index as index_module
from decemb.search import store as store_module
from decemb.search.errors import IndexBusyError

IDS = SEARCH_IDS
ROUNDS, PER_ROUND = 4, 2


build = build_index


files = folder_files


GEN1, GEN2 = generation_files(1), generation_files(2)
one_line = one_line_not_damaged


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
