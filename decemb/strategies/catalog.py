"""The strategy catalogue: names, summaries, attention and options, without loading any model library."""

from __future__ import annotations

from typing import Any

from decemb.strategies.base import STRATEGIES


def list_strategies() -> list[str]:
    """Names of the registered strategies, sorted."""
    return STRATEGIES.names()


def describe_strategies() -> list[dict[str, Any]]:
    """One record per strategy: name, summary, reference, attention and options with defaults."""
    records = []
    for name in STRATEGIES.names():
        cls = STRATEGIES.get(name)
        options = {key: field.default for key, field in cls.model_fields.items()}
        records.append(
            {
                "name": name,
                "summary": cls.summary,
                "reference": cls.reference,
                "attention": cls.attention.name,
                "options": options,
            }
        )
    return records
