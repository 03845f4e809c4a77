"""Losses from sentence-transformers (and MNTP), the data shape each needs, and the dataset each trains on.

* ``mnrl``: ``MultipleNegativesRankingLoss`` (InfoNCE, in-batch + any hard negatives), scale = 1/temperature;
* ``cached_mnrl``: ``CachedMultipleNegativesRankingLoss`` (GradCache: a large batch in ``mini_batch_size`` chunks);
* ``cosent`` / ``angle``: ``CoSENTLoss`` / ``AnglELoss`` on scored pairs;
* ``simcse``: unsupervised SimCSE: each text twice through the model, dropout as the noise, MNRL between them;
* ``mntp``: :class:`decemb.train.mntp.MNTPLoss` (``llm2vec`` only).
"""

from __future__ import annotations

from typing import Any

from sentence_transformers import SentenceTransformer
from torch import nn

from decemb.errors import ConfigError
from decemb.strategies import Kind
from decemb.train.config import LOSS_OPTIONS, TrainConfig
from decemb.train.records import SHAPE_ROLES, TrainData

__all__ = [
    "LOSS_SHAPES",
    "build_loss",
    "check_loss_config",
    "check_loss_data",
    "dataset_columns",
    "uses_in_batch_negatives",
]

LOSS_SHAPES = {
    "mnrl": "pairs",
    "cached_mnrl": "pairs",
    "cosent": "scored",
    "angle": "scored",
    "simcse": "texts",
    "mntp": "texts",
}

_FIX = {
    "pairs": "use a pairs preset (scifact, banking77), columns anchor/positive, or data.min_score on scored pairs",
    "scored": "use scored pairs (preset stsb, or columns text1/text2/score)",
    "texts": "use single texts (preset stsb-unsupervised, or columns text)",
}


def uses_in_batch_negatives(loss: str) -> bool:
    return loss in ("mnrl", "cached_mnrl", "simcse")


def check_loss_config(config: TrainConfig, strategy_name: str, attention: str) -> None:
    """Loss-only checks: options that do not apply to the chosen loss, MNTP's strategy and layer, mining."""
    loss = config.loss
    for option in sorted(loss.model_fields_set - {"name"}):
        allowed = LOSS_OPTIONS.get(option, ())
        if loss.name not in allowed:
            raise ConfigError(f"applies to loss {' / '.join(allowed)}, not {loss.name!r}", key=f"loss.{option}")
    if loss.name == "mntp":
        if attention != "bidirectional" and strategy_name != "llm2vec":
            raise ConfigError(
                f"mntp trains llm2vec's bidirectional attention; model.strategy is {strategy_name!r}", key="loss.name"
            )
        if config.model.layer != -1:
            raise ConfigError("mntp predicts tokens from the final layer; leave model.layer at -1", key="model.layer")
    if config.hard_negatives.mine and loss.name not in ("mnrl", "cached_mnrl"):
        raise ConfigError(f"mined hard negatives feed mnrl/cached_mnrl, not {loss.name!r}", key="hard_negatives.mine")
    if config.finetune == "full" and "lora" in config.model_fields_set:
        raise ConfigError("lora settings given but finetune is 'full'; remove lora or set finetune: lora", key="lora")


def check_loss_data(config: TrainConfig, data: TrainData) -> None:
    """The data's shape must be the one the loss trains on."""
    wanted = LOSS_SHAPES[config.loss.name]
    if data.shape != wanted:
        raise ConfigError(
            f"loss {config.loss.name!r} needs {wanted} ({SHAPE_ROLES[wanted]}) but {data.source} gives {data.shape}; "
            f"{_FIX[wanted]}",
            key="loss.name",
        )
    if config.hard_negatives.mine and any(name.startswith("negative") for name in data.columns):
        raise ConfigError("the data already has negatives; set hard_negatives.mine: false", key="hard_negatives.mine")
    if uses_in_batch_negatives(config.loss.name) and len(data) < 2:
        raise ConfigError(f"in-batch negatives need at least 2 rows, {data.source} has {len(data)}", key="data")


def dataset_columns(config: TrainConfig, data: TrainData) -> tuple[dict[str, list[Any]], dict[str, Kind]]:
    """The columns the trainer sees (in loss order) and the side each renders on (the router mapping)."""
    if config.loss.name == "simcse":
        texts = data.columns["text"]
        side = data.sides["text"]
        return {"anchor": list(texts), "positive": list(texts)}, {"anchor": side, "positive": side}
    return dict(data.columns), {name: data.sides[name] for name in data.columns if name != "score"}


def build_loss(config: TrainConfig, model: SentenceTransformer, mntp: dict[str, Any] | None = None) -> nn.Module:
    """The configured loss around ``model`` (``mntp``: the ``MNTPLoss`` keyword arguments)."""
    from sentence_transformers.sentence_transformer import losses

    loss = config.loss
    if loss.name in ("mnrl", "simcse"):
        return losses.MultipleNegativesRankingLoss(model, scale=1.0 / loss.temperature)
    if loss.name == "cached_mnrl":
        return losses.CachedMultipleNegativesRankingLoss(
            model, scale=1.0 / loss.temperature, mini_batch_size=loss.mini_batch_size
        )
    if loss.name == "cosent":
        return losses.CoSENTLoss(model, scale=loss.scale)
    if loss.name == "angle":
        return losses.AnglELoss(model, scale=loss.scale)
    from decemb.train.mntp import MNTPLoss

    assert mntp is not None
    return MNTPLoss(model, **mntp)
