"""The ground floor of every config: the strict base, the one data root, the one error formatter, the one
strategy entry (it raises), and optional dependencies that say which extra to install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from decemb.config_base import StrictModel, data_root, format_validation_error
from decemb.errors import ConfigError, MissingExtraError, require_extra
from decemb.strategies import StrategyOptionError, build_strategy, strategy_of
from decemb.strategy_entry import build_checked_strategy, build_strategy_entry


def test_every_strict_config_derives_from_the_one_base() -> None:
    from decemb.compare.config import ComparisonConfig, ModelConfig, StrategyConfig
    from decemb.search.fusion import FusionSettings
    from decemb.search.lexical import Bm25Settings
    from decemb.strategies import Strategy
    from decemb.tasks import TASK_TYPES

    for model in (ComparisonConfig, ModelConfig, StrategyConfig, Strategy, Bm25Settings, FusionSettings):
        assert issubclass(model, StrictModel) and model.model_config["extra"] == "forbid"
    assert all(issubclass(model, StrictModel) for model in TASK_TYPES.values())
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted"):
        FusionSettings(depht=3)


def test_one_data_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from decemb.tasks import default_data_root

    monkeypatch.delenv("DECEMB_DATA", raising=False)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    assert data_root() == default_data_root() == shared
    monkeypatch.setenv("DECEMB_DATA", str(tmp_path / "env"))
    assert data_root() == default_data_root() == tmp_path / "env"
    assert data_root(tmp_path / "config") == tmp_path / "config"  # an explicit root wins over the environment
    assert data_root("") == tmp_path / "env"  # an empty value names nothing


def test_the_error_formatter_names_the_key_path_and_the_known_task_types() -> None:
    from decemb.compare.config import ComparisonConfig
    from decemb.tasks import TASK_TYPES

    base = {"models": [{"source": "smollm2-135m"}], "strategies": ["mean"]}
    cases = [
        ({**base, "tasks": [{"type": "stss", "name": "a"}]}, "tasks[0].type", "unknown task type 'stss' (did you"),
        ({**base, "tasks": [{"name": "a"}]}, "tasks[0].type", f"required key missing (one of {', '.join(TASK_TYPES)})"),
        ({**base, "tasks": [], "modles": []}, "tasks", "must not be empty"),
    ]
    for data, key, start in cases:
        with pytest.raises(ValidationError) as caught:
            ComparisonConfig.model_validate(data)
        got_key, message = format_validation_error(caught.value, ComparisonConfig)
        assert (got_key, message[: len(start)]) == (key, start), message
        assert "\n" not in message
    with pytest.raises(ValidationError) as caught:
        ComparisonConfig.model_validate(cases[0][0])
    assert f"known: {', '.join(TASK_TYPES)}" in format_validation_error(caught.value, ComparisonConfig)[1]


def test_one_strategy_entry_that_raises() -> None:
    assert strategy_of is build_strategy
    assert build_strategy({"name": "echo", "pooling": "last"}) == build_strategy("echo", pooling="last")
    with pytest.raises(StrategyOptionError, match=r"did you mean 'pooling'") as caught:
        build_strategy({"name": "echo"}, poling="last")
    assert caught.value.key == "poling"
    cases = [
        ("ecko", {}, "name", "unknown strategy 'ecko'. Did you mean 'echo'"),
        ("echo", {"poling": "last"}, "poling", "unknown option for strategy 'echo' (did you mean 'pooling'?)"),
        ("echo", {"pooling": "max"}, "pooling", "strategy 'echo': must be"),
        ("echo", {"nearby_keys": 1}, "nearby_keys", "unknown option for strategy 'echo'"),
    ]
    for name, options, key, start in cases:
        with pytest.raises(ConfigError) as caught:
            build_strategy_entry(name, options, where=lambda sub: f"strategies[0].{sub}")
        assert (caught.value.key, caught.value.detail[: len(start)]) == (f"strategies[0].{key}", start)
    with pytest.raises(ConfigError) as caught:
        build_checked_strategy("ecko", {})
    assert caught.value.key == "--strategy"
    with pytest.raises(ConfigError) as caught:
        build_checked_strategy("echo", {"poling": "x"})
    assert caught.value.key == "--option poling"


def test_a_missing_extra_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """matplotlib (``plots``) and pyarrow (``parquet``) are optional: their paths say what to install, and a
    comparison without matplotlib still writes everything but the charts."""
    from decemb.compare.charts import plot_task
    from decemb.compare.report import write_outputs
    from decemb.records import parquet_files

    for module in ("matplotlib", "pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(MissingExtraError) as caught:
        require_extra("pyarrow.parquet", "parquet", "reading Parquet")
    assert str(caught.value) == "reading Parquet needs pyarrow: pip install 'decemb[parquet]'"
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, ConfigError)
    (tmp_path / "x.parquet").write_bytes(b"")
    with pytest.raises(MissingExtraError, match=r"pip install 'decemb\[parquet\]'"):
        parquet_files(tmp_path / "x.parquet")
    with pytest.raises(MissingExtraError, match=r"^charts needs matplotlib: pip install 'decemb\[plots\]'$"):
        plot_task(None, tmp_path / "chart.png")  # type: ignore[arg-type]
    written = write_outputs([], tmp_path / "out")
    assert sorted(written) == ["report.md", "results.csv", "results.json"]
    with pytest.raises(MissingExtraError, match="plots"):
        write_outputs([], tmp_path / "again", plots=True)
