"""The training presets over a small data root laid out like ../shared/data: each is the signal it names,
computed here independently from the rows written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from decemb.errors import ConfigError
from decemb.train.config import DataSection
from decemb.train.data import load_train_data

REPO = Path(__file__).resolve().parents[1]
STSB = [  # (score, sentence1, sentence2)
    (5.0, "A man plays a guitar.", "A man is playing the guitar."),
    (4.0, "A cat sits on a mat.", "A cat is sitting on the mat."),
    (3.8, "A dog runs.", "A dog is running fast in the park."),
    (0.5, "The sky is blue.", "He ate pasta."),
    (4.6, "Two kids play football.", "Children are playing soccer."),
]
DOCS = [
    {"_id": "1", "title": "Aspirin and the heart", "text": "Aspirin lowers the risk of heart attacks."},
    {"_id": "2", "title": "", "text": "An abstract without a title."},
    {"_id": "3", "title": "Sleep and memory", "text": "Sleep consolidates memory."},
    {"_id": "4", "title": "A title alone", "text": ""},
]
QUERIES = [{"_id": "10", "text": "does aspirin prevent heart attacks"}, {"_id": "20", "text": "a test query"}]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "stsbenchmark").mkdir()
    lines = [f"main-captions\tMSRvid\t2012test\t{i:04d}\t{score}\t{a}\t{b}" for i, (score, a, b) in enumerate(STSB)]
    (root / "stsbenchmark" / "sts-train.csv").write_text("\n".join(lines) + "\n")
    (root / "banking77").mkdir()
    banking = "text,category\nlost card,card\ncard gone,card\npin?,pin\nnew pin,pin\n"
    (root / "banking77" / "train.csv").write_text(banking)
    scifact = root / "scifact"
    (scifact / "qrels").mkdir(parents=True)
    (scifact / "corpus.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in DOCS))
    (scifact / "queries.jsonl").write_text("".join(json.dumps(query) + "\n" for query in QUERIES))
    (scifact / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n10\t1\t1\n")
    (scifact / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n20\t3\t1\n")
    return root


def _load(root: Path, **section):
    return load_train_data(DataSection.model_validate(section), root)


def test_stsb_pairs_are_the_pairs_scoring_at_least_4(root):
    data = _load(root, preset="stsb-pairs")
    expected = [(a, b) for score, a, b in STSB if score >= 4.0]
    assert data.shape == "pairs" and list(zip(data.columns["anchor"], data.columns["positive"])) == expected
    assert data.sides == {"anchor": "query", "positive": "query"}


def test_scifact_titles_is_the_pair_file_the_background_run_reads(root, tmp_path):
    pairs = tmp_path / "titles.jsonl"
    command = [sys.executable, str(REPO / "benchmarks" / "make_title_pairs.py"), "--out", str(pairs)]
    subprocess.run([*command, "--data-root", str(root)], check=True, capture_output=True)
    for limit in (None, 1):
        preset = _load(root, preset="scifact-titles", limit=limit)
        from_file = _load(root, path=str(pairs), columns={"anchor": "title", "positive": "abstract"}, limit=limit)
        assert preset.columns == from_file.columns and preset.sides == from_file.sides
    full = _load(root, preset="scifact-titles")
    assert full.columns["anchor"] == ["Aspirin and the heart", "Sleep and memory"]  # no empty title or abstract
    assert full.sides == {"anchor": "query", "positive": "document"} and full.corpus == full.columns["positive"]


def test_simcse_holds_every_training_text_once_and_no_test_text(root):
    data = _load(root, preset="simcse")
    texts = data.columns["text"]
    assert data.shape == "texts" and len(texts) == len(set(texts))
    expected = {text for _, a, b in STSB for text in (a, b)} | {"lost card", "card gone", "pin?", "new pin"}
    expected |= {"does aspirin prevent heart attacks"}  # the train query; the test query is not read
    expected |= {f"{d['title']} {d['text']}".strip() for d in DOCS}
    assert set(texts) == expected and "a test query" not in texts
    assert not (root / "ag_news").exists(), "AG News is never needed"


def test_banking77_pairs_carry_their_intent(root):
    data = _load(root, preset="banking77")
    intent = {"lost card": "card", "card gone": "card", "pin?": "pin", "new pin": "pin"}
    assert data.groups == [intent[anchor] for anchor in data.columns["anchor"]]
    assert all(intent[a] == intent[b] for a, b in zip(data.columns["anchor"], data.columns["positive"]))
    assert _load(root, preset="banking77", limit=1).groups is not None


def test_a_missing_preset_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"scifact/corpus\.jsonl") as caught:
        _load(tmp_path, preset="scifact-titles")
    assert caught.value.key == "data.preset"
