"""Evaluation tasks: config validation, loading (real data slices + small generic files), scoring."""

from __future__ import annotations

import csv
import json
import math
import os
import random
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from decemb.tasks import (
    TASK_REGISTRY,
    TASK_TYPES,
    ClassificationTaskConfig,
    ClusteringTaskConfig,
    EncodeRequest,
    RetrievalTaskConfig,
    STSTaskConfig,
    Task,
    TaskDataError,
    TaskFileNotFoundError,
    TaskType,
    default_data_root,
    load_task,
    parse_task_config,
)

DATA = (
    Path(os.environ["DECEMB_DATA"])
    if os.environ.get("DECEMB_DATA")
    else Path(__file__).resolve().parents[1].parent / "shared" / "data"
)

STSB = {"type": "sts", "name": "stsb", "path": "stsbenchmark/sts-test.csv", "format": "stsb"}
SCIFACT = {"type": "retrieval", "name": "scifact", "path": "scifact", "format": "beir"}
BANKING = {
    "type": "classification",
    "name": "banking77",
    "path": "banking77",
    "format": "csv",
    "text": "text",
    "label": "category",
}
AGNEWS = {
    "type": "clustering",
    "name": "agnews",
    "path": "ag_news/test.csv",
    "format": "csv",
    "header": False,
    "text": [1, 2],
    "label": 0,
}


def need(sub: str) -> Path:
    path = DATA / sub
    if not path.exists():
        pytest.skip(f"evaluation data {path} not found (set DECEMB_DATA to the shared data folder)")
    return path


def is_subsequence(part: list, whole: list) -> bool:
    it = iter(whole)
    return all(any(x == y for y in it) for x in part)


def one_hot(labels: list[str]) -> np.ndarray:
    classes = sorted(set(labels))
    return np.eye(len(classes))[[classes.index(y) for y in labels]]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- configs


def test_presets_parse_to_their_config_classes() -> None:
    assert isinstance(parse_task_config(STSB), STSTaskConfig)
    assert isinstance(parse_task_config(SCIFACT), RetrievalTaskConfig)
    assert isinstance(parse_task_config(BANKING), ClassificationTaskConfig)
    assert isinstance(parse_task_config(AGNEWS), ClusteringTaskConfig)
    assert set(TASK_TYPES) == {"sts", "retrieval", "classification", "clustering", "mteb"}
    assert TASK_TYPES["sts"] is STSTaskConfig


def test_task_types_derive_from_one_registry(tmp_path: Path) -> None:
    """The union, TASK_TYPES and load_task's dispatch all come from TASK_REGISTRY."""
    assert list(TASK_TYPES) == list(TASK_REGISTRY)
    for name in TASK_REGISTRY:
        task_type = TASK_REGISTRY.get(name)
        assert isinstance(task_type, TaskType) and task_type.name == name and TASK_TYPES[name] is task_type.config
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        parse_task_config({**STSB, "type": "nope"})
    with pytest.raises(TypeError, match="not a task config: object"):
        load_task(object(), tmp_path)
    with pytest.raises(TypeError, match="not a task config"):
        load_task(STSTaskConfig.model_construct(type="retrieval"), tmp_path)


@pytest.mark.parametrize("base", [STSB, SCIFACT, BANKING, AGNEWS], ids=lambda c: c["type"])
@pytest.mark.parametrize("limit", [0, -5])
def test_non_positive_limit_is_rejected_at_key_limit(base: dict, limit: int) -> None:
    with pytest.raises(ValidationError) as info:
        parse_task_config({**base, "limit": limit})
    assert any("limit" in err["loc"] for err in info.value.errors())


