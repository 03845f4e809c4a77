"""The one prepared GPU check (issue 25): one table of what decemb does on one CUDA device, in under 8 minutes.

    python benchmarks/gpu_check.py --out docs/results/DATE-gpu.json            # on a CUDA machine
    OMP_NUM_THREADS=1 python benchmarks/gpu_check.py --tiny                     # the CPU version (CI runs it)

Checks, in this order, each isolated (an item that fails is one row with its error; the next item runs):

1. ``precision``: per strategy (all of ``decemb.list_strategies()``), the mean / min cosine between each text's
   float32 and bfloat16 vector on a seeded sample of ``--pairs`` STS-B test pairs, and the Spearman (x100) of each.
2. ``invariance``: per attention kernel (SDPA; ``flash_attention_2`` if ``flash_attn`` imports) and strategy, the
   largest |vector alone - the same text's vector in one right-padded batch of ``--invariance-texts`` texts|, in
   the default and the ``deterministic=True`` mode (decemb's ``EncodeSettings.deterministic``).
3. ``throughput``: a measured GEMM ceiling, then per model (SmolLM2-135M, Gemma-3-270m) and workload (STS-B
   sentences at each of ``--batch-sizes``; passages of ``--passage-sentences`` sentences), tokens/s of ``encode``
   (``mean``) and MFU: FLOPs counted by ``bench_flops.FlopCounter`` (2 x linear weights x padded
   tokens + attention) / time / the device's dense bf16 peak (``--peak-tflops``, else a datasheet table by
   device name); ``mfu_2NT`` is 2 x all parameters x real tokens / time / peak.
4. ``train``: a LoRA training step (``configs/train-quick.yaml`` through ``decemb.train.prepare_training``, bf16
   mixed precision): median step time, samples/s, tokens/s after ``--train-warmup`` untimed steps.
5. ``ray``: ``decemb encode --ray --gpus-per-actor 1`` as a subprocess on ``--ray-texts`` texts: wall time and
   its vectors against the in-process ones.

Timings synchronise the device around each timed call and follow a warm-up call; every row has the peak CUDA
memory allocated while it ran (``torch.cuda.max_memory_allocated``; "-" on CPU). A hard deadline (``--budget-s``,
default 450) stops the run: a check running at the deadline is interrupted, and the rest print "skipped: budget".

``--tiny`` (the default without CUDA, unless ``--device cpu`` asks for the real models): random 2-layer Llama /
Gemma-3 models stand in for the real ones, small sizes, float32 vs bfloat16 on CPU, SDPA only, the Ray check only
with ``--with-ray``; well under a minute. ``--source ALIAS=PATH`` loads a model from a carried .gguf file or folder.
``--fail CHECK`` makes a check raise at its start (to see that the others still run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
if str(BENCHMARKS) not in sys.path:  # imported from a test rather than run as a script
    sys.path.insert(0, str(BENCHMARKS))

import _common as c  # noqa: E402
from _gpu_checks import Context, Row, check_invariance, check_precision, check_throughput, error_text  # noqa: E402
from _gpu_env import Budget, OutOfBudget, free_memory, pick_device, tiny_models  # noqa: E402
from _gpu_runs import check_ray, check_train  # noqa: E402

CHECKS: dict[str, Callable[[Context], Iterator[Row]]] = {
    "precision": check_precision,
    "invariance": check_invariance,
    "throughput": check_throughput,
    "train": check_train,
    "ray": check_ray,
}
MODELS = ("smollm2-135m", "gemma3-270m")
# Sizes: (full run on a GPU, --tiny on a CPU). Each is an option; a value given on the command line wins.
SIZES: dict[str, tuple[Any, Any]] = {
    "pairs": (512, 16),
    "invariance_texts": (16, 6),
    "throughput_pairs": (1024, 16),
    "batch_sizes": ([32, 256], [8]),
    "passage_sentences": (16, 4),  # sentences joined into one text for the long-text throughput rows (0: none)
    "passage_batch": (64, 8),
    "batch_size": (64, 16),
    "repeats": (3, 1),
    "train_steps": (20, 3),
    "train_warmup": (3, 1),
    "train_batch": (32, 4),
    "ray_texts": (400, 40),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="tiny random models and small sizes (default without CUDA)")
    p.add_argument("--device", choices=["cuda", "cpu"], default=None, help="default: cuda when torch sees one")
    p.add_argument("--out", default=None, help="also write the table as JSON here")
    p.add_argument("--budget-s", type=float, default=450.0, help="hard overall deadline in seconds (default 450)")
    p.add_argument("--checks", default=",".join(CHECKS), help=f"comma-separated subset of {', '.join(CHECKS)}")
    p.add_argument("--fail", action="append", default=[], choices=list(CHECKS), help="make CHECK raise at its start")
    p.add_argument("--model", default=MODELS[0], choices=MODELS, help="model of checks 1, 2, 4, 5")
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="ALIAS=PATH",
        help="load ALIAS from PATH (a .gguf file or model folder) instead of its installed package",
    )
    p.add_argument("--throughput-models", default=",".join(MODELS), help="models of check 3 (comma-separated)")
    p.add_argument("--data-root", default=None, help="data folder (default: $DECEMB_DATA or ../shared/data)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak (default: by name)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: decemb's default)")
    p.add_argument("--with-ray", action="store_true", help="run the Ray check on CPU too (needs decemb[ray])")
    for key, (full, tiny) in SIZES.items():
        kind = int if not isinstance(full, list) else (lambda text: [int(x) for x in text.split(",")])
        p.add_argument(f"--{key.replace('_', '-')}", type=kind, default=None, help=f"default {full}, --tiny {tiny}")
    args = p.parse_args(argv)
    args.checks = [name.strip() for name in args.checks.split(",") if name.strip()]
    unknown = [name for name in args.checks if name not in CHECKS]
    if unknown:
        p.error(f"--checks: unknown check {unknown[0]!r} (known: {', '.join(CHECKS)})")
    args.sources = dict(item.partition("=")[::2] for item in args.source)
    bad = [key for key, value in args.sources.items() if key not in MODELS or not value]
    if bad:
        p.error(f"--source {bad[0]!r}: expected ALIAS=PATH with ALIAS one of {', '.join(MODELS)}")
    args.throughput_models = [name.strip() for name in args.throughput_models.split(",") if name.strip()]
    bad = [name for name in args.throughput_models if name not in MODELS]
    if bad:
        p.error(f"--throughput-models: unknown model {bad[0]!r} (known: {', '.join(MODELS)})")
    return args


def fill_sizes(args: argparse.Namespace) -> None:
    for key, (full, tiny) in SIZES.items():
        if getattr(args, key) is None:
            setattr(args, key, tiny if args.tiny else full)


def run_check(name: str, ctx: Context) -> list[Row]:
    """Every row of one check; a check that raises outside its items becomes one row with the error."""
    rows: list[Row] = []
    if ctx.budget.left() <= 0:
        return [Row(name, "(all)", "skipped: budget")]
    try:
        free_memory(ctx.device, collect=True)  # what the previous check loaded
        if name in ctx.args.fail:
            raise RuntimeError(f"injected failure (--fail {name})")
        for row in CHECKS[name](ctx):
            rows.append(row)
            print(f"  {row.check:<10} {row.item:<32} {row.status} ({row.seconds:.1f} s)", flush=True)
    except OutOfBudget:
        rows.append(Row(name, "(rest)", "skipped: budget (interrupted)"))
    except Exception as error:  # the next check still runs
        rows.append(Row(name, "(check)", error_text(error)))
    return rows


def cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return "-" if value is None else str(value)


def table(rows: Sequence[Row]) -> str:
    """One left-aligned text table: check, item, status, seconds, peak MiB, then the figures as key=value."""
    header = ["check", "item", "status", "s", "peak MiB", "figures"]
    body = [
        [
            row.check, row.item, row.status, f"{row.seconds:.1f}",
            cell(None if row.peak_mib is None else round(row.peak_mib)),
            " ".join(f"{key}={cell(value)}" for key, value in row.figures.items()),
        ]
        for row in rows
    ]  # fmt: skip
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header) - 1)]
    lines = [[*header], ["-" * w for w in widths] + ["-------"], *body]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(line, widths)) + "  " + line[-1] for line in lines)


def machine(args: argparse.Namespace, device: Any) -> dict[str, Any]:
    import sentence_transformers
    import torch
    import transformers

    return {
        "device": device.kind, "name": device.name, "peak_bf16_tflops": device.peak_tflops,
        "peak_source": device.peak_source, "cuda": torch.version.cuda, "torch": torch.__version__,
        "transformers": transformers.__version__, "sentence_transformers": sentence_transformers.__version__,
        "python": platform.python_version(), "threads": torch.get_num_threads(), "tiny": args.tiny,
        "budget_s": args.budget_s, "load_average_start": c.load_average(),
    }  # fmt: skip


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' weight-loading bars and notices off while the checks run (they would bury the table)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def run_all(ctx: Context) -> list[Row]:
    """Every check in order under the deadline's alarm; a check not reached when it rings is skipped."""
    rows: list[Row] = []
    try:
        with ctx.budget.alarm():
            for name in ctx.args.checks:
                try:
                    rows.extend(run_check(name, ctx))
                except OutOfBudget:  # the alarm rang between two rows
                    rows.append(Row(name, "(rest)", "skipped: budget (interrupted)"))
    except OutOfBudget:  # it rang while the alarm itself was being set or cleared
        pass
    done = {row.check for row in rows}
    return rows + [Row(name, "(all)", "skipped: budget") for name in ctx.args.checks if name not in done]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the checks and print the table; returns ``{"machine", "settings", "rows"}`` (also written to ``--out``)."""
    args = parse_args(argv)
    from decemb.threads import set_threads

    set_threads(args.threads)
    budget = Budget(args.budget_s)
    device = pick_device(args.device, args.peak_tflops)
    if not device.cuda and not args.tiny and args.device is None:  # an explicit --device cpu runs the real models
        print("no CUDA device: running the --tiny version")
        args.tiny = True
    fill_sizes(args)
    info = machine(args, device)
    print(f"== gpu_check.py [{'tiny' if args.tiny else 'full'}] on {device.name} ({device.kind})")
    print(" | ".join(f"{key} {value}" for key, value in info.items() if key not in ("device", "name")), flush=True)
    root = c.data_root(args.data_root)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch, quiet_transformers():
        work = Path(scratch)
        sources = {alias: args.sources.get(alias, alias) for alias in MODELS}
        if args.tiny:
            sources = tiny_models(work, c.sts_sentences(root, 32))
        rows = run_all(Context(args, device, budget, root, sources, work))
    info["load_average_end"] = c.load_average()
    info["wall_s"] = round(time.perf_counter() - started, 1)
    print()
    print(table(rows))
    print(f"peak: {device.peak_tflops} TFLOP/s bf16 ({device.peak_source}) | wall {info['wall_s']} s | "
          f"load average {info['load_average_start']} -> {info['load_average_end']}")  # fmt: skip
    settings = {key: getattr(args, key) for key in (*SIZES, "model", "throughput_models", "checks", "fail", "sources")}
    report = {"machine": info, "settings": settings, "rows": [asdict(row) for row in rows]}
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return report


if __name__ == "__main__":
    result = main()
    sys.exit(1 if any(row["status"].startswith("error") for row in result["rows"]) else 0)
