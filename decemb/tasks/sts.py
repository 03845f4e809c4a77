"""Semantic textual similarity: cosine similarity of sentence pairs vs gold scores."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decemb.tasks._io import column, read_table, resolve_path
from decemb.tasks._sampling import sample_indices
from decemb.tasks.base import EncodeRequest, TaskDataError, check_embeddings, l2_normalize
from decemb.tasks.config import STSColumns, STSTaskConfig, default_header
from decemb.tasks.items import ItemScores, pearson, spearman

logger = logging.getLogger(__name__)

STSB_COLUMNS = STSColumns(text1=5, text2=6, score=4)
STSB_RANGE = (0.0, 5.0)


@dataclass
class STSTask:
    """Scores: Spearman and Pearson correlation (x100) between pair cosine similarity and gold scores.

    Both sides are ``query``-kind requests. Correlations use ``scipy.stats.spearmanr``/``pearsonr`` and
    are NaN when the cosines are constant.
    """

    name: str
    text1: list[str]
    text2: list[str]
    gold: list[float]
    info: dict[str, Any] = field(default_factory=dict)
    type: str = field(default="sts", init=False)
    main_metric: str = field(default="spearman", init=False)

    def requests(self) -> dict[str, EncodeRequest]:
        return {
            "text1": EncodeRequest("query", list(self.text1)),
            "text2": EncodeRequest("query", list(self.text2)),
        }

    def _cosines(self, embeddings: dict[str, np.ndarray]) -> np.ndarray:
        arrays = check_embeddings(self.name, self.requests(), embeddings)
        return (l2_normalize(arrays["text1"]) * l2_normalize(arrays["text2"])).sum(axis=1)

    def score(self, embeddings: dict[str, np.ndarray]) -> dict[str, float]:
        cosine = self._cosines(embeddings)
        gold = np.asarray(self.gold, dtype=np.float64)
        with warnings.catch_warnings():
            from scipy import stats

            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            rho = stats.spearmanr(cosine, gold).statistic
            r = stats.pearsonr(cosine, gold).statistic
        return {"spearman": float(rho) * 100, "pearson": float(r) * 100}

    def score_items(self, embeddings: dict[str, np.ndarray]) -> dict[str, ItemScores]:
        """Per pair: (cosine, gold), resampled together; the statistics are the two correlations."""
        pairs = (self._cosines(embeddings), np.asarray(self.gold, dtype=np.float64))
        return {"spearman": ItemScores(pairs, spearman), "pearson": ItemScores(pairs, pearson)}

    def size(self) -> int:
        return len(self.gold)


def load_sts(config: STSTaskConfig, data_root: Path) -> STSTask:
    """Read pairs; rows with a blank text or blank score are skipped (counted in ``info["skipped"]``).

    A non-numeric score, or one outside ``score_range`` (STS-B preset: 0..5), is a ``TaskDataError``.
    """
    task = config.name
    path = resolve_path(config.path, root=data_root, task=task, key="path")
    if config.format == "stsb":
        fmt, header, cols = "tsv", False, STSB_COLUMNS
        score_range = config.score_range or STSB_RANGE
    else:
        assert config.columns is not None
        fmt, header, cols = config.format, default_header(config.format, config.header), config.columns
        score_range = config.score_range
    table = read_table(path, fmt, header, task=task, ragged=config.format == "stsb")  # STS-B: extra columns
    first = column(table, cols.text1, task=task, key="columns.text1")
    second = column(table, cols.text2, task=task, key="columns.text2")
    raw = column(table, cols.score, task=task, key="columns.score")

    rows: list[tuple[str, str, float]] = []
    skipped = 0
    for a, b, s, line in zip(first, second, raw, table.lines, strict=True):
        if not a or not b or not s:
            skipped += 1
            continue
        try:
            value = float(s)
        except ValueError:
            raise TaskDataError(
                f"task {task!r}: columns.score = {cols.score!r}: cannot parse {s!r} as a number "
                f"on line {line} of {path}"
            ) from None
        if not np.isfinite(value):
            raise TaskDataError(f"task {task!r}: score {s!r} on line {line} of {path} is not finite")
        if score_range and not score_range[0] <= value <= score_range[1]:
            raise TaskDataError(
                f"task {task!r}: score {value} on line {line} of {path} is outside score_range {list(score_range)}"
            )
        rows.append((a, b, value))
    if skipped:
        logger.warning("task %r: skipped %d rows with a blank text or score in %s", task, skipped, path)
    keep = sample_indices(rows, config.limit, config.seed)
    if len(keep) < 2:
        raise TaskDataError(f"task {task!r}: need at least 2 scored pairs, found {len(keep)} in {path}")
    kept = [rows[i] for i in keep]
    return STSTask(
        name=task,
        text1=[r[0] for r in kept],
        text2=[r[1] for r in kept],
        gold=[r[2] for r in kept],
        info={"path": str(path), "rows": len(rows), "skipped": skipped, "kept": len(kept)},
    )
