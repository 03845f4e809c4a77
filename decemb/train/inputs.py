"""From the config's sources to what the trainer takes: each source's data read and checked against its loss,
hard negatives mined per source, and the train dataset, loss, router mapping and batch plans.

One source trains exactly as before multi-source training existed: one ``Dataset``, one loss, a flat router
mapping. Several become sentence-transformers' multi-dataset training: a dict of datasets, a dict of losses
(one per source, by name), a router mapping per dataset, and :class:`~decemb.train.source_sampler.SourceBatchSampler`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer

from decemb.errors import ConfigError
from decemb.train.config import TrainConfig
from decemb.train.data import load_train_data
from decemb.train.loss_registry import loss_spec
from decemb.train.losses import build_loss, check_loss_config, check_loss_data, dataset_columns
from decemb.train.records import TrainData
from decemb.train.source_sampler import SourcePlan
from decemb.train.sources import Source, config_sources, keyed

__all__ = ["SourceData", "TrainerInputs", "data_metrics", "describe", "load_sources", "mine_sources", "trainer_inputs"]


@dataclass
class SourceData:
    source: Source
    data: TrainData


@dataclass
class TrainerInputs:
    train_dataset: Any  # a Dataset, or {name: Dataset}
    loss: Any  # a loss module, or {name: loss module}
    router_mapping: dict[str, Any]
    plans: list[SourcePlan]


def load_sources(config: TrainConfig, strategy_name: str, attention: str, data_root: Path) -> list[SourceData]:
    """Every source's loss checked (before any file is read), then its data read and checked against it."""
    sources = config_sources(config)
    for source in sources:
        check_loss_config(config, source, strategy_name, attention)
    dropouts = {source.loss.dropout for source in sources if source.loss.name == "simcse"}
    if len(dropouts) > 1:
        raise ConfigError(f"simcse sources set different dropouts {sorted(dropouts)}; the model has one", key="data")
    loaded = []
    for source in sources:
        with keyed(source):
            data = load_train_data(source.section, data_root)
        check_loss_data(source, data)
        loaded.append(SourceData(source, data))
    return loaded


def mine_sources(
    model: SentenceTransformer, items: list[SourceData], report: Callable[[str], None]
) -> list[SourceData]:
    """Hard negatives for each source that asks for them (its own ``hard_negatives`` section)."""
    from decemb.train.mining import mine

    out = []
    for item in items:
        section = item.source.hard_negatives
        if not section.mine:
            out.append(item)
            continue
        with keyed(item.source):
            data = mine(model, item.data, section, seed=item.source.section.seed)
        kept, before = len(data), data.info["pairs_before_mining"]
        where = "" if item.source.index is None else f" ({item.source.name})"
        report(f"mined hard negatives{where}: {kept} of {before} pairs kept, {len(data.columns) - 2} negative(s) each")
        out.append(SourceData(item.source, data))
    return out


def trainer_inputs(
    items: list[SourceData], model: SentenceTransformer, mntp: Callable[[Source], dict[str, Any]]
) -> TrainerInputs:
    """The trainer's dataset(s), loss(es), router mapping and batch plans (``mntp(source)``: MNTP's options)."""
    from datasets import Dataset

    datasets, losses, routes, plans = {}, {}, {}, []
    for item in items:
        source = item.source
        spec = loss_spec(source.loss.name)
        columns, sides = dataset_columns(source, item.data)
        datasets[source.name] = Dataset.from_dict(columns)
        losses[source.name] = build_loss(source, model, mntp(source) if source.loss.name == "mntp" else None)
        routes[source.name] = sides
        groups = item.data.groups if spec.in_batch_negatives else None
        plans.append(SourcePlan(source.name, source.weight, spec.in_batch_negatives, groups))
    if len(items) == 1:
        name = items[0].source.name
        return TrainerInputs(datasets[name], losses[name], dict(routes[name]), plans)
    return TrainerInputs(datasets, losses, routes, plans)


def describe(items: list[SourceData]) -> str:
    """``loss mnrl, 919 rows`` for one source; ``stsb: cosent 5749 rows + scifact: mnrl 919 rows`` for several."""
    if len(items) == 1:
        return f"loss {items[0].source.loss.name}, {len(items[0].data)} rows"
    return " + ".join(
        f"{i.source.name}: {i.source.loss.name} {len(i.data)} rows (weight {i.source.weight:g})" for i in items
    )


def data_metrics(items: list[SourceData]) -> dict[str, Any]:
    """``metrics.json``'s ``data``: as it always was for one source; a list of sources for several."""

    def one(item: SourceData) -> dict[str, Any]:
        return {"source": item.data.source, "shape": item.data.shape, **item.data.info}

    if len(items) == 1:
        return one(items[0])
    return {
        "sources": [
            {"name": i.source.name, "loss": i.source.loss.name, "weight": i.source.weight, **one(i)} for i in items
        ]
    }
