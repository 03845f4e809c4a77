"""The checks of ``gpu_check.py`` that run decemb's own jobs: a LoRA training run's step throughput in bf16 (through
``decemb.train.prepare_training`` on ``configs/train-quick.yaml``) and ``decemb encode --ray`` as a subprocess,
compared with the in-process vectors.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from _common import REPO_ROOT, sts_sentences
from _gpu_checks import Context, Row, attempt, cosines
from _gpu_env import synchronize

TRAIN_CONFIG = REPO_ROOT / "configs" / "train-quick.yaml"


# -- 4. a LoRA training step -------------------------------------------------------------------------------------
def step_clock(device: Any, embedder: Any) -> Any:
    """A trainer callback recording, per optimizer step, its wall time (end to end: data, forward, backward,
    optimizer; the device synchronised at each end), the training rows it took and the real tokens it embedded.

    The rows are read from what the embedder is fed (a forward pre-hook): sentence-transformers' losses embed each
    text column in its own forward over the batch's rows, so rows = texts / forwards of the step."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.steps: list[tuple[float, float, int]] = []  # (seconds, rows, real tokens)
            self.last, self.texts, self.forwards, self.tokens = 0.0, 0, 0, 0
            self.handle = embedder.register_forward_pre_hook(self.fed)

        def fed(self, module: Any, args: tuple[Any, ...]) -> None:
            mask = args[0]["attention_mask"]
            self.texts += mask.shape[0]
            self.forwards += 1
            self.tokens += int(mask.sum())

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            synchronize(device)
            self.texts = self.forwards = self.tokens = 0
            self.last = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            synchronize(device)
            now = time.perf_counter()
            self.steps.append((now - self.last, self.texts / max(self.forwards, 1), self.tokens))
            self.last, self.texts, self.forwards, self.tokens = now, 0, 0, 0

    return StepClock()


def check_train(ctx: Context) -> Iterator[Row]:
    """``configs/train-quick.yaml`` (mean pooling, LoRA r 16 on all linear layers, CoSENT on STS-B train pairs) with
    the model, data size and steps overridden, bf16 mixed precision on; the first ``--train-warmup`` steps are not
    timed. samples/s counts training rows (pairs), tokens/s the real tokens of all their texts, both over the
    timed steps' total wall time; step_ms is the median step."""
    from transformers.trainer_callback import PrinterCallback

    from decemb.train.run import prepare_training

    args = ctx.args
    steps = args.train_warmup + args.train_steps
    overrides = [
        f"data_root={ctx.data_root}", f"model.source={ctx.model}", f"data.limit={steps * args.train_batch}",
        f"training.batch_size={args.train_batch}", f"training.max_steps={steps}", "training.bf16=true",
        f"training.device={ctx.device.kind}", "training.progress=false", "training.logging_steps=1000",
        "training.checkpoint_every=0", "eval.tasks=[]", "eval.before=false", "eval.after=false",
    ]  # fmt: skip

    def measure() -> dict[str, Any]:
        run = prepare_training(TRAIN_CONFIG, ctx.work / "train", overrides=overrides, report=lambda line: None)
        try:
            clock = step_clock(ctx.device, run.model[0])
            run.trainer.add_callback(clock)
            run.trainer.remove_callback(PrinterCallback)  # its log lines would bury the table
            try:
                run.trainer.train()
            finally:
                clock.handle.remove()
            trainable = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
            losses = [e["loss"] for e in run.trainer.state.log_history if "loss" in e]
        finally:
            run.close()
        timed = clock.steps[args.train_warmup :]
        if not timed:
            raise RuntimeError(f"the run made {len(clock.steps)} steps, none after the {args.train_warmup} warm-up")
        seconds, wall = statistics.median(t for t, _, _ in timed), sum(t for t, _, _ in timed)
        return {
            "steps_timed": len(timed), "rows_timed": sum(rows for _, rows, _ in timed), "step_ms": 1000 * seconds,
            "samples_per_s": sum(rows for _, rows, _ in timed) / wall,
            "tokens_per_s": sum(tokens for _, _, tokens in timed) / wall, "bf16": True,
            "trainable_M": trainable / 1e6, "loss_first": losses[0] if losses else None,
        }  # fmt: skip

    yield attempt(ctx, "train", f"lora step ({args.model}, bf16)", measure)


# -- 5. decemb encode --ray ----------------------------------------------------------------------------------------
def ray_command(ctx: Context, texts_file: str, out: str) -> list[str]:
    per_actor = ["--gpus-per-actor", "1"] if ctx.device.cuda else ["--actors", "1", "--cpus-per-actor", "1"]
    shard = max(1, ctx.args.ray_texts // 4)
    return [
        sys.executable, "-m", "decemb.cli", "encode", texts_file, out, "--model", ctx.model, "--strategy", "mean",
        "--dtype", ctx.device.run_dtype, "--batch-size", str(ctx.args.batch_size), "--shard-size", str(shard),
        "--ray", *per_actor, "--quiet",
    ]  # fmt: skip


def check_ray(ctx: Context) -> Iterator[Row]:
    """``decemb encode --ray --gpus-per-actor 1`` (CPU: one 1-CPU actor) on STS-B sentences as a subprocess, its
    wall time (Ray's start included) and its vectors against the same texts encoded in this process."""
    if not ctx.device.cuda and not ctx.args.with_ray:
        yield Row("ray", "decemb encode --ray", "skipped: CPU run without --with-ray")
        return
    if importlib.util.find_spec("ray") is None:
        yield Row("ray", "decemb encode --ray", "skipped: ray not installed (pip install 'decemb[ray]')")
        return

    def measure() -> dict[str, Any]:
        import decemb
        from decemb.distributed import read_vectors

        texts = sts_sentences(ctx.data_root, (ctx.args.ray_texts + 1) // 2)[: ctx.args.ray_texts]
        texts_file, out = ctx.work / "ray-texts.txt", ctx.work / "ray-out"
        texts_file.write_text("".join(f"{text}\n" for text in texts), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        start = time.perf_counter()
        done = subprocess.run(
            ray_command(ctx, str(texts_file), str(out)), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
            timeout=max(ctx.budget.left(), 1.0),
        )  # fmt: skip
        wall = time.perf_counter() - start
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"decemb encode --ray exited {done.returncode}: {last}")
        _, vectors = read_vectors(out)
        st = decemb.load(ctx.model, "mean", dtype=ctx.device.run_dtype, device=ctx.device.kind)
        reference = st.encode(texts, batch_size=ctx.args.batch_size)
        cos = cosines(vectors, reference)
        return {
            "texts": len(texts), "wall_s": wall, "texts_per_s": len(texts) / wall,
            "max_diff_vs_in_process": float(np.abs(np.asarray(vectors, np.float64) - reference).max()),
            "cos_min_vs_in_process": float(cos.min()),
        }  # fmt: skip

    yield attempt(ctx, "ray", "decemb encode --ray", measure)
