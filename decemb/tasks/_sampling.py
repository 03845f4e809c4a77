"""Deterministic subsampling for ``limit``.

Rows are first put in a canonical order (sorted by content), then a ``numpy.random.default_rng(seed)``
draw picks from that order, so the kept set depends on the seed and the data, not on the file's row
order (only identical rows are told apart by position). Smaller limits give subsets of larger ones
(the draw is one ranking, cut at ``limit``). Indices are returned ascending: kept rows keep their
original order.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np


def sample_indices(keys: Sequence[Any], limit: int | None, seed: int) -> list[int]:
    """``limit`` row indices drawn uniformly (all rows when ``limit`` is None or >= len(keys))."""
    n = len(keys)
    if limit is None or limit >= n:
        return list(range(n))
    canonical = sorted(range(n), key=keys.__getitem__)
    order = np.random.default_rng(seed).permutation(n)
    return sorted(canonical[i] for i in order[:limit])


def stratified_indices(keys: Sequence[Any], labels: Sequence[Hashable], limit: int | None, seed: int) -> list[int]:
    """``limit`` row indices with label proportions kept (systematic sampling per class).

    Each class's rows are shuffled; row ``j`` of a class of size ``m`` gets the rank ``(j + u) / m``
    (``u`` one uniform offset per class), with every class's first row ranked ahead of all others, so
    every class is represented once ``limit`` >= the number of classes and then each class gets about
    ``limit * m / n`` rows.
    """
    n = len(keys)
    if limit is None or limit >= n:
        return list(range(n))
    rng = np.random.default_rng(seed)
    groups: dict[Hashable, list[int]] = {}
    for i in sorted(range(n), key=lambda i: (str(labels[i]), keys[i])):
        groups.setdefault(labels[i], []).append(i)
    ranked: list[tuple[bool, float, float, int]] = []
    for members in groups.values():
        m = len(members)
        offset = rng.random()
        ties = rng.random(m)
        for j, position in enumerate(rng.permutation(m)):
            ranked.append((j > 0, (j + offset) / m, float(ties[j]), members[position]))
    ranked.sort()
    return sorted(item[3] for item in ranked[:limit])


def stratified_split(
    keys: Sequence[Any], labels: Sequence[Hashable], test_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Split row indices into (train, test), ``test_fraction`` of each class (rounded) going to test.

    Classes with >= 2 rows keep at least one row on each side; single-row classes go to train.
    """
    rng = np.random.default_rng(seed)
    groups: dict[Hashable, list[int]] = {}
    for i in sorted(range(len(keys)), key=lambda i: (str(labels[i]), keys[i])):
        groups.setdefault(labels[i], []).append(i)
    train: list[int] = []
    test: list[int] = []
    for members in groups.values():
        m = len(members)
        n_test = min(max(round(m * test_fraction), 1), m - 1) if m >= 2 else 0
        shuffled = [members[p] for p in rng.permutation(m)]
        test.extend(shuffled[:n_test])
        train.extend(shuffled[n_test:])
    return sorted(train), sorted(test)
