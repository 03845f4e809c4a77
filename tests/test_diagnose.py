"""``decemb diagnose``: the discrimination gap, the echo probe (ties by construction for one-copy causal
strategies, not for echo or bidirectional attention), the shipped probe set, and the command."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import CASES, DATA_ROOT, OWN_DATA, save_tiny_model, tiny_backbone

import decemb
from decemb.diagnose.gap import discrimination_gap, load_pairs, other_indices
from decemb.diagnose.probe import ProbeItem, echo_probe, last_copy_spans
from decemb.diagnose.probeset import PROBE_FILE, ProbeSetError, build_probe_set, load_probe_set
from decemb.diagnose.report import format_table, sparkline
from decemb.diagnose_cli import add_diagnose_parser, run_diagnose
from decemb.errors import ConfigError

ITEMS = [
    ProbeItem("A man is playing a guitar.", "The cat sat on the mat.", "A cat sat on the mat.", "Dogs run."),
    ProbeItem("Rewrite the following sentence", "A woman is slicing an onion.", "A woman slices an onion.", "0123"),
    ProbeItem("The cat sat on the mat.", "Dogs run in the park.", "Dogs are running in a park.", "A man is talking."),
]
ONE_COPY_CAUSAL = {"mean", "last", "sgpt", "prompteol", "eos", "instruct"}
STSB = DATA_ROOT / "stsbenchmark" / "sts-train.csv"


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_echo_probe_ties_by_construction_only_for_one_copy_causal_strategies(name, options):
    model = decemb.from_backbone(*tiny_backbone("llama"), name, **options)
    result = echo_probe(model, ITEMS, batch_size=2)
    assert result["items"] == len(ITEMS)
    if name in ONE_COPY_CAUSAL:
        assert result["prefix_ties"] == 1.0 and result["prefix_margin"] == pytest.approx(0.0, abs=1e-5)
    else:  # echo's second copy has read B; bidirectional attention sees it directly
        assert result["prefix_ties"] == 0.0


@pytest.mark.parametrize("arch", ["gpt2", "gemma3_text"])
def test_echo_probe_does_not_depend_on_padding_side_or_batch(arch):
    backbone = tiny_backbone(arch)
    right = echo_probe(decemb.from_backbone(*backbone, "echo", padding_side="right"), ITEMS, batch_size=3)
    left = echo_probe(decemb.from_backbone(*backbone, "echo", padding_side="left"), ITEMS, batch_size=1)
    assert right == pytest.approx(left, abs=1e-4)


def test_echo_probe_reads_the_prefix_in_the_second_copy():
    model = decemb.from_backbone(*tiny_backbone("llama"), "echo")
    spans = last_copy_spans(model[0], ITEMS[0])
    features = model[0].preprocess(ITEMS[0].texts())
    lead = [segment.lead for segment in model[0].renderer("query").segments if segment.ids is None][-1]
    assert lead == " "  # the second copy follows "...sentence: ": its first word carries the space
    a_ids = model[0].tokenizer(lead + ITEMS[0].a, add_special_tokens=False)["input_ids"]
    for row, (start, ids) in enumerate(spans):
        assert ids == a_ids[: len(ids)] and len(ids) >= len(a_ids) - 1
        assert features["input_ids"][row, start : start + len(ids)].tolist() == ids
        assert bool(features["pool_mask"][row, start])  # inside the pooled (second) copy
        first = features["input_ids"][row].tolist().index(ids[0])
        assert first < start  # the first copy comes earlier


def test_probe_needs_a_decemb_model_and_items():
    model = decemb.from_backbone(*tiny_backbone("gpt2"), "mean")
    with pytest.raises(ValueError, match="at least one item"):
        echo_probe(model, [])


def test_gap_on_labelled_pairs():
    pairs = load_pairs("sts.csv", data_root=OWN_DATA, fmt="csv")
    model = decemb.from_backbone(*tiny_backbone("mistral"), "mean")
    gap = discrimination_gap(model, pairs, seed=1)
    summary = gap.summary()
    assert summary["n_related"] == sum(score >= 4 for score in pairs.gold)
    assert summary["n_unrelated"] == len(pairs.gold)
    assert summary["gap"] == pytest.approx(summary["related"] - summary["unrelated"], abs=2e-4)
    assert -1 <= summary["unrelated"] <= 1 and gap.settings["seed"] == 1


def test_other_indices_never_pair_a_text_with_its_own_partner():
    for n in (2, 3, 10, 101):
        for seed in range(5):
            order = other_indices(n, seed)
            assert len(order) == n and not np.any(order == np.arange(n))


def test_sparkline_and_table():
    assert sparkline(np.array([])) == ""
    line = sparkline(np.array([0.9, 0.95, 0.96, -0.1]))
    assert len(line) == 24 and line[-1] == "█"
    table = format_table([{"label": "mean", "gap": {"related": 0.8, "unrelated": 0.5, "gap": 0.3}}])
    assert "mean" in table and "0.300" in table


def test_probe_jsonl_and_refusals(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"a": "A.", "b": "B.", "b_plus": "B!", "b_minus": "C."}) + "\n\n")
    assert load_probe_set(tmp_path, path) == [ProbeItem("A.", "B.", "B!", "C.")]
    path.write_text(json.dumps({"a": "A."}) + "\n")
    with pytest.raises(ProbeSetError, match=r"items.jsonl:1: expected an object with keys a, b, b_plus, b_minus"):
        load_probe_set(tmp_path, path)
    with pytest.raises(ProbeSetError, match="does not exist"):
        load_probe_set(tmp_path)  # the shipped set, but no STS-B under this data root


@pytest.mark.skipif(not STSB.is_file(), reason="needs STS-B under the shared data root")
def test_shipped_probe_set_is_reproducible_and_checked(tmp_path):
    shipped = json.loads(PROBE_FILE.read_text())
    built = build_probe_set(DATA_ROOT, **{key: shipped["built_with"][key] for key in ("n", "seed")})
    assert built["items"] == shipped["items"]
    items = load_probe_set(DATA_ROOT)
    assert len(items) == 64 and all(len({i.a, i.b, i.b_plus, i.b_minus}) == 4 for i in items)
    shipped["items"][0]["sha256"] = "0" * 12
    (tmp_path / "probe.json").write_text(json.dumps(shipped))
    with pytest.raises(ProbeSetError, match="item 0 does not match"):
        load_probe_set(DATA_ROOT, tmp_path / "probe.json")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="decemb")
    add_diagnose_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["diagnose", *argv])


def test_command_writes_table_json_and_histograms(tmp_path, capsys):
    model = save_tiny_model(tmp_path / "tiny")
    probe = tmp_path / "items.jsonl"
    probe.write_text("".join(json.dumps(item.__dict__) + "\n" for item in ITEMS))
    out = tmp_path / "out"
    argv = [str(model), "--strategy", "mean", "--strategy", "echo", "--pairs", "sts.csv", "--format", "csv"]
    argv += ["--data-root", str(OWN_DATA), "--probe-file", str(probe), "--out", str(out), "--threads", "1", "-q"]
    assert run_diagnose(_parse(argv)) == 0
    printed = capsys.readouterr().out
    assert "prefix B+ wins" in printed and "echo" in printed and "R " in printed
    assert {"diagnose.json", "diagnose.txt", "gap.png"} <= {p.name for p in out.iterdir()}
    record = json.loads((out / "diagnose.json").read_text())
    assert [r["label"] for r in record["results"]] == ["mean", "echo"]
    assert record["results"][0]["probe"]["prefix_ties"] == 1.0
    assert (out / "gap.png").read_bytes()[:4] == b"\x89PNG"


def test_command_on_a_saved_folder_uses_its_strategy(tmp_path, capsys):
    folder = tmp_path / "saved"
    decemb.from_backbone(*tiny_backbone("gpt2"), "echo", pooling="last").save(str(folder))
    argv = [str(folder), "--only", "gap", "--pairs", "sts.csv", "--format", "csv", "--data-root", str(OWN_DATA)]
    assert run_diagnose(_parse([*argv, "--out", str(tmp_path / "out"), "--json", "-q"])) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in results] == ["echo(pooling=last)"] and "probe" not in results[0]


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--option", "pooling=last"], "--option needs exactly one --strategy"),
        (["--strategy", "ech"], "Did you mean .echo."),
        (["--columns", "a,b"], "three comma-separated"),
    ],
)
def test_command_refuses_bad_options_before_loading(argv, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        run_diagnose(_parse(["no-such-model", *argv, "--out", str(tmp_path / "out")]))


def test_missing_pair_file_fails_before_the_model_loads(tmp_path):
    from decemb.tasks import TaskDataError

    args = _parse(["no/such-model", "--data-root", str(tmp_path), "--out", str(tmp_path / "out"), "-q"])
    with pytest.raises(TaskDataError, match=r"sts-test\.csv"):
        run_diagnose(args)


def test_the_command_module_imports_nothing_heavy():
    probe = "import sys, decemb.diagnose_cli, decemb.diagnose; print([m for m in ('torch', 'transformers', "
    probe += "'sentence_transformers', 'matplotlib', 'mteb') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.skipif(not STSB.is_file(), reason="needs STS-B under the shared data root")
def test_smollm2_echo_prefix_knows_the_ending_and_mean_cannot():
    import torch

    from decemb.diagnose import DiagnoseSettings, diagnose

    torch.set_num_threads(1)
    settings = DiagnoseSettings(data_root=DATA_ROOT, limit=60, probe_limit=24, batch_size=16)
    results = {r["label"]: r for r in diagnose("smollm2-135m", [("mean", {}), ("echo", {})], settings)}
    assert results["mean"]["probe"]["prefix_ties"] == 1.0
    assert results["echo"]["probe"]["prefix_accuracy"] > 0.6
    assert all(r["gap"]["gap"] > 0 for r in results.values())
