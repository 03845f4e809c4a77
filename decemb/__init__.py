"""decemb: decoder-only language models as text embedders, as sentence-transformers models."""

from __future__ import annotations

from decemb.api import describe_strategies, explain, from_backbone, list_strategies, load
from decemb.instructions import instruction_for
from decemb.loading import load_backbone
from decemb.strategies import STRATEGIES, Strategy, build_strategy, register
from decemb.templates import Template

__version__ = "0.1.0"

__all__ = [
    "STRATEGIES",
    "Strategy",
    "Template",
    "__version__",
    "build_strategy",
    "describe_strategies",
    "explain",
    "from_backbone",
    "instruction_for",
    "list_strategies",
    "load",
    "load_backbone",
    "register",
]
