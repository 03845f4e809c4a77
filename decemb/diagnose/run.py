"""``diagnose``: the discrimination gap and the echo probe for each strategy of one model (loaded once)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decemb.diagnose.gap import DEFAULT_PAIRS, discrimination_gap, load_pairs
from decemb.diagnose.probe import echo_probe
from decemb.diagnose.probeset import load_probe_set

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

StrategySpec = tuple[str, dict[str, Any]]


@dataclass
class DiagnoseSettings:
    """What to measure and on which data (paths relative to ``data_root``, default ``decemb.tasks``')."""

    data_root: str | Path | None = None
    gap: bool = True
    probe: bool = True
    pairs: str = DEFAULT_PAIRS
    pairs_format: str = "stsb"
    columns: tuple[str, str, str] = ("sentence1", "sentence2", "score")
    limit: int | None = 400
    related_min: float = 4.0
    unrelated_max: float = 1.0
    seed: int = 0
    probe_file: str | None = None
    probe_limit: int | None = None
    batch_size: int = 32
    encode: dict[str, Any] = field(default_factory=dict)  # max_length, layer, ... for every strategy

    def root(self) -> Path:
        from decemb.tasks import default_data_root

        return Path(self.data_root).expanduser() if self.data_root is not None else default_data_root()


def all_strategies() -> list[StrategySpec]:
    from decemb.strategies import list_strategies

    return [(name, {}) for name in list_strategies()]


def build_models(
    source: str, strategies: Sequence[StrategySpec] | None, settings: DiagnoseSettings, load: dict[str, Any]
) -> Callable[[], list[tuple[str, SentenceTransformer]]]:
    """A loader of ``(label, model)`` pairs sharing one backbone (a saved decemb folder without
    ``strategies``: its own saved model). Strategies are checked before the model loads."""
    import decemb
    from decemb.api import is_saved_model
    from decemb.strategies import build_strategy
    from decemb.strategy_entry import default_label

    if strategies is None and is_saved_model(source):

        def saved() -> list[tuple[str, SentenceTransformer]]:
            model = decemb.load(source, **{key: value for key, value in load.items() if value is not None})
            return [(default_label(model[0].strategy_spec), model)]

        return saved
    chosen = list(strategies or all_strategies())
    specs = [build_strategy(name, **options) for name, options in chosen]

    def fresh() -> list[tuple[str, SentenceTransformer]]:
        backbone, tokenizer = decemb.load_backbone(source, **{k: v for k, v in load.items() if v is not None})
        return [
            (default_label(spec), decemb.from_backbone(backbone, tokenizer, spec, **settings.encode))
            for spec in specs
        ]

    return fresh


def diagnose(
    source: str,
    strategies: Sequence[StrategySpec] | None = None,
    settings: DiagnoseSettings | None = None,
    *,
    load: dict[str, Any] | None = None,
    report: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the gap and/or the echo probe for every strategy (default: all registered, default options) on
    ``source`` (an alias, folder, ``.gguf`` file, Hub id or saved decemb folder). Data is read first, so a
    missing file fails before the model loads. Returns one record per strategy."""
    settings = settings or DiagnoseSettings()
    if not (settings.gap or settings.probe):
        raise ValueError("nothing to run: both the gap and the probe are off")
    root = settings.root()
    pairs = None
    if settings.gap:
        columns = settings.columns
        pairs = load_pairs(
            settings.pairs, data_root=root, fmt=settings.pairs_format, columns=columns, limit=settings.limit
        )
    items = load_probe_set(root, settings.probe_file, settings.probe_limit) if settings.probe else None
    models = build_models(source, strategies, settings, load or {})()
    results = []
    for label, model in models:
        started = time.perf_counter()
        record: dict[str, Any] = {"label": label, "strategy": model[0].strategy, "options": model[0].strategy_options}
        if pairs is not None:
            gap = discrimination_gap(
                model,
                pairs,
                related_min=settings.related_min,
                unrelated_max=settings.unrelated_max,
                seed=settings.seed,
                batch_size=settings.batch_size,
            )
            record["gap"], record["gap_settings"] = gap.summary(), gap.settings
            record["cosines"] = {key: getattr(gap, key) for key in ("related", "unrelated", "low_scored")}
        if items is not None:
            record["probe"] = echo_probe(model, items, batch_size=max(1, settings.batch_size // 3))
        record["seconds"] = round(time.perf_counter() - started, 1)
        results.append(record)
        if report is not None:
            report(f"{label}: done in {record['seconds']} s")
    return results


def to_json(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results without the cosine arrays (for ``diagnose.json``)."""
    return [{key: value for key, value in result.items() if key != "cosines"} for result in results]