@pytest.mark.parametrize("base", [STSB, SCIFACT, BANKING, AGNEWS], ids=lambda c: c["type"])
def test_unknown_key_is_rejected(base: dict) -> None:
    with pytest.raises(ValidationError) as info:
        parse_task_config({**base, "limt": 5})
    errors = info.value.errors()
    assert any(err["type"] == "extra_forbidden" and "limt" in err["loc"] for err in errors)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({**STSB, "columns": {"text1": 0, "text2": 1, "score": 2}}, "columns"),  # preset fixes columns
        ({**STSB, "format": "csv"}, "columns"),  # generic formats need columns
        # tsv has no header by default, so column names are rejected
        ({**STSB, "format": "tsv", "columns": {"text1": "a", "text2": 1, "score": 2}}, "columns"),
        ({**STSB, "format": "jsonl", "columns": {"text1": 0, "text2": "b", "score": "s"}}, "columns"),
        ({**STSB, "header": True}, "header"),
        ({**STSB, "score_range": [5, 0]}, "score_range"),
        ({**SCIFACT, "qrels": "qrels/dev.tsv"}, "qrels"),  # beir layout is fixed
        ({**AGNEWS, "text": ["title", 2]}, "text"),  # header: false needs indices
        ({**AGNEWS, "label": -1}, "label"),
        ({**AGNEWS, "n_clusters": 1}, "n_clusters"),
        ({key: v for key, v in BANKING.items() if key != "path"}, "train"),
        ({**BANKING, "test_fraction": 1.5}, "test_fraction"),
        ({**BANKING, "type": "classification", "name": ""}, "name"),
    ],
)
def test_invalid_configs_name_the_offending_key(config: dict, key: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_task_config(config)
    assert any(key in err["loc"] for err in info.value.errors()), info.value.errors()


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(ValidationError, match="reranking"):
        parse_task_config({**STSB, "type": "reranking"})


# ----------------------------------------------------------------------------- STS


def test_sts_real_slice_and_known_correlations() -> None:
    need("stsbenchmark/sts-test.csv")
    task = load_task({**STSB, "limit": 50}, DATA)
    assert isinstance(task, Task)
    assert (task.type, task.main_metric, task.size()) == ("sts", "spearman", 50)
    requests = task.requests()
    assert set(requests) == {"text1", "text2"}
    assert all(r.kind == "query" and len(r.texts) == 50 for r in requests.values())
    gold = np.asarray(task.gold)
    assert gold.min() >= 0 and gold.max() <= 5

    def pair_embeddings(cos: np.ndarray) -> dict[str, np.ndarray]:
        # text1 on the x axis, text2 at the angle whose cosine is `cos` (scaled, to check normalisation)
        first = np.tile([3.0, 0.0], (len(cos), 1))
        second = 2.0 * np.stack([cos, np.sqrt(1 - cos**2)], axis=1)
        return {"text1": first, "text2": second}

    linear = task.score(pair_embeddings(0.1 + 0.16 * gold))  # affine in gold
    assert linear["spearman"] == pytest.approx(100, abs=1e-6)
    assert linear["pearson"] == pytest.approx(100, abs=1e-6)
    cubic = task.score(pair_embeddings((gold / 5) ** 3 * 0.9))  # monotone, not linear
    assert cubic["spearman"] == pytest.approx(100, abs=1e-6)
    assert cubic["pearson"] < 99.5
    reversed_ = task.score(pair_embeddings(0.9 - 0.16 * gold))
    assert reversed_["spearman"] == pytest.approx(-100, abs=1e-6)


def test_sts_random_embeddings_correlate_near_zero() -> None:
    need("stsbenchmark/sts-test.csv")
    task = load_task(STSB, DATA)
    assert task.size() == 1379  # the whole test split
    rng = np.random.default_rng(0)
    scores = task.score({key: rng.normal(size=(task.size(), 64)) for key in ("text1", "text2")})
    assert abs(scores["spearman"]) < 10 and abs(scores["pearson"]) < 10


def test_sts_preset_matches_raw_tab_split() -> None:
    path = need("stsbenchmark/sts-dev.csv")
    lines = [line.split("\t") for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    task = load_task({**STSB, "path": "stsbenchmark/sts-dev.csv"}, DATA)
    assert task.text1 == [cells[5].strip() for cells in lines]
    assert task.text2 == [cells[6].strip() for cells in lines]
    assert task.gold == [float(cells[4]) for cells in lines]


def test_limit_sampling_is_deterministic_ordered_and_file_order_independent(tmp_path: Path) -> None:
    path = need("stsbenchmark/sts-test.csv")
    full = load_task(STSB, DATA)
    rows = list(zip(full.text1, full.text2, full.gold, strict=True))

    def sample(seed: int, limit: int = 50, config_path: str = STSB["path"]) -> list:
        task = load_task({**STSB, "path": config_path, "limit": limit, "seed": seed}, DATA)
        return list(zip(task.text1, task.text2, task.gold, strict=True))

    first = sample(seed=7)
    assert first == sample(seed=7)
    assert set(first) != set(sample(seed=8))
    assert is_subsequence(first, rows)  # kept rows keep the file's order
    assert set(sample(seed=7, limit=20)) <= set(first)  # a smaller limit is a subset

    lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    random.Random(1).shuffle(lines)
    shuffled = write(tmp_path / "shuffled.csv", "\n".join(lines) + "\n")
    assert set(sample(seed=7, config_path=str(shuffled))) == set(first)


# ----------------------------------------------------------------------------- generic tables


GENERIC_ROWS = [("A cat sits.", "A cat is sitting.", 4.5), ('He said "hi", then left.', "Nobody spoke.", 0.5)]


@pytest.mark.parametrize("variant", ["csv-names", "csv-indices", "tsv-indices", "tsv-names", "jsonl"])
def test_generic_sts_mappings(tmp_path: Path, variant: str) -> None:
    (a1, b1, s1), (a2, b2, s2) = GENERIC_ROWS
    if variant.startswith("csv"):
        path = tmp_path / "pairs.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            if variant == "csv-names":
                writer.writerow(["id", "score", "left", "right"])
            writer.writerow([1, s1, a1, b1])
            writer.writerow([])  # blank line: ignored
            writer.writerow([2, s2, a2, b2])
            writer.writerow([3, 2.0, "", "text without partner"])  # blank text: skipped
    elif variant.startswith("tsv"):
        head = "id\tscore\tleft\tright\n" if variant == "tsv-names" else ""
        body = f"1\t{s1}\t{a1}\t{b1}\n\n2\t{s2}\t{a2}\t{b2}\n3\t2.0\t \ttext without partner\n"
        path = write(tmp_path / "pairs.tsv", head + body)
    else:
        records = [{"l": a1, "r": b1, "s": s1}, {"l": a2, "r": b2, "s": s2}, {"l": None, "r": "x", "s": 1}]
        path = write(tmp_path / "pairs.jsonl", "\n".join(json.dumps(r) for r in records) + "\n\n")
    fmt = variant.split("-")[0]
    if variant.endswith("indices"):
        columns: dict = {"text1": 2, "text2": 3, "score": 1}
        extra: dict = {"header": False} if fmt == "csv" else {}
    elif fmt == "jsonl":
        columns, extra = {"text1": "l", "text2": "r", "score": "s"}, {}
    else:
        columns = {"text1": "left", "text2": "right", "score": "score"}
        extra = {"header": True} if fmt == "tsv" else {}
    config = {"type": "sts", "name": "toy", "path": path.name, "format": fmt, "columns": columns, **extra}
    task = load_task(config, tmp_path)
    assert task.text1 == [a1, a2]
    assert task.text2 == [b1, b2]
    assert task.gold == [s1, s2]
    assert task.info["skipped"] == 1


def test_classification_single_file_split_and_joined_text(tmp_path: Path) -> None:
    lines = ["label\ttitle\tbody"]
    lines += [f"{c}\tTitle {c}{i}\tbody {i}" for c in "abc" for i in range(10)]
    write(tmp_path / "all.tsv", "\n".join(lines) + "\n")
    config = {
        "type": "classification",
        "name": "toy",
        "path": "all.tsv",
        "format": "tsv",
        "header": True,
        "text": ["title", "body"],
        "label": "label",
        "text_separator": ". ",
    }
    task = load_task(config, tmp_path)
    assert sorted(task.test_labels) == ["a", "a", "b", "b", "c", "c"]  # 20% of each class
    assert len(task.train_texts) == 24
    assert not set(task.train_texts) & set(task.test_texts)
    assert all(t.startswith("Title ") and ". body " in t for t in task.test_texts)
    again = load_task(config, tmp_path)
    assert again.test_texts == task.test_texts
    other = load_task({**config, "seed": 1}, tmp_path)
    assert other.test_texts != task.test_texts
    scores = task.score({"train": one_hot(task.train_labels), "test": one_hot(task.test_labels)})
    assert scores == {"accuracy": 100.0, "f1_macro": 100.0}


def test_classification_explicit_train_test_files(tmp_path: Path) -> None:
    train = [{"t": f"text {i}", "y": "pos" if i % 2 else "neg"} for i in range(8)]
    test = [{"t": f"other {i}", "y": "pos" if i % 2 else "neg"} for i in range(4)]
    (tmp_path / "d").mkdir()
    write(tmp_path / "d" / "tr.jsonl", "\n".join(json.dumps(r) for r in train))
    write(tmp_path / "d" / "te.jsonl", "\n".join(json.dumps(r) for r in test))
    config = {"type": "classification", "name": "toy", "path": "d", "train": "tr.jsonl", "test": "te.jsonl"}
    task = load_task({**config, "format": "jsonl", "text": "t", "label": "y"}, tmp_path)
    assert task.size() == 4 and task.test_texts == [r["t"] for r in test]
    assert task.train_labels == [r["y"] for r in train]


# ----------------------------------------------------------------------------- retrieval


def test_retrieval_real_slice_with_oracle_embeddings() -> None:
    need("scifact/corpus.jsonl")
    task = load_task({**SCIFACT, "limit": 25, "corpus_limit": 400, "seed": 3}, DATA)
    assert (task.type, task.main_metric, task.size()) == ("retrieval", "ndcg@10", 25)
    requests = task.requests()
    assert requests["queries"].kind == "query" and requests["corpus"].kind == "document"
    assert len(requests["corpus"].texts) == 400
    assert set().union(*task.relevant.values()) <= set(task.doc_ids)  # every relevant doc kept

    # each document a random unit vector; each query the sum of its relevant documents' vectors
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(len(task.doc_ids), 256))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    position = {doc_id: i for i, doc_id in enumerate(task.doc_ids)}
    queries = np.stack([docs[[position[d] for d in task.relevant[q]]].sum(0) for q in task.query_ids])
    scores = task.score({"queries": queries, "corpus": docs})
    for metric in ("ndcg@10", "mrr@10", "map@100", "recall@10", "recall@100", "accuracy@1"):
        assert scores[metric] == pytest.approx(100), metric

    random_scores = task.score({"queries": rng.normal(size=queries.shape), "corpus": docs})
    assert random_scores["ndcg@10"] < 30


def test_retrieval_full_corpus_and_beir_title_convention() -> None:
    path = need("scifact/corpus.jsonl")
    with path.open(encoding="utf-8") as handle:
        first = json.loads(handle.readline())
    task = load_task({**SCIFACT, "limit": 10}, DATA)
    assert len(task.doc_ids) == 5183  # no corpus_limit: whole corpus
    assert task.doc_ids[0] == first["_id"]
    assert task.docs[0] == f"{first['title']} {first['text']}"
    untitled = load_task({**SCIFACT, "limit": 10, "use_title": False}, DATA)
    assert untitled.docs[0] == first["text"]
    assert untitled.query_ids == task.query_ids
    assert load_task({**SCIFACT, "limit": 10, "seed": 1}, DATA).query_ids != task.query_ids


def test_retrieval_hand_computed_ranking(tmp_path: Path) -> None:
    # 2-D embeddings at fixed angles; cosine ranking = angular distance ranking
    angles = {"d1": 20, "d2": 10, "d3": 90, "d4": 60, "d5": 195}
    corpus = [{"id": d, "body": f"document {d}"} for d in angles] + [{"id": "d6", "body": "  "}]
    queries = [{"id": "q1", "q": "first"}, {"id": "q2", "q": "second"}, {"id": "q3", "q": "no relevant doc"}]
    write(tmp_path / "docs.jsonl", "\n".join(json.dumps(r) for r in corpus))
    write(tmp_path / "qs.jsonl", "\n".join(json.dumps(r) for r in queries))
    qrels = "q1\td1\t1\nq1\td4\t0\nq2\td3\t2\nq2\td5\t1\nq2\td6\t1\nq3\tmissing\t1\n"
    write(tmp_path / "judgements.tsv", qrels)
    config = {
        "type": "retrieval",
        "name": "toy",
        "path": str(tmp_path),
        "format": "jsonl",
        "corpus": "docs.jsonl",
        "queries": "qs.jsonl",
        "qrels": "judgements.tsv",
        "qrels_header": False,
        "fields": {
            "doc_id": "id",
            "doc_text": "body",
            "doc_title": None,
            "query_id": "id",
            "query_text": "q",
        },
    }
    task = load_task(config, "/nonexistent-root")  # absolute path: data root unused
    assert task.query_ids == ["q1", "q2"]  # q3 has no relevant document in the corpus
    assert task.doc_ids == ["d1", "d2", "d3", "d4", "d5"]  # blank d6 skipped
    assert task.relevant == {"q1": {"d1"}, "q2": {"d3", "d5"}}  # grade 0 is not relevant
    assert task.info["skipped"] == {"documents": 1, "queries": 0, "qrels": 2}

    def unit(deg: float) -> list[float]:
        return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]

    embeddings = {
        "queries": np.array([unit(0), unit(100)]),
        "corpus": np.array([unit(angles[d]) for d in task.doc_ids]) * 5,
    }
    scores = task.score(embeddings)
    # q1 (0°):   d2, d1, d4, d3, d5 -> relevant d1 at rank 2
    # q2 (100°): d3, d4, d1, d2, d5 -> relevant d3 at rank 1, d5 at rank 5
    ndcg_q1 = (1 / math.log2(3)) / 1
    ndcg_q2 = (1 + 1 / math.log2(6)) / (1 + 1 / math.log2(3))
    assert scores["ndcg@10"] == pytest.approx(100 * (ndcg_q1 + ndcg_q2) / 2)
    assert scores["mrr@10"] == pytest.approx(100 * (1 / 2 + 1) / 2)
    assert scores["map@100"] == pytest.approx(100 * ((1 / 2) / 1 + (1 / 1 + 2 / 5) / 2) / 2)
    assert scores["recall@10"] == pytest.approx(100)
    assert scores["accuracy@1"] == pytest.approx(50)


