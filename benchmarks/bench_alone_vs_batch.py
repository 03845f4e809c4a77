"""Alone vs in a batch on the real model: the largest difference between a text's vector computed alone
and in a batch of 16, per strategy, in the default and the deterministic mode.

    OMP_NUM_THREADS=1 python benchmarks/bench_alone_vs_batch.py [--texts 16]

Prints the machine, then one line per strategy × mode (docs/robustness.md records the figures).
"""

from __future__ import annotations

import argparse

import _common as c
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=16)
    parser.add_argument("--strategies", nargs="+", default=["mean", "echo", "instruct", "llm2vec"])
    args = parser.parse_args()
    import torch

    import decemb

    torch.set_num_threads(1)
    print(f"machine: {c.cpu_model()}, torch threads 1, load average {c.load_average()}")
    texts = c.sts_sentences(c.data_root(None), args.texts)[: args.texts]
    for name in args.strategies:
        for deterministic in (False, True):
            st = decemb.load("smollm2-135m", name, max_length=128, deterministic=deterministic)
            batch = st.encode(texts, batch_size=len(texts))
            alone = np.stack([st.encode([text])[0] for text in texts])
            worst = float(np.abs(batch - alone).max())
            print(f"{name:9s} deterministic={deterministic!s:5s} max|batch-alone|={worst:.1e} "
                  f"(relative {worst / float(np.abs(alone).max()):.1e})", flush=True)


if __name__ == "__main__":
    main()
