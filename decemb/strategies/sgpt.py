"""SGPT (Muennighoff 2022): position-weighted mean over the text tokens."""

from __future__ import annotations

from decemb.strategies.base import Kind, Strategy, register
from decemb.strategies.classical import PLAIN
from decemb.templates import Template


@register
class SGPTStrategy(Strategy):
    name = "sgpt"
    summary = "Position-weighted mean (weight i / sum i, counted from the first text token)."
    reference = "Muennighoff 2022, SGPT: GPT Sentence Embeddings for Semantic Search, arXiv:2202.08904"

    def template_for(self, kind: Kind) -> Template:
        return PLAIN

    @property
    def pooling_name(self) -> str:
        return "weighted_mean"
