"""Reading a training config: YAML file → ``--set`` overrides → :class:`TrainConfig`, every error one line.

Errors are :class:`decemb.errors.ConfigError` naming the file and the key path
(``loss.temprature: unknown key (did you mean 'temperature'?)``).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from decemb.errors import ConfigError
from decemb.tasks import TASK_TYPES
from decemb.train.config import TrainConfig

__all__ = ["apply_overrides", "format_validation_error", "load_train_config", "parse_train_config", "read_yaml"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys instead of keeping the last one silently."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, str | int | float | bool) and key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Parse a YAML file; missing, unreadable, invalid or empty is a ``ConfigError`` naming the file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError("file not found" if not file.exists() else "not a file", file=path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the file ({error})", file=path) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML{where}: {problem}", file=path) from None
    if data is None:
        raise ConfigError("the file is empty", file=path)
    return data


# -- --set key=value ------------------------------------------------------------------------------

_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_SHORTHANDS = {("loss",), ("model", "strategy")}  # a bare string there stands for {name: string}


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
    if isinstance(current, str) and tuple(path) in _SHORTHANDS:
        current = node[part] = {"name": current}
    elif isinstance(current, bool) and tuple(path) == ("hard_negatives",):
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


# -- validation errors ---------------------------------------------------------------------------


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += [model for model in _models_in(arg) if model not in found]
    return found


def _walk(loc: Sequence[Any]) -> tuple[str, list[type[BaseModel]]]:
    """Display path for ``loc`` (``eval.tasks[0].limit``; union tags dropped) and the models owning its last key."""
    models: list[type[BaseModel]] = [TrainConfig]
    parent = models
    path = ""
    for part in loc:
        parent = models
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        tagged = [model for model in models if _tag(model) == part]
        if len(models) > 1 and tagged:
            models = tagged
            continue
        if part in ("function-after", "function-before") or part.startswith(("literal[", "list[", "dict[")):
            continue
        path += f".{part}" if path else str(part)
        fields = {name: field for model in models for name, field in model.model_fields.items()}
        models = _models_in(fields[part].annotation) if part in fields else []
    return path, parent


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    return None if field is None else field.default


def _message(error: Any) -> str:
    kind, message = error["type"], str(error["msg"])
    if kind == "missing":
        return "required key missing"
    if kind in ("value_error", "assertion_error"):
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        ops = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
        message = f"must be {ops[kind]} {next(iter(error.get('ctx', {}).values()), '?')}"
    message = message.replace("Input should be", "must be")
    given = error.get("input")
    if isinstance(given, str | int | float | bool) or given is None:
        if len(repr(given)) <= 60:
            message += f" (got {given!r})"
        if kind == "literal_error" and isinstance(given, str):
            choices = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
            close = difflib.get_close_matches(given, choices, n=1, cutoff=0.5)
            message += f"; did you mean {close[0]!r}?" if close else ""
    return message


# Names other trainers use for our keys (transformers' TrainingArguments, peft's LoraConfig).
_ALIASES = {
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


def format_validation_error(error: ValidationError) -> tuple[str | None, str]:
    """``(key path, message)`` for the first error of a training-config ``ValidationError``."""
    errors = error.errors()
    first = errors[0]
    key, parent = _walk(tuple(first["loc"]))
    kind = first["type"]
    if kind == "extra_forbidden":
        known = sorted({name for model in parent for name in model.model_fields})
        unknown = str(first["loc"][-1])
        alias = _ALIASES.get(unknown)
        close = [alias] if alias in known else difflib.get_close_matches(unknown, known, n=1, cutoff=0.5)
        message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(known)})")
    elif kind == "union_tag_invalid":
        tag = str(first["ctx"]["tag"])
        close = difflib.get_close_matches(tag, list(TASK_TYPES), n=1, cutoff=0.5)
        key = f"{key}.type"
        message = f"unknown task type {tag!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        message += f"; known: {', '.join(TASK_TYPES)}"
    elif kind == "union_tag_not_found":
        key, message = f"{key}.type", f"required key missing (one of {', '.join(TASK_TYPES)})"
    else:
        message = _message(first)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return key or None, message


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
        key, message = format_validation_error(error)
        raise ConfigError(message, key=key, file=file) from None


def load_train_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> TrainConfig:
    """Read, override and validate a training config file."""
    return parse_train_config(read_yaml(path), overrides=overrides, file=path)
