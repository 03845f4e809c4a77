"""The sentence-transformers trainer, with checkpoints that hold what is trained and survive ``kill -9``.

A checkpoint stores the trainable weights (the LoRA weights, or every weight under full fine-tuning) in
``trainable.safetensors`` plus the trainer's optimizer, scheduler, RNG and state files, and is marked
complete (``COMPLETE``) only once all of them are written; an unmarked one (a run killed while writing
it) is never resumed from. sentence-transformers' own checkpoint format cannot hold a PEFT-wrapped
decemb model (its ``save`` writes adapter files that ``DecembEmbedder.load`` cannot read back).

The loss is also logged at every checkpoint step, so a checkpoint's ``trainer_state.json`` holds the loss
history up to its very step and a resumed run continues it exactly. transformers' ``train_loss`` of a resumed
``train()`` call averages that call's steps only; :meth:`DecembTrainer.whole_train_loss` is the whole run's,
as an uninterrupted run reports it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from transformers import TrainerCallback

from decemb.strategies import Kind
from decemb.train.config import TrainConfig
from decemb.train.sampler import WholePassNoDuplicatesBatchSampler
from decemb.train.source_sampler import SourceBatchSampler, SourcePlan

__all__ = [
    "COMPLETE",
    "WEIGHTS",
    "DecembTrainer",
    "batch_samplers",
    "last_checkpoint",
    "loss_sum_at",
    "short_batches",
    "training_arguments",
]

WEIGHTS = "trainable.safetensors"
COMPLETE = "COMPLETE"
_STEP = re.compile(r"^checkpoint-(\d+)$")


def _trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: param.detach().to("cpu").contiguous() for name, param in model.named_parameters() if param.requires_grad
    }


def loss_sum_at(checkpoint: Path) -> tuple[int, float]:
    """``(step, summed step losses up to it)`` of a checkpoint, from its logged losses (each the mean over the
    steps since the previous log). In a checkpoint written before losses were logged at checkpoints, the
    steps after its last log are missing from the sum."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        step, history = int(state["global_step"]), state["log_history"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0.0
    total, last = 0.0, 0
    for entry in history:
        if "loss" in entry and last < entry.get("step", 0) <= step:
            total, last = total + float(entry["loss"]) * (entry["step"] - last), entry["step"]
    return step, total


