"""The training config (``decemb train CONFIG.yaml``), validated with pydantic: every section forbids unknown keys.
Examples: ``configs/train-*.yaml``; the keys: docs/training.md. ``data`` is one source (a mapping) or a list of
sources, each with its own loss and weight (``configs/train-general.yaml``).

Semantics not expressible in the schema (loss vs data shape, strategy options, LoRA targets vs the model, ...)
are checked by :func:`decemb.train.run.prepare_training` before any training step runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    Discriminator,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Tag,
    field_validator,
    model_validator,
)

from decemb.config_base import StrictModel
from decemb.tasks import TaskConfig
from decemb.train.loss_registry import LOSS_NAMES, LOSS_SPECS
from decemb.train.model_section import ModelSection
from decemb.train.model_section import named as _named

__all__ = [
    "LOSSES",
    "LOSS_OPTIONS",
    "PRESETS",
    "DataColumns",
    "DataSection",
    "EvalSection",
    "HardNegativesSection",
    "LoraSection",
    "LossSection",
    "ModelSection",
    "TrainConfig",
    "TrainingSection",
]

LossName = Literal[LOSS_NAMES]  # type: ignore[valid-type]  # the loss registry's names
LOSSES: tuple[str, ...] = LOSS_NAMES
PresetName = Literal["stsb", "stsb-pairs", "stsb-unsupervised", "scifact", "scifact-titles", "banking77", "simcse"]
PRESETS: tuple[str, ...] = get_args(PresetName)


class LoraSection(StrictModel):
    """LoRA on the base model (peft ``LoraConfig``); ``target_modules``: module names or ``all-linear``."""

    r: PositiveInt = 16
    alpha: PositiveFloat = 32.0
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: Literal["all-linear"] | list[str] = "all-linear"

    @field_validator("target_modules", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "all-linear":
            return [value]
        if isinstance(value, list) and not value:
            raise ValueError("must name at least one module (or be all-linear)")
        return value


class DataColumns(StrictModel):
    """Roles → column names (csv/tsv header names, jsonl keys). Which roles are given sets the data shape:
    ``anchor`` + ``positive`` (+ ``negative``): pairs; ``text1`` + ``text2`` + ``score``: scored pairs;
    ``text`` (+ ``label``): single texts (with ``label``: texts grouped into same-label pairs)."""

    anchor: str | None = None
    positive: str | None = None
    negative: list[str] | None = None
    text1: str | None = None
    text2: str | None = None
    score: str | None = None
    text: str | None = None
    label: str | None = None

    @field_validator("negative", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class LossSection(StrictModel):
    """The objective. ``temperature`` (mnrl, cached_mnrl, simcse): the InfoNCE temperature, scale = 1/temperature;
    ``scale`` (cosent, angle); ``mini_batch_size`` (cached_mnrl); ``dropout`` (simcse: set on every dropout of
    the model while training, as the noise between the two views); ``mask_probability``/``mask_token`` (mntp)."""

    name: LossName = "mnrl"
    temperature: PositiveFloat = 0.05
    scale: PositiveFloat = 20.0
    mini_batch_size: PositiveInt = 16
    dropout: float = Field(default=0.1, gt=0.0, lt=1.0)
    mask_probability: float = Field(default=0.2, gt=0.0, lt=1.0)
    mask_token: str | None = None


# Options that only mean something for some losses (from the loss registry): setting one for another loss is an error.
LOSS_OPTIONS: dict[str, tuple[str, ...]] = {
    option: tuple(name for name, spec in LOSS_SPECS.items() if option in spec.options)
    for option in dict.fromkeys(option for spec in LOSS_SPECS.values() for option in spec.options)
}


class HardNegativesSection(StrictModel):
    """Mine hard negatives with the model itself before training (``sentence_transformers.util.mine_hard_negatives``):
    ``num`` per anchor from ranks ``range_min``..``range_max`` of the candidates, skipping any scoring above
    ``max_score`` or within ``relative_margin`` of the positive. ``corpus: all`` mines in the preset's full
    corpus where it has one (SciFact), ``positives`` among the training positives. A pair for which no
    candidate passes the filters is dropped; fewer than ``min_kept`` (a fraction) of the pairs kept is an
    error before training, never a silently smaller training set. No document serves as a negative for more
    than ``max_uses`` pairs (null: no cap), so rows sharing a "hub" negative cannot crowd the no-duplicates
    batches. ``miner``: ``model`` ranks candidates by the model's own cosine, ``bm25`` by BM25 over the same
    candidates (:mod:`decemb.search.lexical`; no model pass; ``max_score`` and ``relative_margin`` are cosine
    thresholds and do not apply)."""

    mine: bool = False
    miner: Literal["model", "bm25"] = "model"
    num: PositiveInt = 1
    range_min: NonNegativeInt = 10
    range_max: PositiveInt | None = 50
    max_score: float | None = None
    relative_margin: float | None = Field(default=None, ge=0.0, lt=1.0)
    sampling: Literal["top", "random"] = "top"
    corpus: Literal["all", "positives"] = "all"
    batch_size: PositiveInt = 32
    min_kept: float = Field(default=0.9, ge=0.0, le=1.0)
    max_uses: PositiveInt | None = 2

    @model_validator(mode="after")
    def _range(self) -> HardNegativesSection:
        if self.range_max is not None and self.range_max - self.range_min < self.num:
            raise ValueError(
                f"range_min {self.range_min}..range_max {self.range_max} leaves fewer than num {self.num} candidates"
            )
        cosine = [key for key in ("max_score", "relative_margin") if getattr(self, key) is not None]
        if self.miner == "bm25" and cosine:
            raise ValueError(f"{cosine[0]} is a cosine threshold of miner 'model'; miner 'bm25' does not use it")
        return self


def _mine_shorthand(value: Any) -> Any:
    """``hard_negatives: true`` → ``{mine: true}``."""
    return {"mine": value} if isinstance(value, bool) else value


class DataSection(StrictModel):
    """One source of training data: a ``preset`` over the shared data, or a csv/tsv/jsonl ``path`` with
    ``columns``. In a list of sources (``data: [{...}, {...}]``) each may name its own ``loss`` and
    ``hard_negatives`` (default: the top-level ones) and a ``weight``: the batches it gives per epoch are
    ``weight`` x its batches in one pass (2: twice through it, 0.5: a seeded half); batches never mix sources."""

    preset: PresetName | None = None
    path: str | None = None
    format: Literal["csv", "tsv", "jsonl"] | None = None
    columns: DataColumns | None = None
    symmetric: bool | None = None
    limit: PositiveInt | None = None
    min_score: float | None = None
    score_range: tuple[float, float] | None = None
    seed: int = 0
    loss: LossSection | None = None
    weight: PositiveFloat = 1.0
    hard_negatives: HardNegativesSection | None = None

    _loss = field_validator("loss", mode="before")(classmethod(lambda cls, value: _named(value)))
    _mine = field_validator("hard_negatives", mode="before")(classmethod(lambda cls, value: _mine_shorthand(value)))

    @model_validator(mode="after")
    def _source(self) -> DataSection:
        if (self.preset is None) == (self.path is None):
            raise ValueError("give exactly one of data.preset or data.path")
        if self.preset is not None and (self.columns is not None or self.format is not None):
            raise ValueError(f"data.preset {self.preset!r} fixes the columns and format; remove columns/format")
        if self.path is not None and self.columns is None:
            raise ValueError("data.path needs data.columns (e.g. {anchor: query, positive: document})")
        if self.score_range is not None and not self.score_range[0] < self.score_range[1]:
            raise ValueError(f"data.score_range must be [low, high] with low < high, got {list(self.score_range)}")
        return self


class TrainingSection(StrictModel):
    """The optimisation loop (sentence-transformers' trainer, i.e. transformers' ``Trainer`` + accelerate)."""

    epochs: PositiveFloat = 1.0
    max_steps: PositiveInt | None = None
    batch_size: PositiveInt = 16
    grad_accumulation: PositiveInt = 1
    lr: PositiveFloat = 2e-4
    warmup_ratio: float = Field(default=0.1, ge=0.0, lt=1.0)
    warmup_steps: NonNegativeInt | None = None
    weight_decay: float = Field(default=0.0, ge=0.0)
    max_grad_norm: PositiveFloat = 1.0
    seed: int = 0
    logging_steps: PositiveInt = 10
    checkpoint_every: NonNegativeInt = 0
    keep_checkpoints: PositiveInt = 2
    gradient_checkpointing: bool = False
    bf16: bool = False
    device: Literal["cpu", "cuda"] | None = None
    progress: bool = True


class EvalSection(StrictModel):
    """Evaluation tasks in the comparison config's task format, run ``before`` training, ``every`` N optimizer
    steps (0: never) and ``after``; results go to ``metrics.json``."""

    tasks: list[TaskConfig] = Field(default_factory=list)
    before: bool = True
    every: NonNegativeInt = 0
    after: bool = True
    batch_size: PositiveInt = 32


def _one_or_many(value: Any) -> str:
    return "list[sources]" if isinstance(value, list) else "mapping[source]"


# One source (a mapping, as always) or a list of sources. The tags are shaped like pydantic's own union member
# labels, which the error formatter drops from key paths: ``data.limt`` / ``data[1].limt``.
DataSources = Annotated[
    Union[  # noqa: UP007  (a tagged union needs the Union form)
        Annotated[DataSection, Tag("mapping[source]")],
        Annotated[list[DataSection], Field(min_length=1), Tag("list[sources]")],
    ],
    Discriminator(_one_or_many),
]


class TrainConfig(StrictModel):
    """The whole config. ``finetune``: ``lora`` (default; merged into the weights of ``DIR/model``) or ``full``.
    ``save_adapter`` also writes ``DIR/adapter`` (PEFT files). ``resume``: continue an interrupted run of the
    same config from its last complete checkpoint. ``overwrite``: replace an existing ``DIR``."""

    description: str | None = None
    data_root: str | None = None
    model: ModelSection = Field(default_factory=ModelSection)
    finetune: Literal["lora", "full"] = "lora"
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataSources
    loss: LossSection = Field(default_factory=LossSection)
    hard_negatives: HardNegativesSection = Field(default_factory=HardNegativesSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    save_adapter: bool = False
    resume: bool = True
    overwrite: bool = False

    _loss = field_validator("loss", mode="before")(classmethod(lambda cls, value: _named(value)))
    _mine = field_validator("hard_negatives", mode="before")(classmethod(lambda cls, value: _mine_shorthand(value)))

    @property
    def data_sources(self) -> list[DataSection]:
        """The data as a list of sources (a single mapping is one)."""
        return list(self.data) if isinstance(self.data, list) else [self.data]
