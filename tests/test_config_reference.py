"""docs/reference.md is what ``python -m decemb.config_reference`` renders from the config models' field
descriptions (regenerate it with that command after changing a config model)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from decemb.compare.config import ComparisonConfig, StrategyConfig
from decemb.compare.tasks import RerankConfig
from decemb.config_reference import render
from decemb.tasks import TASK_TYPES, RetrievalFields, STSColumns

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def test_docs_reference_is_up_to_date_with_the_models() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/reference.md is stale: run `python -m decemb.config_reference > docs/reference.md`"
    )


def test_the_command_writes_the_same_reference() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "decemb.config_reference"], capture_output=True, text=True, check=True
    )
    assert result.stdout == render()


@pytest.mark.parametrize(
    "model", [ComparisonConfig, StrategyConfig, RerankConfig, STSColumns, RetrievalFields, *TASK_TYPES.values()]
)
def test_every_comparison_and_task_key_is_described_in_its_table(model) -> None:
    text = render()
    table = text[text.index(f"### {model.__name__}\n") :].split("\n### ")[0]
    for name, field in model.model_fields.items():
        if name == "type":  # the discriminator: its one value is the type column
            continue
        assert field.description, f"{model.__name__}.{name} has no description"
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        first_word = field.description.split()[0].replace("``", "`")
        assert row.split(" | ")[3].startswith(first_word), row  # key | type | default | description
