"""What capping the reuse of a mined hard negative does to the training batches, on SciFact train.

    python benchmarks/bench_mining.py --threads 1 --model smollm2-135m --strategy eos
    python benchmarks/bench_mining.py --threads 1 --model runs/sts-eos/model --strategy eos

Mines once with the model itself among the training positives (``mine_hard_negatives``, ranks
``--range-min``..``--range-max``, max_length 128, as ``configs/train-scifact.yaml``), then chooses one negative
per pair with each ``--max-uses`` (``decemb.train.mining.choose_negatives``; ``none``: no cap) and prints,
per cap: the pairs kept, the distinct negatives and the most uses of one, and the batches that
sentence-transformers' no-duplicates sampler makes of them (batch 16, seed 0) against the length it reports.
The last figure is the rows those first ``len(sampler)`` batches hold, i.e. what an epoch trained before
decemb's whole-pass sampler.
"""

from __future__ import annotations

import time
from collections import Counter

import _common as c
import torch
import yaml
from datasets import Dataset
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler
from sentence_transformers.util import mine_hard_negatives

import decemb
from decemb.train.config import HardNegativesSection
from decemb.train.mining import choose_negatives
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
    pairs = Dataset.from_dict({"anchor": data.columns["anchor"], "positive": data.columns["positive"]})
    width = args.range_max - args.range_min
    ranked = mine_hard_negatives(
        pairs, model, anchor_column_name="anchor", positive_column_name="positive", range_min=args.range_min,
        range_max=args.range_max, num_negatives=width, sampling_strategy="top", output_format="labeled-list",
        batch_size=args.batch_size, verbose=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    print(f"mined {len(ranked)} of {len(data)} pairs, {width} ranked candidates each, {seconds:.0f} s")
    anchors, positives = list(ranked["anchor"]), [texts[0] for texts in ranked["positive"]]
    candidates = [texts[1:] for texts in ranked["positive"]]
    for cap_text in args.max_uses:
        cap = None if cap_text == "none" else int(cap_text)
        section = HardNegativesSection(mine=True, range_min=args.range_min, range_max=args.range_max, max_uses=cap)
        chosen = choose_negatives(candidates, section, seed=0)
        kept = [row for row, negatives in enumerate(chosen) if negatives is not None]
        rows = {
            "anchor": [anchors[row] for row in kept],
            "positive": [positives[row] for row in kept],
            "negative_1": [chosen[row][0] for row in kept],  # type: ignore[index]
        }
        uses = Counter(rows["negative_1"])
        sampler = NoDuplicatesBatchSampler(Dataset.from_dict(rows), 16, drop_last=False, generator=torch.Generator())
        sizes = [len(batch) for batch in sampler]
        counted = len(sampler)
        print(
            f"max_uses {cap_text:>4}: {len(kept)} pairs kept | {len(uses)} distinct negatives, most uses "
            f"{max(uses.values())} | {len(sizes)} batches (ST counts {counted}), mean {len(kept) / len(sizes):.1f} "
            f"rows | rows in ST's epoch {sum(sizes[:counted])}"
        )
    c.print_footer()


if __name__ == "__main__":
    main()
