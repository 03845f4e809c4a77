"""The checks of ``gpu_check.py`` that encode: bf16 vs fp32 vectors per strategy, batch invariance per attention
kernel, and encode throughput / MFU. Each check is a generator of :class:`Row`; one item that fails is one row
with its error, and the next item runs (``attempt``). The training and Ray checks are in ``_gpu_runs.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _gpu_env import (
    Budget,
    Device,
    OutOfBudget,
    free_memory,
    gemm_tflops,
    peak_memory_mib,
    reset_peak_memory,
    timed,
)

FLASH = "flash_attention_2"


@dataclass
class Row:
    """One line of the table: a check, the item it measured, ``ok`` / ``error: ...`` / ``skipped: ...``, figures."""

    check: str
    item: str
    status: str = "ok"
    figures: dict[str, Any] = field(default_factory=dict)
    peak_mib: float | None = None
    seconds: float = 0.0


@dataclass
class Context:
    """What every check reads: arguments, device, deadline, data, model sources, a scratch folder."""

    args: argparse.Namespace
    device: Device
    budget: Budget
    data_root: Path
    sources: dict[str, str]  # "smollm2-135m" / "gemma3-270m" -> what decemb loads (the alias, or a tiny folder)
    work: Path

    @property
    def model(self) -> str:
        return self.sources[self.args.model]


def error_text(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"error: {type(error).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


def attempt(ctx: Context, check: str, item: str, measure: Callable[[], dict[str, Any]]) -> Row:
    """Run one item: skipped once the deadline has passed, its error in the row if it raises, peak memory, seconds."""
    if ctx.budget.left() <= 0:
        return Row(check, item, "skipped: budget")
    start = time.perf_counter()
    try:
        free_memory(ctx.device)
        reset_peak_memory(ctx.device)
        figures, status = measure(), "ok"
    except OutOfBudget:
        figures, status = {}, "skipped: budget (interrupted)"
    except Exception as error:  # one item's failure is its row; the others still run
        figures, status = {}, error_text(error)
    return Row(check, item, status, figures, peak_memory_mib(ctx.device), time.perf_counter() - start)


def load(ctx: Context, source: str, dtype: str, **options: Any) -> tuple[Any, Any]:
    from decemb.loading import load_backbone

    return load_backbone(source, dtype=dtype, device=ctx.device.kind, **options)


def sts_task(ctx: Context) -> Any:
    """``--pairs`` STS-B test pairs with their gold scores (a seeded sample, as decemb's STS tasks draw it)."""
    from decemb.tasks.config import STSTaskConfig
    from decemb.tasks.sts import load_sts

    config = STSTaskConfig(name="stsb-test", path="stsbenchmark/sts-test.csv", format="stsb", limit=ctx.args.pairs)
    return load_sts(config, ctx.data_root)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


# -- 1. bf16 vs fp32 ---------------------------------------------------------------------------------------------
def check_precision(ctx: Context) -> Iterator[Row]:
    """Per strategy: cosine between each text's float32 and low-precision vector; STS-B Spearman of each."""
    import decemb

    task = sts_task(ctx)
    texts, n = [*task.text1, *task.text2], len(task.text1)
    models: dict[str, tuple[Any, Any]] = {}

    def load_both() -> dict[str, Any]:
        for dtype in ("float32", ctx.device.fast_dtype):
            models[dtype] = load(ctx, ctx.model, dtype)
        return {"pairs": n, "dtypes": list(models)}

    row = attempt(ctx, "precision", "load fp32 + bf16", load_both)
    yield row
    if row.status != "ok":
        return
    for name in decemb.list_strategies():

        def compare(name: str = name) -> dict[str, Any]:
            vectors = {
                dtype: decemb.from_backbone(*pair, name).encode(texts, batch_size=ctx.args.batch_size)
                for dtype, pair in models.items()
            }
            ref, low = vectors["float32"], vectors[ctx.device.fast_dtype]
            spearman = {dtype: task.score({"text1": v[:n], "text2": v[n:]})["spearman"] for dtype, v in vectors.items()}
            cos = cosines(ref, low)
            return {
                "cos_mean": float(cos.mean()),
                "cos_min": float(cos.min()),
                "spearman_fp32": spearman["float32"],
                "spearman_bf16": spearman[ctx.device.fast_dtype],
                "spearman_delta": spearman[ctx.device.fast_dtype] - spearman["float32"],
            }

        yield attempt(ctx, "precision", name, compare)
    models.clear()


# -- 2. batch invariance -----------------------------------------------------------------------------------------
def invariance_texts(ctx: Context) -> list[str]:
    from _common import sts_sentences

    return sts_sentences(ctx.data_root, ctx.args.invariance_texts)[: ctx.args.invariance_texts]


def check_invariance(ctx: Context) -> Iterator[Row]:
    """Per attention kernel and strategy: max |vector alone - the same text's vector in one padded batch of all the
    texts|, in the default and the ``deterministic=True`` mode, in the run dtype."""
    import decemb

    texts = invariance_texts(ctx)
    for kernel in ("sdpa", FLASH):
        if kernel == FLASH and not ctx.device.cuda:
            yield Row("invariance", kernel, "skipped: flash attention needs CUDA")
            continue
        if kernel == FLASH and importlib.util.find_spec("flash_attn") is None:
            yield Row("invariance", kernel, "skipped: flash_attn not installed")
            continue
        pair: list[Any] = []

        def load_kernel(kernel: str = kernel, pair: list[Any] = pair) -> dict[str, Any]:
            pair.extend(load(ctx, ctx.model, ctx.device.run_dtype, attn_implementation=kernel))
            return {"texts": len(texts), "dtype": ctx.device.run_dtype}

        row = attempt(ctx, "invariance", f"{kernel}: load", load_kernel)
        yield row
        if row.status != "ok":
            continue
        for name in decemb.list_strategies():

            def compare(name: str = name, pair: list[Any] = pair) -> dict[str, Any]:
                out: dict[str, Any] = {}
                for mode, deterministic in (("default", False), ("deterministic", True)):
                    st = decemb.from_backbone(*pair, name, deterministic=deterministic)
                    batch = st.encode(texts, batch_size=len(texts))
                    alone = st.encode(texts, batch_size=1)  # one text per forward: each text alone
                    worst = float(np.abs(np.asarray(batch, np.float64) - np.asarray(alone, np.float64)).max())
                    out[f"max_diff_{mode}"] = worst
                    out[f"rel_diff_{mode}"] = worst / max(float(np.abs(alone).max()), 1e-30)
                return out

            yield attempt(ctx, "invariance", f"{kernel}: {name}", compare)
        pair.clear()


# -- 3. encode throughput and MFU --------------------------------------------------------------------------------
def check_throughput(ctx: Context) -> Iterator[Row]:
    """The measured GEMM ceiling, then per model and workload: tokens/s of ``encode`` (``mean``), achieved TFLOP/s
    and MFU against the datasheet peak and against the measured GEMM."""
    import torch
    from _common import FeedCounter, sts_sentences
    from bench_flops import FlopCounter

    import decemb

    ceiling: dict[str, float] = {}
    run_dtype = getattr(torch, ctx.device.run_dtype)

    def gemm() -> dict[str, Any]:
        size = 8192 if ctx.device.cuda else 512
        ceiling["tflops"] = gemm_tflops(ctx.device, run_dtype, size)
        return {"shape": f"{size}^3 {ctx.device.run_dtype}", "tflops": ceiling["tflops"]}

    yield attempt(ctx, "throughput", "gemm ceiling", gemm)
    texts = sts_sentences(ctx.data_root, ctx.args.throughput_pairs)
    workloads = [(f"batch {size}", texts, size) for size in ctx.args.batch_sizes]
    joined = ctx.args.passage_sentences
    if joined > 1:  # longer texts: the same sentences, ``joined`` to a text
        passages = [" ".join(texts[i : i + joined]) for i in range(0, len(texts), joined)]
        workloads.append((f"passages of {joined}, batch {ctx.args.passage_batch}", passages, ctx.args.passage_batch))
    for alias in ctx.args.throughput_models:
        loaded: list[Any] = []

        def load_model(alias: str = alias, loaded: list[Any] = loaded) -> dict[str, Any]:
            loaded.extend(load(ctx, ctx.sources[alias], ctx.device.run_dtype))
            return {"dtype": ctx.device.run_dtype, "params_M": sum(p.numel() for p in loaded[0].parameters()) / 1e6}

        row = attempt(ctx, "throughput", f"{alias}: load", load_model)
        yield row
        if row.status != "ok":
            continue
        for label, inputs, batch_size in workloads:

            def measure(inputs: list[str] = inputs, batch_size: int = batch_size, loaded: list[Any] = loaded) -> dict:
                model, tokenizer = loaded
                st = decemb.from_backbone(model, tokenizer, "mean")
                flops, feed = FlopCounter(model), FeedCounter(st[0])
                try:  # one counted pass (also the first warm-up); the timed passes run without the hooks
                    with torch.inference_mode():
                        st.encode(inputs, batch_size=batch_size)
                finally:
                    flops.remove()
                    feed.remove()
                fed, counted = feed.take(), flops.take()
                with torch.inference_mode():
                    times, _ = timed(ctx.device, lambda: st.encode(inputs, batch_size=batch_size), ctx.args.repeats)
                seconds = statistics.median(times)
                params = sum(p.numel() for p in model.parameters())
                achieved = counted["flops"] / seconds / 1e12
                naive = 2 * params * fed["real"] / seconds / 1e12  # 2 x all parameters x real tokens
                peak = ctx.device.peak_tflops
                return {
                    "texts": len(inputs), "seconds": seconds, "tokens_per_s": fed["real"] / seconds,
                    "padded_tokens_per_s": fed["padded"] / seconds, "tflops": achieved,
                    "mfu": achieved / peak if peak else None, "mfu_2NT": naive / peak if peak else None,
                    "of_gemm": achieved / ceiling["tflops"] if ceiling.get("tflops") else None,
                    "linear_params_M": flops.linear_params / 1e6,
                }  # fmt: skip

            yield attempt(ctx, "throughput", f"{alias}: {label}", measure)
        loaded.clear()
