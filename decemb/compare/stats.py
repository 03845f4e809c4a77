"""Bootstrap confidence intervals for a comparison's scores, over each task's items.

Each score gets a 95% percentile bootstrap interval from ``scipy.stats.bootstrap``: the task's items (STS
pairs, retrieval queries, classification test texts, clustering texts; :meth:`decemb.tasks.Task.score_items`)
are resampled with replacement 1,000 times, the metric is recomputed on each resample, and the interval
spans the middle 95% of those values. Paired data (an STS pair's cosine and gold score) is resampled
together. The generator is seeded, so a rerun gives the same interval. The classifier and k-means are fitted
once: their predictions are resampled, not refitted. A rerank gain is resampled per query, paired.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from decemb.tasks.items import ItemScores, mean, mean_items

__all__ = ["CONFIDENCE", "N_RESAMPLES", "SEED", "bootstrap_ci", "change_items", "describe"]

CONFIDENCE = 0.95
N_RESAMPLES = 1000
SEED = 0


def describe() -> str:
    """One sentence for a report saying what the intervals are."""
    return (
        f"[low, high]: {CONFIDENCE:.0%} bootstrap confidence interval over the task's items (percentile method, "
        f"{N_RESAMPLES:,} resamples, seed {SEED})."
    )


def bootstrap_ci(
    items: ItemScores, *, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> tuple[float, float] | None:
    """The bootstrap interval of ``items``' metric; ``None`` for fewer than 2 items, a NaN score, or an
    interval that is not finite (e.g. a correlation undefined on many resamples)."""
    if items.n < 2 or not math.isfinite(items.value()):
        return None
    from scipy.stats import bootstrap

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # degenerate resamples (all items alike) just give a NaN bound
        result = bootstrap(
            items.data,
            items.statistic,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            paired=len(items.data) > 1,
            vectorized=items.vectorized,
            random_state=np.random.default_rng(seed),
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None


def change_items(before: ItemScores, after: ItemScores) -> ItemScores | None:
    """The per-item change ``after - before`` of a mean metric over the same items (a rerank's gain per
    query), whose bootstrap is paired; ``None`` for other metrics."""
    if before.statistic is not mean or after.statistic is not mean or before.n != after.n:
        return None
    return mean_items(after.data[0] - before.data[0])
