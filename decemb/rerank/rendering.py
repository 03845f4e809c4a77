"""(query, document) pairs → token ids through a :class:`PairTemplate`; only the document is ever cut.

Like :class:`decemb.rendering.Renderer`, each piece is tokenized on its own (template literals may hold the
tokenizer's special tokens, user texts never do: ``split_special_tokens=True``), so the query and the
closing question always appear whole and identical, and a document is cut to the tokens left over.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from transformers import PreTrainedTokenizerBase

from decemb.rendering import check_text, glues_leading_space, special_affixes
from decemb.rerank.templates import PairTemplate

__all__ = ["PairRenderer", "PairTooLongError", "check_pairs"]


class PairTooLongError(ValueError):
    """A query that, with the template, leaves no room for the document within ``max_length``."""


def check_pairs(pairs: Any) -> list[tuple[str, str]]:
    """A list of (query, document) pairs of non-empty strs, or an error naming the offending pair."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise TypeError(f"expected a list of (query, document) pairs, got {type(pairs).__name__}")
    out: list[tuple[str, str]] = []
    for index, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"pair {index} is not a (query, document) pair: {str(pair)[:60]!r}")
        for side, value in zip(("query", "document"), pair):
            try:
                check_text(index, value)
            except (TypeError, ValueError) as error:
                raise type(error)(f"pair {index}: the {side} {str(error).removeprefix(f'input {index} ')}") from None
        out.append((pair[0], pair[1]))
    return out


class PairRenderer:
    """Renders pairs with one template and one length limit (``None``: no limit)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, template: PairTemplate, max_length: int | None) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = max_length
        if max_length is not None and max_length < self.fixed_length + 2:
            raise ValueError(
                f"max_length={max_length} leaves no room for a query and a document: the pair template alone "
                f"takes {self.fixed_length} tokens"
            )

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    @cached_property
    def _glue(self) -> bool:
        return glues_leading_space(self.tokenizer)

    def _split(self, literal: str) -> tuple[list[int], str]:
        """A literal before a text slot → its ids and the lead the text takes (its trailing space, for
        tokenizers that read a word's leading space as part of the word)."""
        if self._glue and literal.endswith(" "):
            return self._ids(literal[:-1]), " "
        return self._ids(literal), ""

    @cached_property
    def affixes(self) -> tuple[list[int], list[int]]:
        return special_affixes(self.tokenizer) if self.template.special_tokens else ([], [])

    @cached_property
    def pieces(self) -> tuple[list[int], str, list[int], str, list[int]]:
        """(prefix ids, query lead, middle ids, document lead, suffix ids), affixes included."""
        before, after = self.affixes
        prefix, query_lead = self._split(self.template.prefix)
        middle, doc_lead = self._split(self.template.middle)
        return [*before, *prefix], query_lead, middle, doc_lead, [*self._ids(self.template.suffix), *after]

    @cached_property
    def fixed_length(self) -> int:
        prefix, _, middle, _, suffix = self.pieces
        return len(prefix) + len(middle) + len(suffix)

    def render(self, pairs: Sequence[tuple[str, str]]) -> list[list[int]]:
        """Token ids of each pair: the query whole, the document cut to what ``max_length`` leaves."""
        pairs = check_pairs(pairs)
        prefix, query_lead, middle, doc_lead, suffix = self.pieces

        def encode(texts: list[str]) -> list[list[int]]:
            return self.tokenizer(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]

        queries = encode([query_lead + q for q, _ in pairs]) if pairs else []
        docs = encode([doc_lead + d for _, d in pairs]) if pairs else []
        rows = []
        for index, (query, doc) in enumerate(zip(queries, docs)):
            budget = None
            if self.max_length is not None:
                budget = self.max_length - self.fixed_length - len(query)
                if budget < 1:
                    raise PairTooLongError(
                        f"pair {index}: the query is {len(query)} tokens; with the template's {self.fixed_length} "
                        f"nothing of max_length={self.max_length} is left for the document (only the document "
                        "is ever cut)"
                    )
            rows.append([*prefix, *query, *middle, *doc[:budget], *suffix])
        return rows
