"""The one encoding core: a model, its tokenizer and validated :class:`EncodeSettings`.

Every entry point (the sentence-transformers module, the comparison engine, ``decemb encode``, training)
holds an :class:`EncodingCore` and goes through it: render (text → ids + pooled span) → attention →
hidden states → pooling weights. The settings are bound to the model once (``max_length`` capped at a
learned position table, the layer checked); a strategy is checked once (attention support, template
fit on both sides). Nothing here turns gradients off.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from decemb.attention import AttentionMode
from decemb.forward import collate, hidden_states_batch_independent, hidden_states_splitting, position_limit
from decemb.forward import resolve_layer as resolve_model_layer
from decemb.pooling import pool_weights
from decemb.rendering import Renderer
from decemb.settings import EncodeSettings, settings_from
from decemb.strategies import KINDS, Kind, Strategy

logger = logging.getLogger(__name__)


def bind_settings(model: PreTrainedModel, settings: EncodeSettings) -> EncodeSettings:
    """``settings`` checked against ``model``: the layer in range, ``max_length`` capped at the model's
    learned positions (GPT-2's ``n_positions``; rotary models have no hard limit)."""
    resolve_model_layer(model, settings.layer)
    table = position_limit(model)
    if table is not None and (settings.max_length is None or settings.max_length > table):
        logger.warning("max_length=%s is capped at the model's %d learned positions", settings.max_length, table)
        return settings.replace(max_length=table)
    return settings


class EncodingCore:
    """Renders, runs and pools for any strategy on one model; owns the renderer cache and the forward choice."""

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, settings: EncodeSettings | None = None
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.settings = bind_settings(model, settings or EncodeSettings())
        self._renderers: dict[tuple[Strategy, Kind, str | None], Renderer] = {}

    def with_settings(self, **changes: Any) -> EncodingCore:
        """A core over the same model and tokenizer with some settings changed (validated and bound again)."""
        return EncodingCore(self.model, self.tokenizer, settings_from(self.settings, **changes))

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.get_text_config().hidden_size)

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    def resolve_layer(self, layer: int | None = None) -> int:
        """``layer`` (default: the settings' layer) as an index in ``0..L``; out of range is a ``ValueError``."""
        return resolve_model_layer(self.model, self.settings.layer if layer is None else layer)

    # -- strategies -----------------------------------------------------------------------------
    def check(self, strategy: Strategy, instructions: Sequence[str | None] = (None,)) -> None:
        """Refuse, before any work, a strategy this model cannot run: unsupported attention, a template
        that does not fit ``max_length`` or needs a special token the tokenizer lacks (both sides)."""
        strategy.attention.check(self.model)
        for instruction in instructions:
            for kind in KINDS:
                self.renderer(strategy, kind, instruction)

    def renderer(self, strategy: Strategy, kind: Kind, instruction: str | None = None) -> Renderer:
        """The (cached) renderer of one strategy, side and instruction at these settings."""
        key = (strategy, kind, instruction)  # strategies are frozen: equal options, equal hash
        if key not in self._renderers:
            self._renderers[key] = strategy.renderer(
                self.tokenizer,
                kind,
                instruction,
                max_length=self.settings.max_length,
                add_special_tokens=self.settings.add_special_tokens,
            )
        return self._renderers[key]

    def features(
        self, strategy: Strategy, texts: Sequence[str], kind: Kind = "query", instruction: str | None = None
    ) -> dict[str, torch.Tensor]:
        """Rendered, padded inputs: ``input_ids``, ``attention_mask``, ``pool_mask`` and the strategy's
        ``pool_weights``."""
        rendered = self.renderer(strategy, kind, instruction).render(list(texts))
        features = collate(rendered, self.tokenizer, self.settings.padding_side)
        features["pool_weights"] = pool_weights(strategy.pooling_name, features["pool_mask"])
        return features

    # -- the forward ----------------------------------------------------------------------------
    def hidden_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        attention: AttentionMode,
        layers: Sequence[int] | None = None,
    ) -> dict[int, torch.Tensor]:
        """``{layer: states}`` of one padded batch under ``attention`` at ``layers`` (default: the settings'
        layer). Deterministic settings run every row at a width set by its own length."""
        run = hidden_states_batch_independent if self.settings.deterministic else hidden_states_splitting
        wanted = (self.settings.layer,) if layers is None else tuple(layers)
        return run(self.model, input_ids, attention_mask, attention, wanted)
