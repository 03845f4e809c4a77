"""The SentenceTransformer that ``decemb.load`` returns: checks its inputs before any work."""

from __future__ import annotations

from typing import Any

from sentence_transformers import SentenceTransformer

from decemb.rendering import check_text


def validate_texts(inputs: Any) -> None:
    """A str, or a list/tuple of non-empty str; anything else is an error naming the offending index
    (see :func:`decemb.rendering.check_text`)."""
    if isinstance(inputs, str):
        items: list[Any] = [inputs]
    elif isinstance(inputs, (list, tuple)):
        items = list(inputs)
    else:
        raise TypeError(f"expected a str or a list of str, got {type(inputs).__name__}")
    for index, item in enumerate(items):
        check_text(index, item)


class DecembModel(SentenceTransformer):
    """A plain SentenceTransformer whose ``encode`` (and so ``encode_query``/``encode_document``) rejects
    bad inputs up front, naming their index in the caller's list (the batches it builds are sorted)."""

    def encode(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        validate_texts(inputs)
        return super().encode(inputs, *args, **kwargs)
