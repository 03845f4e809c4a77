"""The reranker's input module: renders (query, document) pairs and runs the causal LM to last-token logits.

Its output, ``causal_logits`` of shape ``(batch, 1, vocab)`` at each pair's last real token, is what
sentence-transformers' :class:`~sentence_transformers.cross_encoder.modules.LogitScore` reads. Rows are
left-padded with explicit position ids (a row scores the same alone or in any batch). Every row of a
batch usually starts with the same tokens (the template's opening and, when one query's candidates are
reranked, the whole query): those run once and their keys/values are shared by the batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from functools import cache
from typing import Any

import torch
from sentence_transformers.base.modules import InputModule
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from decemb.forward import cache_argument, place, position_ids
from decemb.rerank.rendering import PairRenderer, check_pairs
from decemb.rerank.templates import PairTemplate, answer_token_ids, default_pair_template
from decemb.st.saved import LOAD_KWARGS, SavedModuleLoader

__all__ = ["LOAD_KWARGS", "DecembPairEncoder", "shared_prefix", "sliding_window"]

MIN_SHARED_PREFIX = 4


def shared_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Length of the leading ids that every row has (at most the shortest row minus one token)."""
    if len(rows) < 2:
        return 0
    limit = min(len(row) for row in rows) - 1
    first = rows[0]
    length = 0
    while length < limit and all(row[length] == first[length] for row in rows):
        length += 1
    return length


@cache
def _takes_logits_to_keep(model_class: type) -> bool:
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


def sliding_window(model: PreTrainedModel) -> int | None:
    """The attention window of a model with sliding-window layers (``None``: every layer sees everything).
    Shared-prefix rows carry their padding between prefix and tail, so a window would count it."""
    config = model.config.get_text_config()
    window = getattr(config, "sliding_window", None)
    if not window or getattr(config, "use_sliding_window", True) is False:
        return None
    types = getattr(config, "layer_types", None)
    if types is not None and not any("sliding" in str(kind) for kind in types):
        return None
    return int(window)


def _unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


class DecembPairEncoder(SavedModuleLoader, InputModule):
    """Input module of a decoder :class:`~sentence_transformers.CrossEncoder` (see the module docstring)."""

    config_file_name = "decemb_reranker_config.json"
    config_keys = ["template", "max_length", "prefix_cache"]
    save_in_root = True

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        template: PairTemplate | dict[str, Any] | None = None,
        max_length: int | None = 512,
        prefix_cache: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(template, dict):
            template = PairTemplate.from_dict(template)
        self.pair_template = template if template is not None else default_pair_template(tokenizer)
        self.tokenizer = tokenizer
        self.prefix_cache = prefix_cache
        limit = getattr(model.config.get_text_config(), "max_position_embeddings", None)
        if max_length is not None and limit is not None and max_length > limit:
            max_length = int(limit)
        self.renderer = PairRenderer(tokenizer, self.pair_template, max_length)
        self.yes_id, self.no_id = answer_token_ids(tokenizer, self.pair_template)
        self.auto_model = model

    # -- configuration -------------------------------------------------------------------------
    @property
    def template(self) -> dict[str, Any]:
        return self.pair_template.to_dict()

    @property
    def max_length(self) -> int | None:
        return self.renderer.max_length

    @property
    def max_seq_length(self) -> int | None:
        return self.renderer.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        self.renderer = PairRenderer(self.tokenizer, self.pair_template, value)

    # -- rendering -----------------------------------------------------------------------------
    def check(self, pairs: Any) -> list[tuple[str, str]]:
        """Validate pairs up front (errors name the caller's pair index); render every distinct query."""
        checked = check_pairs(pairs)
        first: dict[str, int] = {}
        for index, (query, _) in enumerate(checked):
            first.setdefault(query, index)
        if first:
            document = "x"
            for query, index in first.items():
                try:
                    self.renderer.render([(query, document)])
                except ValueError as error:
                    raise type(error)(str(error).replace("pair 0:", f"pair {index}:", 1)) from None
        return checked

    def preprocess(
        self, inputs: Sequence[Any], prompt: str | None = None, task: str | None = None, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        if prompt:
            raise ValueError("a decemb reranker takes no prompt: set the closing question in its pair template")
        if inputs and all(isinstance(item, str) for item in inputs):  # single texts: sentence-transformers'
            return self._plain(inputs)  # model card counts tokens per dataset column this way
        rows = self.renderer.render(inputs)
        shared = shared_prefix(rows) if self.prefix_cache else 0
        width = max((len(row) - shared for row in rows), default=0)
        window = sliding_window(self.auto_model)
        if shared < MIN_SHARED_PREFIX or (window is not None and shared + width > window):
            shared = 0
        tails = [row[shared:] for row in rows]
        pad = 0 if self.tokenizer.pad_token_id is None else int(self.tokenizer.pad_token_id)
        width = max((len(t) for t in tails), default=0)
        return {
            "input_ids": place(tails, width, "left", pad, torch.long),
            "attention_mask": place([[1] * len(t) for t in tails], width, "left", 0, torch.long),
            "prefix_ids": torch.tensor([rows[0][:shared] if rows else []], dtype=torch.long),
        }

    def _plain(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        ids = self.tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True)["input_ids"]
        width = max((len(row) for row in ids), default=0)
        pad = 0 if self.tokenizer.pad_token_id is None else int(self.tokenizer.pad_token_id)
        return {
            "input_ids": place(ids, width, "left", pad, torch.long),
            "attention_mask": place([[1] * len(row) for row in ids], width, "left", 0, torch.long),
        }

    # -- forward -------------------------------------------------------------------------------
    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        model = self.auto_model
        device = model.get_input_embeddings().weight.device
        ids = features["input_ids"].to(device)
        mask = features["attention_mask"].to(device)
        prefix = features.get("prefix_ids")
        batch = ids.shape[0]
        extra: dict[str, Any] = {}
        inner = type(_unwrapped(model))
        if _takes_logits_to_keep(inner):
            extra["logits_to_keep"] = 1
        if prefix is not None and prefix.shape[1] > 0:
            prefix = prefix.to(device)
            past = DynamicCache(config=model.config)
            ones = torch.ones_like(prefix)
            model(
                input_ids=prefix,
                attention_mask=ones,
                position_ids=position_ids(ones),
                use_cache=True,
                **{cache_argument(inner): past},
                **extra,
            )
            past.batch_repeat_interleave(batch)
            full = torch.cat([ones.expand(batch, -1), mask], dim=1)
            positions = position_ids(full)[:, prefix.shape[1] :]
            extra[cache_argument(inner)] = past
            extra["use_cache"] = True
            mask = full
        else:
            positions = position_ids(mask)
            extra["use_cache"] = False
        output = model(input_ids=ids, attention_mask=mask, position_ids=positions, return_dict=True, **extra)
        logits = output.logits[:, -1:, :]
        return {**features, "causal_logits": logits}

    # -- persistence ---------------------------------------------------------------------------
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        model = self.auto_model
        if hasattr(model, "merge_and_unload"):
            raise ValueError("merge the LoRA adapter (merge_and_unload) before saving the reranker")
        model.save_pretrained(output_path, safe_serialization=safe_serialization)
        self.tokenizer.save_pretrained(output_path)
        self.save_config(output_path)

    @classmethod
    def _weights_loader(cls) -> Any:
        from decemb.rerank.loading import load_causal_lm

        return load_causal_lm

    @classmethod
    def _from_saved(cls, config: dict[str, Any], model: Any, tokenizer: Any) -> DecembPairEncoder:
        return cls(model, tokenizer, **config)
