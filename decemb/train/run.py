"""``decemb.train.train(config, out_dir)``: check everything, train with sentence-transformers, save and publish.

Order of work (every check before the first training step): config → output folder locked → strategy, LoRA
settings and each source's loss options → each source's data (files, columns, shape vs its loss) → evaluation
tasks → output folder checked (once) → model (source, max_length vs the template, layer, LoRA targets, MNTP's LM
head) → hard-negative mining per source → evaluation before → training (one source, or several through
sentence-transformers' multi-dataset training; checkpoints; the evaluator every N steps) → merge → evaluation
after → ``DIR/model``, ``DIR/adapter``, ``DIR/metrics.json`` staged and renamed into place → the lock released
(on every exit path).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer

import decemb
from decemb.config_base import data_root as resolve_data_root
from decemb.errors import ConfigError
from decemb.settings import EncodeSettings
from decemb.st.card import base_model_of
from decemb.strategies import Strategy
from decemb.train.config import TrainConfig
from decemb.train.evaluation import TaskEvaluator, evaluate, load_eval_tasks, read_history, summary
from decemb.train.inputs import SourceData, data_metrics, describe, load_sources, mine_sources, trainer_inputs
from decemb.train.mntp import mntp_options
from decemb.train.model import (
    apply_lora,
    build_model,
    build_strategy_checked,
    check_lora,
    merged_backbone,
    restore,
    set_dropout,
)
from decemb.train.output import Workspace, write_json
from decemb.train.parsing import load_train_config, parse_train_config

__all__ = ["ConfigSource", "TrainResult", "TrainingRun", "prepare_training", "train"]

# What names a config: a validated one, a mapping (parsed YAML) or a YAML file.
ConfigSource = TrainConfig | Mapping[str, Any] | str | os.PathLike[str]
Report = Callable[[str], None]


@dataclass
class TrainResult:
    """Where the result went and what it measured (``metrics`` is ``DIR/metrics.json``)."""

    out_dir: Path
    model_dir: Path
    adapter_dir: Path | None
    metrics: dict[str, Any]
    steps: int
    wall_s: float
    model: SentenceTransformer | None = None


def _config(config: ConfigSource, overrides: Sequence[str]) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return parse_train_config(config.model_dump(mode="json"), overrides=overrides) if overrides else config
    if isinstance(config, Mapping):
        return parse_train_config(dict(config), overrides=overrides)
    return load_train_config(config, overrides)


def _require(*packages: str) -> None:
    """Training needs ``datasets`` (the trainer's input) and, for LoRA, ``peft``: say so in one line."""
    import importlib.util

    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"decemb train needs {' and '.join(missing)}: pip install 'decemb[train]'")


def _attention(strategy: Any) -> str:
    mode = type(strategy).attention
    return str(getattr(mode, "name", mode))


def _device(config: TrainConfig) -> str:
    return config.training.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _checkpointing(model: Any, on: bool) -> None:
    """Activation (gradient) checkpointing on or off, non-reentrant (works with frozen inputs under LoRA)."""
    if on:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.activation_checkpointing_disable()


