"""decemb: decoder-only language models as text embedders, as sentence-transformers models.

The public names are imported on first use (PEP 562), so ``import decemb`` and the command line start
without loading torch, transformers or sentence-transformers until a model is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from decemb.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, _names = lazy_exports(__name__, __file__)  # the names below load on first use
__all__ = [*_names, "__version__"]

if TYPE_CHECKING:  # for type checkers and IDEs only
    from decemb.api import export_plain, from_backbone, load
    from decemb.instructions import instruction_for
    from decemb.loading import load_backbone
    from decemb.settings import EncodeSettings
    from decemb.st.explain import explain
    from decemb.strategies import STRATEGIES, Strategy, build_strategy, describe_strategies, list_strategies, register
    from decemb.templates import Template
