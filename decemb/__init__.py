"""decemb: decoder-only language models as text embedders, as sentence-transformers models.

The public names are imported on first use (PEP 562), so ``import decemb`` and the command line start
without loading torch, transformers or sentence-transformers until a model is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "describe_strategies": "decemb.strategies",
    "explain": "decemb.api",
    "from_backbone": "decemb.api",
    "list_strategies": "decemb.strategies",
    "load": "decemb.api",
    "instruction_for": "decemb.instructions",
    "load_backbone": "decemb.loading",
    "EncodeSettings": "decemb.settings",
    "STRATEGIES": "decemb.strategies",
    "Strategy": "decemb.strategies",
    "build_strategy": "decemb.strategies",
    "register": "decemb.strategies",
    "Template": "decemb.templates",
}

__all__ = [
    "STRATEGIES",
    "EncodeSettings",
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


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'decemb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs only
    from decemb.api import explain, from_backbone, load
    from decemb.instructions import instruction_for
    from decemb.loading import load_backbone
    from decemb.settings import EncodeSettings
    from decemb.strategies import STRATEGIES, Strategy, build_strategy, describe_strategies, list_strategies, register
    from decemb.templates import Template
