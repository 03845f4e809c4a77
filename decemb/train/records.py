"""What the training data is once read: :class:`TrainData` in one of three shapes, and the records of a
csv/tsv/jsonl file (read by :func:`decemb.records.iter_rows`, as the evaluation tasks read theirs).

* ``pairs``: ``anchor``, ``positive`` and optional ``negative_1..n`` columns (MNRL / cached MNRL);
* ``scored``: ``sentence1``, ``sentence2`` and a float ``score`` (CoSENT / AnglE);
* ``texts``: one ``text`` column (SimCSE, MNTP).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from decemb.errors import ConfigError
from decemb.records import RowError, iter_rows
from decemb.strategies import Kind

__all__ = ["SHAPE_ROLES", "Shape", "TrainData", "iter_records", "pairs_from_groups"]

Shape = Literal["pairs", "scored", "texts"]
SHAPE_ROLES: dict[Shape, str] = {
    "pairs": "anchor + positive (+ negative)",
    "scored": "text1 + text2 + score",
    "texts": "text (or text + label, grouped into pairs)",
}


@dataclass
class TrainData:
    """Columns in dataset order (``columns``), the side each renders on (``sides``), for mining the candidate
    corpus where the source has one (``corpus``), and for pairs made within labels the label of each row
    (``groups``: rows of one label never share a batch of in-batch negatives)."""

    shape: Shape
    columns: dict[str, list[Any]]
    sides: dict[str, Kind]
    source: str
    corpus: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    groups: list[str] | None = None

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def text_columns(self) -> list[str]:
        return [name for name in self.columns if name != "score"]


def iter_records(path: Path, fmt: str, key: str = "data.path") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` per non-blank row: csv/tsv rows keyed by their header row (tsv split on tabs,
    no quoting), jsonl lines as the objects they hold; any problem is a ``ConfigError`` on ``key``."""
    header: list[str] | None = None
    try:
        for number, row in iter_rows(path, fmt):
            if isinstance(row, dict):
                yield number, row
            elif header is None:
                header = [cell.strip() for cell in row]
            else:
                yield number, dict(zip(header, row))
    except RowError as error:
        raise ConfigError(f"{path}: {error}", key=key) from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"cannot read {path} ({error})", key=key) from None


def pairs_from_groups(texts: list[str], labels: list[str], seed: int) -> tuple[list[str], list[str], list[str]]:
    """Texts grouped by label → (anchor, positive) pairs of two texts with the same label, each text used
    once (shuffled with ``seed``; a label's odd text out is dropped), and the label of each pair."""
    rng = random.Random(seed)
    groups: dict[str, list[str]] = {}
    for text, label in zip(texts, labels):
        groups.setdefault(label, []).append(text)
    pairs: list[tuple[str, str, str]] = []
    for label in sorted(groups):
        members = list(dict.fromkeys(groups[label]))
        rng.shuffle(members)
        pairs += [(members[i], members[i + 1], label) for i in range(0, len(members) - 1, 2)]
    rng.shuffle(pairs)
    return [a for a, _, _ in pairs], [b for _, b, _ in pairs], [label for *_, label in pairs]
