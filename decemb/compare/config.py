"""The comparison config: models × strategies × layers × tasks, read from YAML and validated with pydantic.

Example (``configs/quickstart.yaml``)::

    output: runs/quickstart
    models:
      - {name: smollm2, source: smollm2-135m, dtype: float32}
    strategies:
      - mean                                  # shorthand for {name: mean}
      - {name: echo, pooling: last}           # every key other than name/label is a strategy option
      - {name: instruct, label: instruct-e5}  # no instruction: the task's E5 instruction is used
    tasks:
      - {type: sts, name: stsb-dev, path: stsbenchmark/sts-dev.csv, format: stsb, limit: 200}
    layers: [-1]

Semantics:

* Every model forbids unknown keys; errors name the key path (``strategies[1].poling: unknown option
  for strategy 'echo' (did you mean 'pooling'?)``) and, from :func:`load_config`, the file.
* Relative paths (``data_root``, ``output``, ``cache``, a model ``source`` folder) resolve against the
  current working directory, like any command-line path; task ``path`` values resolve against the
  data root.
* Data root precedence: ``--data-root`` / ``run_comparison(data_root=...)``, then ``$DECEMB_DATA``, then
  the config's ``data_root``, then :func:`decemb.tasks.default_data_root` (``../shared/data`` next to the
  repository).
* ``output`` defaults to ``runs/<config file stem>``; ``description`` is free text, ignored.
* ``layers`` (default ``[-1]``): hidden states to pool, as in ``decemb.load(layer=...)`` (0: the
  embeddings, negative: from the top); every layer is checked against each model once it is loaded.
* ``models[*]``: ``name`` (default: the last part of ``source``), ``source``, ``dtype``, ``device``,
  ``max_length`` (512), ``batch_size`` (32), ``max_batch_tokens``, ``attn_implementation``,
  ``adapter``, ``revision``; ``--device`` overrides every model's ``device``.
* ``cache``: ``true`` (default) is the shared on-disk cache ``$DECEMB_CACHE/embeddings.sqlite``
  (``~/.cache/decemb/embeddings.sqlite``), keyed by model fingerprint, so any later run of any config
  reuses what was computed; a string is a path to another cache file; ``false`` disables caching.
* A strategy's display ``label`` defaults to its name plus its non-default options, e.g.
  ``echo(pooling=last)``; labels must be unique.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    PrivateAttr,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from decemb.loading import DTYPES, ModelSourceError, resolve_source
from decemb.models import MODEL_ALIASES
from decemb.registry import UnknownNameError
from decemb.settings import DEFAULT_MAX_LENGTH, EncodeSettings, settings_from
from decemb.strategies import STRATEGIES, Strategy, build_strategy
from decemb.tasks import TASK_TYPES, TaskConfig

__all__ = [
    "ComparisonConfig",
    "ConfigError",
    "ModelConfig",
    "StrategyConfig",
    "check_strategy",
    "default_label",
    "format_validation_error",
    "load_config",
    "parse_config",
]


class ConfigError(ValueError):
    """A bad config or input: ``str()`` is one line naming the file and/or the key path."""

    def __init__(self, message: str, *, key: str | None = None, file: str | os.PathLike[str] | None = None) -> None:
        self.key = key
        self.file = None if file is None else os.fspath(file)
        self.detail = " ".join(str(message).split())
        super().__init__(self.line())

    def line(self) -> str:
        parts = [part for part in (self.file, self.key) if part]
        return ": ".join([*parts, self.detail])

    def __str__(self) -> str:
        return self.line()

    def with_file(self, file: str | os.PathLike[str]) -> ConfigError:
        return ConfigError(self.detail, key=self.key, file=file)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- strategies ----------------------------------------------------------------------------------


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split()) if isinstance(value, str) else text
    return text if len(text) <= width else text[: width - 1] + "…"


def default_label(strategy: Strategy) -> str:
    """The strategy's name plus its non-default options: ``mean``, ``echo(pooling=last)``."""
    changed = strategy.model_dump(mode="json", exclude_defaults=True)
    if not changed:
        return strategy.name
    return f"{strategy.name}({', '.join(f'{key}={_short(value)}' for key, value in changed.items())})"


def _pydantic_message(error: Any) -> str:
    """One pydantic error dict → a short message (``must be ...``), with the offending input when short."""
    kind, message = error["type"], str(error["msg"])
    if kind == "missing":
        return "required key missing"
    if kind in ("value_error", "assertion_error"):
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "too_short" and error.get("ctx", {}).get("min_length") == 1:
        return "must not be empty"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        ops = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
        bound = next(iter(error.get("ctx", {}).values()), "?")
        message = f"must be {ops[kind]} {bound}"
    message = message.replace("Input should be", "must be")
    given = error.get("input")
    if isinstance(given, str | int | float | bool) or given is None:
        shown = repr(given)
        if len(shown) <= 60:
            message += f" (got {shown})"
    return message


