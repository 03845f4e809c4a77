"""Training-data presets over the shared data folder (``decemb.tasks.default_data_root()``).

* ``stsb``: STS-B train (``stsbenchmark/sts-train.csv``), scored pairs, score range 0..5, both sides queries.
* ``stsb-unsupervised``: the unique sentences of STS-B train, unlabelled (SimCSE, MNTP).
* ``scifact``: SciFact train queries → the documents their train qrels cite (``title text``, as the BEIR
  task renders them); queries render as queries, documents as documents; the full corpus is kept for mining.
* ``banking77``: Banking77 train texts grouped by intent into same-intent pairs, both sides queries.
"""

from __future__ import annotations

import random
from pathlib import Path

from decemb.errors import ConfigError
from decemb.tasks._io import iter_rows
from decemb.tasks.sts import STSB_COLUMNS
from decemb.train.records import TrainData, iter_records, pairs_from_groups

__all__ = ["PRESET_FILES", "load_preset"]

PRESET_FILES = {
    "stsb": ["stsbenchmark/sts-train.csv"],
    "stsb-unsupervised": ["stsbenchmark/sts-train.csv"],
    "scifact": ["scifact/queries.jsonl", "scifact/corpus.jsonl", "scifact/qrels/train.tsv"],
    "banking77": ["banking77/train.csv"],
}


def _files(preset: str, root: Path) -> list[Path]:
    paths = [root / name for name in PRESET_FILES[preset]]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise ConfigError(
            f"preset {preset!r} needs {', '.join(missing)} (data root {root}; set data_root or $DECEMB_DATA)",
            key="data.preset",
        )
    return paths


def _stsb_rows(path: Path) -> list[tuple[str, str, float]]:
    """STS-B's tab-separated rows (the layout of the ``stsb`` task format: ``STSB_COLUMNS``); rows without
    both sentences are skipped, extra columns ignored."""
    text1, text2, score = STSB_COLUMNS.text1, STSB_COLUMNS.text2, STSB_COLUMNS.score
    rows = []
    for number, cells in iter_rows(path, "tsv", ragged=True):  # STS-B rows may carry two extra columns
        if len(cells) <= max(text1, text2, score) or not cells[text1].strip() or not cells[text2].strip():
            continue
        try:
            value = float(cells[score])
        except ValueError:
            raise ConfigError(
                f"line {number} of {path}: score {cells[score]!r} is not a number", key="data.preset"
            ) from None
        rows.append((cells[text1].strip(), cells[text2].strip(), value))
    return rows


def load_preset(preset: str, root: Path, seed: int) -> tuple[TrainData, tuple[float, float] | None]:
    """The preset's data and its score range (for normalising scored pairs)."""
    paths = _files(preset, root)
    if preset == "stsb":
        rows = _stsb_rows(paths[0])
        columns = {
            "sentence1": [a for a, _, _ in rows],
            "sentence2": [b for _, b, _ in rows],
            "score": [s for *_, s in rows],
        }
        sides = {"sentence1": "query", "sentence2": "query"}
        return TrainData("scored", columns, sides, source=str(paths[0])), (0.0, 5.0)  # type: ignore[arg-type]
    if preset == "stsb-unsupervised":
        rows = _stsb_rows(paths[0])
        texts = list(dict.fromkeys(text for a, b, _ in rows for text in (a, b)))
        return TrainData("texts", {"text": texts}, {"text": "query"}, source=str(paths[0])), None
    if preset == "banking77":
        records = [record for _, record in iter_records(paths[0], "csv", key="data.preset")]
        texts = [str(r.get("text") or "").strip() for r in records]
        labels = [str(r.get("category") or "").strip() for r in records]
        kept = [(t, label) for t, label in zip(texts, labels) if t and label]
        anchors, positives = pairs_from_groups([t for t, _ in kept], [label for _, label in kept], seed)
        columns = {"anchor": anchors, "positive": positives}
        return TrainData("pairs", columns, {"anchor": "query", "positive": "query"}, source=str(paths[0])), None
    return _scifact(paths, seed), None


def _scifact(paths: list[Path], seed: int) -> TrainData:
    queries_path, corpus_path, qrels_path = paths
    queries = {
        str(r.get("_id")): str(r.get("text") or "").strip()
        for _, r in iter_records(queries_path, "jsonl", "data.preset")
    }
    corpus: dict[str, str] = {}
    for _, record in iter_records(corpus_path, "jsonl", "data.preset"):
        title, body = str(record.get("title") or "").strip(), str(record.get("text") or "").strip()
        corpus[str(record.get("_id"))] = f"{title} {body}".strip()
    anchors, positives = [], []
    for number, record in iter_records(qrels_path, "tsv", "data.preset"):
        query_id, doc_id = record.get("query-id", ""), record.get("corpus-id", "")
        score = str(record.get("score", "1") or "1")
        if query_id not in queries or doc_id not in corpus:
            raise ConfigError(f"line {number} of {qrels_path}: unknown query or document id", key="data.preset")
        if float(score) > 0 and queries[query_id] and corpus[doc_id]:
            anchors.append(queries[query_id])
            positives.append(corpus[doc_id])
    order = list(range(len(anchors)))
    random.Random(seed).shuffle(order)
    columns = {"anchor": [anchors[i] for i in order], "positive": [positives[i] for i in order]}
    docs = [text for text in corpus.values() if text]
    return TrainData("pairs", columns, {"anchor": "query", "positive": "document"}, str(qrels_path), corpus=docs)
