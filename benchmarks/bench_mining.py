"""What capping the reuse of a mined hard negative does to the training batches, on SciFact train.

    python benchmarks/bench_mining.py --threads 1 --model smollm2-135m --strategy eos
    python benchmarks/bench_mining.py --threads 1 --model runs/sts-eos/model --strategy eos

Mines once with the model itself among the training positives (``mine_hard_negatives``, ranks
``--range-min``..``--range-max``, max_length 128, as ``configs/train-scifact.yaml``), then chooses one negative
per pair with each ``--max-uses`` (``decemb.train.mining.with_negatives``; ``none``: no cap) and prints,
per cap: the pairs kept, the distinct negatives and the most uses of one, and the batches that
sentence-transformers' no-duplicates sampler makes of them (batch 16, seed 0) against the length it reports.
The last figure is the rows those first ``len(sampler)`` batches hold, i.e. what an epoch trained before
decemb's whole-pass sampler.
"""

from __future__ import annotations

import time

import _common as c
import torch
import yaml
from datasets import Dataset
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

import decemb
from decemb.train.config import HardNegativesSection
from decemb.train.mining import pool_size, rank_candidates, with_negatives
from decemb.train.presets import load_preset


def main() -> None:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--strategy", default="eos", help="a strategy name or a YAML mapping with options")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--range-min", type=int, default=10)
    p.add_argument("--range-max", type=int, default=50)
    p.add_argument("--max-uses", nargs="+", default=["none", "2"], help="caps to compare (none: no cap)")
    args = c.parse(p)
    data, _ = load_preset("scifact", c.data_root(args.data_root), 0)
    model = decemb.load(args.model, yaml.safe_load(args.strategy), max_length=args.max_length, dtype=args.dtype)
    started = time.perf_counter()
    section = HardNegativesSection(
        mine=True, range_min=args.range_min, range_max=args.range_max, corpus="positives", batch_size=args.batch_size
    )
    ranked = rank_candidates(model, data, section)
    seconds = time.perf_counter() - started
    pool = pool_size(section)
    print(f"mined {len(ranked.anchors)} of {len(data)} pairs, {pool} ranked candidates each, {seconds:.0f} s")
    for cap_text in args.max_uses:
        cap = None if cap_text == "none" else int(cap_text)
        mined = with_negatives(ranked, data, section.model_copy(update={"max_uses": cap, "min_kept": 0.0}), seed=0)
        rows = Dataset.from_dict(mined.columns)
        sampler = NoDuplicatesBatchSampler(rows, 16, drop_last=False, generator=torch.Generator())
        sizes = [len(batch) for batch in sampler]
        counted = len(sampler)
        print(
            f"max_uses {cap_text:>4}: {len(mined)} pairs kept | {mined.info['distinct_negatives']} distinct negatives, "
            f"most uses {mined.info['most_uses_of_a_negative']} | {len(sizes)} batches (ST counts {counted}), "
            f"mean {len(mined) / len(sizes):.1f} rows | rows in ST's epoch {sum(sizes[:counted])}"
        )
    c.print_footer()


if __name__ == "__main__":
    main()