def _losses(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [{"step": e["step"], "loss": round(float(e["loss"]), 5)} for e in log_history if "loss" in e and "step" in e]


@dataclass
class TrainingRun:
    """Everything checked and built, ready to train: the model (LoRA applied), the trainer, the tasks, the
    workspace. :func:`prepare_training` makes one, :meth:`run` trains, saves and publishes."""

    config: TrainConfig
    workspace: Workspace
    model: SentenceTransformer
    strategy: Strategy
    settings: EncodeSettings
    trainer: Any
    sources: list[SourceData]
    tasks: list[Any]
    before: dict[str, Any]
    resume_from: Path | None
    dropout: list[Any]
    report: Report
    started: float

    def run(self) -> TrainResult:
        """Train, save and publish; the workspace's locks are released however it ends."""
        try:
            return self._run()
        finally:
            self.close()

    def close(self) -> None:
        """Release the output folder (a prepared run that is never run holds it until this or the process ends)."""
        self.workspace.unlock()

    def _run(self) -> TrainResult:
        config, workspace, st = self.config, self.workspace, self.model
        resume = str(self.resume_from) if self.resume_from is not None else None
        if resume is not None:
            self.report(f"resuming from {self.resume_from}")
        output = self.trainer.train(resume_from_checkpoint=resume)
        restore(self.dropout)
        stage = workspace.stage()
        adapter_dir = None
        if config.save_adapter and config.finetune == "lora":
            adapter_dir = stage / "adapter"
            st[0].auto_model.save_pretrained(str(adapter_dir))
        tokenizer = st[0].tokenizer
        backbone = merged_backbone(st)
        if config.training.gradient_checkpointing:
            _checkpointing(backbone, False)
        backbone.eval()
        for param in backbone.parameters():
            param.requires_grad_(False)
        base = base_model_of(config.model.source)
        final = decemb.from_backbone(backbone, tokenizer, self.strategy, settings=self.settings, base_model=base)
        after = evaluate(final, self.tasks, config.eval.batch_size) if self.tasks and config.eval.after else {}
        if after:
            self.report(f"eval after training: {summary(after)}")
        final.card_results = {"before": self.before, "after": after}  # the model card's evaluation table
        final.save(str(stage / "model"))
        state = self.trainer.state
        steps, wall = int(state.global_step), time.perf_counter() - self.started
        losses = {item.source.name: item.source.loss.name for item in self.sources}
        metrics = {
            "before": self.before,
            "during": read_history(workspace.history, steps),
            "after": after,
            "train": {
                "loss": next(iter(losses.values())) if len(losses) == 1 else losses,
                "strategy": self.strategy.name,
                "rows": sum(len(item.data) for item in self.sources),
                "steps": steps,
                "epochs": round(float(state.epoch or 0.0), 4),
                "losses": _losses(state.log_history),
                "train_loss": round(self.trainer.whole_train_loss(output), 5),  # all segments of a resumed run
                "resumed_from": None if self.resume_from is None else self.resume_from.name,
                "wall_s": round(wall, 1),
            },
            "data": data_metrics(self.sources),
            "machine": {"platform": platform.platform(), "device": _device(config), "threads": torch.get_num_threads()},
            "model": "model",
            "adapter": "adapter" if adapter_dir is not None else None,
        }
        write_json(stage / "metrics.json", metrics)
        write_json(stage / "config.json", config.model_dump(mode="json"))
        out = workspace.publish()
        self.report(f"wrote {out / 'model'} ({steps} steps, {wall:.0f} s)")
        adapter = out / "adapter" if adapter_dir is not None else None
        return TrainResult(out, out / "model", adapter, metrics, steps, wall, final)


def prepare_training(
    config: ConfigSource, out_dir: str | os.PathLike[str], *, overrides: Sequence[str] = (), report: Report = print
) -> TrainingRun:
    """Check everything (config, data, tasks, output, model, LoRA targets), mine, evaluate before, and build
    the trainer; nothing is trained yet and ``out_dir`` is not touched (only ``out_dir.partial``). Both are
    locked first (another run holding them is refused at once) and stay locked until :meth:`TrainingRun.run`
    ends or :meth:`TrainingRun.close`."""
    started = time.perf_counter()
    config = _config(config, overrides)
    workspace = Workspace(out_dir).lock()  # a folder another run holds is refused before anything is read
    try:
        return _prepare(config, workspace, report, started)
    except BaseException:
        workspace.unlock()
        raise


def _prepare(config: TrainConfig, workspace: Workspace, report: Report, started: float) -> TrainingRun:
    _require("datasets", *(("peft",) if config.finetune == "lora" else ()))
    from transformers import set_seed

    from decemb.train.trainer import DecembTrainer, short_batches, training_arguments

    data_root = resolve_data_root(config.data_root)
    strategy = build_strategy_checked(config.model)
    check_lora(config)
    sources = load_sources(config, strategy.name, _attention(strategy), data_root)
    tasks = load_eval_tasks(config.eval, data_root)
    workspace.check(config)

    set_seed(config.training.seed)
    st = build_model(config.model, strategy)
    settings = st[0].settings
    check_lora(config, st[0].auto_model)
    mntp = {i.source.name: mntp_options(st, config, i.source.loss) for i in sources if i.source.loss.name == "mntp"}
    resume_from = workspace.prepare(config)
    st.to(_device(config))
    report(f"decemb train: {strategy.name} on {config.model.source}, {describe(sources)}")
    sources = mine_sources(st, sources, report)

    before: dict[str, Any] = {}
    if resume_from is not None and workspace.before.is_file():
        before = json.loads(workspace.before.read_text())
    elif tasks and config.eval.before:
        before = evaluate(st, tasks, config.eval.batch_size)
        write_json(workspace.before, before)
        report(f"eval before training: {summary(before)}")

    set_seed(config.training.seed)
    if config.finetune == "lora":
        apply_lora(st, config.lora)
    else:
        for param in st.parameters():
            param.requires_grad_(True)
    if config.training.gradient_checkpointing:
        _checkpointing(st[0].auto_model, True)
    simcse = [item.source.loss for item in sources if item.source.loss.name == "simcse"]
    dropout = set_dropout(st[0].auto_model, simcse[0].dropout) if simcse else []
    inputs = trainer_inputs(sources, st, lambda source: mntp[source.name])
    every = config.eval.every if tasks else 0
    evaluator = TaskEvaluator(tasks, config.eval.batch_size, workspace.history, report) if every else None
    trainer = DecembTrainer(
        model=st,
        args=training_arguments(config, workspace.checkpoints, inputs.router_mapping, inputs.plans, every),
        train_dataset=inputs.train_dataset,
        loss=inputs.loss,
        evaluator=evaluator,
    )
    warning = short_batches(trainer)
    if warning:
        report(warning)
    return TrainingRun(
        config,
        workspace,
        st,
        strategy,
        settings,
        trainer,
        sources,
        tasks,
        before,
        resume_from,
        dropout,
        report,
        started,
    )


def train(
    config: ConfigSource, out_dir: str | os.PathLike[str], *, overrides: Sequence[str] = (), report: Report = print
) -> TrainResult:
    """Train the embedder a config describes and write ``out_dir`` (see the module docstring): ``config`` is a
    :class:`TrainConfig`, a mapping or a YAML file; ``overrides`` are ``--set``-style ``key=value`` strings."""
    return prepare_training(config, out_dir, overrides=overrides, report=report).run()
