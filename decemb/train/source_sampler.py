"""Batches over several training sources: every batch from one source, each source ``weight`` times its pass.

sentence-transformers trains a dict of datasets (one loss each) through a multi-dataset batch sampler; its
``PROPORTIONAL`` sampler takes every batch of each source once and ``ROUND_ROBIN`` stops at the shortest,
and neither takes weights. :class:`SourceBatchSampler` gives source *i* ``round(weight_i x n_i)`` batches per
epoch, ``n_i`` being the batches of one pass over it (weight 1 everywhere: ``PROPORTIONAL``'s counts; 2: two
passes; 0.5: the first half of a shuffled pass), in a seeded random order. Each source is batched by its own
sampler: :class:`~decemb.train.sampler.WholePassNoDuplicatesBatchSampler` (with its groups) for losses with
in-batch negatives, a plain shuffled batching otherwise, so a batch never mixes sources and the
no-duplicates and whole-pass rules hold per source. An epoch depends only on ``seed`` and the epoch number,
so its length is exact and a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import torch
from sentence_transformers.base.sampler import DefaultBatchSampler, MultiDatasetDefaultBatchSampler
from torch.utils.data import RandomSampler

from decemb.train.sampler import WholePassNoDuplicatesBatchSampler

__all__ = ["SourceBatchSampler", "SourcePlan"]

_PASSES_PER_EPOCH = 1000  # pass k of epoch e is numbered e * 1000 + k: every pass of a source is seeded apart


@dataclass(frozen=True)
class SourcePlan:
    """How one source is batched: its ``weight``, whether its loss uses in-batch negatives (then no batch
    holds a text twice, nor two rows of one of its ``groups``)."""

    name: str
    weight: float = 1.0
    in_batch_negatives: bool = False
    groups: Sequence[str] | None = None


class SourceBatchSampler(MultiDatasetDefaultBatchSampler):
    """A ``MultiDatasetDefaultBatchSampler`` for ``SentenceTransformerTrainingArguments.multi_dataset_batch_sampler``
    (as ``functools.partial(SourceBatchSampler, plans=[...])``, one plan per dataset in the dict's order).
    The per-dataset samplers the trainer builds are replaced by each plan's own (same batch size, drop_last
    and label columns)."""

    def __init__(
        self,
        dataset: Any,
        batch_samplers: list[Any],
        generator: torch.Generator | None = None,
        seed: int = 0,
        *,
        plans: Sequence[SourcePlan],
    ) -> None:
        super().__init__(dataset, batch_samplers, generator=generator, seed=seed)
        if len(plans) != len(dataset.datasets):
            raise ValueError(f"{len(plans)} source plans for {len(dataset.datasets)} datasets")
        self.plans = list(plans)
        self.seed = int(seed or 0)
        template = batch_samplers[0]
        self.samplers = [self._sampler(part, plan, template) for part, plan in zip(dataset.datasets, self.plans)]
        self.offsets = [0, *accumulate(len(part) for part in dataset.datasets)]
        self._epoch: tuple[int, list[list[int]], list[int]] | None = None

    def _sampler(self, part: Any, plan: SourcePlan, template: Any) -> Any:
        options = {
            "batch_size": template.batch_size,
            "drop_last": template.drop_last,
            "valid_label_columns": getattr(template, "valid_label_columns", None),
            "generator": torch.Generator(),
            "seed": self.seed,
        }
        if plan.in_batch_negatives:
            return WholePassNoDuplicatesBatchSampler(part, groups=plan.groups, **options)
        return DefaultBatchSampler(RandomSampler(part, generator=options["generator"]), **options)

    def pass_batches(self, index: int, number: int) -> list[list[int]]:
        """Pass ``number`` over source ``index``: its batches, as dataset indices (offset into the concatenation)."""
        sampler = self.samplers[index]
        seed = self.seed + 7919 * (index + 1)  # sources shuffle apart even when they have the same length
        sampler.seed = seed
        sampler.set_epoch(number)
        if not isinstance(sampler, WholePassNoDuplicatesBatchSampler):
            sampler.generator.manual_seed(seed + number)  # the plain batching's RandomSampler draws from it
        offset = self.offsets[index]
        return [[int(row) + offset for row in batch] for batch in sampler]

    def source_batches(self, index: int) -> list[list[int]]:
        """The batches source ``index`` gives in the current epoch (``round(weight x one pass)``, at least 1)."""
        first = self.pass_batches(index, self.epoch * _PASSES_PER_EPOCH)
        wanted = max(1, round(self.plans[index].weight * len(first)))
        taken, number = list(first), 1
        while len(taken) < wanted and first:
            taken += self.pass_batches(index, self.epoch * _PASSES_PER_EPOCH + number)
            number += 1
        return taken[:wanted]

    def _batches(self) -> tuple[list[list[int]], list[int]]:
        """This epoch's batches and the source of each, in a seeded random order of sources."""
        if self._epoch is None or self._epoch[0] != self.epoch:
            per_source = [self.source_batches(index) for index in range(len(self.plans))]
            labels = [index for index, batches in enumerate(per_source) for _ in batches]
            order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed + self.epoch))
            labels = [labels[position] for position in order.tolist()]
            iterators = [iter(batches) for batches in per_source]
            self._epoch = (self.epoch, [next(iterators[index]) for index in labels], labels)
        return self._epoch[1], self._epoch[2]

    def sources_of_epoch(self) -> list[int]:
        """The source index of each batch of the current epoch, in order."""
        return list(self._batches()[1])

    def __iter__(self) -> Iterator[list[int]]:
        yield from (list(batch) for batch in self._batches()[0])

    def __len__(self) -> int:
        return len(self._batches()[0])
