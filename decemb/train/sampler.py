"""An epoch that reaches every row when rows share texts.

sentence-transformers' ``NoDuplicatesBatchSampler`` never puts two rows that share a text in one batch (a
shared text would be its own in-batch negative). When rows do share texts (a query citing several documents,
a document that is one pair's positive and another's negative) a pass over the data needs more, shorter
batches than ``ceil(rows / batch_size)``, but the sampler still reports that number as its length, and the
trainer sizes an epoch (and the learning-rate schedule) by it: the batches past it are never trained on.

``groups`` (one label per row) extends "no text twice" to "no label twice": two same-intent pairs of Banking77
in one batch would be each other's false negatives, so rows of one group never share a batch either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

__all__ = ["WholePassNoDuplicatesBatchSampler"]


class WholePassNoDuplicatesBatchSampler(NoDuplicatesBatchSampler):
    """``NoDuplicatesBatchSampler`` whose length is the number of batches one pass really yields, so that an
    epoch trains on every row exactly once. The pass depends only on ``seed + epoch`` (as in the parent), so
    the length read before an epoch is the number of batches it then yields. ``groups``: a label per row;
    two rows of one label never share a batch (see the module docstring)."""

    def __init__(self, *args: Any, groups: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if groups is not None and len(groups) != len(self.dataset):
            raise ValueError(f"groups has {len(groups)} labels for {len(self.dataset)} rows")
        self.groups = None if groups is None else list(groups)
        self._pass: tuple[int, list[list[int]]] | None = None
        self._passing = False  # the parent's __iter__ reads len(self) for its own batch count

    def _iter_one_pass(self, get_sample_values: Callable[[int], Any], has_overlap: Callable[..., bool]) -> Any:
        if self.groups is None:
            return super()._iter_one_pass(get_sample_values, has_overlap)
        groups = self.groups

        def with_group(index: int) -> set[str]:  # the label joins the row's texts: "\0" never starts a text
            return set(get_sample_values(index)) | {"\0group\0" + groups[index]}

        return super()._iter_one_pass(with_group, has_overlap)

    def _batches(self) -> list[list[int]]:
        if self._pass is None or self._pass[0] != self.epoch:
            self._passing = True
            try:
                batches = [list(batch) for batch in super().__iter__()]
            finally:
                self._passing = False
            self._pass = (self.epoch, batches)
        return self._pass[1]

    def __len__(self) -> int:
        if self.drop_last or self._passing:
            return super().__len__()
        return len(self._batches())

    def __iter__(self) -> Iterator[list[int]]:
        if self.drop_last:
            yield from super().__iter__()
            return
        yield from (list(batch) for batch in self._batches())
