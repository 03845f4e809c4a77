"""Turn texts into token ids plus the mask of the span to pool, truncating only the user's text.

Each piece of a template is tokenized on its own (``add_special_tokens=False``) and the ids are
concatenated, so the user's text always appears as exactly ``tokenizer(text)`` ids (or a prefix of
them after truncation), every copy of it identical, and the template's tokens never change with the
text. The tokenizer's own special tokens (e.g. Gemma's BOS) wrap the whole rendering.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

from decemb.templates import Piece, Template, TemplateError


@dataclass(frozen=True)
class Rendered:
    """One model input: token ids and, per token, whether the pooling reads it."""

    input_ids: list[int]
    pool_mask: list[bool]

    def __len__(self) -> int:
        return len(self.input_ids)


def special_affixes(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids the tokenizer adds before and after a text by itself (e.g. ``[bos]`` and ``[]``)."""
    probe = "decemb probe"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain) :])
    return [], []


@dataclass(frozen=True)
class Segment:
    """Fixed template ids (``ids``), or a slot for the user's text (``ids is None``) read as ``lead + text``."""

    ids: list[int] | None
    pooled: bool
    source: str = ""
    lead: str = ""


def _chunk(tokenizer: PreTrainedTokenizerBase, value: str, pooled: bool) -> Segment:
    ids = tokenizer(value, add_special_tokens=False)["input_ids"] if value else []
    return Segment(list(ids), pooled, source=value)


def glues_leading_space(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the tokenizer marks a word's leading space inside the word's token (GPT-2/Llama-3/Qwen/Gemma
    style BPE): then a template's space before the text belongs to the text, exactly as in running text."""

    def encode(value: str) -> list[int]:
        return list(tokenizer(value, add_special_tokens=False)["input_ids"])

    joint, head, tail = encode("Hello world"), encode("Hello"), encode(" world")
    return joint == head + tail and tail != encode("world")


def check_text(index: int, value: object) -> None:
    """Raise a ``TypeError``/``ValueError`` naming ``index`` unless ``value`` is a non-empty, encodable str.

    A str holding a lone surrogate (e.g. from a JSON ``"\\ud800"`` escape) is not Unicode text: no
    tokenizer can read it, so it is refused here rather than deep inside the tokenizer.
    """
    if not isinstance(value, str):
        raise TypeError(f"input {index} is a {type(value).__name__}, expected a str")
    if value == "":
        raise ValueError(f"input {index} is an empty string: there is nothing to embed")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"input {index} is not valid Unicode text: {value[error.start]!r} at position {error.start} "
                "is a lone surrogate, which no tokenizer can read"
            ) from None


def _special_id(tokenizer: PreTrainedTokenizerBase, name: str) -> int:
    token_id = getattr(tokenizer, f"{name}_token_id", None)
    if token_id is None:
        raise TemplateError(f"the template uses %%{name}%% but the tokenizer has no {name} token")
    return int(token_id)


class Renderer:
    """Renders texts with one template, one set of variables and one length limit."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        template: Template,
        variables: Mapping[str, str] | None = None,
        max_length: int | None = None,
        add_special_tokens: bool = True,
        preprocess: Callable[[str], str] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.template = template
        self.variables = dict(variables or {})
        missing = template.variables() - set(self.variables)
        if missing:
            raise TemplateError(f"template variable(s) without a value: {', '.join(sorted(missing))}")
        self.max_length = max_length
        self.prefix, self.suffix = special_affixes(tokenizer) if add_special_tokens else ([], [])
        if max_length is not None and self.text_budget < 1:
            raise ValueError(
                f"max_length={max_length} leaves no room for the text: the template and special tokens "
                f"alone take {self.fixed_length} tokens"
            )

    @cached_property
    def segments(self) -> list[Segment]:
        """The template as fixed id chunks and text slots, in order."""
        items: list[tuple[str, str | int, bool]] = []  # ("chunk", string, pooled) | ("text"|"special", ..)
        pending: list[Piece] = []

        def flush() -> None:
            if pending:
                value = "".join(p.value if p.kind == "literal" else self.variables[p.value] for p in pending)
                items.append(("chunk", value, pending[0].pooled))
                pending.clear()

        for piece in self.template.pieces:
            if piece.kind in ("literal", "variable"):
                if pending and pending[0].pooled != piece.pooled:
                    flush()
                pending.append(piece)
                continue
            flush()
            value = piece.value if piece.kind == "text" else _special_id(self.tokenizer, piece.value)
            items.append((piece.kind, value, piece.pooled))
        flush()
        glue = glues_leading_space(self.tokenizer)
        segments: list[Segment] = []
        for kind, value, pooled in items:
            if kind == "text":
                before = segments[-1] if segments else None
                lead = " " if glue and before is not None and before.source.endswith(" ") else ""
                if lead:  # "...sentence: " + "A man" → "...sentence:" + " A man", as the text would read
                    segments[-1] = _chunk(self.tokenizer, before.source[:-1], before.pooled)
                segments.append(Segment(None, pooled, lead=lead))
            elif kind == "special":
                segments.append(Segment([int(value)], pooled))
            else:
                segments.append(_chunk(self.tokenizer, str(value), pooled))
        return segments

    @cached_property
    def static_prefix(self) -> list[int]:
        """The ids every rendering starts with: special prefix and the template before the first text."""
        ids = list(self.prefix)
        for segment in self.segments:
            if segment.ids is None:
                break
            ids.extend(segment.ids)
        return ids

    @cached_property
    def fixed_length(self) -> int:
        fixed = sum(len(s.ids) for s in self.segments if s.ids is not None)
        return len(self.prefix) + fixed + len(self.suffix)

    @cached_property
    def text_budget(self) -> int | None:
        """How many tokens of the user's text each copy keeps (``None``: no limit)."""
        if self.max_length is None:
            return None
        return (self.max_length - self.fixed_length) // self.template.text_count()

    def render(self, texts: Sequence[str]) -> list[Rendered]:
        for index, value in enumerate(texts):
            check_text(index, value)
        if self.preprocess is not None:
            texts = [self.preprocess(value) for value in texts]
        leads = {segment.lead for segment in self.segments if segment.ids is None}
        encoded = {
            # split_special_tokens: a text containing "<|im_end|>" or "<eos>" is read as characters.
            lead: self.tokenizer(
                [lead + value for value in texts], add_special_tokens=False, split_special_tokens=True
            )["input_ids"]
            for lead in leads
        }
        budget = self.text_budget
        rendered = []
        for index in range(len(texts)):
            ids = list(self.prefix)
            mask = [False] * len(self.prefix)
            for segment in self.segments:
                chunk = segment.ids if segment.ids is not None else encoded[segment.lead][index][:budget]
                ids.extend(chunk)
                mask.extend([segment.pooled] * len(chunk))
            ids.extend(self.suffix)
            mask.extend([False] * len(self.suffix))
            if not any(mask):
                raise ValueError(
                    f"input {index} ({texts[index][:40]!r}) has no tokens to pool: the text tokenizes "
                    "to nothing and the strategy pools over the text only"
                )
            rendered.append(Rendered(ids, mask))
        return rendered
