"""E5-mistral style (Wang et al. 2024): 'Instruct: {task}\nQuery: ' on queries only, EOS, last token."""

from __future__ import annotations

from pydantic import model_validator

from decemb.instructions import instruction_for
from decemb.strategies.base import Kind, Strategy, register
from decemb.templates import Template, literal, special, text, variable

DEFAULT_INSTRUCTION = "Retrieve semantically similar text."


@register
class InstructStrategy(Strategy):
    name = "instruct"
    summary = "Queries as 'Instruct: {task}\\nQuery: {text}', documents bare; EOS appended; last token."
    reference = "Wang et al. 2024, Improving Text Embeddings with Large Language Models, arXiv:2401.00368"
    takes_instruction = True

    instruction: str | None = None
    task: str | None = None

    @model_validator(mode="after")
    def _resolve(self) -> InstructStrategy:
        if self.task is not None:
            instruction_for(self.task)  # fails early, with suggestions, on an unknown task name
        return self

    def resolved_instruction(self, override: str | None = None) -> str:
        if override is not None:
            return override
        if self.instruction is not None:
            return self.instruction
        return instruction_for(self.task) if self.task else DEFAULT_INSTRUCTION

    def task_instruction(self, task_name: str, task_type: str) -> str | None:
        """Without an explicit instruction or task: the E5 instruction for the task's name, else its type."""
        if self.instruction is not None or self.task is not None:
            return None
        for key in (task_name, task_type):
            try:
                return instruction_for(key)
            except KeyError:
                continue
        return None

    def template_for(self, kind: Kind) -> Template:
        if kind == "document":
            return Template.of(text(), special("eos"))
        return Template.of(literal("Instruct: "), variable("instruction"), literal("\nQuery: "), text(), special("eos"))

    def variables(self, kind: Kind, instruction: str | None = None) -> dict[str, str]:
        return {"instruction": self.resolved_instruction(instruction)} if kind == "query" else {}

    @property
    def pooling_name(self) -> str:
        return "last"
