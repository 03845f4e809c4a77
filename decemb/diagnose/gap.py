"""The discrimination gap: how far apart a model puts related and unrelated pairs.

Raw decoder states put almost every pair of sentences at a cosine near 1 (anisotropy: one dominant
direction shared by all states), so related and unrelated pairs are barely told apart even when their
ranking (Spearman) is fair. The gap, with the same definition as ``decemb train``'s evaluation:

* **related**: mean cosine of the labelled pairs scored ``>= related_min`` (STS-B: 4 of 5);
* **unrelated**: mean cosine of each first text against the second text of *another*, random pair
  (a seeded shuffle of the sample, never its own partner);
* **gap** = related − unrelated.

Also reported: the mean cosine of the pairs scored ``<= unrelated_max`` (STS-B: 1 of 5; annotated as
unrelated, though often on the same topic), and the three distributions for a histogram.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from decemb.normalize import l2_normalize

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_PAIRS = "stsbenchmark/sts-test.csv"


@dataclass(frozen=True)
class Pairs:
    """Labelled sentence pairs (e.g. STS-B): ``gold`` on the file's own scale."""

    name: str
    text1: list[str]
    text2: list[str]
    gold: list[float]


def load_pairs(
    path: str | Path = DEFAULT_PAIRS,
    *,
    data_root: str | Path | None = None,
    fmt: str = "stsb",
    columns: tuple[str, str, str] = ("sentence1", "sentence2", "score"),
    limit: int | None = None,
    seed: int = 0,
) -> Pairs:
    """Read a labelled pair file through decemb's task loader (``fmt``: ``stsb``, ``csv``, ``tsv`` or
    ``jsonl``; ``columns``: text1, text2, score for the last three). ``limit`` keeps a seeded sample."""
    from decemb.tasks import load_task

    config: dict[str, Any] = {"type": "sts", "name": Path(path).stem, "path": str(path), "format": fmt}
    if fmt != "stsb":
        config["columns"] = dict(zip(("text1", "text2", "score"), columns))
    if limit is not None:
        config.update(limit=limit, seed=seed)
    task = load_task(config, data_root)
    return Pairs(task.name, list(task.text1), list(task.text2), [float(value) for value in task.gold])


@dataclass
class Gap:
    """Cosines of one model on one pair set, and their summary."""

    related: np.ndarray
    unrelated: np.ndarray
    low_scored: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, float | int]:
        def mean(values: np.ndarray) -> float:
            return round(float(values.mean()), 4) if values.size else float("nan")

        related, unrelated = mean(self.related), mean(self.unrelated)
        return {
            "related": related,
            "unrelated": unrelated,
            "gap": round(related - unrelated, 4),
            "low_scored": mean(self.low_scored),
            "n_related": int(self.related.size),
            "n_unrelated": int(self.unrelated.size),
            "n_low_scored": int(self.low_scored.size),
        }


def other_indices(n: int, seed: int) -> np.ndarray:
    """For each ``i < n`` an index ``j != i``: a seeded shuffle whose fixed points move to the next index."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    fixed = order == np.arange(n)
    order[fixed] = (order[fixed] + 1) % n
    return order


def unit_rows(array: np.ndarray) -> np.ndarray:
    return l2_normalize(np.asarray(array, dtype=np.float64))


def discrimination_gap(
    model: SentenceTransformer,
    pairs: Pairs,
    *,
    related_min: float = 4.0,
    unrelated_max: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
) -> Gap:
    """Embed both sides of ``pairs`` (plain ``encode``, the symmetric side) and measure the gap."""
    if len(pairs.gold) < 2:
        raise ValueError(f"{pairs.name}: the discrimination gap needs at least 2 pairs, got {len(pairs.gold)}")
    options = {"batch_size": batch_size, "convert_to_numpy": True, "show_progress_bar": False}
    first = unit_rows(model.encode(pairs.text1, **options))
    second = unit_rows(model.encode(pairs.text2, **options))
    cosine = (first * second).sum(axis=1)
    gold = np.asarray(pairs.gold, dtype=np.float64)
    shuffled = (first * second[other_indices(len(gold), seed)]).sum(axis=1)
    settings = {"pairs": pairs.name, "n_pairs": len(gold), "related_min": related_min, "unrelated_max": unrelated_max}
    return Gap(cosine[gold >= related_min], shuffled, cosine[gold <= unrelated_max], {**settings, "seed": seed})
