"""A reranker training recipe (``configs/train-reranker*.yaml``, run by ``python -m decemb.rerank train``),
validated before any model loads: every section forbids unknown keys (:class:`decemb.config_base.StrictModel`).

* ``model``: the decoder to train (``source``, ``dtype``, ``max_length`` of a rendered pair);
* ``head``: ``logit`` (the yes/no score) or ``linear`` (a last-token linear head; :mod:`decemb.rerank.head`);
* ``data``: a BEIR folder and its *train* split (``split: test`` is refused: no test query or qrel trains),
  ``queries`` sampled (seeded) among those with a relevant document;
* ``candidates``: the first stage whose top ``range_max`` the negatives come from (``retriever``: ``bm25``
  needs no model; ``dense`` / ``hybrid`` need a ``bi_encoder``), and ``num_negatives`` per query;
* ``loss``: ``bce`` (with ``pos_weight``), ``listnet`` or ``lambda`` (:mod:`decemb.rerank.losses`);
* ``lora`` and ``training``: as :func:`decemb.rerank.train_reranker` takes them.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, ValidationError, model_validator

from decemb.config_base import StrictModel, format_validation_error
from decemb.errors import ConfigError
from decemb.search.fusion import FusionSettings

__all__ = ["RerankerRecipe", "read_recipe"]


class RecipeModel(StrictModel):
    """``template`` / ``question``: a pair template (``PairTemplate.to_dict()``) or closing question instead of
    the one chosen from the tokenizer (:func:`decemb.rerank.load_reranker`)."""

    source: str = Field("smollm2-135m", min_length=1)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    max_length: PositiveInt = 192
    template: dict[str, Any] | None = None
    question: str | None = None


class BiEncoder(StrictModel):
    """The bi-encoder of a ``dense`` / ``hybrid`` first stage (what ``decemb.load`` takes)."""

    source: str = Field(min_length=1)
    strategy: str = "mean"
    options: dict[str, Any] = Field(default_factory=dict)
    max_length: PositiveInt = 128
    batch_size: PositiveInt = 32


class RecipeData(StrictModel):
    path: str = "scifact"
    format: Literal["beir"] = "beir"
    split: str = Field("train", min_length=1)
    queries: PositiveInt | None = 200
    seed: int = 0

    @model_validator(mode="after")
    def _not_test(self) -> RecipeData:
        if self.split == "test":
            raise ValueError("a reranker never trains on test queries or qrels: use the train split")
        return self


class Candidates(StrictModel):
    retriever: Literal["bm25", "dense", "hybrid"] = "bm25"
    fusion: FusionSettings = Field(default_factory=FusionSettings)
    bi_encoder: BiEncoder | None = None
    num_negatives: PositiveInt = 3
    range_min: NonNegativeInt = 0
    range_max: PositiveInt = 20
    seed: int = 0

    @model_validator(mode="after")
    def _bi_encoder(self) -> Candidates:
        if self.retriever != "bm25" and self.bi_encoder is None:
            raise ValueError(f"retriever {self.retriever!r} needs candidates.bi_encoder (source, strategy, ...)")
        if self.range_max <= self.range_min:
            raise ValueError(f"range_max ({self.range_max}) must be above range_min ({self.range_min})")
        return self


class RecipeLoss(StrictModel):
    name: Literal["bce", "listnet", "lambda"] = "bce"
    pos_weight: PositiveFloat | None = None

    @model_validator(mode="after")
    def _pos_weight(self) -> RecipeLoss:
        if self.pos_weight is not None and self.name != "bce":
            raise ValueError(f"pos_weight is for loss bce, not {self.name}")
        return self


class RecipeLora(StrictModel):
    r: PositiveInt = 16
    alpha: PositiveInt = 32
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"


class RecipeTraining(StrictModel):
    epochs: PositiveFloat = 3.0
    batch_size: PositiveInt = 16
    lr: PositiveFloat = 2.0e-4
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_steps: int = Field(-1, ge=-1)
    seed: int = 0
    logging_steps: PositiveInt = 10


class RerankerRecipe(StrictModel):
    description: str = ""
    model: RecipeModel = Field(default_factory=RecipeModel)
    head: Literal["logit", "linear"] = "logit"
    data: RecipeData = Field(default_factory=RecipeData)
    candidates: Candidates = Field(default_factory=Candidates)
    loss: RecipeLoss = Field(default_factory=RecipeLoss)
    lora: RecipeLora = Field(default_factory=RecipeLora)
    training: RecipeTraining = Field(default_factory=RecipeTraining)

    def task_config(self) -> dict[str, Any]:
        """The training split as a retrieval task config (:func:`decemb.tasks.load_task`)."""
        data, candidates = self.data, self.candidates
        config = {
            "type": "retrieval", "name": f"{os.path.basename(data.path)}-{data.split}", "path": data.path,
            "format": data.format, "split": data.split, "limit": data.queries, "seed": data.seed,
            "retriever": candidates.retriever,
        }  # fmt: skip
        if candidates.retriever == "hybrid":
            config["fusion"] = candidates.fusion.model_dump()
        return config


def read_recipe(path: str | os.PathLike[str]) -> RerankerRecipe:
    """The recipe in a YAML file; a bad key or value is one ``ConfigError`` line naming it."""
    from decemb.yamlfile import read_yaml

    raw = read_yaml(path)
    try:
        return RerankerRecipe.model_validate(raw)
    except ValidationError as error:
        key, message = format_validation_error(error, RerankerRecipe)
        raise ConfigError(message, key=key, file=path) from None
