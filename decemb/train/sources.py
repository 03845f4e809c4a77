"""The config's training sources, resolved: each source's data section, loss, hard negatives, weight, name
and the key its errors name.

``data: {...}`` is one source whose loss and hard negatives are the top-level ``loss`` and
``hard_negatives`` (as always; errors name ``data.limit``, ``loss.name``). ``data: [{...}, ...]`` is a list
whose entries may carry their own ``loss``, ``hard_negatives`` and ``weight`` (else the top-level ones);
errors name the entry (``data[1].limit``, ``data[1].loss.name``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from decemb.errors import ConfigError
from decemb.train.config import DataSection, HardNegativesSection, LossSection, TrainConfig

__all__ = ["Source", "config_sources", "keyed"]


@dataclass(frozen=True)
class Source:
    """One source of training data with everything that says how it trains."""

    index: int | None  # its place in the list; None for the single mapping
    name: str  # the dataset's name in the trainer's dict (and in metrics.json)
    section: DataSection
    loss: LossSection
    hard_negatives: HardNegativesSection
    weight: float

    @property
    def data_key(self) -> str:
        return "data" if self.index is None else f"data[{self.index}]"

    @property
    def loss_key(self) -> str:
        return f"{self.data_key}.loss" if self.section.loss is not None else "loss"

    @property
    def negatives_key(self) -> str:
        return f"{self.data_key}.hard_negatives" if self.section.hard_negatives is not None else "hard_negatives"

    def key(self, key: str | None) -> str | None:
        """A key an error names for the single source (``data.limit``, ``hard_negatives.num``) → this source's."""
        if key is None or self.index is None:
            return key
        for prefix, mine in (("data", self.data_key), ("loss", self.loss_key), ("hard_negatives", self.negatives_key)):
            if key == prefix or key.startswith(prefix + "."):
                return mine + key[len(prefix) :]
        return key


@contextmanager
def keyed(source: Source) -> Iterator[None]:
    """Errors raised inside name this source's keys (``data.columns.text`` → ``data[1].columns.text``)."""
    try:
        yield
    except ConfigError as error:
        if source.index is None:
            raise
        raise ConfigError(error.detail, key=source.key(error.key), file=error.file) from None


def _label(section: DataSection) -> str:
    return section.preset or Path(section.path or "data").stem


def config_sources(config: TrainConfig) -> list[Source]:
    """The sources of ``config`` in order; one-line errors for what the schema cannot say."""
    single = not isinstance(config.data, list)
    sections = config.data_sources
    if single:
        section = sections[0]
        for own, top in (("loss", "loss"), ("hard_negatives", "hard_negatives")):
            if getattr(section, own) is not None and top in config.model_fields_set:
                raise ConfigError(f"given twice: as {top} and as data.{own}; keep one", key=f"data.{own}")
        if "weight" in section.model_fields_set:
            raise ConfigError(
                "a weight shares an epoch among several sources (data: [...]); for one source use training.epochs",
                key="data.weight",
            )
    labels = [_label(section) for section in sections]
    sources = []
    for index, section in enumerate(sections):
        name = labels[index] if labels.count(labels[index]) == 1 else f"{labels[index]}-{index}"
        sources.append(
            Source(
                index=None if single else index,
                name=name,
                section=section,
                loss=section.loss or config.loss,
                hard_negatives=section.hard_negatives or config.hard_negatives,
                weight=section.weight,
            )
        )
    return sources