def _join_loc(loc: Any) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def check_strategy(
    name: Any, options: dict[str, Any], entry_keys: tuple[str, ...] = ()
) -> tuple[Strategy | None, str | None, str | None]:
    """Build a strategy through :func:`build_strategy`; on failure return ``(None, subkey, message)``.

    ``subkey`` is ``"name"`` for an unknown strategy (message with did-you-mean), the option's key for a
    bad option, or ``None`` when the error is not about one key. ``entry_keys``: keys that sit next to
    the options where they were written (a config entry's ``name``/``label``), also offered as
    did-you-mean suggestions for an unknown option.
    """
    try:
        cls = STRATEGIES.get(name)
    except UnknownNameError as error:
        return None, "name", error.message
    try:
        return build_strategy(name, **options), None, None
    except (ValueError, KeyError) as error:
        reason = str(error)
    try:
        cls(**options)
    except ValidationError as validation:
        first = validation.errors()[0]
        key = _join_loc(first["loc"])
        if first["type"] == "extra_forbidden":
            known = list(cls.model_fields)
            close = difflib.get_close_matches(key, known + list(entry_keys), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known options: {', '.join(known) or 'none'})"
            return None, key, f"unknown option for strategy {name!r}{hint}"
        return None, key or None, f"strategy {name!r}: {_pydantic_message(first)}"
    except (ValueError, KeyError):
        pass
    return None, None, reason


class StrategyConfig(BaseModel):
    """One strategy entry: ``name``, optional display ``label``, and the strategy's options.

    In YAML the options sit next to the name (``{name: echo, pooling: last}``); a bare string is a
    strategy with default options. Validated (with did-you-mean) by the enclosing config.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    label: str | None = Field(default=None, min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)

    _spec: Strategy | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _gather_options(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict) and "options" not in data:
            fixed = {key: data[key] for key in ("name", "label") if key in data}
            options = {key: value for key, value in data.items() if key not in ("name", "label")}
            return {**fixed, "options": options}
        return data

    @property
    def spec(self) -> Strategy:
        """The built strategy (raises ``ConfigError`` if the name or options are invalid)."""
        if self._spec is None:
            spec, key, message = check_strategy(self.name, self.options, entry_keys=("name", "label"))
            if spec is None:
                raise ConfigError(message or "invalid strategy", key=key)
            self._spec = spec
        return self._spec

    @property
    def display_label(self) -> str:
        return self.label or default_label(self.spec)


# -- models --------------------------------------------------------------------------------------


class ModelConfig(_Strict):
    """A backbone: ``source`` is a built-in alias, a local folder, a ``.gguf`` file or a Hub id."""

    name: str | None = Field(default=None, min_length=1)
    source: str = Field(min_length=1)
    dtype: str | None = None
    device: str | None = None
    max_length: PositiveInt | None = DEFAULT_MAX_LENGTH
    batch_size: PositiveInt = 32
    max_batch_tokens: PositiveInt | None = None
    attn_implementation: str | None = None
    adapter: str | None = None
    revision: str | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value not in MODEL_ALIASES:  # an alias is resolved (and maybe downloaded/assembled) at load time
            try:
                resolve_source(value)
            except ModelSourceError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str | None) -> str | None:
        if value is not None and value not in DTYPES:
            raise ValueError(f"unknown dtype {value!r}; expected one of {', '.join(DTYPES)}")
        return value

    @property
    def settings(self) -> EncodeSettings:
        """This model's encode settings (the defaults of :class:`~decemb.settings.EncodeSettings` unless set)."""
        return settings_from(
            max_length=self.max_length, batch_size=self.batch_size, max_batch_tokens=self.max_batch_tokens
        )

    @model_validator(mode="after")
    def _default_name(self) -> ModelConfig:
        if self.name is None:
            self.name = Path(self.source.rstrip("/\\")).name or self.source
        return self


# -- the whole config ----------------------------------------------------------------------------


def _custom(message: str) -> PydanticCustomError:
    return PydanticCustomError("decemb_config", "{message}", {"message": message})


class ComparisonConfig(_Strict):
    """Every model × strategy × layer × task; see the module docstring for the semantics."""

    description: str | None = None
    data_root: str | None = None
    output: str | None = None
    cache: bool | str = True
    models: list[ModelConfig] = Field(min_length=1)
    strategies: list[StrategyConfig] = Field(min_length=1)
    tasks: list[TaskConfig] = Field(min_length=1)
    layers: list[StrictInt] = Field(default_factory=lambda: [-1], min_length=1)

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("cache", mode="before")
    @classmethod
    def _cache(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, str) and value.strip()):
            return value
        raise ValueError(f"must be true, false or the path of a cache file (got {value!r})")

    @model_validator(mode="after")
    def _check(self) -> ComparisonConfig:
        seen: dict[str, int] = {}
        for index, entry in enumerate(self.strategies):
            where = f"strategies[{index}]"
            try:
                label = entry.display_label
            except ConfigError as error:
                key = f"{where}.{error.key}" if error.key else where
                raise _custom(f"{key}: {error.detail}") from None
            if label in seen:
                raise _custom(
                    f"{where}.label: duplicate strategy label {label!r} (also strategies[{seen[label]}]); "
                    "give one of them a distinct label"
                )
            seen[label] = index
        _unique([model.name for model in self.models], "models", "name", "model name")
        _unique([task.name for task in self.tasks], "tasks", "name", "task name")
        layers: dict[int, int] = {}
        for index, layer in enumerate(self.layers):
            if layer in layers:
                raise _custom(f"layers[{index}]: duplicate layer {layer} (also layers[{layers[layer]}])")
            layers[layer] = index
        return self

    @property
    def source(self) -> Path | None:
        """The file this config was read from (``None`` when built in Python)."""
        return self._source

    def output_dir(self) -> Path:
        if self.output:
            return Path(self.output).expanduser()
        stem = self._source.stem if self._source is not None else "comparison"
        return Path("runs") / stem


