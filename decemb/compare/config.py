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
* ``tasks[*]``: see :mod:`decemb.tasks`; a retrieval task may add a ``rerank`` stage
  (:mod:`decemb.compare.tasks`: a decoder reranker rescoring each query's top k).
* ``models[*]``: ``name`` (default: the last part of ``source``), ``source``, ``dtype``, ``device``,
  ``max_length``, ``batch_size``, ``max_batch_tokens`` (defaults: :class:`~decemb.settings.EncodeSettings`;
  ``max_length`` is capped at a model's learned positions), ``attn_implementation``, ``adapter``,
  ``revision``; ``--device`` overrides every model's ``device``.
* ``cache``: ``true`` (default) is the shared on-disk cache ``$DECEMB_CACHE/embeddings.sqlite``
  (``~/.cache/decemb/embeddings.sqlite``), keyed by model fingerprint, so any later run of any config
  reuses what was computed; a string is a path to another cache file; ``false`` disables caching.
* A strategy's display ``label`` defaults to its name plus its non-default options, e.g.
  ``echo(pooling=last)``; labels must be unique.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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

from decemb.compare.errors import format_validation_error
from decemb.compare.tasks import ComparisonTaskConfig, ModelSource, misplaced_rerank
from decemb.errors import ConfigError
from decemb.loading import dtype_name
from decemb.settings import EncodeSettings, settings_from
from decemb.strategies import Strategy
from decemb.strategy_entry import check_strategy, default_label
from decemb.yamlfile import read_yaml

__all__ = [
    "ComparisonConfig",
    "ConfigError",
    "ModelConfig",
    "StrategyConfig",
    "check_strategy",
    "default_label",
    "load_config",
    "parse_config",
    "read_yaml",
]

_DEFAULTS = EncodeSettings()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- strategies ----------------------------------------------------------------------------------


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
    source: ModelSource  # an alias is resolved (and maybe downloaded/assembled) at load time
    dtype: str | None = None
    device: str | None = None
    max_length: PositiveInt | None = _DEFAULTS.max_length
    batch_size: PositiveInt = _DEFAULTS.batch_size
    max_batch_tokens: PositiveInt | None = _DEFAULTS.max_batch_tokens
    attn_implementation: str | None = None
    adapter: str | None = None
    revision: str | None = None

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str | None) -> str | None:
        dtype_name(value)  # a ValueError naming the known dtypes
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
    threads: PositiveInt | None = None  # torch CPU threads; --threads wins; default: decemb.threads
    models: list[ModelConfig] = Field(min_length=1)
    strategies: list[StrategyConfig] = Field(min_length=1)
    tasks: list[ComparisonTaskConfig] = Field(min_length=1)
    layers: list[StrictInt] = Field(default_factory=lambda: [-1], min_length=1)

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _rerank_placement(cls, data: Any) -> Any:
        message = misplaced_rerank(data.get("tasks")) if isinstance(data, dict) else None
        if message:
            raise _custom(message)
        return data

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


# -- reading -------------------------------------------------------------------------------------


def parse_config(data: Any, *, file: str | os.PathLike[str] | None = None) -> ComparisonConfig:
    """Validate a mapping (e.g. parsed YAML) into a :class:`ComparisonConfig`; errors are ``ConfigError``."""
    if not isinstance(data, dict):
        shown = "nothing" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"expected a mapping (models, strategies, tasks) at the top level, got {shown}", file=file)
    try:
        config = ComparisonConfig.model_validate(data)
    except ValidationError as error:
        key, message = format_validation_error(error, ComparisonConfig)
        raise ConfigError(message, key=key, file=file) from None
    if file is not None:
        config._source = Path(file)
    return config


def load_config(path: str | os.PathLike[str]) -> ComparisonConfig:
    """Read and validate a comparison config YAML file (errors: ``ConfigError`` naming file and key)."""
    return parse_config(read_yaml(path), file=path)
