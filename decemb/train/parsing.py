"""Reading a training config: YAML file → ``--set`` overrides → :class:`TrainConfig`, every error one line.

The file is read by :func:`decemb.yamlfile.read_yaml` and validation errors are worded by
:func:`decemb.config_base.format_validation_error`, as for comparison configs: errors are
:class:`decemb.errors.ConfigError` naming the file and the key path
(``loss.temprature: unknown key (did you mean 'temperature'?)``). Training adds ``--set`` overrides and
suggests our key for another trainer's name of it (``learning_rate`` → ``lr``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from decemb.config_base import format_validation_error
from decemb.errors import ConfigError
from decemb.train.config import TrainConfig
from decemb.yamlfile import read_yaml

__all__ = ["ALIASES", "apply_overrides", "load_train_config", "parse_train_config"]


# -- --set key=value ------------------------------------------------------------------------------

_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
# a bare string there stands for {name: string}; a bool at hard_negatives for {mine: bool} ("#": a list index)
_SHORTHANDS = {("loss",), ("model", "strategy"), ("data", "#", "loss")}
_MINE_SHORTHANDS = {("hard_negatives",), ("data", "#", "hard_negatives")}


def _pattern(path: list[str]) -> tuple[str, ...]:
    return tuple("#" if part.isdigit() else part for part in path)


def apply_overrides(data: dict[str, Any], pairs: Sequence[str]) -> dict[str, Any]:
    """``["training.lr=1e-4", "loss.name=cosent"]`` applied to a copy of ``data``; values are parsed as YAML
    (``true``, ``3``, ``[q_proj, v_proj]``, ``{name: echo}``). ``a.b.0.c`` indexes into lists."""
    import copy

    out = copy.deepcopy(data)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"expected key=value with a dotted key, got {pair!r}", key="--set")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        parts = key.split(".")
        node: Any = out
        for depth, part in enumerate(parts[:-1]):
            node = _child(node, part, parts[: depth + 1], key)
        _assign(node, parts[-1], value, key)
    return out


def _child(node: Any, part: str, path: list[str], key: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, key)]
    if not isinstance(node, dict):
        raise ConfigError(f"cannot set {key!r}: {'.'.join(path[:-1])} is not a mapping", key="--set")
    current = node.get(part)
    if isinstance(current, str) and _pattern(path) in _SHORTHANDS:
        current = node[part] = {"name": current}
    elif isinstance(current, bool) and _pattern(path) in _MINE_SHORTHANDS:
        current = node[part] = {"mine": current}
    elif current is None:
        current = node[part] = {}
    if not isinstance(current, dict | list):
        raise ConfigError(f"cannot set {key!r}: {'.'.join(path)} is {current!r}, not a mapping", key="--set")
    return current


def _assign(node: Any, part: str, value: Any, key: str) -> None:
    if isinstance(node, list):
        node[_index(node, part, key)] = value
    else:
        node[part] = value


def _index(node: list[Any], part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"cannot set {key!r}: {part!r} is not an index of a list of {len(node)}", key="--set")
    return int(part)


# Names other trainers use for our keys (transformers' TrainingArguments, peft's LoraConfig).
ALIASES = {
    "learning_rate": "lr",
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "batch_size",
    "gradient_accumulation_steps": "grad_accumulation",
    "warmup": "warmup_ratio",
    "save_steps": "checkpoint_every",
    "rank": "r",
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "scale": "temperature",
}


def parse_train_config(
    data: Any, *, overrides: Sequence[str] = (), file: str | os.PathLike[str] | None = None
) -> TrainConfig:
    """Validate a mapping (parsed YAML) after applying ``--set`` overrides; errors are ``ConfigError``."""
    if not isinstance(data, dict):
        shown = "nothing" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"expected a mapping (model, data, loss, ...) at the top level, got {shown}", file=file)
    if overrides:
        data = apply_overrides(data, overrides)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as error:
        key, message = format_validation_error(error, TrainConfig, ALIASES)
        raise ConfigError(message, key=key, file=file) from None


def load_train_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> TrainConfig:
    """Read, override and validate a training config file."""
    return parse_train_config(read_yaml(path), overrides=overrides, file=path)
