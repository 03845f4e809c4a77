"""The classical baselines over the plain text: mean and last-token pooling."""

from __future__ import annotations

from decemb.strategies.base import Kind, Strategy, register
from decemb.templates import Template, text

PLAIN = Template.of(text())


@register
class MeanStrategy(Strategy):
    name = "mean"
    summary = "Mean of the text tokens' last-layer states (classical baseline)."
    reference = "e.g. Reimers & Gurevych 2019 (mean pooling)"

    def template_for(self, kind: Kind) -> Template:
        return PLAIN

    @property
    def pooling_name(self) -> str:
        return "mean"


@register
class LastStrategy(Strategy):
    name = "last"
    summary = "State of the last text token (classical baseline for causal models)."
    reference = "e.g. Neelakantan et al. 2022 without the EOS"

    def template_for(self, kind: Kind) -> Template:
        return PLAIN

    @property
    def pooling_name(self) -> str:
        return "last"
