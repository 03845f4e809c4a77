"""Hard negatives mined with the model itself (``sentence_transformers.util.mine_hard_negatives``): anchors
are embedded on the query side and candidates on the document side, exactly as at inference."""

from __future__ import annotations

import logging

from sentence_transformers import SentenceTransformer

from decemb.errors import ConfigError
from decemb.train.config import HardNegativesSection
from decemb.train.records import TrainData

__all__ = ["mine"]

logger = logging.getLogger(__name__)


def mine(model: SentenceTransformer, data: TrainData, section: HardNegativesSection) -> TrainData:
    """``data`` (anchor, positive pairs) with ``negative_1..num`` columns; pairs for which no negative
    passes the filters are dropped (an error if fewer than ``section.min_kept`` of them are left)."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    pairs = Dataset.from_dict({"anchor": data.columns["anchor"], "positive": data.columns["positive"]})
    corpus = data.corpus if section.corpus == "all" and data.corpus else None
    candidates = len(corpus) if corpus is not None else len(set(data.columns["positive"]))
    if section.range_min + section.num > candidates:
        raise ConfigError(
            f"range_min {section.range_min} + num {section.num} exceeds the {candidates} candidate documents",
            key="hard_negatives.range_min",
        )
    was_training = model.training
    model.eval()
    try:
        mined = mine_hard_negatives(
            pairs,
            model,
            anchor_column_name="anchor",
            positive_column_name="positive",
            corpus=corpus,
            range_min=section.range_min,
            range_max=section.range_max,
            max_score=section.max_score,
            relative_margin=section.relative_margin,
            num_negatives=section.num,
            sampling_strategy=section.sampling,
            batch_size=section.batch_size,
            output_format="n-tuple",
            verbose=False,
        )
    finally:
        model.train(was_training)
    if len(mined) == 0 or len(mined) < section.min_kept * len(data):
        raise ConfigError(
            f"mining found a negative for only {len(mined)} of {len(data)} pairs ({len(mined) / len(data):.0%}; "
            f"min_kept {section.min_kept:g}) under {_filters(section)}; loosen them (an untrained decoder scores "
            "most texts alike, so a margin rejects nearly every candidate) or lower min_kept",
            key="hard_negatives.min_kept",
        )
    columns = {name: list(mined[name]) for name in mined.column_names if name != "scores"}
    positive_side = data.sides["positive"]
    sides = {name: data.sides.get(name, positive_side) for name in columns}
    info = {**data.info, "mined_rows": len(mined), "pairs_before_mining": len(data)}
    logger.info("mined hard negatives: %d of %d pairs kept", len(mined), len(data))
    return TrainData("pairs", columns, sides, data.source, data.corpus, info)


def _filters(section: HardNegativesSection) -> str:
    """The mining filters in force, e.g. ``ranks 10..50, relative_margin 0.05``."""
    parts = [f"ranks {section.range_min}..{section.range_max if section.range_max is not None else 'end'}"]
    parts += [
        f"{key} {getattr(section, key):g}"
        for key in ("max_score", "relative_margin")
        if getattr(section, key) is not None
    ]
    return ", ".join(parts)
