"""Can a strategy's pooled state learn retrieval? An InfoNCE probe on SciFact train pairs, before and after a
short overfitting run.

    python benchmarks/bench_pooled_state.py --pairs 64 --threads 1 \
        --strategy mean --strategy echo --strategy prompteol --strategy eos --strategy "{name: instruct, task: scifact}"
    python benchmarks/bench_pooled_state.py --pairs 32 --threads 1 --overfit 8 --lr 2e-5 --lr 1e-4 --lr 2e-4 \
        --strategy mean --strategy "{name: instruct, task: scifact}"

For each strategy (a name or a YAML mapping with options) the probe embeds ``--pairs`` SciFact training
queries (query side) and their cited documents (document side), both through the same path as inference,
and prints the N-way InfoNCE loss at temperature 0.05 (chance is ln N; above chance means the cited document
scores *below* the others), accuracy@1 among the N documents (chance 1/N) and the mean query-query cosine
(near 1: the pooled state hardly depends on the text).

``--overfit E`` then trains each strategy on exactly those pairs for E epochs per ``--lr`` (decemb train on
``configs/train-scifact.yaml``: LoRA r=16, InfoNCE over in-batch negatives, batch 16, no warm-up, no mining)
and probes the trained model on the same pairs. A pooled state that can carry the text memorises 32 pairs in
a few epochs; one that cannot either stays where it was or collapses (every vector alike, loss at ln 16 in
training).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c
import torch
import yaml

import decemb
from decemb.train import train
from decemb.train.config import DataSection
from decemb.train.data import load_train_data

CONFIG = c.REPO_ROOT / "configs" / "train-scifact.yaml"
TEMPERATURE = 0.05


def strategy_spec(text: str) -> dict[str, Any]:
    value = yaml.safe_load(text)
    spec = {"name": value} if isinstance(value, str) else dict(value)
    if "name" not in spec:
        raise SystemExit(f"--strategy {text!r}: a name or a mapping with a 'name' key")
    return spec


def label(spec: dict[str, Any]) -> str:
    options = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return f"{spec['name']}({options})" if options else spec["name"]


def probe(model: Any, queries: list[str], documents: list[str]) -> dict[str, float]:
    q = model.encode_query(queries, convert_to_tensor=True, normalize_embeddings=True).float()
    d = model.encode_document(documents, convert_to_tensor=True, normalize_embeddings=True).float()
    scores, target = q @ d.T, torch.arange(len(queries))
    return {
        "loss": float(torch.nn.functional.cross_entropy(scores / TEMPERATURE, target)),
        "acc": float((scores.argmax(1) == target).float().mean()),
        "qq": float((q @ q.T).mean()),
    }


def line(name: str, figures: dict[str, float], extra: str = "") -> str:
    loss, acc, qq = figures["loss"], figures["acc"], figures["qq"]
    return f"{name:<40} loss {loss:6.2f}  acc@1 {acc:.3f}  query-query cos {qq:.3f}{extra}"


def overfit(spec: dict[str, Any], args: Any, lr: float, pairs: tuple[list[str], list[str]]) -> str:
    overrides = [
        f"data_root={args.root}",
        f"model.source={args.model}",
        f"model.strategy={yaml.safe_dump(spec, default_flow_style=True).strip()}",
        f"model.max_length={args.max_length}",
        f"data.limit={args.pairs}",
        "hard_negatives.mine=false",
        f"loss={{name: mnrl, temperature: {TEMPERATURE}}}",
        "training.batch_size=16",
        f"training.epochs={args.overfit}",
        f"training.lr={lr}",
        "training.warmup_ratio=0.0",
        "training.gradient_checkpointing=false",
        "training.logging_steps=1",
        "eval.tasks=[]",
    ]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = train(CONFIG, Path(out) / "run", overrides=overrides, report=lambda _: None)
    losses = [row["loss"] for row in result.metrics["train"]["losses"]]
    trail = f"  train loss {losses[0]:.2f} -> {losses[-1]:.2f} (ln 16 = {math.log(16):.2f})"
    return line(f"  + {args.overfit} epochs at lr {lr:g}", probe(result.model, *pairs), trail) + (
        f"  {time.perf_counter() - started:.0f} s"
    )


def main() -> int:
    p = c.parser(__doc__, pairs=64, quick_pairs=16)
    p.add_argument("--strategy", action="append", default=[], help="a strategy name or a YAML mapping (repeatable)")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--overfit", type=int, default=0, metavar="EPOCHS", help="also train on the probed pairs")
    p.add_argument("--lr", type=float, action="append", default=[], help="learning rate(s) for --overfit")
    args = c.parse(p)
    args.root = c.data_root(args.data_root)
    specs = [strategy_spec(text) for text in args.strategy or ["mean"]]
    data = load_train_data(DataSection(preset="scifact", limit=args.pairs), args.root)
    pairs = (data.columns["anchor"], data.columns["positive"])
    print(f"SciFact train: {len(pairs[0])} query -> cited-document pairs, max_length {args.max_length}; chance: "
          f"loss ln {len(pairs[0])} = {math.log(len(pairs[0])):.2f}, acc@1 {1 / len(pairs[0]):.3f}")  # fmt: skip
    for spec in specs:
        model = decemb.load(args.model, spec, max_length=args.max_length)
        print(line(label(spec), probe(model, *pairs)), flush=True)
        del model
        for lr in args.lr if args.overfit else []:
            print(overfit(spec, args, lr, pairs), flush=True)
    c.print_footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