# ----------------------------------------------------------------------------- classification / clustering


def test_classification_real_slice() -> None:
    need("banking77/train.csv")
    task = load_task({**BANKING, "limit": 200}, DATA)
    assert (task.type, task.main_metric, task.size()) == ("classification", "accuracy", 200)
    assert len(task.train_texts) == 200
    assert len(set(task.train_labels)) == len(set(task.test_labels)) == 77  # stratified: every class
    assert {r.kind for r in task.requests().values()} == {"query"}
    separable = task.score({"train": one_hot(task.train_labels), "test": one_hot(task.test_labels)})
    assert separable == {"accuracy": 100.0, "f1_macro": 100.0}
    rng = np.random.default_rng(0)
    chance = task.score({"train": rng.normal(size=(200, 32)), "test": rng.normal(size=(200, 32))})
    assert chance["accuracy"] < 15


def test_clustering_real_slice() -> None:
    path = need("ag_news/test.csv")
    task = load_task({**AGNEWS, "limit": 60}, DATA)
    assert (task.type, task.main_metric, task.size()) == ("clustering", "v_measure", 60)
    assert task.n_clusters == 4
    assert sorted(task.labels.count(c) for c in "1234") == [15, 15, 15, 15]  # stratified
    with path.open(encoding="utf-8", newline="") as handle:
        raw = {f"{title.strip()} {body.strip()}": label for label, title, body in csv.reader(handle)}
    assert all(raw[text] == label for text, label in zip(task.texts, task.labels, strict=True))
    assert task.score({"texts": one_hot(task.labels) * 7})["v_measure"] == pytest.approx(100)
    rng = np.random.default_rng(0)
    assert task.score({"texts": rng.normal(size=(60, 16))})["v_measure"] < 30


