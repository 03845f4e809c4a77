"""Output folders: checked before any work, locked against a second run, replaced as one unit."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from decemb.errors import ConfigError
from decemb.outputs import MARKER, OutputFolder


def _write_set(tag: str, files: int = 5, size: int = 20_000):
    def write(staging: Path) -> list[str]:
        names = [f"f{i}.txt" for i in range(files)]
        for name in names:
            (staging / name).write_text(tag * size)
        return names

    return write


def _tags(folder: Path) -> set[str]:
    return {(folder / f"f{i}.txt").read_text()[:1] for i in range(5)}


def test_a_second_run_on_the_same_folder_fails_at_once_naming_the_holder(tmp_path):
    busy = rf"out is in use by another decemb run \(pid {os.getpid()}\)"
    with OutputFolder(tmp_path / "out"), pytest.raises(ConfigError, match=busy):
        OutputFolder(tmp_path / "out").open()
    with OutputFolder(tmp_path / "out") as again:  # released: the next run goes ahead
        again.commit(_write_set("a"))


def test_foreign_files_root_and_files_are_refused_before_any_work(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("my notes")
    with pytest.raises(ConfigError, match=r"holds files decemb did not write \(notes\.md\).*--force"):
        OutputFolder(mine).open()
    with OutputFolder(mine, force=True) as out:  # with --force they are kept
        out.commit(_write_set("a"))
    assert (mine / "notes.md").read_text() == "my notes" and _tags(mine) == {"a"}
    with pytest.raises(ConfigError, match=r"notes\.md"):  # they are still not decemb's: --force again
        OutputFolder(mine).open()
    with pytest.raises(ConfigError, match="file-system root"):
        OutputFolder("/").open()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        OutputFolder(tmp_path / "file").open()


def test_a_set_replaces_the_previous_one_and_leaves_no_staging(tmp_path):
    with OutputFolder(tmp_path / "out") as out:
        out.commit(_write_set("a"))
        out.commit(_write_set("b", files=3))
    folder = tmp_path / "out"
    assert sorted(p.name for p in folder.iterdir()) == sorted([MARKER, "f0.txt", "f1.txt", "f2.txt"])
    assert json.loads((folder / MARKER).read_text())["files"] == ["f0.txt", "f1.txt", "f2.txt"]
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]


def _commit_forever(folder: str) -> None:
    out = OutputFolder(folder).open()
    round_ = 0
    while True:
        out.commit(_write_set("ab"[round_ % 2]))
        round_ += 1


def test_kill_9_at_random_points_never_leaves_a_mixed_set(tmp_path):
    folder = tmp_path / "out"
    with OutputFolder(folder) as out:
        out.commit(_write_set("a"))
    context = multiprocessing.get_context("fork")
    for round_ in range(12):
        writer = context.Process(target=_commit_forever, args=(str(folder),))
        writer.start()
        time.sleep(0.05 + 0.03 * round_)
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        assert len(_tags(folder)) == 1, f"round {round_}: a mixed set"  # all a or all b, never both
    with OutputFolder(folder) as out:  # the next run starts cleanly: stale staging of the killed removed
        pass
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]


def test_a_commit_that_fails_keeps_the_previous_set(tmp_path):
    with OutputFolder(tmp_path / "out") as out:
        out.commit(_write_set("a"))

        def broken(staging: Path) -> list[str]:
            (staging / "f0.txt").write_text("half")
            raise OSError(28, "No space left on device", str(staging / "f1.txt"))

        with pytest.raises(ConfigError, match="No space left on device"):
            out.commit(broken)
    assert _tags(tmp_path / "out") == {"a"}


@pytest.mark.parametrize("case", ["a-file", "root", "foreign", "busy"])
def test_compare_checks_the_output_folder_before_loading_any_model(tmp_path, monkeypatch, capsys, case):
    import yaml
    from helpers import make_config, save_tiny_model

    import decemb.compare.runner as runner
    from decemb.cli import main

    monkeypatch.setenv("DECEMB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runner, "load_backbone", lambda *a, **k: pytest.fail("a model was loaded"))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(make_config(save_tiny_model(tmp_path / "model"), tmp_path)))
    out = {"a-file": tmp_path / "a-file", "root": Path("/"), "foreign": tmp_path, "busy": tmp_path / "busy"}[case]
    if case == "a-file":
        out.write_text("x")
    expected = {
        "a-file": "exists and is not a folder",
        "root": "file-system root",
        "foreign": "holds files decemb did not write",
        "busy": "is in use by another decemb run",
    }[case]
    capsys.readouterr()  # the model's save above prints progress bars
    with OutputFolder(tmp_path / "busy"):  # held by "another run" for the busy case
        code = main(["compare", str(config), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("decemb compare: error: --out: "), err
    assert expected in err[0]


def test_written_files_follow_the_umask(tmp_path):
    from decemb.files import write_text

    before = os.umask(0o022)
    try:
        with OutputFolder(tmp_path / "out") as out:
            out.commit(_write_set("a"))
        write_text(tmp_path / "single.txt", "x")
    finally:
        os.umask(before)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "f0.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "single.txt").stat().st_mode & 0o777 == 0o644