def _unique(names: list[Any], field: str, key: str, what: str) -> None:
    seen: dict[Any, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise _custom(f"{field}[{index}].{key}: duplicate {what} {name!r} (also {field}[{seen[name]}])")
        seen[name] = index


# -- error formatting ----------------------------------------------------------------------------


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic model classes inside an annotation (through lists, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += [model for model in _models_in(arg) if model not in found]
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and not found and isinstance(origin, type) and issubclass(origin, BaseModel):
        found.append(origin)
    return found


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    return None if field is None else field.default


def _walk(loc: tuple[Any, ...]) -> tuple[str, list[type[BaseModel]]]:
    """Display path for ``loc`` (``tasks[0].limit``; union tags dropped) and the models owning its last key."""
    models: list[type[BaseModel]] = [ComparisonConfig]
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
        path += f".{part}" if path else str(part)
        fields = {name: field for model in models for name, field in model.model_fields.items()}
        models = _models_in(fields[part].annotation) if part in fields else []
    return path, parent


def _typo_behind(errors: list[Any]) -> Any:
    """When the first error is a missing key and a sibling unknown key is a near miss of it (``modles``
    for ``models``), that unknown key: the typo is the cause and the one to report."""
    first = errors[0]
    if first["type"] != "missing":
        return None
    parent, wanted = tuple(first["loc"][:-1]), str(first["loc"][-1])
    for other in errors[1:]:
        loc = tuple(other["loc"])
        near = difflib.get_close_matches(str(loc[-1]), [wanted], n=1, cutoff=0.5)
        if other["type"] == "extra_forbidden" and loc[:-1] == parent and near:
            return other
    return None


def format_validation_error(error: ValidationError) -> tuple[str | None, str]:
    """``(key path, message)`` for the first error of a config ``ValidationError`` (plus a count of others)."""
    errors = error.errors()
    first = _typo_behind(errors) or errors[0]
    key, parent = _walk(tuple(first["loc"]))
    kind = first["type"]
    if kind == "decemb_config":
        key, message = None, str(first["ctx"]["message"])
    elif kind == "extra_forbidden":
        known = sorted({name for model in parent for name in model.model_fields})
        unknown = str(first["loc"][-1])
        close = difflib.get_close_matches(unknown, known, n=1, cutoff=0.5)
        message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(known)})")
    elif kind == "union_tag_invalid":
        tag = first["ctx"]["tag"]
        known = list(TASK_TYPES)
        close = difflib.get_close_matches(str(tag), known, n=1, cutoff=0.5)
        key = f"{key}.type"
        message = f"unknown task type {tag!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        message += f"; known: {', '.join(known)}"
    elif kind == "union_tag_not_found":
        key = f"{key}.type"
        message = f"required key missing (one of {', '.join(TASK_TYPES)})"
    else:
        message = _pydantic_message(first)
    others = len(errors) - 1
    if others:
        message += f" (and {others} more error{'s' if others > 1 else ''})"
    return key or None, message


def parse_config(data: Any, *, file: str | os.PathLike[str] | None = None) -> ComparisonConfig:
    """Validate a mapping (e.g. parsed YAML) into a :class:`ComparisonConfig`; errors are ``ConfigError``."""
    if not isinstance(data, dict):
        shown = "nothing" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"expected a mapping (models, strategies, tasks) at the top level, got {shown}", file=file)
    try:
        config = ComparisonConfig.model_validate(data)
    except ValidationError as error:
        key, message = format_validation_error(error)
        raise ConfigError(message, key=key, file=file) from None
    if file is not None:
        config._source = Path(file)
    return config


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys instead of keeping the last one silently."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, str | int | float | bool) and key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1}, column {mark.column + 1})", mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Parse a YAML file; a missing or unreadable file, bad syntax or an empty file is a ``ConfigError``."""
    file = Path(path).expanduser()
    if not file.exists():
        raise ConfigError("file not found", file=path)
    if not file.is_file():
        raise ConfigError("not a file", file=path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the file ({error})", file=path) from None
    if not text.strip():
        raise ConfigError("the file is empty", file=path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML{where}: {problem}", file=path) from None
    if data is None:
        raise ConfigError("the file is empty (only comments)", file=path)
    return data


def load_config(path: str | os.PathLike[str]) -> ComparisonConfig:
    """Read and validate a comparison config YAML file (errors: ``ConfigError`` naming file and key)."""
    return parse_config(read_yaml(path), file=path)
