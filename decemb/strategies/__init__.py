"""The registered strategies; importing this package registers all of them."""

from __future__ import annotations

from decemb.strategies import classical, echo, eos, instruct, llm2vec, prompteol, sgpt
from decemb.strategies.base import (
    KINDS,
    STRATEGIES,
    Kind,
    Strategy,
    StrategyOptionError,
    build_strategy,
    register,
    strategy_of,
)
from decemb.strategies.catalog import describe_strategies, list_strategies

__all__ = [
    "KINDS",
    "STRATEGIES",
    "Kind",
    "Strategy",
    "StrategyOptionError",
    "build_strategy",
    "describe_strategies",
    "list_strategies",
    "register",
    "strategy_of",
]
