"""The sentence-transformers input module: renders texts with a strategy, tokenizes and runs the model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from sentence_transformers.base.modules import InputModule
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from decemb.core import EncodingCore
from decemb.rendering import Renderer
from decemb.settings import EncodeSettings, settings_from
from decemb.st.saved import SavedModuleLoader
from decemb.strategies import Kind, Strategy, strategy_of

# The settings a saved model carries (batching is the caller's business, not the model's).
SAVED_SETTINGS = ("max_length", "layer", "padding_side", "add_special_tokens", "deterministic")


class DecembEmbedder(SavedModuleLoader, InputModule):
    """Input module: ``preprocess`` renders + tokenizes (query or document side), ``forward`` runs the
    base model with the strategy's attention and returns the chosen layer as ``token_embeddings``
    together with the ``pool_weights`` (the strategy's pooling) that the pooling module reads.
    Everything goes through one :class:`~decemb.core.EncodingCore`."""

    config_file_name = "decemb_config.json"
    config_keys = ["strategy", "strategy_options", *SAVED_SETTINGS, "base_model"]
    save_in_root = True

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        strategy: str | Mapping[str, Any] | Strategy,
        strategy_options: dict[str, Any] | None = None,
        settings: EncodeSettings | None = None,
        base_model: str | None = None,
        **setting_values: Any,
    ) -> None:
        super().__init__()
        self.base_model = base_model  # a name for the card (Hub id, alias's source, file or folder name)
        self.strategy_spec = strategy_of(strategy, **(strategy_options or {}))
        self.core = EncodingCore(model, tokenizer, settings_from(settings, **setting_values))
        self.core.check(self.strategy_spec)
        self.auto_model = model  # a registered submodule: .to(), .parameters() and the trainer see it

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        core = self.__dict__.get("core")
        if name == "auto_model" and core is not None and value is not core.model:  # e.g. a PEFT wrapper
            self.core = EncodingCore(value, core.tokenizer, core.settings)

    # -- configuration -------------------------------------------------------------------------
    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.core.tokenizer

    @tokenizer.setter
    def tokenizer(self, value: PreTrainedTokenizerBase) -> None:
        self.core = EncodingCore(self.core.model, value, self.core.settings)

    @property
    def settings(self) -> EncodeSettings:
        return self.core.settings

    def __getattr__(self, name: str) -> Any:
        if name in SAVED_SETTINGS:  # config_keys are read as attributes by sentence-transformers
            return getattr(self.core.settings, name)
        return super().__getattr__(name)

    @property
    def strategy(self) -> str:
        return self.strategy_spec.name

    @property
    def strategy_options(self) -> dict[str, Any]:
        return self.strategy_spec.options()

    @property
    def max_seq_length(self) -> int | None:
        return self.core.settings.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        core = self.core.with_settings(max_length=value)  # capped and checked like at construction
        core.check(self.strategy_spec)
        self.core = core

    def get_embedding_dimension(self) -> int:
        return self.core.hidden_size

    # -- rendering -----------------------------------------------------------------------------
    def renderer(self, kind: Kind, instruction: str | None = None) -> Renderer:
        return self.core.renderer(self.strategy_spec, kind, instruction)

    def preprocess(
        self, inputs: Sequence[str], prompt: str | None = None, task: str | None = None, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        instruction = None
        if prompt:
            if not self.strategy_spec.takes_instruction:
                raise ValueError(f"strategy {self.strategy!r} takes no prompt/instruction (got prompt {prompt[:40]!r})")
            instruction = prompt
        return self.core.features(self.strategy_spec, inputs, resolve_kind(task), instruction)

    # -- forward -------------------------------------------------------------------------------
    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        states = self.core.hidden_states(
            features["input_ids"], features["attention_mask"], self.strategy_spec.attention
        )
        return {**features, "token_embeddings": states[self.core.settings.layer]}

    # -- persistence ---------------------------------------------------------------------------
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.auto_model.save_pretrained(output_path, safe_serialization=safe_serialization)
        self.tokenizer.save_pretrained(output_path)
        self.save_config(output_path)
        # Also when a plain SentenceTransformer holds this module (loaded with trust_remote_code=True): the
        # folder's config (written before the modules) says decemb is needed to load it.
        from decemb.st.card import add_requirements

        add_requirements(output_path)

    @classmethod
    def _weights_loader(cls) -> Any:
        from decemb.loading import load_backbone

        return load_backbone

    @classmethod
    def _from_saved(cls, config: dict[str, Any], model: Any, tokenizer: Any) -> DecembEmbedder:
        strategy = config.pop("strategy")
        strategy_options = config.pop("strategy_options", None)
        base_model = config.pop("base_model", None)
        settings = settings_from(None, **config)
        return cls(model, tokenizer, strategy, strategy_options, settings=settings, base_model=base_model)


def resolve_kind(task: str | None) -> Kind:
    """ST's ``task`` ("query" from encode_query, "document" from encode_document) → rendering side.

    Plain ``encode`` (no task) renders the query side, which is also the symmetric (STS) side.
    """
    if task in (None, "query"):
        return "query"
    if task in ("document", "passage", "corpus"):
        return "document"
    raise ValueError(f"unknown task {task!r}: decemb renders 'query' or 'document' inputs")
