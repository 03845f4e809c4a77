"""LLM2Vec (BehnamGhader et al. 2024): bidirectional attention, pooling that skips the instruction."""

from __future__ import annotations

from typing import Literal

from decemb.attention import BIDIRECTIONAL
from decemb.strategies.base import Kind, Strategy, register
from decemb.templates import Template, special, text, variable


@register
class LLM2VecStrategy(Strategy):
    name = "llm2vec"
    summary = "Bidirectional attention; mean / weighted-mean / EOS pooling over the text, never the instruction."
    reference = (
        "BehnamGhader et al. 2024, LLM2Vec: Large Language Models Are Secretly Powerful Text Encoders, arXiv:2404.05961"
    )
    attention = BIDIRECTIONAL
    takes_instruction = True

    pooling: Literal["mean", "weighted_mean", "eos"] = "mean"
    instruction: str = ""
    document_instruction: str = ""

    def template_for(self, kind: Kind) -> Template:
        tail = [special("eos")] if self.pooling == "eos" else []
        return Template.of(variable("instruction"), text(), *tail)

    def variables(self, kind: Kind, instruction: str | None = None) -> dict[str, str]:
        if instruction is None:
            instruction = self.instruction if kind == "query" else self.document_instruction
        # The instruction and a separating space are context only: pooling never reads them.
        return {"instruction": f"{instruction} " if instruction else ""}

    @property
    def pooling_name(self) -> str:
        return "last" if self.pooling == "eos" else self.pooling
