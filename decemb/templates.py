"""Templates: which parts of the model input are context and which are pooled.

A template string is literal text with two kinds of parts and a few variables:

- ``{!...}``  a context-only part: the model reads it, pooling ignores it;
- ``{...}``   a pooled part: its tokens form the span that the pooling reads;
- text outside any part is context, like ``{!...}``;
- ``%%text%%`` the user's text (the only thing ever truncated), ``%%eos%%`` / ``%%bos%%`` the
  tokenizer's special tokens (inserted as ids, never as strings), and any other ``%%name%%`` a
  variable such as ``%%instruction%%`` filled in when the template is rendered;
- ``{{`` and ``}}`` stand for literal braces.

Example (echo): ``{!Rewrite the following sentence: %%text%%\\nThe rewritten sentence: }{%%text%%}``.

The user's text is never parsed: braces or ``%%`` inside it are ordinary characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

PieceKind = Literal["literal", "text", "variable", "special"]
SPECIAL_TOKENS = ("eos", "bos")
_VARIABLE = re.compile(r"%%([A-Za-z_][A-Za-z0-9_]*)%%")


class TemplateError(ValueError):
    """A template string that cannot be parsed or rendered."""


@dataclass(frozen=True)
class Piece:
    kind: PieceKind
    value: str
    pooled: bool


def literal(value: str, pooled: bool = False) -> Piece:
    return Piece("literal", value, pooled)


def text(pooled: bool = True) -> Piece:
    return Piece("text", "text", pooled)


def special(name: str, pooled: bool = True) -> Piece:
    if name not in SPECIAL_TOKENS:
        raise TemplateError(f"unknown special token {name!r}; expected one of {SPECIAL_TOKENS}")
    return Piece("special", name, pooled)


def variable(name: str, pooled: bool = False) -> Piece:
    return Piece("variable", name, pooled)


@dataclass(frozen=True)
class Template:
    """An immutable sequence of pieces; build with :meth:`parse` or directly from pieces."""

    pieces: tuple[Piece, ...]

    def __post_init__(self) -> None:
        if not any(p.kind == "text" for p in self.pieces):
            raise TemplateError("a template must contain the user's text (%%text%%)")
        if not any(p.pooled for p in self.pieces):
            raise TemplateError("a template must contain a pooled part ({...})")

    @classmethod
    def of(cls, *pieces: Piece) -> Template:
        return cls(tuple(p for p in pieces if not (p.kind == "literal" and p.value == "")))

    @classmethod
    def parse(cls, source: str) -> Template:
        if not isinstance(source, str):
            raise TemplateError(f"a template must be a string, got {type(source).__name__}")
        pieces: list[Piece] = []
        pooled = False
        in_part = False
        buffer: list[str] = []

        def flush() -> None:
            if buffer:
                pieces.extend(_split_variables("".join(buffer), pooled))
                buffer.clear()

        i = 0
        while i < len(source):
            two = source[i : i + 2]
            if two in ("{{", "}}"):
                buffer.append(two[0])
                i += 2
                continue
            char = source[i]
            if char == "{":
                if in_part:
                    raise TemplateError(f"nested '{{' at position {i} in template {source!r}")
                flush()
                in_part = True
                pooled = two != "{!"
                i += 1 if pooled else 2
                continue
            if char == "}":
                if not in_part:
                    raise TemplateError(f"unmatched '}}' at position {i} in template {source!r}")
                flush()
                in_part, pooled = False, False
                i += 1
                continue
            buffer.append(char)
            i += 1
        if in_part:
            raise TemplateError(f"unclosed '{{' in template {source!r}")
        flush()
        return cls.of(*pieces)

    def variables(self) -> set[str]:
        return {p.value for p in self.pieces if p.kind == "variable"}

    def text_count(self) -> int:
        return sum(p.kind == "text" for p in self.pieces)

    def __str__(self) -> str:
        out: list[str] = []
        for piece in self.pieces:
            body = _unparse(piece)
            out.append(("{" if piece.pooled else "{!") + body + "}")
        return "".join(out)


def _split_variables(chunk: str, pooled: bool) -> list[Piece]:
    pieces: list[Piece] = []
    position = 0
    for match in _VARIABLE.finditer(chunk):
        if match.start() > position:
            pieces.append(literal(chunk[position : match.start()], pooled))
        name = match.group(1)
        if name == "text":
            pieces.append(text(pooled))
        elif name in SPECIAL_TOKENS:
            pieces.append(special(name, pooled))
        else:
            pieces.append(variable(name, pooled))
        position = match.end()
    if position < len(chunk):
        pieces.append(literal(chunk[position:], pooled))
    return pieces


def _unparse(piece: Piece) -> str:
    if piece.kind == "literal":
        return piece.value.replace("{", "{{").replace("}", "}}")
    return f"%%{piece.value}%%"
