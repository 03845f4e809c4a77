"""Every config under configs/ parses and validates (no model is loaded): a shipped config that fails at its
first key would be found by a user, not by CI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from decemb.compare.config import parse_config
from decemb.train.parsing import load_train_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_the_configs_folder_holds_training_and_comparison_configs():
    names = {path.name for path in CONFIGS}
    assert {"quickstart.yaml", "train-quick.yaml", "train-scifact.yaml", "scifact-trained.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_every_shipped_config_validates(path: Path):
    if path.name.startswith("train-reranker"):  # a reranker recipe (python -m decemb.rerank train)
        from decemb.rerank.recipe_config import read_recipe

        assert read_recipe(path).data.split != "test"
    elif path.name.startswith("train-"):
        config = load_train_config(path)
        assert all(source.preset is not None or source.path is not None for source in config.data_sources)
    else:
        data = yaml.safe_load(path.read_text())
        stages = [task["rerank"] for task in data["tasks"] if isinstance(task.get("rerank"), dict)]
        for model in [*data["models"], *stages]:  # trained models (runs/...) exist only after their training run
            if model["source"].startswith("runs/"):
                model["source"] = "smollm2-135m"
        config = parse_config(data, file=path)
        assert config.models and config.strategies and config.tasks
