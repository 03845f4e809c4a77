"""Compare strategies: every model × strategy × layer × task of a YAML config (``decemb compare``).

    from decemb.compare import load_config, run_comparison, write_outputs, format_report

    config = load_config("configs/quickstart.yaml")
    results = run_comparison(config, limit=50)  # a list of Result, plus .stats and timings
    print(format_report(results))
    write_outputs(results, config.output_dir())

See :mod:`decemb.compare.config` for the config format and its path/cache/label semantics. Modules:
``config`` (the config models), ``tasks`` (task entries; a retrieval task's ``rerank`` stage), ``errors``
(validation errors → one line), ``paths`` (data root and cache), ``inputs`` (loading the tasks), ``plan``
(the jobs of one model × task), ``runner``, ``scoring`` (records of one strategy × layer), ``rerank`` (the
rerank stage), ``stats`` (bootstrap intervals), ``results`` (the records), ``tables`` / ``report`` /
``timing`` / ``charts`` (the outputs). ``encode_texts``,
``read_texts`` and ``save_embeddings`` are re-exported from :mod:`decemb.encode` (``decemb encode``).
"""

from __future__ import annotations

from decemb.compare.config import (
    ComparisonConfig,
    ConfigError,
    ModelConfig,
    StrategyConfig,
    default_label,
    load_config,
    parse_config,
)
from decemb.compare.paths import default_cache_path, resolve_cache_path, resolve_data_root
from decemb.compare.plan import task_instruction
from decemb.compare.report import format_report, read_results, task_tables, write_outputs
from decemb.compare.results import Result, Results
from decemb.compare.runner import run_comparison
from decemb.compare.tasks import RerankConfig
from decemb.encode import encode_texts, read_texts, save_embeddings

__all__ = [
    "ComparisonConfig",
    "ConfigError",
    "ModelConfig",
    "RerankConfig",
    "Result",
    "Results",
    "StrategyConfig",
    "default_cache_path",
    "default_label",
    "encode_texts",
    "format_report",
    "load_config",
    "parse_config",
    "read_results",
    "read_texts",
    "resolve_cache_path",
    "resolve_data_root",
    "run_comparison",
    "save_embeddings",
    "task_instruction",
    "task_tables",
    "write_outputs",
]
