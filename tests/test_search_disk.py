"""A full disk (ENOSPC) or a read-only mount (EROFS) while an index is written: one line, the previous index
intact and readable, no file of the failed write left behind; through the library and ``decemb search``."""

from __future__ import annotations

import errno
import json
import os
import threading

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

from decemb.cli import main
from decemb.locks import FolderLock
from decemb.search import (
    SearchIndex,
)
from decemb.search import store as store_module
from decemb.search.errors import IndexWriteError

IDS = SEARCH_IDS


build = build_index


files = folder_files


GEN1, GEN2 = generation_files(1), generation_files(2)
one_line = one_line_not_damaged


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