# ----------------------------------------------------------------------------- errors


def test_missing_file_names_task_key_and_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_task({**STSB, "path": "nope/sts.csv"}, tmp_path)
    assert isinstance(info.value, TaskFileNotFoundError) and isinstance(info.value, ValueError)
    message = str(info.value)
    assert "'stsb'" in message and "path" in message and str(tmp_path / "nope" / "sts.csv") in message

    (tmp_path / "folder").mkdir()
    write(tmp_path / "folder" / "train.csv", "text,category\nhello,a\nbye,b\n")
    with pytest.raises(TaskFileNotFoundError, match=r"path = 'folder'.*test\.csv"):
        load_task({**BANKING, "path": "folder"}, tmp_path)
    with pytest.raises(TaskFileNotFoundError, match=r"test = 'gone\.csv'"):
        load_task({**BANKING, "path": "folder", "train": "train.csv", "test": "gone.csv"}, tmp_path)
    with pytest.raises(TaskFileNotFoundError, match=r"corpus\.jsonl"):
        load_task({**SCIFACT, "path": "folder"}, tmp_path)


def test_bad_columns_name_the_column_and_the_available_ones(tmp_path: Path) -> None:
    write(tmp_path / "data.csv", "text,category\nhello,a\nbye,b\n")
    config = {**AGNEWS, "path": "data.csv", "header": True, "text": "body", "label": "category"}
    with pytest.raises(TaskDataError) as info:
        load_task(config, tmp_path)
    message = str(info.value)
    assert "'agnews'" in message and "text = 'body'" in message and "['text', 'category']" in message

    with pytest.raises(TaskDataError, match=r"label = 5.*out of range.*2 columns"):
        load_task({**config, "text": "text", "label": 5}, tmp_path)

    write(tmp_path / "data.jsonl", '{"text": "hello", "category": "a"}\n')
    with pytest.raises(TaskDataError, match=r"field 'label' missing.*\['category', 'text'\]"):
        jsonl = {"path": "data.jsonl", "format": "jsonl", "header": None, "text": "text", "label": "label"}
        load_task({**config, **jsonl}, tmp_path)


