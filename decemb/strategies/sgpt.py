"""SGPT (Muennighoff 2022): position-weighted mean over the text tokens."""

from __future__ import annotations

from decemb.strategies.base import register
from decemb.strategies.classical import PlainTextStrategy


@register
class SGPTStrategy(PlainTextStrategy):
    name = "sgpt"
    summary = "Position-weighted mean (weight i / sum i, counted from the first text token)."
    reference = "Muennighoff 2022, SGPT: GPT Sentence Embeddings for Semantic Search, arXiv:2202.08904"
    fixed_pooling = "weighted_mean"
