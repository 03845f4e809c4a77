"""The decoder reranker: a sentence-transformers ``CrossEncoder`` of two modules,
:class:`~decemb.rerank.module.DecembPairEncoder` (pair template, causal LM → last-token logits) and
sentence-transformers' own ``LogitScore`` (``logit(yes) - logit(no)``).

    reranker = decemb.rerank.load_reranker("smollm2-135m")
    reranker.predict([("what is rlhf?", "RLHF is reinforcement learning from human feedback.")])
    reranker.rank("what is rlhf?", documents, top_k=5)
    reranker.save("out/reranker"); again = decemb.rerank.load_reranker("out/reranker")

Scores are raw log-odds (``activation_fn`` is the identity): > 0 means the model prefers "yes".
"""

from __future__ import annotations

import os
from typing import Any

import torch
from sentence_transformers import CrossEncoder
from sentence_transformers.cross_encoder.modules import LogitScore
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from decemb.backends import apply_backend
from decemb.load_options import LoadOptions, load_options
from decemb.rerank.loading import load_causal_lm
from decemb.rerank.module import DecembPairEncoder
from decemb.rerank.templates import QUESTION, PairTemplate, default_pair_template
from decemb.st.installed import InstalledModulesOnly
from decemb.st.saved import is_saved_folder, open_saved_folder

__all__ = ["DecembReranker", "is_saved_reranker", "load_reranker", "reranker_from_causal_lm"]


class DecembReranker(InstalledModulesOnly, CrossEncoder):
    """A plain ``CrossEncoder`` that checks its pairs before any work, so an error names the pair's index
    in the caller's list (``predict`` sorts pairs into batches by length)."""

    def predict(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        single = self.is_singular_input(inputs)
        first = self[0]
        if isinstance(first, DecembPairEncoder):
            first.check([inputs] if single else inputs)
        return super().predict(inputs, *args, **kwargs)


def _template(
    tokenizer: PreTrainedTokenizerBase, template: PairTemplate | dict[str, Any] | None, question: str | None
) -> PairTemplate:
    if isinstance(template, dict):
        template = PairTemplate.from_dict(template)
    if template is None:
        template = default_pair_template(tokenizer, question or QUESTION)
    elif question is not None:
        template = template.with_question(question)
    return template


def reranker_from_causal_lm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    template: PairTemplate | dict[str, Any] | None = None,
    question: str | None = None,
    max_length: int | None = 512,
    prefix_cache: bool = True,
    device: str | torch.device | None = None,
) -> DecembReranker:
    """Wrap an already loaded causal LM (with its head) and tokenizer (shared, not copied)."""
    if model.get_output_embeddings() is None:
        raise ValueError(f"{type(model).__name__} has no LM head: load it with AutoModelForCausalLM")
    spec = _template(tokenizer, template, question)
    encoder = DecembPairEncoder(model, tokenizer, spec, max_length=max_length, prefix_cache=prefix_cache)
    score = LogitScore(true_token_id=encoder.yes_id, false_token_id=encoder.no_id)
    if device is None:
        device = model.get_input_embeddings().weight.device
    return DecembReranker(modules=[encoder, score], device=str(device), activation_fn=torch.nn.Identity())


def is_saved_reranker(source: str | os.PathLike[str], *, trust_remote_code: bool = False) -> bool:
    """Whether ``source`` is a folder saved from a decemb reranker (see :func:`decemb.st.saved.is_saved_folder`)."""
    return is_saved_folder(source, DecembPairEncoder.config_file_name, trust_remote_code=trust_remote_code)


def load_reranker(
    source: str | os.PathLike[str] = "smollm2-135m",
    *,
    template: PairTemplate | dict[str, Any] | None = None,
    question: str | None = None,
    max_length: int | None = 512,
    prefix_cache: bool = True,
    loading: LoadOptions | None = None,
    **keys: Any,
) -> DecembReranker:
    """A zero-shot reranker from any decemb model source (alias, ``.gguf``, folder, Hub id; ``adapter``: a
    PEFT adapter merged in), or a reranker folder saved by ``save`` (reloaded as saved). ``keys`` (or
    ``loading``): :class:`~decemb.load_options.LoadOptions` (``dtype``, ``device``, ``backend``, ...). Code
    shipped in a folder never runs unless ``trust_remote_code=True`` (see :mod:`decemb.trust`)."""
    opts = load_options(loading, **keys)
    trust = {"trust_remote_code": opts.trust_remote_code}
    saved = is_saved_reranker(source, **trust)
    if saved and template is None and question is None and opts.adapter is None:
        reranker = open_saved_folder(
            DecembReranker, source, device=opts.device, dtype=opts.dtype, attn_implementation=opts.attn_implementation,
            device_map=opts.device_map, **trust,
        )  # fmt: skip
        if max_length != 512:
            reranker[0].max_seq_length = max_length
        reranker[0].prefix_cache = prefix_cache
        if opts.backend != "torch":  # freshly loaded: converted in place
            apply_backend(reranker[0].auto_model, opts.backend)
        return reranker
    model, tokenizer = load_causal_lm(source, opts)
    return reranker_from_causal_lm(
        model,
        tokenizer,
        template=template,
        question=question,
        max_length=max_length,
        prefix_cache=prefix_cache,
        device=opts.device,
    )