class _LogAtCheckpoints(TrainerCallback):
    """Log the loss whenever a checkpoint is saved (runs after transformers' flow callback has decided)."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if control.should_save:
            control.should_log = True


class DecembTrainer(SentenceTransformerTrainer):
    """``SentenceTransformerTrainer`` with decemb checkpoints (see the module docstring)."""

    # (step, summed step losses) where this train() call started: the earlier segments of a resumed run
    _resumed_at: tuple[int, float] = (0, 0.0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_callback(_LogAtCheckpoints)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        resumed = isinstance(resume_from_checkpoint, str)
        self._resumed_at = loss_sum_at(Path(resume_from_checkpoint)) if resumed else (0, 0.0)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def whole_train_loss(self, output: Any) -> float:
        """The mean step loss of the whole run, from ``train()``'s output (which averages its own steps only)."""
        steps, (start, before) = int(self.state.global_step), self._resumed_at
        if steps <= 0 or start <= 0:
            return float(output.training_loss)
        return (before + float(output.training_loss) * (steps - start)) / steps

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        folder = Path(output_dir if output_dir is not None else self.args.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".{WEIGHTS}.tmp"
        save_file(_trainable(self.model), str(staging))
        os.replace(staging, folder / WEIGHTS)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        target = self.model if model is None else getattr(model, "module", model)
        weights = load_file(str(Path(resume_from_checkpoint) / WEIGHTS))
        expected = {name for name, param in target.named_parameters() if param.requires_grad}
        if set(weights) != expected:
            missing, extra = sorted(expected - set(weights))[:3], sorted(set(weights) - expected)[:3]
            raise ValueError(
                f"checkpoint {resume_from_checkpoint} does not fit this model (missing {missing}, unexpected {extra})"
            )
        target.load_state_dict(weights, strict=False)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        if folder.is_dir():
            marker = folder / f".{COMPLETE}.tmp"
            marker.write_text(f"{self.state.global_step}\n")
            os.replace(marker, folder / COMPLETE)


def last_checkpoint(folder: Path, clean: bool = True) -> Path | None:
    """The complete checkpoint with the highest step under ``folder``; incomplete ones are removed."""
    if not folder.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for child in folder.iterdir():
        match = _STEP.match(child.name)
        if not match or not child.is_dir():
            continue
        if (child / COMPLETE).is_file() and (child / WEIGHTS).is_file():
            found.append((int(match.group(1)), child))
        elif clean:
            shutil.rmtree(child, ignore_errors=True)
    return max(found)[1] if found else None


def batch_samplers(plans: Sequence[SourcePlan]) -> tuple[Any, Any]:
    """``(batch_sampler, multi_dataset_batch_sampler)`` for the trainer arguments. One source: the whole-pass
    no-duplicates sampler (with the source's groups) for in-batch negatives, else ST's plain batches. Several:
    :class:`SourceBatchSampler`, which batches each source by its own plan and honours the weights."""
    from sentence_transformers.base.sampler import BatchSamplers, MultiDatasetBatchSamplers

    if len(plans) > 1:
        return BatchSamplers.BATCH_SAMPLER, partial(SourceBatchSampler, plans=list(plans))
    plan, proportional = plans[0], MultiDatasetBatchSamplers.PROPORTIONAL
    if not plan.in_batch_negatives:
        return BatchSamplers.BATCH_SAMPLER, proportional
    if plan.groups is None:
        return WholePassNoDuplicatesBatchSampler, proportional
    return partial(WholePassNoDuplicatesBatchSampler, groups=list(plan.groups)), proportional


def training_arguments(
    config: TrainConfig,
    output_dir: Path,
    router_mapping: dict[str, Kind] | dict[str, dict[str, Kind]],
    plans: Sequence[SourcePlan],
    eval_every: int = 0,
) -> SentenceTransformerTrainingArguments:
    """Trainer arguments from the config's ``training`` section: the samplers of :func:`batch_samplers`, the
    evaluator run every ``eval_every`` steps (0: never), checkpoints every ``checkpoint_every`` steps."""
    t = config.training
    sampler, multi_sampler = batch_samplers(plans)
    save = t.checkpoint_every > 0
    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps if t.max_steps is not None else -1,
        per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accumulation,
        learning_rate=t.lr,
        warmup_steps=t.warmup_steps if t.warmup_steps is not None else t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        lr_scheduler_type="linear",
        seed=t.seed,
        data_seed=t.seed,
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        logging_first_step=True,
        save_strategy="steps" if save else "no",
        save_steps=t.checkpoint_every if save else 500,
        save_total_limit=t.keep_checkpoints,
        eval_strategy="steps" if eval_every else "no",
        eval_steps=eval_every or None,
        report_to="none",
        bf16=t.bf16,
        use_cpu=t.device == "cpu",
        disable_tqdm=not t.progress,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available() and t.device != "cpu",
        batch_sampler=sampler,
        multi_dataset_batch_sampler=multi_sampler,
        router_mapping=dict(router_mapping),
    )


def short_batches(trainer: Any) -> str | None:
    """Rows that share a text never share a batch (``WholePassNoDuplicatesBatchSampler``): an epoch still
    trains on every row, but in more, shorter batches, i.e. with fewer in-batch negatives. A one-line warning
    when a source's batches average under three quarters of ``batch_size``, else ``None``."""
    sampler = trainer.get_train_dataloader().batch_sampler
    wanted = trainer.args.per_device_train_batch_size
    if isinstance(sampler, SourceBatchSampler):
        passes = [
            (f"source {plan.name!r}: ", sampler.pass_batches(index, 0))
            for index, plan in enumerate(sampler.plans)
            if isinstance(sampler.samplers[index], WholePassNoDuplicatesBatchSampler)
        ]
    elif isinstance(sampler, WholePassNoDuplicatesBatchSampler):
        passes = [("", list(sampler))]
    else:
        passes = []
    for name, batches in passes:
        sizes = [len(indices) for indices in batches]
        rows = sum(sizes)
        if sizes and rows / len(sizes) < 0.75 * min(wanted, rows):
            return (
                f"warning: {name}rows that share a text cannot share a batch: {rows} rows make {len(sizes)} batches "
                f"of {rows / len(sizes):.1f} rows on average (batch_size {wanted}), so each row meets fewer in-batch "
                "negatives; de-duplicate the data or spread the hard negatives (hard_negatives.max_uses)"
            )
    return None
