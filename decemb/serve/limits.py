"""The server's limits and knobs, checked once at start (``decemb serve``'s options map onto these)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_INPUTS = 2048  # OpenAI's own limit per embeddings request
DEFAULT_MAX_BATCH_TOKENS = 16384
DEFAULT_MAX_WAIT_MS = 5.0


@dataclass(frozen=True)
class ServeLimits:
    """* ``max_inputs``: texts per embeddings request, documents per rerank request.
    * ``max_tokens_per_input``: rendered tokens (template and special tokens included) per input; ``None``:
      the model's ``max_length``. Longer inputs are refused, never cut, so a vector is always the one
      in-process ``encode`` gives; it may not exceed ``max_length`` for that reason.
    * ``max_batch_tokens``: rendered tokens gathered across requests into one model call.
    * ``max_wait_ms``: how long the worker waits for more requests before running what it has.
    * ``api_key``: the bearer token every ``/v1`` call must carry (``None``: no authentication).
    """

    max_inputs: int = DEFAULT_MAX_INPUTS
    max_tokens_per_input: int | None = None
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS
    api_key: str | None = None

    def __post_init__(self) -> None:
        for name in ("max_inputs", "max_batch_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_tokens_per_input is not None and self.max_tokens_per_input < 1:
            raise ValueError(f"max_tokens_per_input must be >= 1, got {self.max_tokens_per_input}")
        if not 0 <= self.max_wait_ms < float("inf"):
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be blank")
