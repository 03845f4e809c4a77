"""The sentence-transformers input module: renders texts with a strategy, tokenizes and runs the model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from sentence_transformers.base.modules import InputModule
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from decemb.attention import check_bidirectional_support
from decemb.forward import (
    capped_max_length,
    collate,
    hidden_states_batch_independent,
    hidden_states_splitting,
    resolve_layer,
)
from decemb.rendering import Renderer
from decemb.strategies import Kind, Strategy, build_strategy


class DecembEmbedder(InputModule):
    """Input module: ``preprocess`` renders + tokenizes (query or document side), ``forward`` runs the
    base model with the strategy's attention and returns the chosen layer as ``token_embeddings``
    together with the ``pool_mask`` that the pooling module reads."""

    config_file_name = "decemb_config.json"
    config_keys = [
        "strategy",
        "strategy_options",
        "max_length",
        "layer",
        "padding_side",
        "add_special_tokens",
        "deterministic",
    ]
    save_in_root = True

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        strategy: str | Strategy,
        strategy_options: dict[str, Any] | None = None,
        max_length: int | None = 512,
        layer: int = -1,
        padding_side: str | None = None,
        add_special_tokens: bool = True,
        deterministic: bool = False,
    ) -> None:
        super().__init__()
        self.strategy_spec = (
            strategy if isinstance(strategy, Strategy) else build_strategy(strategy, **(strategy_options or {}))
        )
        self.auto_model = model
        self.tokenizer = tokenizer
        if self.strategy_spec.attention == "bidirectional":
            check_bidirectional_support(model)
        resolve_layer(model, layer)
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be a positive integer or None, got {max_length}")
        self.max_length = capped_max_length(model, max_length)
        self.layer = layer
        # Vectors do not depend on the side (positions count from the first real token); right padding
        # lets rows that start alike share a prefix KV cache, so it is the default whatever the tokenizer says.
        self.padding_side = padding_side or "right"
        if self.padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}")
        self.add_special_tokens = add_special_tokens
        if deterministic and self.padding_side != "right":
            raise ValueError("deterministic=True needs padding_side='right'")
        self.deterministic = deterministic
        self._renderers: dict[tuple[Kind, str | None], Renderer] = {}
        for kind in ("query", "document"):
            self.renderer(kind)  # builds and validates both sides now (template vs max_length)

    # -- configuration -------------------------------------------------------------------------
    @property
    def strategy(self) -> str:
        return self.strategy_spec.name

    @property
    def strategy_options(self) -> dict[str, Any]:
        return self.strategy_spec.options()

    @property
    def max_seq_length(self) -> int | None:
        return self.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        self.max_length = value
        self._renderers.clear()

    def get_embedding_dimension(self) -> int:
        return int(self.auto_model.config.get_text_config().hidden_size)

    # -- rendering -----------------------------------------------------------------------------
    def renderer(self, kind: Kind, instruction: str | None = None) -> Renderer:
        key = (kind, instruction)
        if key not in self._renderers:
            self._renderers[key] = self.strategy_spec.renderer(
                self.tokenizer,
                kind,
                instruction,
                max_length=self.max_length,
                add_special_tokens=self.add_special_tokens,
            )
        return self._renderers[key]

    def preprocess(
        self, inputs: Sequence[str], prompt: str | None = None, task: str | None = None, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        kind = resolve_kind(task)
        instruction = None
        if prompt:
            if not self.strategy_spec.takes_instruction:
                raise ValueError(f"strategy {self.strategy!r} takes no prompt/instruction (got prompt {prompt[:40]!r})")
            instruction = prompt
        rendered = self.renderer(kind, instruction).render(list(inputs))
        return collate(rendered, self.tokenizer, self.padding_side)

    # -- forward -------------------------------------------------------------------------------
    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        run = hidden_states_batch_independent if self.deterministic else hidden_states_splitting
        states = run(
            self.auto_model,
            features["input_ids"],
            features["attention_mask"],
            self.strategy_spec.attention,
            (self.layer,),
        )
        return {**features, "token_embeddings": states[self.layer]}

    # -- persistence ---------------------------------------------------------------------------
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.auto_model.save_pretrained(output_path, safe_serialization=safe_serialization)
        self.tokenizer.save_pretrained(output_path)
        self.save_config(output_path)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> DecembEmbedder:
        from decemb.loading import load_backbone

        hub = {"token": token, "cache_folder": cache_folder, "revision": revision}
        config = cls.load_config(model_name_or_path, subfolder=subfolder, local_files_only=local_files_only, **hub)
        folder = cls.load_dir_path(model_name_or_path, subfolder=subfolder, local_files_only=local_files_only, **hub)
        options = dict(model_kwargs or {})
        model, tokenizer = load_backbone(
            folder or os.path.join(model_name_or_path, subfolder),
            dtype=options.pop("dtype", None) or options.pop("torch_dtype", None),
            attn_implementation=options.pop("attn_implementation", None),
            device_map=options.pop("device_map", None),
        )
        return cls(model, tokenizer, **config)


def resolve_kind(task: str | None) -> Kind:
    """ST's ``task`` ("query" from encode_query, "document" from encode_document) → rendering side.

    Plain ``encode`` (no task) renders the query side, which is also the symmetric (STS) side.
    """
    if task in (None, "query"):
        return "query"
    if task in ("document", "passage", "corpus"):
        return "document"
    raise ValueError(f"unknown task {task!r}: decemb renders 'query' or 'document' inputs")
