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

Every key is described in its model's field descriptions (:class:`ComparisonConfig`, :class:`StrategyConfig`,
:class:`ModelConfig`, the task configs of :mod:`decemb.tasks`), which ``docs/reference.md`` renders
(:mod:`decemb.config_reference`). Every model forbids unknown keys; errors name the key path
(``strategies[1].poling: unknown option for strategy 'echo' (did you mean 'pooling'?)``) and, from
:func:`load_config`, the file. Relative paths (``data_root``, ``output``, ``cache``, a model ``source`` folder)
resolve against the current working directory, like any command-line path; task ``path`` values resolve
against the data root.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    PositiveInt,
    PrivateAttr,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from decemb.compare.tasks import ComparisonTaskConfig, ModelSource, misplaced_rerank
from decemb.config_base import StrictModel, config_error, format_validation_error
from decemb.errors import ConfigError
from decemb.load_options import LoadOptions
from decemb.settings import EncodeSettings, settings_from
from decemb.strategies import Strategy
from decemb.strategy_entry import build_strategy_entry, default_label
from decemb.yamlfile import read_yaml

__all__ = [
    "ComparisonConfig",
    "ConfigError",
    "ModelConfig",
    "StrategyConfig",
    "default_label",
    "load_config",
    "parse_config",
    "read_yaml",
]

_DEFAULTS = EncodeSettings()


# -- strategies ----------------------------------------------------------------------------------


class StrategyConfig(StrictModel):
    """One strategy entry: ``name``, optional display ``label``, and the strategy's options.

    In YAML the options sit next to the name (``{name: echo, pooling: last}``); a bare string is a
    strategy with default options. Validated (with did-you-mean) by the enclosing config.
    """

    name: str = Field(min_length=1, description="A registered strategy (``decemb strategies`` lists them).")
    label: str | None = Field(
        default=None,
        min_length=1,
        description="The display label (unique in a config); default: the name plus the non-default options, "
        "e.g. ``echo(pooling=last)``.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The strategy's options; in YAML they sit next to ``name`` (``{name: echo, pooling: last}``).",
    )

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
            self._spec = build_strategy_entry(self.name, self.options, entry_keys=("name", "label"))
        return self._spec

    @property
    def display_label(self) -> str:
        return self.label or default_label(self.spec)


# -- models --------------------------------------------------------------------------------------


class ModelConfig(LoadOptions):
    """A backbone: ``source`` is a built-in alias, a local folder, a ``.gguf`` file or a Hub id; ``name``
    (default: the last part of ``source``) labels its rows. The loading keys (``dtype``, ``device``,
    ``backend``, ...) are :class:`~decemb.load_options.LoadOptions`' own (``--device`` overrides every model's);
    ``max_length``, ``batch_size`` and ``max_batch_tokens`` are encode settings (defaults:
    :class:`~decemb.settings.EncodeSettings`; ``max_length`` is capped at a model's learned positions)."""

    name: str | None = Field(
        default=None, min_length=1, description="The label of this model's rows (default: the last part of source)."
    )
    source: ModelSource = Field(  # an alias is resolved (and maybe downloaded/assembled) at load time
        description="The backbone: a built-in alias, a local folder, a ``.gguf`` file or a Hub id."
    )
    max_length: PositiveInt | None = Field(
        default=_DEFAULTS.max_length, description="Tokens per rendered input (capped at the model's positions)."
    )
    batch_size: PositiveInt = Field(default=_DEFAULTS.batch_size, description="Texts per forward pass.")
    max_batch_tokens: PositiveInt | None = Field(
        default=_DEFAULTS.max_batch_tokens, description="Padded tokens per forward pass (null: no token budget)."
    )

    @property
    def loading(self) -> LoadOptions:
        """This entry's loading options, in one piece (what :func:`decemb.loading.load_backbone` takes)."""
        return LoadOptions.model_validate(self.loading_kwargs())

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


class ComparisonConfig(StrictModel):
    """Every model × strategy × layer × task of ``decemb compare``."""

    description: str | None = Field(default=None, description="Free text, ignored.")
    data_root: str | None = Field(
        default=None,
        description="The folder task ``path`` values resolve against. Precedence: ``--data-root`` / "
        "``run_comparison(data_root=...)``, then this key, then ``$DECEMB_DATA``, then ``../shared/data`` next to "
        "the repository (:func:`decemb.config_base.data_root`).",
    )
    output: str | None = Field(
        default=None, description="The output folder (``--out`` wins); default ``runs/<config file stem>``."
    )
    cache: bool | str = Field(
        default=True,
        description="``true``: the shared embedding cache ``$DECEMB_CACHE/embeddings.sqlite`` "
        "(``~/.cache/decemb/embeddings.sqlite``), keyed by model fingerprint, so any later run of any config reuses "
        "what was computed; a string: the path of another cache file; ``false``: no cache.",
    )
    threads: PositiveInt | None = Field(
        default=None,
        description="torch CPU threads (``--threads`` wins); default: the cores not busy (:mod:`decemb.threads`).",
    )
    models: list[ModelConfig] = Field(min_length=1, description="The backbones (:class:`ModelConfig`).")
    strategies: list[StrategyConfig] = Field(
        min_length=1,
        description="The strategies: a name (``mean``, a strategy with its default options) or a mapping "
        "(:class:`StrategyConfig`); labels must be unique.",
    )
    tasks: list[ComparisonTaskConfig] = Field(
        min_length=1,
        description="The evaluation tasks (``type``: sts, retrieval, classification, clustering, mteb; "
        ":mod:`decemb.tasks`); a retrieval task may add a ``rerank`` stage (:class:`RerankConfig`).",
    )
    layers: list[StrictInt] = Field(
        default_factory=lambda: [-1],
        min_length=1,
        description="Hidden states to pool, as in ``decemb.load(layer=...)`` (0: the embeddings, negative: from the "
        "top); every layer is checked against each model once it is loaded.",
    )

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _rerank_placement(cls, data: Any) -> Any:
        message = misplaced_rerank(data.get("tasks")) if isinstance(data, dict) else None
        if message:
            raise config_error(message)
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
                raise config_error(f"{key}: {error.detail}") from None
            if label in seen:
                raise config_error(
                    f"{where}.label: duplicate strategy label {label!r} (also strategies[{seen[label]}]); "
                    "give one of them a distinct label"
                )
            seen[label] = index
        _unique([model.name for model in self.models], "models", "name", "model name")
        _unique([task.name for task in self.tasks], "tasks", "name", "task name")
        layers: dict[int, int] = {}
        for index, layer in enumerate(self.layers):
            if layer in layers:
                raise config_error(f"layers[{index}]: duplicate layer {layer} (also layers[{layers[layer]}])")
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
            raise config_error(f"{field}[{index}].{key}: duplicate {what} {name!r} (also {field}[{seen[name]}])")
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
