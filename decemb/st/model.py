"""The SentenceTransformer that ``decemb.load`` returns: checks its inputs before any work."""

from __future__ import annotations

from typing import Any

from sentence_transformers import SentenceTransformer


def validate_texts(inputs: Any) -> None:
    """A str, or a list/tuple of non-empty str; anything else is an error naming the offending index."""
    if isinstance(inputs, str):
        items: list[Any] = [inputs]
    elif isinstance(inputs, (list, tuple)):
        items = list(inputs)
    else:
        raise TypeError(f"expected a str or a list of str, got {type(inputs).__name__}")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"input {index} is a {type(item).__name__}, expected a str")
        if item == "":
            raise ValueError(f"input {index} is an empty string: there is nothing to embed")


class DecembModel(SentenceTransformer):
    """A plain SentenceTransformer whose ``encode`` (and so ``encode_query``/``encode_document``) rejects
    bad inputs up front, naming their index in the caller's list (the batches it builds are sorted)."""

    def encode(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        validate_texts(inputs)
        return super().encode(inputs, *args, **kwargs)
