"""Training-data presets over the shared data folder (``decemb.tasks.default_data_root()``).

* ``stsb``: STS-B train (``stsbenchmark/sts-train.csv``), scored pairs, score range 0..5, both sides queries.
* ``stsb-pairs``: its pairs scoring >= 4 of 5 (``STSB_PAIR_MIN``) as positive pairs (MNRL), both sides queries.
* ``stsb-unsupervised``: the unique sentences of STS-B train, unlabelled (SimCSE, MNTP).
* ``scifact``: SciFact train queries → the documents their train qrels cite (``title text``, as the BEIR
  task renders them); queries render as queries, documents as documents; the full corpus is kept for mining.
* ``scifact-titles``: the SciFact corpus's (title → abstract) pairs in corpus order, documents with an empty
  title or abstract skipped (no query or qrel is read); the abstracts are the mining corpus.
* ``banking77``: Banking77 train texts grouped by intent into same-intent pairs, both sides queries; each
  pair's intent is its group, so no batch of in-batch negatives holds two pairs of one intent.
* ``simcse``: every training text above, once (STS-B train sentences, Banking77 train texts, SciFact train
  queries, SciFact documents as ``title text``), unlabelled. No test text; AG News is not read (the
  comparisons cluster its only split, test).
"""

from __future__ import annotations

import random
from pathlib import Path

from decemb.errors import ConfigError
from decemb.records import iter_rows
from decemb.tasks.sts import STSB_COLUMNS
from decemb.train.records import TrainData, iter_records, pairs_from_groups

__all__ = ["PRESET_FILES", "STSB_PAIR_MIN", "load_preset"]

_STSB, _BANKING = "stsbenchmark/sts-train.csv", "banking77/train.csv"
_SCIFACT = ["scifact/queries.jsonl", "scifact/corpus.jsonl", "scifact/qrels/train.tsv"]
PRESET_FILES = {
    "stsb": [_STSB],
    "stsb-pairs": [_STSB],
    "stsb-unsupervised": [_STSB],
    "scifact": _SCIFACT,
    "scifact-titles": ["scifact/corpus.jsonl"],
    "banking77": [_BANKING],
    "simcse": [_STSB, _BANKING, *_SCIFACT],
}
STSB_PAIR_MIN = 4.0  # "mostly equivalent" or closer on STS-B's 0..5 scale


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
    if preset == "stsb-pairs":
        kept = [(a, b) for a, b, score in _stsb_rows(paths[0]) if score >= STSB_PAIR_MIN]
        columns = {"anchor": [a for a, _ in kept], "positive": [b for _, b in kept]}
        return TrainData("pairs", columns, {"anchor": "query", "positive": "query"}, source=str(paths[0])), None
    if preset == "stsb-unsupervised":
        return TrainData("texts", {"text": _stsb_texts(paths[0])}, {"text": "query"}, source=str(paths[0])), None
    if preset == "banking77":
        anchors, positives, intents = pairs_from_groups(*_banking_rows(paths[0]), seed)
        columns = {"anchor": anchors, "positive": positives}
        sides = {"anchor": "query", "positive": "query"}
        return TrainData("pairs", columns, sides, source=str(paths[0]), groups=intents), None  # type: ignore[arg-type]
    if preset == "scifact-titles":
        return _titles(paths[0]), None
    if preset == "simcse":
        return _all_texts(paths), None
    return _scifact(paths, seed), None


def _stsb_texts(path: Path) -> list[str]:
    return list(dict.fromkeys(text for a, b, _ in _stsb_rows(path) for text in (a, b)))


def _banking_rows(path: Path) -> tuple[list[str], list[str]]:
    records = [record for _, record in iter_records(path, "csv", key="data.preset")]
    kept = [(str(r.get("text") or "").strip(), str(r.get("category") or "").strip()) for r in records]
    kept = [(text, label) for text, label in kept if text and label]
    return [text for text, _ in kept], [label for _, label in kept]


def _documents(path: Path) -> dict[str, tuple[str, str]]:
    """``{id: (title, abstract)}`` of a BEIR corpus, stripped."""
    return {
        str(record.get("_id")): (str(record.get("title") or "").strip(), str(record.get("text") or "").strip())
        for _, record in iter_records(path, "jsonl", "data.preset")
    }


def _titles(corpus_path: Path) -> TrainData:
    pairs = [(title, abstract) for title, abstract in _documents(corpus_path).values() if title and abstract]
    columns = {"anchor": [t for t, _ in pairs], "positive": [a for _, a in pairs]}
    sides = {"anchor": "query", "positive": "document"}
    return TrainData("pairs", columns, sides, str(corpus_path), corpus=list(columns["positive"]))  # type: ignore[arg-type]


def _all_texts(paths: list[Path]) -> TrainData:
    stsb, banking, *scifact = paths
    pairs = _scifact(scifact, seed=0)
    texts = [*_stsb_texts(stsb), *_banking_rows(banking)[0], *pairs.columns["anchor"], *(pairs.corpus or [])]
    return TrainData("texts", {"text": list(dict.fromkeys(texts))}, {"text": "query"}, source="simcse")


def _scifact(paths: list[Path], seed: int) -> TrainData:
    queries_path, corpus_path, qrels_path = paths
    queries = {
        str(r.get("_id")): str(r.get("text") or "").strip()
        for _, r in iter_records(queries_path, "jsonl", "data.preset")
    }
    corpus = {key: f"{title} {body}".strip() for key, (title, body) in _documents(corpus_path).items()}
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
