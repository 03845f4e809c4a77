"""Sharded ``decemb encode`` on Ray Data (local cluster, 1 and 2 CPU actors) against the in-process path.

The same AG News texts (``title. description`` of the first ``--texts`` rows of ``ag_news/test.csv``, as
JSONL with ids) are embedded into a folder of Parquet shards three ways, each in a fresh process that is
the run's driver, one after the other in this one run:

* ``in-process``: :func:`decemb.distributed.encode_shards` without Ray, ``torch.set_num_threads(1)``;
* ``ray-1`` / ``ray-2``: the same call on a local Ray cluster with 1 or 2 actors of 1 CPU each (one torch
  thread per actor; the model is loaded by a probe task for its fingerprint, then once per actor).

Printed per path: end-to-end wall time (from the call: model load, Ray start, probe and actor start
included) and texts/s; texts per CPU-second inside the workers (the sum of each shard's ``process_time``:
the cost per text, which the other jobs of a shared machine disturb far less than wall time); the driver's
peak RSS; the load average before and after. (Shard arrival times at the driver do not time the embedding
phase: Ray Data hands results over in bunches.) Then the ratios (in-process / Ray-1 throughput is
Ray's overhead; Ray-2 / Ray-1 its scaling) and the largest difference between the paths' vectors.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIGS = {"in-process": 0, "ray-1": 1, "ray-2": 2}


def child(args: argparse.Namespace) -> None:
    """One path, in this process (its driver); prints one JSON line."""
    from decemb.threads import set_threads

    set_threads(1)
    from decemb.distributed import EncodeJob, RayOptions, encode_shards, open_source

    actors = CONFIGS[args.child]
    job = EncodeJob(args.model, args.strategy, settings={"batch_size": args.batch_size})
    ray = RayOptions(actors=actors, cpus_per_actor=1) if actors else None
    events: list[dict[str, Any]] = []
    load = os.getloadavg()[0]
    start = time.perf_counter()

    def landed(result: dict[str, Any]) -> None:
        events.append({"at": time.perf_counter() - start, "rows": result["rows"], "cpu": result["cpu"]})

    source = open_source(args.corpus, "text", "doc")
    run = encode_shards(job, source, args.out, shard_size=args.shard_size, ray=ray, on_shard=landed)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record = {"rows": run.rows, "wall": wall, "events": events, "peak_mib": peak}
    print(json.dumps({**record, "load_before": load, "load_after": os.getloadavg()[0]}))


def write_corpus(data_root: Path, texts: int, folder: Path) -> Path:
    """``texts`` rows of ``ag_news/test.csv`` as JSONL (``doc``, ``text``); past its 7,600 rows the texts repeat
    (under new ids): the sharded encoder keeps no cache, so a repeat costs what a new text does."""
    source = data_root / "ag_news" / "test.csv"
    with source.open(encoding="utf-8", newline="") as handle:
        distinct = [f"{r[1]}. {r[2]}" for r in csv.reader(handle)]
    if len(distinct) < texts:
        print(f"{source}: {len(distinct)} distinct texts, cycled to {texts}")
    rows = [{"doc": f"ag{i}", "text": distinct[i % len(distinct)]} for i in range(texts)]
    corpus = folder / "ag_news.jsonl"
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return corpus


def random_model(spec: str, folder: Path) -> str:
    """``random:N``: SmolLM2-135M's config and tokenizer with N layers and random weights (seed 0), saved in
    ``folder``: the same tokens and hidden size per text at a fraction of the compute (30 layers in the real
    model), so Ray's fixed and per-text costs weigh about 30/N times more than with the real model."""
    import torch
    from _common import model_folder
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    layers = int(spec.split(":", 1)[1])
    source = model_folder("smollm2-135m")
    config = AutoConfig.from_pretrained(source)
    config.num_hidden_layers = layers
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return str(folder)


def summarise(name: str, result: dict[str, Any]) -> dict[str, float]:
    figures = {
        "end_to_end": result["rows"] / result["wall"],
        "per_cpu_s": result["rows"] / sum(event["cpu"] for event in result["events"]),
    }
    print(
        f"{name:<11} wall {result['wall']:7.1f} s | end-to-end {figures['end_to_end']:6.2f} texts/s | "
        f"{figures['per_cpu_s']:5.2f} texts per worker CPU-s | "
        f"driver peak RSS {result['peak_mib']:6.0f} MiB | "
        f"load {result['load_before']:.2f} -> {result['load_after']:.2f}"
    )
    return figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", type=int, default=2000, help="AG News texts (default 2000; the issue asks 20k)")
    p.add_argument("--shard-size", type=int, default=250)
    p.add_argument(
        "--model", default="smollm2-135m", help="a decemb model source, or random:N (SmolLM2 with N random layers)"
    )
    p.add_argument("--strategy", default="mean")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--data-root", default=os.environ.get("DECEMB_DATA", str(Path(__file__).parents[2] / "shared" / "data"))
    )
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ", ".join(CONFIGS))
    p.add_argument("--child", choices=list(CONFIGS), help=argparse.SUPPRESS)
    p.add_argument("--corpus", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    import platform

    import ray

    print(f"== bench_ray.py: {args.texts} AG News texts, {args.model} ({args.strategy}), shards of {args.shard_size}")
    print(f"machine: {platform.processor() or platform.machine()} | {os.cpu_count()} CPUs | python "
          f"{platform.python_version()} | ray {ray.__version__} | load average {os.getloadavg()}")  # fmt: skip
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        corpus = write_corpus(Path(args.data_root), args.texts, Path(tmp))
        model = random_model(args.model, Path(tmp) / "model") if args.model.startswith("random:") else args.model
        for name in args.configs.split(","):
            out = Path(tmp) / name
            argv = [sys.executable, __file__, "--child", name, "--corpus", str(corpus), "--out", str(out)]
            argv += ["--model", model, "--strategy", args.strategy, "--shard-size", str(args.shard_size)]
            done = subprocess.run([*argv, "--batch-size", str(args.batch_size)], capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
            figures[name] = summarise(name, json.loads(done.stdout.strip().splitlines()[-1]))
        from decemb.distributed import read_vectors

        vectors = {name: read_vectors(Path(tmp) / name) for name in figures}
    names = list(vectors)
    for name in names[1:]:
        same_ids = vectors[name][0] == vectors[names[0]][0]
        diff = float(abs(vectors[name][1] - vectors[names[0]][1]).max())
        print(f"{name} vs {names[0]}: same ids in the same order: {same_ids}; max |diff| {diff:.2e}")
    for a, b in (("ray-1", "in-process"), ("ray-2", "in-process"), ("ray-2", "ray-1")):
        if a in figures and b in figures:
            ratios = " | ".join(f"{k} {figures[a][k] / figures[b][k]:.2f}" for k in ("end_to_end", "per_cpu_s"))
            print(f"{a} / {b} throughput: {ratios}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
