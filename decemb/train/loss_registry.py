"""Every training loss in one table: :data:`LOSS_SPECS`, one :class:`LossSpec` per loss name.

A spec holds all the facts of its loss: the data shape(s) it trains on, the ``loss`` options that apply to
it, whether it learns from in-batch negatives (then batches never hold a text twice) and from mined hard
negatives, its own extra check, and its builder from sentence-transformers' losses. The config's loss-name
literal (:data:`LOSS_NAMES`) and every check of :mod:`decemb.train.losses` derive from this table; nothing
else lists losses. This module imports no torch or sentence-transformers at import time (the builders do,
when called), so reading a config stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from decemb.errors import ConfigError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn

__all__ = ["LOSS_NAMES", "LOSS_SPECS", "LossSpec", "loss_spec"]

# (loss section, model, extra keyword arguments) -> the loss module
Builder = Callable[[Any, "SentenceTransformer", dict[str, Any]], "nn.Module"]
# (strategy name, attention mode name, layer, key of the loss section) -> None or a ConfigError
Check = Callable[[str, str, int, str], None]


@dataclass(frozen=True)
class LossSpec:
    """One loss: ``shapes`` (the first is the one an error names), ``options`` (keys of the ``loss`` section
    that apply), ``in_batch_negatives``, ``mines`` (takes hard negatives), ``check`` (loss-specific, before
    any model loads) and ``build``."""

    name: str
    summary: str
    shapes: tuple[str, ...]
    options: tuple[str, ...]
    in_batch_negatives: bool
    mines: bool
    build: Builder
    check: Check | None = None
    duplicate_texts: bool = False  # the trainer's columns hold the text twice (SimCSE's two views)


def _st_losses() -> Any:
    from sentence_transformers.sentence_transformer import losses

    return losses


def _mnrl(loss: Any, model: SentenceTransformer, extra: dict[str, Any]) -> nn.Module:
    return _st_losses().MultipleNegativesRankingLoss(model, scale=1.0 / loss.temperature)


def _cached_mnrl(loss: Any, model: SentenceTransformer, extra: dict[str, Any]) -> nn.Module:
    return _st_losses().CachedMultipleNegativesRankingLoss(
        model, scale=1.0 / loss.temperature, mini_batch_size=loss.mini_batch_size
    )


def _cosent(loss: Any, model: SentenceTransformer, extra: dict[str, Any]) -> nn.Module:
    return _st_losses().CoSENTLoss(model, scale=loss.scale)


def _angle(loss: Any, model: SentenceTransformer, extra: dict[str, Any]) -> nn.Module:
    return _st_losses().AnglELoss(model, scale=loss.scale)


def _mntp(loss: Any, model: SentenceTransformer, extra: dict[str, Any]) -> nn.Module:
    from decemb.train.mntp import MNTPLoss

    return MNTPLoss(model, **extra)


def _check_mntp(strategy: str, attention: str, layer: int, key: str) -> None:
    if attention != "bidirectional" and strategy != "llm2vec":
        raise ConfigError(f"mntp trains llm2vec's bidirectional attention; model.strategy is {strategy!r}", key=key)
    if layer != -1:
        raise ConfigError("mntp predicts tokens from the final layer; leave model.layer at -1", key="model.layer")


_SPECS = (
    LossSpec(
        "mnrl",
        "MultipleNegativesRankingLoss(scale=1/temperature): InfoNCE, in-batch and hard negatives",
        ("pairs",),
        ("temperature",),
        in_batch_negatives=True,
        mines=True,
        build=_mnrl,
    ),
    LossSpec(
        "cached_mnrl",
        "CachedMultipleNegativesRankingLoss(scale, mini_batch_size): GradCache, a large batch in chunks",
        ("pairs",),
        ("temperature", "mini_batch_size"),
        in_batch_negatives=True,
        mines=True,
        build=_cached_mnrl,
    ),
    LossSpec(
        "cosent",
        "CoSENTLoss(scale) on scored pairs",
        ("scored",),
        ("scale",),
        in_batch_negatives=False,
        mines=False,
        build=_cosent,
    ),
    LossSpec(
        "angle",
        "AnglELoss(scale) on scored pairs",
        ("scored",),
        ("scale",),
        in_batch_negatives=False,
        mines=False,
        build=_angle,
    ),
    LossSpec(
        "simcse",
        "MultipleNegativesRankingLoss on (text, text): unsupervised SimCSE, dropout the only noise",
        ("texts",),
        ("temperature", "dropout"),
        in_batch_negatives=True,
        mines=False,
        build=_mnrl,
        duplicate_texts=True,
    ),
    LossSpec(
        "mntp",
        "decemb.train.mntp.MNTPLoss: LLM2Vec's masked next-token prediction (llm2vec only)",
        ("texts",),
        ("mask_probability", "mask_token"),
        in_batch_negatives=False,
        mines=False,
        build=_mntp,
        check=_check_mntp,
    ),
)

LOSS_SPECS: dict[str, LossSpec] = {spec.name: spec for spec in _SPECS}
LOSS_NAMES: tuple[str, ...] = tuple(LOSS_SPECS)


def loss_spec(name: str) -> LossSpec:
    """The spec of a loss name (the config's literal already refuses unknown names)."""
    return LOSS_SPECS[name]
