"""Hard negatives mined with the model itself (``sentence_transformers.util.mine_hard_negatives``): anchors
are embedded on the query side and candidates on the document side, exactly as at inference; or, with
``miner: bm25``, ranked by BM25 over the same candidates (:func:`rank_lexically`; the anchor's own positives
are never its negatives).

sentence-transformers ranks and filters the candidates; decemb then picks ``num`` of them per pair with a
cap on how many pairs one document may serve as a negative (``max_uses``). Without it, a model that scores
most texts alike (an untrained decoder's last-token state) hands the same few "hub" documents to hundreds of
pairs; two rows that share a text never share a no-duplicates batch, so those rows end up in short batches
that an epoch never reaches (``decemb.train.trainer.short_batches``).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass

from sentence_transformers import SentenceTransformer

from decemb.errors import ConfigError
from decemb.train.config import HardNegativesSection
from decemb.train.records import TrainData

__all__ = ["RankedCandidates", "choose_negatives", "mine", "rank_candidates", "rank_lexically", "with_negatives"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankedCandidates:
    """Per training pair (in sentence-transformers' order: grouped by anchor): the anchor, its positive and the
    candidates that passed the filters, best first."""

    anchors: list[str]
    positives: list[str]
    candidates: list[list[str]]


def _candidate_corpus(data: TrainData, section: HardNegativesSection) -> list[str] | None:
    """The documents negatives are drawn from (``None``: the training positives), checked against the ranks."""
    corpus = data.corpus if section.corpus == "all" and data.corpus else None
    candidates = len(corpus) if corpus is not None else len(set(data.columns["positive"]))
    if section.range_min + section.num > candidates:
        raise ConfigError(
            f"range_min {section.range_min} + num {section.num} exceeds the {candidates} candidate documents",
            key="hard_negatives.range_min",
        )
    return corpus


def rank_lexically(data: TrainData, section: HardNegativesSection) -> RankedCandidates:
    """Rank each pair's candidate negatives by BM25 of its anchor (the ``pool_size`` candidates after
    ``range_min``), leaving out every positive of that anchor; pairs keep their order."""
    from decemb.search.lexical import LexicalIndex

    anchors, positives = list(data.columns["anchor"]), list(data.columns["positive"])
    corpus = _candidate_corpus(data, section) or list(dict.fromkeys(positives))
    own: dict[str, set[str]] = {}
    for anchor, positive in zip(anchors, positives, strict=True):
        own.setdefault(anchor, set()).add(positive)
    queries = list(own)
    depth = min(len(corpus), section.range_min + pool_size(section) + max(map(len, own.values())))
    found = LexicalIndex.build(corpus).search(queries, top_k=depth)
    head = slice(section.range_min, section.range_min + pool_size(section))
    ranked = {q: [corpus[p] for p, _ in hits if corpus[p] not in own[q]][head] for q, hits in zip(queries, found)}
    return RankedCandidates(anchors, positives, [ranked[anchor] for anchor in anchors])


def rank_candidates(model: SentenceTransformer, data: TrainData, section: HardNegativesSection) -> RankedCandidates:
    """Rank each pair's candidate negatives with the model (``mine_hard_negatives``, ``labeled-list``), or by
    BM25 with ``miner: bm25`` (:func:`rank_lexically`): the ``pool_size`` candidates after ``range_min``,
    less those the filters reject."""
    if section.miner == "bm25":
        return rank_lexically(data, section)
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    pairs = Dataset.from_dict({"anchor": data.columns["anchor"], "positive": data.columns["positive"]})
    corpus = _candidate_corpus(data, section)
    pool = pool_size(section)
    was_training = model.training
    model.eval()
    try:
        ranked = mine_hard_negatives(
            pairs,
            model,
            anchor_column_name="anchor",
            positive_column_name="positive",
            corpus=corpus,
            range_min=section.range_min,
            range_max=section.range_min + pool,
            max_score=section.max_score,
            relative_margin=section.relative_margin,
            num_negatives=pool,
            sampling_strategy="top",
            batch_size=section.batch_size,
            output_format="labeled-list",
            verbose=False,
        )
    finally:
        model.train(was_training)
    lists = list(ranked["positive"])  # [positive, candidate, candidate, ...]
    return RankedCandidates(list(ranked["anchor"]), [texts[0] for texts in lists], [texts[1:] for texts in lists])


def mine(model: SentenceTransformer, data: TrainData, section: HardNegativesSection, seed: int = 0) -> TrainData:
    """``data`` (anchor, positive pairs) with ``negative_1..num`` columns; pairs left without ``num``
    negatives by the filters or the ``max_uses`` cap are dropped (an error if fewer than
    ``section.min_kept`` of them are left)."""
    return with_negatives(rank_candidates(model, data, section), data, section, seed)


def with_negatives(
    ranked: RankedCandidates, data: TrainData, section: HardNegativesSection, seed: int = 0
) -> TrainData:
    """The pairs of ``ranked`` with the negatives :func:`choose_negatives` picks, as training data (the
    ``min_kept`` check included)."""
    chosen = choose_negatives(ranked.candidates, section, seed)
    kept = [row for row, negatives in enumerate(chosen) if negatives is not None]
    if not kept or len(kept) < section.min_kept * len(data):
        raise ConfigError(
            f"mining found {section.num} negative(s) for only {len(kept)} of {len(data)} pairs "
            f"({len(kept) / len(data):.0%}; min_kept {section.min_kept:g}) under {_filters(section)}; loosen them "
            "(an untrained decoder scores most texts alike, so a margin rejects nearly every candidate) or lower "
            "min_kept",
            key="hard_negatives.min_kept",
        )
    columns: dict[str, list[str]] = {
        "anchor": [ranked.anchors[row] for row in kept],
        "positive": [ranked.positives[row] for row in kept],
    }
    for index in range(section.num):
        columns[f"negative_{index + 1}"] = [chosen[row][index] for row in kept]  # type: ignore[index]
    positive_side = data.sides["positive"]
    sides = {name: data.sides.get(name, positive_side) for name in columns}
    uses = Counter(text for name in columns if name.startswith("negative_") for text in columns[name])
    info = {
        **data.info,
        "mined_rows": len(kept),
        "pairs_before_mining": len(data),
        "distinct_negatives": len(uses),
        "most_uses_of_a_negative": max(uses.values()),
    }
    logger.info("mined hard negatives: %d of %d pairs kept", len(kept), len(data))
    groups = None
    if data.groups is not None:  # by pair: the miner may drop or reorder rows
        group_of = dict(zip(zip(data.columns["anchor"], data.columns["positive"]), data.groups))
        groups = [group_of[(ranked.anchors[row], ranked.positives[row])] for row in kept]
    return TrainData("pairs", columns, sides, data.source, data.corpus, info, groups)


def pool_size(section: HardNegativesSection) -> int:
    """How many ranked candidates per pair the choice draws from: ranks ``range_min``..``range_max``, or
    the first ``10 × num`` after ``range_min`` when ``range_max`` is null."""
    if section.range_max is not None:
        return section.range_max - section.range_min
    return 10 * section.num


def choose_negatives(
    candidates: list[list[str]], section: HardNegativesSection, seed: int = 0
) -> list[list[str] | None]:
    """Per pair, ``num`` of its ranked ``candidates`` (best first; ``sampling: random`` draws them at random,
    ``top`` takes the best) such that no document serves more than ``max_uses`` pairs; ``None`` for a pair
    left with fewer. Pairs are served in a seeded random order, so no pair is favoured by its position, and
    the chosen negatives keep their rank order."""
    rng = random.Random(seed)
    order = list(range(len(candidates)))
    rng.shuffle(order)
    uses: Counter[str] = Counter()
    chosen: list[list[str] | None] = [None] * len(candidates)
    for row in order:
        ranked = list(dict.fromkeys(candidates[row]))
        draw = rng.sample(ranked, len(ranked)) if section.sampling == "random" else ranked
        picked = [text for text in draw if section.max_uses is None or uses[text] < section.max_uses]
        picked = picked[: section.num]
        if len(picked) == section.num:
            chosen[row] = sorted(picked, key=ranked.index)
            uses.update(picked)
    return chosen


def _filters(section: HardNegativesSection) -> str:
    """The mining filters in force, e.g. ``ranks 10..50, relative_margin 0.05, max_uses 2``."""
    parts = [f"ranks {section.range_min}..{section.range_min + pool_size(section)}"]
    parts += [
        f"{key} {getattr(section, key):g}"
        for key in ("max_score", "relative_margin", "max_uses")
        if getattr(section, key) is not None
    ]
    return ", ".join(parts)
