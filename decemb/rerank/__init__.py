"""Decoder rerankers: a causal LM as a sentence-transformers ``CrossEncoder`` scoring (query, document)
pairs zero-shot as ``logit("yes") - logit("no")``, and LoRA training of it (:func:`train_reranker`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from decemb.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, __file__)  # the names below load on first use

if TYPE_CHECKING:
    from decemb.rerank.head import SCORE_HEADS, with_score_head
    from decemb.rerank.loading import load_causal_lm
    from decemb.rerank.model import DecembReranker, is_saved_reranker, load_reranker, reranker_from_causal_lm
    from decemb.rerank.module import DecembPairEncoder
    from decemb.rerank.rendering import PairRenderer, PairTooLongError
    from decemb.rerank.templates import (
        PairTemplate,
        chat_pair_template,
        default_pair_template,
        plain_pair_template,
    )
    from decemb.rerank.train import RerankerTrainResult, train_reranker
    from decemb.rerank.train_data import (
        RerankExample,
        bce_dataset,
        examples_from_rankings,
        examples_from_task,
        listwise_dataset,
        mine_examples,
    )
