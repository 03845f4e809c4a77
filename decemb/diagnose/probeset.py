"""The shipped echo-probe set: items built from STS-B *train* pairs, stored as references, never as text.

``decemb/data/echo_probe.json`` lists, for each item, the STS-B rows and columns its four sentences come
from (and a hash of them): the data folder's rule is that STS-B is read, not copied into the project. The
texts are read from ``stsbenchmark/sts-train.csv`` under the data root when the probe runs; a different
file is refused by the hash. :func:`build_probe_set` rebuilds the file exactly (seeded):

* B, B+: the two sentences of a captions pair scored >= 4.6 of 5 (a paraphrase), different strings;
* B−: the second sentence of a captions pair scored <= 0.4 (unrelated by the annotators);
* A: the first sentence of another such low-scored pair (a neutral, unrelated prefix).

Own items can be given as a JSONL file instead, one ``{"a", "b", "b_plus", "b_minus"}`` object a line.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from decemb.diagnose.probe import ProbeItem

PROBE_FILE = Path(__file__).resolve().parents[1] / "data" / "echo_probe.json"
SOURCE = "stsbenchmark/sts-train.csv"
ROLES = ("a", "b", "b_plus", "b_minus")
COLUMNS = {"sentence1": 5, "sentence2": 6}


class ProbeSetError(ValueError):
    """A probe file or its source data is missing or does not match."""


def _rows(data_root: Path) -> list[list[str]]:
    path = data_root / SOURCE
    if not path.is_file():
        raise ProbeSetError(f"the echo probe set reads its sentences from {path}, which does not exist (--data-root)")
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def digest(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:12]


def build_probe_set(data_root: str | Path, n: int = 64, seed: int = 0) -> dict[str, Any]:
    """The probe file's content (see the module doc), built from ``data_root``'s STS-B train split."""
    rows = _rows(Path(data_root))
    captions = [(index, row) for index, row in enumerate(rows) if row[0] == "main-captions" and len(row) >= 7]
    high = [(i, row) for i, row in captions if float(row[4]) >= 4.6 and row[5].strip() != row[6].strip()]
    low = [(i, row) for i, row in captions if float(row[4]) <= 0.4]
    rng = random.Random(seed)
    rng.shuffle(high)
    items = []
    for (b_row, pair), (a_row, _), (minus_row, _) in zip(high[:n], rng.sample(low, n), rng.sample(low, n)):
        refs = {"a": [a_row, "sentence1"], "b": [b_row, "sentence1"], "b_plus": [b_row, "sentence2"]}
        refs["b_minus"] = [minus_row, "sentence2"]
        texts = [rows[row][COLUMNS[column]] for row, column in refs.values()]
        if len(set(texts)) == 4 and pair[5] != pair[6]:
            items.append({**refs, "sha256": digest(texts)})
    return {
        "description": "Echo probe items (A, B, B+, B−) as references to STS-B train rows; see decemb.diagnose.",
        "source": SOURCE,
        "rows": "0-based line numbers of the tab-separated file; columns sentence1 (6th) or sentence2 (7th)",
        "built_with": {"function": "decemb.diagnose.probeset.build_probe_set", "n": n, "seed": seed},
        "items": items,
    }


def _from_references(spec: dict[str, Any], data_root: Path, where: Path) -> list[ProbeItem]:
    rows = _rows(data_root)
    items = []
    for number, entry in enumerate(spec.get("items", [])):
        try:
            texts = [rows[entry[role][0]][COLUMNS[entry[role][1]]] for role in ROLES]
        except (KeyError, IndexError, TypeError) as error:
            raise ProbeSetError(f"{where}: item {number} does not point at an STS-B sentence ({error})") from None
        if digest(texts) != entry.get("sha256"):
            raise ProbeSetError(
                f"{where}: item {number} does not match {data_root / SOURCE} (another version of STS-B?)"
            )
        items.append(ProbeItem(*texts))
    return items


def _from_jsonl(path: Path) -> list[ProbeItem]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            items.append(ProbeItem(*(str(record[role]) for role in ROLES)))
        except (ValueError, KeyError, TypeError) as error:
            raise ProbeSetError(f"{path}:{number}: expected an object with keys {', '.join(ROLES)} ({error})") from None
    return items


def load_probe_set(data_root: str | Path, path: str | Path | None = None, limit: int | None = None) -> list[ProbeItem]:
    """The probe items: the shipped set (texts read from ``data_root``) or ``path`` (``.jsonl`` of texts, or a
    reference file like the shipped one); the first ``limit`` of them."""
    where = PROBE_FILE if path is None else Path(path).expanduser()
    if not where.is_file():
        raise ProbeSetError(f"probe file {where} does not exist")
    if where.suffix == ".jsonl":
        items = _from_jsonl(where)
    else:
        try:
            spec = json.loads(where.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ProbeSetError(f"{where} is not valid JSON ({error})") from None
        items = _from_references(spec, Path(data_root).expanduser(), where)
    if not items:
        raise ProbeSetError(f"{where} holds no probe items")
    return items[:limit]
