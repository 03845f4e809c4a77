"""``EncodeSettings``: every knob of the text → vector path, with its default, in one frozen object.

The sentence-transformers module, the comparison engine, ``decemb.load``/``from_backbone``, the
comparison config and the CLI all take (or build) one of these; nothing else holds a default.
It is validated against a model and a strategy once, by :class:`decemb.core.EncodingCore`.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PositiveInt, StrictInt, ValidationError, model_validator

from decemb.errors import pydantic_message
from decemb.registry import did_you_mean

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 512
PaddingSide = Literal["left", "right"]


class EncodeSettings(BaseModel):
    """How texts become vectors, independent of the strategy.

    * ``max_length``: tokens per rendered input (only the user's text is ever cut); ``None``: no limit.
      Capped at a model's learned position table when bound to it.
    * ``layer``: hidden layer to pool (0: embeddings, L or -1: the final normed output); layers above it never run.
    * ``padding_side``: vectors do not depend on it (positions count from each input's first token); right
      padding lets rows that start alike share a prefix KV cache, so it is the default.
    * ``add_special_tokens``: wrap each rendering in the tokenizer's own special tokens (e.g. BOS).
    * ``deterministic``: bit-identical vectors whatever the batch (needs right padding; some speed cost).
    * ``batch_size`` / ``max_batch_tokens``: the batching of the comparison engine and ``decemb encode``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_length: PositiveInt | None = DEFAULT_MAX_LENGTH
    layer: StrictInt = -1
    padding_side: PaddingSide = "right"
    add_special_tokens: bool = True
    deterministic: bool = False
    batch_size: PositiveInt = 32
    max_batch_tokens: PositiveInt | None = None

    @model_validator(mode="after")
    def _deterministic_needs_right_padding(self) -> EncodeSettings:
        if self.deterministic and self.padding_side != "right":
            raise ValueError("deterministic=True needs padding_side='right'")
        return self

    def replace(self, **changes: Any) -> EncodeSettings:
        """A validated copy with ``changes`` applied (``None`` for ``padding_side`` means the default)."""
        return settings_from(self, **changes)


SETTING_KEYS = frozenset(EncodeSettings.model_fields)


def settings_from(base: EncodeSettings | None = None, **changes: Any) -> EncodeSettings:
    """``base`` (or the defaults) with ``changes``, validated; errors are one-line ``ValueError`` naming the key."""
    data = (base or EncodeSettings()).model_dump()
    data.update({key: value for key, value in changes.items() if not (key == "padding_side" and value is None)})
    try:
        return EncodeSettings(**data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        message = pydantic_message(first)
        if first["type"] == "extra_forbidden":
            message = f"unknown setting{did_you_mean(key, EncodeSettings.model_fields, list_known=True)}"
        raise ValueError(f"{key}: {message}" if key else message) from None
