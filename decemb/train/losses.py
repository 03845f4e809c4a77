"""Each source's loss, checked and built from its :class:`~decemb.train.loss_registry.LossSpec`: the options
that apply, the loss's own check (MNTP's strategy and layer), hard negatives, the data shape, the columns
the trainer sees, and the loss module. The registry holds the facts; this module only reads them.
"""

from __future__ import annotations

from typing import Any

from sentence_transformers import SentenceTransformer
from torch import nn

from decemb.errors import ConfigError
from decemb.strategies import Kind
from decemb.train.config import LOSS_OPTIONS, TrainConfig
from decemb.train.loss_registry import LOSS_SPECS, loss_spec
from decemb.train.records import SHAPE_ROLES, TrainData
from decemb.train.sources import Source

__all__ = [
    "LOSS_SHAPES",
    "build_loss",
    "check_loss_config",
    "check_loss_data",
    "dataset_columns",
    "uses_in_batch_negatives",
]

# loss name -> the data shape it trains on (read from the registry; kept for callers and tests)
LOSS_SHAPES = {name: spec.shapes[0] for name, spec in LOSS_SPECS.items()}

_FIX = {
    "pairs": "use a pairs preset (scifact, scifact-titles, stsb-pairs, banking77), columns anchor/positive, "
    "or data.min_score on scored pairs",
    "scored": "use scored pairs (preset stsb, or columns text1/text2/score)",
    "texts": "use single texts (preset stsb-unsupervised or simcse, or columns text)",
}


def uses_in_batch_negatives(loss: str) -> bool:
    return loss_spec(loss).in_batch_negatives


def _names(predicate: Any) -> str:
    return "/".join(name for name, spec in LOSS_SPECS.items() if predicate(spec))


def check_loss_config(config: TrainConfig, source: Source, strategy_name: str, attention: str) -> None:
    """Before any data or model is read: options that do not apply to the source's loss, the loss's own
    check, hard negatives for a loss that takes none."""
    loss, spec = source.loss, loss_spec(source.loss.name)
    for option in sorted(loss.model_fields_set - {"name"}):
        if option not in spec.options:
            allowed = " / ".join(LOSS_OPTIONS.get(option, ()))
            raise ConfigError(f"applies to loss {allowed}, not {loss.name!r}", key=f"{source.loss_key}.{option}")
    if spec.check is not None:
        spec.check(strategy_name, attention, config.model.layer, f"{source.loss_key}.name")
    if source.hard_negatives.mine and not spec.mines:
        raise ConfigError(
            f"mined hard negatives feed {_names(lambda s: s.mines)}, not {loss.name!r}",
            key=f"{source.negatives_key}.mine",
        )


def check_loss_data(source: Source, data: TrainData) -> None:
    """The data's shape must be one the source's loss trains on."""
    spec = loss_spec(source.loss.name)
    if data.shape not in spec.shapes:
        wanted = spec.shapes[0]
        raise ConfigError(
            f"loss {spec.name!r} needs {wanted} ({SHAPE_ROLES[wanted]}) but {data.source} gives {data.shape}; "  # type: ignore[index]
            f"{_FIX[wanted]}",
            key=f"{source.loss_key}.name",
        )
    if source.hard_negatives.mine and any(name.startswith("negative") for name in data.columns):
        raise ConfigError(
            "the data already has negatives; set hard_negatives.mine: false", key=f"{source.negatives_key}.mine"
        )
    if spec.in_batch_negatives and len(data) < 2:
        raise ConfigError(
            f"in-batch negatives need at least 2 rows, {data.source} has {len(data)}", key=source.data_key
        )


def dataset_columns(source: Source, data: TrainData) -> tuple[dict[str, list[Any]], dict[str, Kind]]:
    """The columns the trainer sees (in loss order) and the side each renders on (the router mapping)."""
    if loss_spec(source.loss.name).duplicate_texts:
        texts = data.columns["text"]
        side = data.sides["text"]
        return {"anchor": list(texts), "positive": list(texts)}, {"anchor": side, "positive": side}
    return dict(data.columns), {name: data.sides[name] for name in data.columns if name != "score"}


def build_loss(source: Source, model: SentenceTransformer, mntp: dict[str, Any] | None = None) -> nn.Module:
    """The source's loss around ``model`` (``mntp``: the ``MNTPLoss`` keyword arguments)."""
    return loss_spec(source.loss.name).build(source.loss, model, mntp or {})
