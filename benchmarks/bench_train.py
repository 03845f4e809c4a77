"""Train one config and measure what training bought: task scores before/after, the discrimination gap
before/after, wall time.

    python benchmarks/bench_train.py configs/train-quick.yaml --out runs/bench-quick --threads 1
    python benchmarks/bench_train.py configs/train-sts.yaml --out runs/sts-echo --set model.strategy=echo

The discrimination gap is the mean cosine of related STS-B test pairs (gold score >= 4) minus the mean
cosine of unrelated pairs (each first sentence against the second sentence of another, random pair); an
untrained decoder puts almost everything at a cosine of 0.9 or more, so its gap is small. It is measured on
``--gap-pairs`` pairs of STS-B test (a seeded sample) with the base model before training and the trained
model after. Printed: the machine, the config, every task metric before/after, the gap before/after, the
wall time of the training run (data checks, mining, evaluations and saving included), its step count and the
process's peak resident memory.
``--json FILE`` also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

import _common as c

from decemb.train import load_train_config, train
from decemb.train.evaluation import discrimination_gap
from decemb.train.model import build_model, build_strategy_checked


def gap_pairs(root: Path, count: int, seed: int = 0) -> tuple[list[str], list[str], list[float]]:
    rows = []
    with (root / "stsbenchmark" / "sts-test.csv").open(encoding="utf-8") as handle:
        for line in handle:
            cells = line.rstrip("\n").split("\t")
            if len(cells) >= 7 and cells[5].strip() and cells[6].strip():
                rows.append((cells[5].strip(), cells[6].strip(), float(cells[4])))
    rows = sorted(random.Random(seed).sample(rows, min(count, len(rows))), key=lambda r: r[0])
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--out", required=True)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--gap-pairs", type=int, default=500)
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    threads = c.set_threads(args.threads)
    root = c.data_root(args.data_root)
    config = load_train_config(args.config, [f"data_root={root}", *args.overrides])
    import sentence_transformers
    import torch
    import transformers

    print(f"== bench_train.py {args.config} {' '.join('--set ' + o for o in args.overrides)}")
    print(
        f"machine: {c.cpu_model()} | {c.usable_cores()} usable cores | torch.set_num_threads({threads}) | "
        f"torch {torch.__version__} | transformers {transformers.__version__} | "
        f"sentence-transformers {sentence_transformers.__version__} | load average {c.load_average()}"
    )
    text1, text2, gold = gap_pairs(root, args.gap_pairs)
    base = build_model(config.model, build_strategy_checked(config.model))
    before_gap = discrimination_gap(base, text1, text2, gold)
    del base
    started = time.perf_counter()
    result = train(config, args.out)
    wall = time.perf_counter() - started
    after_gap = discrimination_gap(result.model, text1, text2, gold)

    rows = []
    for task, metrics in result.metrics["after"].items():
        for metric, value in metrics.items():
            before = result.metrics["before"].get(task, {}).get(metric, float("nan"))
            rows.append([task, metric, f"{before:.2f}", f"{value:.2f}", f"{value - before:+.2f}"])
    for key in ("related", "unrelated", "gap"):
        rows.append(
            [
                "discrimination",
                key,
                f"{before_gap[key]:.3f}",
                f"{after_gap[key]:.3f}",
                f"{after_gap[key] - before_gap[key]:+.3f}",
            ]
        )
    print(c.table(rows, ["task", "metric", "before", "after", "change"]))
    train_info = result.metrics["train"]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(
        f"strategy {train_info['strategy']} | loss {train_info['loss']} | {train_info['rows']} rows | "
        f"{result.steps} steps | wall {wall:.0f} s (whole run) | peak RSS {peak_mib:.0f} MiB | model {result.model_dir}"
    )
    c.print_footer()
    if args.json:
        figures = {
            "config": args.config,
            "overrides": args.overrides,
            "threads": threads,
            "wall_s": round(wall, 1),
            "peak_rss_mib": round(peak_mib),
            "steps": result.steps,
            "before": result.metrics["before"],
            "after": result.metrics["after"],
            "gap_before": before_gap,
            "gap_after": after_gap,
            "gap_pairs": len(gold),
        }
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
