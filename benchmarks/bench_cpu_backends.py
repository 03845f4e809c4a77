"""CPU compute paths side by side: tokens/s of each candidate vs float32 torch, every strategy's STS-B Spearman
per backend, peak memory.

Data: the first ``--pairs`` (default 512) pairs of STS-B ``sts-test.csv``, i.e. 1,024 sentences. Each candidate
runs in its own process (so ``resource.getrusage`` gives its own peak RSS), at each of ``--thread-counts``:

* ``float32``: decemb's reference path (torch, float32).
* ``int8``: ``backend="int8"`` (:mod:`decemb.backends`: per-row int8 activations, Hadamard-rotated, fbgemm).
* ``int8-tensor``: torch's ``quantize_dynamic`` (per-tensor activation scale; deprecated in torch 2.13): shown
  for comparison, it breaks batch invariance by design (a row's scale depends on its neighbours).
* ``bfloat16``: ``dtype=bfloat16`` (on AVX2 without AVX-512 BF16 torch emulates it: slow; ``--slow-subset``).
* ``compile``: ``torch.compile`` of the float32 backbone (dynamic shapes; compile time reported apart).

Throughput is the ``mean`` strategy's encode of all sentences (rendered tokens / wall second, after a warm-up
batch); Spearman (x100) is computed for every strategy of ``--strategies`` with the backends of ``--spearman``.

    OMP_NUM_THREADS=1 python benchmarks/bench_cpu_backends.py                     # the full run
    OMP_NUM_THREADS=1 python benchmarks/bench_cpu_backends.py --quick             # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

CANDIDATES = ("float32", "int8", "int8-tensor", "bfloat16", "compile")
STRATEGIES = ("mean", "last", "sgpt", "eos", "echo", "prompteol", "instruct", "llm2vec")


def gold_pairs(root: Path, pairs: int) -> tuple[list[str], list[str], list[float]]:
    from decemb.records import iter_rows

    first, second, gold = [], [], []
    for _, parts in iter_rows(root / "stsbenchmark" / "sts-test.csv", "tsv", header=False, ragged=True):
        try:
            score = float(parts[4])
        except (IndexError, ValueError):
            continue
        first.append(parts[5])
        second.append(parts[6])
        gold.append(score)
        if len(gold) == pairs:
            break
    return first, second, gold


def build(candidate: str, source: str) -> tuple[Any, Any, float]:
    """(backbone, tokenizer, seconds spent converting) for a candidate."""
    import torch

    from decemb.loading import load_backbone

    dtype = "bfloat16" if candidate == "bfloat16" else "float32"
    model, tokenizer = load_backbone(source, dtype=dtype)
    started = time.perf_counter()
    if candidate == "int8":
        from decemb.backends import apply_backend

        model = apply_backend(model, "int8")
    elif candidate == "int8-tensor":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    elif candidate == "compile":
        model.forward = torch.compile(model.forward, dynamic=True)
    return model, tokenizer, time.perf_counter() - started


def spearman(st: Any, first: list[str], second: list[str], gold: list[float], batch: int) -> float:
    import numpy as np
    from scipy.stats import spearmanr

    a = st.encode(first, batch_size=batch, normalize_embeddings=True)
    b = st.encode(second, batch_size=batch, normalize_embeddings=True)
    return float(spearmanr((np.asarray(a) * np.asarray(b)).sum(1), gold)[0] * 100)


def worker(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    import decemb

    torch.set_num_threads(args.worker_threads)
    first, second, gold = gold_pairs(_common.data_root(args.data_root), args.pairs)
    sentences = [s for pair in zip(first, second) for s in pair]
    if args.subset:
        sentences = sentences[: args.subset]
    model, tokenizer, convert_s = build(args.worker, args.model)
    st = decemb.from_backbone(model, tokenizer, "mean")
    tokens = sum(len(r) for r in st[0].renderer("query").render(sentences))
    warm = time.perf_counter()
    st.encode(sentences[: args.batch_size], batch_size=args.batch_size)  # warm-up (and compile) batch
    warm_s = time.perf_counter() - warm
    started = time.perf_counter()
    st.encode(sentences, batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {
        "candidate": args.worker, "threads": args.worker_threads, "sentences": len(sentences), "tokens": tokens,
        "seconds": seconds, "tokens_per_s": tokens / seconds, "convert_s": convert_s, "warmup_s": warm_s,
    }  # fmt: skip
    if args.worker_spearman:
        n, batch = args.spearman_pairs or len(gold), args.batch_size
        out["spearman_pairs"] = n
        out["spearman"] = {
            name: spearman(decemb.from_backbone(model, tokenizer, name), first[:n], second[:n], gold[:n], batch)
            for name in args.strategies.split(",")
        }
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load_average"] = os.getloadavg()
    return out


def run_candidate(args: argparse.Namespace, candidate: str, threads: int, with_spearman: bool) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--worker", candidate, "--worker-threads", str(threads), "--pairs", str(args.pairs),
        "--model", args.model, "--batch-size", str(args.batch_size), "--strategies", args.strategies,
        "--spearman-pairs", str(args.spearman_pairs),
    ]  # fmt: skip
    if args.data_root:
        command += ["--data-root", args.data_root]
    if candidate in args.slow.split(",") and args.slow_subset:
        command += ["--subset", str(args.slow_subset)]
    if with_spearman:
        command.append("--worker-spearman")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"candidate": candidate, "threads": threads, "error": tail[:160]}
    return json.loads(lines[-1])


def main() -> None:
    p = _common.parser(__doc__.split("\n\n")[0], pairs=512, quick_pairs=16, repeats=1)
    p.add_argument("--candidates", default=",".join(CANDIDATES))
    p.add_argument("--thread-counts", default="1,2")
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--spearman", default="float32,int8", help="candidates whose every strategy is scored")
    p.add_argument("--slow", default="bfloat16,compile", help="candidates timed on --slow-subset sentences only")
    p.add_argument("--slow-subset", type=int, default=128)
    p.add_argument("--spearman-pairs", type=int, default=0, help="score the first N pairs only (default: all)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per candidate process")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--worker-spearman", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--subset", type=int, default=0, help=argparse.SUPPRESS)
    if "--worker" in sys.argv:
        args = p.parse_args()
        print(json.dumps(worker(args)))
        return
    args = _common.parse(p)
    if args.quick:
        args.slow_subset = min(args.slow_subset, 16)
    results = []
    for threads in [int(t) for t in args.thread_counts.split(",")]:
        for candidate in args.candidates.split(","):
            scored = threads == 1 and candidate in args.spearman.split(",")
            result = run_candidate(args, candidate, threads, scored)
            results.append(result)
            print(json.dumps(result), flush=True)
    print_table(results)
    _common.print_footer()


def print_table(results: list[dict[str, Any]]) -> None:
    ok = [r for r in results if "error" not in r]
    reference = {r["threads"]: r["tokens_per_s"] for r in ok if r["candidate"] == "float32"}
    print("\n| candidate | threads | sentences | tokens/s | vs float32 | peak RSS MB | convert s | load avg |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['candidate']} | {r['threads']} | failed: {r['error']} | | | | | |")
            continue
        ratio = r["tokens_per_s"] / reference[r["threads"]] if r["threads"] in reference else float("nan")
        print(
            f"| {r['candidate']} | {r['threads']} | {r['sentences']} | {r['tokens_per_s']:.0f} | {ratio:.2f}x | "
            f"{r['peak_rss_mb']:.0f} | {r['convert_s']:.1f} | {r['load_average'][0]:.2f} |"
        )
    scored = [r for r in results if "spearman" in r]
    if scored:
        names = list(scored[0]["spearman"])
        print("\n| strategy | " + " | ".join(r["candidate"] for r in scored) + " | max abs diff vs float32 |")
        print("|---|" + "---|" * (len(scored) + 1))
        base = next((r for r in scored if r["candidate"] == "float32"), scored[0])
        for name in names:
            cells = [f"{r['spearman'][name]:.2f}" for r in scored]
            worst = max(abs(r["spearman"][name] - base["spearman"][name]) for r in scored)
            print(f"| {name} | " + " | ".join(cells) + f" | {worst:.2f} |")


if __name__ == "__main__":
    main()
