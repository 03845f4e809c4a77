"""Training data: csv/tsv/jsonl files with a column mapping, and presets over the shared data folder, read,
checked, sampled and normalised into a :class:`~decemb.train.records.TrainData` (its shapes are described
there). Every problem is a one-line :class:`~decemb.errors.ConfigError` naming the config key and, for a
bad row, the file and line.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from decemb.errors import ConfigError
from decemb.registry import did_you_mean
from decemb.strategies import Kind
from decemb.train.config import DataColumns, DataSection
from decemb.train.presets import load_preset
from decemb.train.records import SHAPE_ROLES, Shape, TrainData, iter_records, pairs_from_groups

__all__ = ["load_train_data"]


def _fail(message: str, key: str) -> ConfigError:
    return ConfigError(message, key=key)


def _format_of(section: DataSection, path: Path) -> str:
    if section.format:
        return section.format
    fmt = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(path.suffix.lower())
    if fmt is None:
        raise _fail(f"cannot tell the format of {path.name}: set data.format (csv, tsv or jsonl)", "data.format")
    return fmt


def _roles(columns: DataColumns) -> tuple[Shape, dict[str, str]]:
    """The shape the given roles make, and ``{dataset column: role}``; a mixed or partial set is an error."""
    given = {name for name, value in columns.model_dump().items() if value is not None}
    if given <= {"anchor", "positive", "negative"} and {"anchor", "positive"} <= given:
        return "pairs", {"anchor": "anchor", "positive": "positive"}
    if given == {"text1", "text2", "score"}:
        return "scored", {"sentence1": "text1", "sentence2": "text2"}
    if given in ({"text"}, {"text", "label"}):
        return "texts", {"text": "text"}
    wanted = "; ".join(f"{shape}: {roles}" for shape, roles in SHAPE_ROLES.items())
    raise _fail(f"columns {sorted(given)} make no known data shape ({wanted})", "data.columns")


def _value(record: dict[str, Any], column: str, role: str, line: int, path: Path) -> str:
    if column not in record:
        known = [str(k) for k in record if k is not None]
        hint = did_you_mean(column, known)
        raise _fail(f"no column {column!r} in {path}{hint} (columns: {', '.join(known)})", f"data.columns.{role}")
    value = record[column]
    if value is None or isinstance(value, dict | list) or not str(value).strip():
        raise _fail(f"empty or non-text value on line {line} of {path}", f"data.columns.{role}")
    return str(value).strip()


def _read_file(section: DataSection, root: Path) -> TrainData:
    assert section.path is not None and section.columns is not None
    path = Path(section.path).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise _fail(f"file not found: {path}", "data.path")
    fmt = _format_of(section, path)
    shape, _ = _roles(section.columns)
    cols = section.columns
    out: dict[str, list[Any]] = {}
    labels: list[str] = []
    for line, record in iter_records(path, fmt):
        if shape == "pairs":
            assert cols.anchor and cols.positive
            out.setdefault("anchor", []).append(_value(record, cols.anchor, "anchor", line, path))
            out.setdefault("positive", []).append(_value(record, cols.positive, "positive", line, path))
            for index, column in enumerate(cols.negative or [], start=1):
                out.setdefault(f"negative_{index}", []).append(_value(record, column, "negative", line, path))
        elif shape == "scored":
            assert cols.text1 and cols.text2 and cols.score
            out.setdefault("sentence1", []).append(_value(record, cols.text1, "text1", line, path))
            out.setdefault("sentence2", []).append(_value(record, cols.text2, "text2", line, path))
            out.setdefault("score", []).append(_score(_value(record, cols.score, "score", line, path), line, path))
        else:
            assert cols.text
            out.setdefault("text", []).append(_value(record, cols.text, "text", line, path))
            if cols.label:
                labels.append(_value(record, cols.label, "label", line, path))
    if not out:
        raise _fail(f"no rows in {path}", "data.path")
    groups = None
    if labels:
        anchors, positives, groups = pairs_from_groups(out["text"], labels, section.seed)
        out = {"anchor": anchors, "positive": positives}
        shape = "pairs"
    symmetric = section.symmetric if section.symmetric is not None else shape != "pairs" or bool(labels)
    sides: dict[str, Kind] = {
        name: "query" if symmetric or name in ("anchor", "sentence1", "sentence2", "text") else "document"
        for name in out
    }
    return TrainData(shape, out, sides, source=str(path), groups=groups)


def _score(text: str, line: int, path: Path) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _fail(f"cannot parse {text!r} as a number on line {line} of {path}", "data.columns.score") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _fail(f"score {text!r} on line {line} of {path} is not finite", "data.columns.score")
    return value


def _normalise_scores(data: TrainData, section: DataSection, preset_range: tuple[float, float] | None) -> None:
    score_range = section.score_range or preset_range
    if data.shape != "scored" or score_range is None:
        return
    low, high = score_range
    for value in data.columns["score"]:
        if not low <= value <= high:
            raise _fail(
                f"score {value} in {data.source} is outside score_range {list(score_range)}", "data.score_range"
            )
    data.columns["score"] = [(value - low) / (high - low) for value in data.columns["score"]]


def _to_pairs(data: TrainData, min_score: float) -> TrainData:
    """Scored pairs → positive pairs: those scoring at least ``min_score`` (before normalisation)."""
    keep = [i for i, score in enumerate(data.columns["score"]) if score >= min_score]
    if not keep:
        raise _fail(f"no pair in {data.source} scores >= {min_score}", "data.min_score")
    columns = {
        "anchor": [data.columns["sentence1"][i] for i in keep],
        "positive": [data.columns["sentence2"][i] for i in keep],
    }
    return TrainData("pairs", columns, {"anchor": "query", "positive": "query"}, data.source, data.corpus, data.info)


def _sample(data: TrainData, limit: int | None, seed: int) -> TrainData:
    if limit is None or limit >= len(data):
        return data
    keep = sorted(random.Random(seed).sample(range(len(data)), limit))
    data.columns = {name: [values[i] for i in keep] for name, values in data.columns.items()}
    if data.groups is not None:
        data.groups = [data.groups[i] for i in keep]
    return data


def load_train_data(section: DataSection, data_root: Path) -> TrainData:
    """Read, check, map, sample and normalise the training data a config names."""
    if section.preset is not None:
        data, preset_range = load_preset(section.preset, data_root, section.seed)
        if section.symmetric is not None:
            data.sides = {name: "query" if section.symmetric or name == "anchor" else "document" for name in data.sides}
    else:
        data, preset_range = _read_file(section, data_root), None
    if section.min_score is not None:
        if data.shape != "scored":
            raise _fail(f"applies to scored pairs; this data has shape {data.shape!r}", "data.min_score")
        data = _to_pairs(data, section.min_score)
    data = _sample(data, section.limit, section.seed)
    _normalise_scores(data, section, preset_range)
    if len(data) == 0:
        raise _fail(f"no training rows in {data.source}", "data")
    data.info.setdefault("rows", len(data))
    return data
