"""The strategy contract: how to render the text (and the span to pool), which attention, how to pool."""

from __future__ import annotations

import difflib
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from transformers import PreTrainedTokenizerBase

from decemb.registry import Registry
from decemb.rendering import Renderer
from decemb.templates import Template

Kind = Literal["query", "document"]
KINDS: tuple[Kind, ...] = ("query", "document")


class Strategy(BaseModel):
    """Base class: subclasses are frozen pydantic models whose fields are the strategy's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    summary: ClassVar[str]
    reference: ClassVar[str]
    attention: ClassVar[str] = "causal"
    takes_instruction: ClassVar[bool] = False

    def template_for(self, kind: Kind) -> Template:
        """The template for a query or a document (symmetric strategies ignore ``kind``)."""
        raise NotImplementedError

    @property
    def pooling_name(self) -> str:
        raise NotImplementedError

    def variables(self, kind: Kind, instruction: str | None = None) -> dict[str, str]:
        """Values of the template's ``%%name%%`` variables (``instruction`` overrides per call)."""
        return {}

    def preprocess(self, text: str) -> str:
        """Optional per-text normalisation applied before rendering (identity by default)."""
        return text

    def options(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def renderer(
        self,
        tokenizer: PreTrainedTokenizerBase,
        kind: Kind,
        instruction: str | None = None,
        *,
        max_length: int | None = 512,
        add_special_tokens: bool = True,
    ) -> Renderer:
        """The renderer for one side (query/document) and one instruction of this strategy."""
        return Renderer(
            tokenizer,
            self.template_for(kind),
            self.variables(kind, instruction),
            max_length=max_length,
            add_special_tokens=add_special_tokens,
            preprocess=self.preprocess,
        )


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def register(cls: type[Strategy]) -> type[Strategy]:
    return STRATEGIES.add(cls.name, cls)


def build_strategy(name: str, **options: Any) -> Strategy:
    """Instantiate a registered strategy, with errors that name the option and suggest near matches."""
    cls = STRATEGIES.get(name)
    try:
        return cls(**options)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "<options>"
        message = f"strategy {name!r}, option {key!r}: {first['msg']}"
        if first["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, list(cls.model_fields), n=1, cutoff=0.5)
            known = ", ".join(cls.model_fields) or "none"
            message += f" (did you mean {close[0]!r}?)" if close else f" (known options: {known})"
        raise ValueError(message) from None
