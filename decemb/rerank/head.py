"""A reranker's score head: ``logit`` (sentence-transformers' ``LogitScore``: ``logit("yes") - logit("no")``
at the last token, the zero-shot score) or ``linear`` (RankLLaMA's form: a linear layer over the last
token's final hidden state, sentence-transformers' own ``Dense`` writing ``scores``).

    reranker = with_score_head(load_reranker("smollm2-135m"), "linear")

A new linear head starts as the yes/no score itself: its weight is ``W[yes] - W[no]`` of the LM head (and
its bias ``b[yes] - b[no]``, or 0), so before training it ranks exactly as ``logit`` does, and training
moves it freely from there. Saved, the folder holds only installed module classes
(:class:`~decemb.rerank.hidden_encoder.DecembPairHiddenEncoder` and ``Dense`` with a ``torch.nn`` activation),
so it loads with ``load_reranker(folder)`` without running any code of its own (:mod:`decemb.trust`).
"""

from __future__ import annotations

from typing import Literal

import torch
from sentence_transformers.base.modules import Dense
from sentence_transformers.cross_encoder.modules import LogitScore

from decemb.rerank.hidden_encoder import DecembPairHiddenEncoder
from decemb.rerank.model import DecembReranker
from decemb.rerank.module import DecembPairEncoder, _unwrapped

__all__ = ["SCORE_HEADS", "ScoreHead", "score_head_of", "with_score_head"]

ScoreHead = Literal["logit", "linear"]
SCORE_HEADS: tuple[str, ...] = ("logit", "linear")


def score_head_of(reranker: DecembReranker) -> str:
    """``"linear"`` or ``"logit"``: which head scores ``reranker``."""
    last = reranker[len(reranker) - 1]
    if isinstance(last, Dense) and last.module_output_name == "scores":
        return "linear"
    if isinstance(last, LogitScore):
        return "logit"
    raise TypeError(f"not a decemb reranker head: {type(last).__name__}")


def _linear_head(encoder: DecembPairEncoder) -> Dense:
    lm_head = _unwrapped(encoder.auto_model).get_output_embeddings()
    weight = lm_head.weight.detach()
    yes, no = encoder.yes_id, encoder.no_id
    bias = getattr(lm_head, "bias", None)
    start_bias = torch.zeros(1, dtype=weight.dtype, device=weight.device)
    if bias is not None:
        start_bias = (bias.detach()[yes] - bias.detach()[no]).reshape(1)
    return Dense(
        in_features=int(weight.shape[1]),
        out_features=1,
        activation_function=torch.nn.Identity(),
        init_weight=(weight[yes] - weight[no]).reshape(1, -1).clone(),
        init_bias=start_bias.clone(),
        module_input_name="last_hidden",
        module_output_name="scores",
    )


def with_score_head(reranker: DecembReranker, head: ScoreHead) -> DecembReranker:
    """``reranker`` scored by ``head``: itself when it already is; else a new reranker over the same causal
    LM and tokenizer (shared, not copied) with the other head (a new linear head starts as the yes/no score;
    going back to ``logit`` drops a linear head)."""
    if head not in SCORE_HEADS:
        raise ValueError(f"unknown score head {head!r}; expected one of {', '.join(SCORE_HEADS)}")
    if score_head_of(reranker) == head:
        return reranker
    encoder = reranker[0]
    if not isinstance(encoder, DecembPairEncoder):
        raise TypeError(f"a decemb reranker's first module is a DecembPairEncoder, not {type(encoder).__name__}")
    options = {
        "template": encoder.pair_template,
        "max_length": encoder.max_length,
        "prefix_cache": encoder.prefix_cache,
    }
    if head == "linear":
        hidden = DecembPairHiddenEncoder(encoder.auto_model, encoder.tokenizer, **options)
        modules: list[torch.nn.Module] = [hidden, _linear_head(hidden)]
    else:
        plain = DecembPairEncoder(encoder.auto_model, encoder.tokenizer, **options)
        modules = [plain, LogitScore(true_token_id=plain.yes_id, false_token_id=plain.no_id)]
    return DecembReranker(modules=modules, device=str(reranker.device), activation_fn=torch.nn.Identity())
