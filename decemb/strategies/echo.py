"""Echo embeddings (Springer et al. 2024): the text twice, pooled over the second copy."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from decemb.strategies.base import Kind, Strategy, register
from decemb.templates import Template

DEFAULT_TEMPLATE = "{!Rewrite the following sentence: %%text%%\nThe rewritten sentence: }{%%text%%}"


@register
class EchoStrategy(Strategy):
    name = "echo"
    summary = "Text given twice; pool (mean or last) over the second copy, which has read the first."
    reference = "Springer et al. 2024, Repetition Improves Language Model Embeddings, arXiv:2402.15449"
    takes_instruction = True

    pooling: Literal["mean", "last"] = "mean"
    template: str = DEFAULT_TEMPLATE
    document_template: str | None = None
    instruction: str = ""

    @field_validator("template", "document_template")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            unknown = Template.parse(value).variables() - {"instruction"}
            if unknown:
                raise ValueError(f"unknown template variable(s) {sorted(unknown)}; echo knows %%instruction%%")
        return value

    def template_for(self, kind: Kind) -> Template:
        source = self.document_template if kind == "document" and self.document_template else self.template
        return Template.parse(source)

    def variables(self, kind: Kind, instruction: str | None = None) -> dict[str, str]:
        return {"instruction": self.instruction if instruction is None else instruction}

    @property
    def pooling_name(self) -> str:
        return self.pooling
