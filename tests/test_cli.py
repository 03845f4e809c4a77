"""The ``decemb`` command line: compare, encode, strategies; exit status 2 and one line for user errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import OWN_DATA, isolate, make_config, parse_report, save_tiny_model, tiny_backbone

import decemb
from decemb.cli import main
from decemb.outputs import MARKER


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama-cli"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from isolate(tmp_path, monkeypatch)


TEXTS_TXT = ["A man is playing a guitar.", "The cat sat on the mat."]
TEXTS_TXT += ["Dogs run in the park while children play football.", "Retrieve semantically similar text."]


def write_config(tmp_path: Path, data: dict | str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- user errors: exit 2, one line naming the key and/or the file, no traceback ---------------------


def _edit(change):
    def build(model_dir: Path, tmp_path: Path) -> dict:
        data = make_config(model_dir, tmp_path, strategies=["mean", {"name": "echo", "pooling": "last"}])
        change(data)
        return data

    return build


BAD_CONFIGS = {
    "unknown top-level key": (
        _edit(lambda d: d.update(modles=d["models"])),
        r"modles: unknown key.*did you mean 'models'",
    ),
    "strategy near-miss": (
        _edit(lambda d: d["strategies"].__setitem__(0, "prompteoll")),
        r"strategies\[0\]\.name: unknown strategy 'prompteoll'\. Did you mean 'prompteol'\?",
    ),
    "unknown strategy option": (
        _edit(lambda d: d["strategies"].__setitem__(1, {"name": "echo", "poling": "last"})),
        r"strategies\[1\]\.poling: unknown option for strategy 'echo' \(did you mean 'pooling'\?\)",
    ),
    "bad option value": (
        _edit(lambda d: d["strategies"].__setitem__(1, {"name": "echo", "pooling": "max"})),
        r"strategies\[1\]\.pooling: .*'mean' or 'last'",
    ),
    "wrong type": (_edit(lambda d: d["models"][0].update(batch_size="big")), r"models\[0\]\.batch_size: must be"),
    "negative limit": (_edit(lambda d: d["tasks"][0].update(limit=-5)), r"tasks\[0\]\.limit: must be > 0"),
    "unknown task type": (
        _edit(lambda d: d["tasks"][0].update(type="retreival")),
        r"tasks\[0\]\.type: unknown task type 'retreival' \(did you mean 'retrieval'\?\)",
    ),
    "unknown task key": (_edit(lambda d: d["tasks"][0].update(lmit=3)), r"tasks\[0\]\.lmit: unknown key.*'limit'"),
    "missing data file": (_edit(lambda d: d["tasks"][0].update(path="nope.csv")), r"tasks\[0\]: .*nope\.csv"),
    "duplicate labels": (
        _edit(lambda d: d["strategies"].append({"name": "last", "label": "mean"})),
        r"strategies\[2\]\.label: duplicate strategy label 'mean'",
    ),
    "layer out of range": (_edit(lambda d: d.update(layers=[-1, 5])), r"layers\[1\]: layer 5 is out of range"),
    "template longer than max_length": (
        _edit(lambda d: d["models"][0].update(max_length=8)),
        r"models\[0\]\.max_length: max_length=8 leaves no room for the text.*\(strategy 'echo\(pooling=last\)'\)",
    ),
    "layer not an int": (_edit(lambda d: d.update(layers=["top"])), r"layers\[0\]: must be a valid integer"),
    "unknown model alias": (
        _edit(lambda d: d["models"][0].update(source="smollm2-135")),
        r"models\[0\]\.source: .*did you mean 'smollm2-135m'",
    ),
    "no strategies": (_edit(lambda d: d.update(strategies=[])), r"strategies: must not be empty"),
    "yaml syntax error": ("models: [unclosed\nstrategies: [mean]\n", r"invalid YAML at line \d+, column \d+"),
    "duplicate yaml key": ("models: []\nmodels: []\n", r"invalid YAML.*duplicate key 'models'"),
    "empty file": ("", r"the file is empty"),
    "comments only": ("# nothing here\n", r"the file is empty"),
    "not a mapping": ("- mean\n- last\n", r"expected a mapping"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_exits_2_with_one_line(case: str, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    content, expected = BAD_CONFIGS[case]
    data = content if isinstance(content, str) else content(tiny_model_dir, tmp_path)
    path = write_config(tmp_path, data)
    code, out, err = run_cli(capsys, "compare", path, "--quiet")
    assert code == 2, err
    assert "Traceback" not in err and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"decemb compare: error: {path}: "), lines[0]
    assert re.search(expected, lines[0], flags=re.IGNORECASE), lines[0]


def test_missing_config_file(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "compare", tmp_path / "nope.yaml")
    assert code == 2 and err.strip() == f"decemb compare: error: {tmp_path / 'nope.yaml'}: file not found"


def test_usage_errors_exit_2(capsys) -> None:
    assert run_cli(capsys, "compare")[0] == 2
    assert run_cli(capsys, "compare", "x.yaml", "--limit", "0")[0] == 2
    code, _, err = run_cli(capsys, "frobnicate")
    assert code == 2 and "invalid choice" in err and "Traceback" not in err
    assert run_cli(capsys)[0] == 2
    assert run_cli(capsys, "--help")[0] == 0


def console_command() -> list[str]:
    script = Path(sysconfig.get_path("scripts")) / "decemb"
    return [str(script)] if script.exists() else [sys.executable, "-m", "decemb.cli"]


def test_console_entry_exit_status(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = make_config(tiny_model_dir, tmp_path, strategies=["mean", {"name": "echo", "poling": "last"}])
    path = write_config(tmp_path, data)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*console_command(), "compare", str(path)], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"decemb compare: error: {path}: strategies[1].poling: unknown option for strategy 'echo' "
        "(did you mean 'pooling'?)"
    ]


# -- compare -------------------------------------------------------------------------------------


def test_compare_writes_outputs_matching_the_printed_table(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    data = make_config(tiny_model_dir, tmp_path, strategies=["mean", "sgpt", "llm2vec"], tasks=["sts", "retrieval"])
    data["layers"] = [-1, 1]
    path = write_config(tmp_path, data)
    code, out, err = run_cli(capsys, "compare", path, "--device", "cpu")
    assert code == 0, err
    for bar in ("Loading tasks", "Loading tiny", "Encoding", "Scoring own-sts", "Scoring own-retrieval"):
        assert bar in err  # tqdm progress on stderr
    folder = Path(data["output"])
    assert {p.name for p in folder.iterdir()} - {MARKER} == {
        "results.json",
        "results.csv",
        "run.json",
        "report.md",
        "own-sts.png",
        "own-retrieval.png",
    }
    assert out == (folder / "report.md").read_text()
    records = json.loads((folder / "results.json").read_text())
    assert len(records) == 3 * 2 * (2 + 6)  # strategies × layers × (STS + retrieval metrics)
    table = parse_report(out)
    assert len(table) == len(records)
    for record in records:
        value, bold = table[(record["task"], record["model"], record["strategy"], record["layer"], record["metric"])]
        assert value == pytest.approx(record["value"], abs=0.005)
        column = [r["value"] for r in records if r["task"] == record["task"] and r["metric"] == record["metric"]]
        assert bold == (record["value"] == max(column))
    assert (tmp_path / "cache.sqlite").exists()


def test_compare_options_override_the_config(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    data = make_config(tiny_model_dir, tmp_path, tasks=["sts", "clustering"])
    data["data_root"] = str(tmp_path / "elsewhere")  # replaced by --data-root
    path = write_config(tmp_path, data)
    out = tmp_path / "other-out"
    code, _, err = run_cli(
        capsys, "compare", path, "--out", out, "--limit", "4", "--no-cache", "--data-root", OWN_DATA, "-q"
    )
    assert code == 0, err
    assert not (tmp_path / "cache.sqlite").exists() and not Path(data["output"]).exists()
    records = json.loads((out / "results.json").read_text())
    assert {r["n"] for r in records} == {4}


# -- encode --------------------------------------------------------------------------------------


def st_model(strategy: str, **options):
    return decemb.from_backbone(*tiny_backbone("llama"), strategy, **options)


def test_encode_text_file_to_npy(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "out" / "emb.npy"
    code, _, err = run_cli(capsys, "encode", "--model", tiny_model_dir, OWN_DATA / "texts.txt", output, "-q")
    assert code == 0, err
    got = np.load(output)
    assert got.shape == (4, 32) and got.dtype == np.float32  # the blank line is skipped
    np.testing.assert_allclose(got, st_model("mean").encode(TEXTS_TXT), atol=1e-5, rtol=0)


def test_encode_csv_column_with_ids_to_npz(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "emb.npz"
    args = ["--model", tiny_model_dir, "--strategy", "echo", "--option", "pooling=last", "--column", "text"]
    code, _, err = run_cli(capsys, "encode", *args, "--id-column", "id", OWN_DATA / "texts.csv", output, "-q")
    assert code == 0, err
    with np.load(output) as saved:
        assert list(saved["ids"]) == ["a", "b", "c"]
        texts = ["A man is playing a guitar.", "The cat sat on the mat, quietly.", "Dogs run in the park."]
        np.testing.assert_allclose(saved["embeddings"], st_model("echo", pooling="last").encode(texts), atol=1e-5)


def test_encode_jsonl_field_as_documents(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "emb.npy"
    args = ["--model", tiny_model_dir, "--strategy", "instruct", "--kind", "document", "--column", "sentence"]
    code, _, err = run_cli(capsys, "encode", *args, OWN_DATA / "texts.jsonl", output, "-q")
    assert code == 0, err
    texts = ["A man is playing a guitar.", "The cat sat on the mat.", "Dogs run in the park."]
    texts.append("Instruct: Query: what is rlhf?")
    got = np.load(output)
    assert got.shape == (4, 32)
    np.testing.assert_allclose(got, st_model("instruct").encode_document(texts), atol=1e-5, rtol=0)
    assert not np.allclose(got, st_model("instruct").encode_query(texts), atol=1e-3)


def test_encode_normalize_streams_unit_rows_to_npz(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "emb.npz"
    code, _, err = run_cli(capsys, "encode", "--model", tiny_model_dir, "--normalize", OWN_DATA / "texts.txt", output)
    assert code == 0, err
    assert "decemb: wrote 4 × 32 embeddings" in err
    with np.load(output) as saved:
        assert saved.files == ["embeddings"]
        expected = st_model("mean").encode(TEXTS_TXT, normalize_embeddings=True)
        np.testing.assert_allclose(saved["embeddings"], expected, atol=1e-5, rtol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["emb.npz"]  # no temporary file left


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--column", "text"], r"texts\.txt: --column/--id-column need a \.csv"),
        (["--strategy", "eco"], r"--strategy: unknown strategy 'eco'\. Did you mean 'echo'"),
        (["--strategy", "echo", "--option", "poling=last"], r"--option poling: .*did you mean 'pooling'"),
        (["--option", "pooling"], r"--option: expected key=value"),
        (["--strategy", "mean", "--instruction", "Hi"], r"--instruction: strategy 'mean' takes no instruction"),
        (["--layer", "9"], r"--layer: layer 9 is out of range"),
        (["--dtype", "fp8"], r"--dtype: unknown dtype 'fp8'; expected one of float32"),
        (["--strategy", "echo", "--max-length", "8"], r"--max-length: max_length=8 leaves no room for the text"),
        (["--option", "name=last"], r"--option name: unknown option for strategy 'mean'"),
    ],
)
def test_encode_user_errors(args, expected: str, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    argv = ["encode", "-q", "--model", tiny_model_dir, *args, OWN_DATA / "texts.txt", tmp_path / "e.npy"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert re.search(expected, err), err
    assert not (tmp_path / "e.npy").exists()


@pytest.mark.parametrize(
    ("input_name", "output_name", "args", "expected"),
    [
        ("texts.csv", "e.npy", [], r"texts\.csv: --column is required"),
        (
            "texts.csv",
            "e.npy",
            ["--column", "sentence"],
            r"--column 'sentence': no such column .*columns: id, text, other",
        ),
        ("texts.csv", "e.npy", ["--column", "text", "--id-column", "id"], r"e\.npy: --id-column .* use an \.npz"),
        ("texts.csv", "e.txt", ["--column", "text"], r"e\.txt: the output must end in \.npy or \.npz"),
        ("missing.txt", "e.npy", [], r"missing\.txt: file not found"),
    ],
)
def test_encode_input_errors(input_name, output_name, args, expected, tmp_path: Path, capsys) -> None:
    argv = ["encode", "--model", "smollm2-135m", *args, OWN_DATA / input_name, tmp_path / output_name]
    code, _, err = run_cli(capsys, *argv)  # input checks come before the (real) model would load
    assert code == 2 and "Traceback" not in err
    assert re.search(expected, err), err


def test_encode_unknown_model_alias(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "encode", "--model", "smollm2", OWN_DATA / "texts.txt", tmp_path / "e.npy")
    assert code == 2 and "--model: " in err and "Did you mean 'smollm2-135m'?" in err


# -- strategies ----------------------------------------------------------------------------------


def test_strategies_lists_all_eight(capsys) -> None:
    code, out, _ = run_cli(capsys, "strategies")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert names == decemb.list_strategies() and len(names) == 8
    assert "pooling='mean' {mean|last}" in out
    code, out, _ = run_cli(capsys, "strategies", "--json")
    assert code == 0 and [r["name"] for r in json.loads(out)] == decemb.list_strategies()
