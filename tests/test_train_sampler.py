"""``WholePassNoDuplicatesBatchSampler``: an epoch is one whole pass (every row once, no batch holding a text
twice) and its length, which sizes the trainer's epoch and schedule, is the number of batches it yields."""

from __future__ import annotations

import random

import pytest
import torch
from datasets import Dataset
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

from decemb.train.sampler import WholePassNoDuplicatesBatchSampler


def _shared_rows(rows: int, documents: int, seed: int) -> Dataset:
    rng = random.Random(seed)
    return Dataset.from_dict(
        {
            "anchor": [f"query {rng.randrange(rows)}" for _ in range(rows)],
            "positive": [f"document {rng.randrange(documents)}" for _ in range(rows)],
        }
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_epoch_is_a_whole_pass_of_the_length_it_reports(seed):
    dataset = _shared_rows(100, 12, seed)
    # the trainer passes a generator, which the samplers reseed with seed + epoch
    sampler = WholePassNoDuplicatesBatchSampler(dataset, 16, drop_last=False, generator=torch.Generator(), seed=seed)
    parent = NoDuplicatesBatchSampler(dataset, 16, drop_last=False, generator=torch.Generator(), seed=seed)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        parent.set_epoch(epoch)
        length = len(sampler)
        batches = list(sampler)
        assert length == len(batches) > len(parent) == 7  # ceil(100 / 16): the parent's count falls short
        assert batches == list(parent)  # the parent's own batches, all of them
        assert sorted(i for batch in batches for i in batch) == list(range(100))
        for batch in batches:
            texts = [dataset[i][column] for i in batch for column in ("anchor", "positive")]
            assert len(set(texts)) == len(texts)
        assert list(sampler) == batches  # a second read of the same epoch: the same batches


def test_distinct_rows_keep_the_usual_length_and_drop_last_is_the_parents():
    dataset = Dataset.from_dict({"anchor": [f"q{i}" for i in range(50)], "positive": [f"d{i}" for i in range(50)]})
    sampler = WholePassNoDuplicatesBatchSampler(dataset, 16, drop_last=False, seed=0)
    assert len(sampler) == 4 and [len(batch) for batch in sampler] == [16, 16, 16, 2]
    dropping = WholePassNoDuplicatesBatchSampler(dataset, 16, drop_last=True, seed=0)
    assert len(dropping) == 3 and [len(batch) for batch in dropping] == [16, 16, 16]