def test_bad_score_value_is_reported_with_line(tmp_path: Path) -> None:
    write(tmp_path / "s.tsv", "a\tb\t1.0\nc\td\thigh\n")
    config = {"type": "sts", "name": "toy", "path": "s.tsv", "format": "tsv"}
    with pytest.raises(TaskDataError, match=r"'high' .*line 2"):
        load_task({**config, "columns": {"text1": 0, "text2": 1, "score": 2}}, tmp_path)
    write(tmp_path / "s.tsv", "a\tb\t1.0\nc\td\t7\n")
    with pytest.raises(TaskDataError, match="outside score_range"):
        load_task({**config, "columns": {"text1": 0, "text2": 1, "score": 2}, "score_range": [0, 5]}, tmp_path)


def test_score_validates_keys_rows_and_values(tmp_path: Path) -> None:
    write(tmp_path / "t.csv", "text,label\n" + "".join(f"text {i},{i % 3}\n" for i in range(12)))
    config = {**AGNEWS, "name": "toy", "path": "t.csv", "header": True, "text": "text", "label": "label"}
    task = load_task(config, tmp_path)
    assert task.requests() == {"texts": EncodeRequest("query", [f"text {i}" for i in range(12)])}
    good = np.ones((12, 4))
    with pytest.raises(ValueError, match=r"'toy'.*texts.*11 rows.*12 texts"):
        task.score({"texts": good[:11]})
    with pytest.raises(ValueError, match=r"'toy'.*missing.*texts"):
        task.score({})
    with pytest.raises(ValueError, match=r"'toy'.*unexpected.*extra"):
        task.score({"texts": good, "extra": good})
    bad = good.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"'toy'.*texts.*NaN"):
        task.score({"texts": bad})
    with pytest.raises(ValueError, match="2-D"):
        task.score({"texts": np.ones(12)})


def test_sts_score_rejects_mismatched_dimensions() -> None:
    need("stsbenchmark/sts-test.csv")
    task = load_task({**STSB, "limit": 5}, DATA)
    with pytest.raises(ValueError, match="dimensions differ"):
        task.score({"text1": np.ones((5, 3)), "text2": np.ones((5, 4))})
    with pytest.raises(ValueError, match=r"text2.*4 rows"):
        task.score({"text1": np.ones((5, 3)), "text2": np.ones((4, 3))})


def test_load_task_accepts_config_objects_and_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write(tmp_path / "p.tsv", "a\tb\t1\nc\td\t2\ne\tf\t3\n")
    monkeypatch.setenv("DECEMB_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    config = STSTaskConfig(name="toy", path="p.tsv", format="tsv", columns={"text1": 0, "text2": 1, "score": 2})
    task = load_task(config)  # data root from $DECEMB_DATA
    assert task.name == "toy" and task.text1 == ["a", "c", "e"] and task.gold == [1.0, 2.0, 3.0]
