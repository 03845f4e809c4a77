"""The model being trained: loaded through decemb's public API, LoRA on the base model, dropout for SimCSE.

LoRA wraps ``st[0].auto_model`` with ``peft.get_peft_model`` (never ``model.add_adapter``, which needs a
newer peft than transformers 5.23 works with); the trainer then updates only the LoRA weights. At the
end the adapter is merged (``merge_and_unload``) so ``DIR/model`` is a plain decemb folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from transformers import PreTrainedModel

import decemb
from decemb.errors import ConfigError
from decemb.registry import did_you_mean
from decemb.strategies import Strategy, strategy_of
from decemb.train.config import LoraSection, ModelSection, TrainConfig

__all__ = [
    "apply_lora",
    "build_model",
    "build_strategy_checked",
    "check_lora",
    "linear_module_names",
    "merged_backbone",
    "saved_strategy",
    "set_dropout",
]


def saved_strategy(source: str) -> dict[str, Any] | None:
    """``{name, **options}`` of a folder saved by a decemb model (``None`` for any other source)."""
    config = Path(source).expanduser() / "decemb_config.json"
    if not config.is_file():
        return None
    saved = json.loads(config.read_text())
    return {"name": saved["strategy"], **(saved.get("strategy_options") or {})}


def build_strategy_checked(section: ModelSection) -> Strategy:
    """The configured strategy (a saved decemb folder's own when the config names none)."""
    strategy = dict(section.strategy)
    if "strategy" not in section.model_fields_set:
        strategy = saved_strategy(section.source) or strategy
    try:
        return strategy_of(strategy)
    except (ValueError, KeyError) as error:
        option = getattr(error, "key", None)
        key = f"model.strategy.{option}" if isinstance(option, str) and option else "model.strategy"
        raise ConfigError(str(error), key=key) from None


def build_model(section: ModelSection, strategy: Strategy) -> SentenceTransformer:
    """Load the backbone and wrap it as a decemb SentenceTransformer (under gradient checkpointing the core
    itself runs without the shared-prefix KV cache)."""
    from decemb.loading import load_backbone

    try:
        model, tokenizer = load_backbone(section.source, section.loading)
    except (OSError, ValueError, ImportError) as error:
        raise ConfigError(str(error).splitlines()[0], key="model.source") from None
    try:
        return decemb.from_backbone(model, tokenizer, strategy, max_length=section.max_length, layer=section.layer)
    except ValueError as error:
        text = str(error)
        key = "model.max_length" if "max_length" in text else "model.layer" if "layer" in text else "model.strategy"
        raise ConfigError(text, key=key) from None


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Names of the model's linear layers (``nn.Linear`` and GPT-2's ``Conv1D``): what LoRA can target."""
    from transformers.pytorch_utils import Conv1D

    return [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear | Conv1D)]


def check_lora(config: TrainConfig, model: torch.nn.Module | None = None) -> None:
    """LoRA's checks, next to its build (:func:`apply_lora`): lora settings need ``finetune: lora``; given the
    loaded model, every target module must be one of its linear layers."""
    if config.finetune == "full" and "lora" in config.model_fields_set:
        raise ConfigError("lora settings given but finetune is 'full'; remove lora or set finetune: lora", key="lora")
    if model is not None and config.finetune == "lora":
        check_lora_targets(model, config.lora)


def check_lora_targets(model: torch.nn.Module, lora: LoraSection) -> None:
    """Every named target must be a linear layer of the model (by leaf name or dotted suffix)."""
    if lora.target_modules == "all-linear":
        return
    names = linear_module_names(model)
    leaves = sorted({name.rsplit(".", 1)[-1] for name in names})
    for target in lora.target_modules:
        if not any(name == target or name.endswith("." + target) for name in names):
            raise ConfigError(
                f"the model has no linear module {target!r}{did_you_mean(target, leaves)}; "
                f"its linear modules: {', '.join(leaves)}",
                key="lora.target_modules",
            )


def apply_lora(st: SentenceTransformer, lora: LoraSection) -> torch.nn.Module:
    """Wrap ``st[0].auto_model`` in a PEFT LoRA model (only the LoRA weights train) and return the wrapper."""
    from peft import LoraConfig, get_peft_model

    base = st[0].auto_model
    check_lora_targets(base, lora)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        bias="none",
    )
    wrapped = get_peft_model(base, config)
    st[0].auto_model = wrapped
    return wrapped


def merged_backbone(st: SentenceTransformer) -> PreTrainedModel:
    """The base model with any LoRA adapter merged into its weights (the wrapper is removed from ``st``)."""
    model = st[0].auto_model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
        st[0].auto_model = model
    return model


def set_dropout(model: torch.nn.Module, p: float) -> list[tuple[Any, str, Any]]:
    """Set every dropout of the model to ``p`` (``nn.Dropout`` modules, attention modules' ``attention_dropout``
    and the config's ``*dropout*`` floats; LoRA's own dropout untouched). Returns what to restore."""
    changed: list[tuple[Any, str, Any]] = []
    for name, module in model.named_modules():
        if "lora_" in name:
            continue
        if isinstance(module, torch.nn.Dropout):
            changed.append((module, "p", module.p))
            module.p = p
        value = module.__dict__.get("attention_dropout")
        if isinstance(value, float) and not isinstance(value, bool):
            changed.append((module, "attention_dropout", value))
            module.attention_dropout = p
    config = getattr(model, "config", None)
    for key in ("attention_dropout", "hidden_dropout", "attn_pdrop", "resid_pdrop", "embd_pdrop"):
        if config is not None and isinstance(getattr(config, key, None), float):
            changed.append((config, key, getattr(config, key)))
            setattr(config, key, p)
    return changed


def restore(changed: list[tuple[Any, str, Any]]) -> None:
    for owner, attribute, value in reversed(changed):
        setattr(owner, attribute, value)
