"""``LoadOptions``: the model-loading keywords, each validated once, for every entry point.

``decemb.load``, ``decemb.load_backbone``, ``decemb.rerank.load_reranker``, the comparison config's
``models[*]`` (a subclass) and the command-line flags (:func:`decemb.cli_args.add_load_options`) all take
these keys from here; encode settings (``max_length``, ``layer``, ...) are :class:`~decemb.settings.EncodeSettings`.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, ValidationError, field_validator

from decemb.backends import DEFAULT_BACKEND, check_backend
from decemb.config_base import StrictModel
from decemb.errors import pydantic_message

__all__ = ["LOAD_KEYS", "LoadOptions", "load_options"]

# dtype names → torch attribute names (validated without importing torch).
DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


def dtype_name(dtype: str) -> str:
    """The canonical name of a dtype name (``bf16`` → ``bfloat16``); unknown names are a ``ValueError``."""
    try:
        return DTYPES[dtype]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}") from None


class LoadOptions(StrictModel):
    """How a model is loaded: precision, placement, attention kernel, revision, adapter, backend."""

    dtype: str | None = Field(
        default=None,
        description="Weights' dtype: float32/fp32, bfloat16/bf16 or float16/fp16 (default: float32 on CPU, "
        "bfloat16 on CUDA).",
    )
    device: str | None = Field(default=None, description="Device to run on, e.g. cpu, cuda, cuda:1 (default: cpu).")
    device_map: Any = Field(default=None, description="transformers' device_map (e.g. auto), instead of device.")
    attn_implementation: str | None = Field(
        default=None, description="transformers' attention kernel: sdpa, eager, flash_attention_2 (default: sdpa)."
    )
    revision: str | None = Field(default=None, description="Hub revision (branch, tag or commit) of a Hub id.")
    adapter: str | None = Field(default=None, description="A PEFT (LoRA) adapter folder, merged into the weights.")
    trust_remote_code: bool = Field(
        default=False, description="Run code shipped with the model (module classes, auto_map); off: refused."
    )
    backend: str = Field(
        default=DEFAULT_BACKEND,
        description="Compute backend: torch (the float reference) or int8 (CPU: int8 matrix products, about "
        "2x faster; see docs/performance.md). Fingerprints record it, so caches never mix the two.",
    )

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).removeprefix("torch.")  # a torch.dtype is accepted by its name
        dtype_name(text)
        return text

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: Any) -> Any:
        return None if value is None else str(value)

    @field_validator("adapter", mode="before")
    @classmethod
    def _adapter(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        try:
            return check_backend(value)
        except KeyError as error:
            raise ValueError(str(error)) from None

    def loading_kwargs(self) -> dict[str, Any]:
        """The keywords of :func:`decemb.loading.load_backbone`."""
        return {key: getattr(self, key) for key in LOAD_KEYS}


LOAD_KEYS: tuple[str, ...] = tuple(LoadOptions.model_fields)


def load_options(options: LoadOptions | None = None, **keys: Any) -> LoadOptions:
    """``options`` with ``keys`` applied, validated; a bad key or value is a ``ValueError`` naming the key."""
    base = options.model_dump() if options is not None else {}
    try:
        return LoadOptions.model_validate({**base, **keys})
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{key}: {pydantic_message(first)}") from None
