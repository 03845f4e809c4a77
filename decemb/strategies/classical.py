"""The classical baselines over the plain text: mean and last-token pooling."""

from __future__ import annotations

from typing import ClassVar

from decemb.strategies.base import Kind, Strategy, register
from decemb.templates import Template, text

PLAIN = Template.of(text())


class PlainTextStrategy(Strategy):
    """The text alone, every token pooled with a fixed pooling."""

    fixed_pooling: ClassVar[str]

    def template_for(self, kind: Kind) -> Template:
        return PLAIN

    @property
    def pooling_name(self) -> str:
        return self.fixed_pooling


@register
class MeanStrategy(PlainTextStrategy):
    name = "mean"
    summary = "Mean of the text tokens' last-layer states (classical baseline)."
    reference = "e.g. Reimers & Gurevych 2019 (mean pooling)"
    fixed_pooling = "mean"


@register
class LastStrategy(PlainTextStrategy):
    name = "last"
    summary = "State of the last text token (classical baseline for causal models)."
    reference = "e.g. Neelakantan et al. 2022 without the EOS"
    fixed_pooling = "last"
