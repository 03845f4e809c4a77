"""Public entry points: ``decemb.load`` and the strategy listing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from decemb.loading import load_backbone, parse_dtype
from decemb.st import DecembEmbedder, DecembModel, DecembPooling
from decemb.strategies import STRATEGIES, Strategy, build_strategy


def is_saved_model(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` is a folder saved from a decemb SentenceTransformer (only decemb and
    sentence-transformers module classes, which is what makes trusting its code safe)."""
    folder = Path(os.fspath(source)).expanduser()
    if not (folder / "modules.json").is_file() or not (folder / DecembEmbedder.config_file_name).is_file():
        return False
    types = [module.get("type", "") for module in json.loads((folder / "modules.json").read_text())]
    foreign = [t for t in types if not t.startswith(("decemb.", "sentence_transformers."))]
    if foreign:
        raise ValueError(f"{folder} lists module classes outside decemb and sentence-transformers: {foreign}")
    return True


def list_strategies() -> list[str]:
    """Names of the registered strategies, sorted."""
    return STRATEGIES.names()


def describe_strategies() -> list[dict[str, Any]]:
    """One record per strategy: name, summary, reference, attention and options with defaults."""
    records = []
    for name in STRATEGIES.names():
        cls = STRATEGIES.get(name)
        options = {key: field.default for key, field in cls.model_fields.items()}
        records.append(
            {
                "name": name,
                "summary": cls.summary,
                "reference": cls.reference,
                "attention": cls.attention,
                "options": options,
            }
        )
    return records


def from_backbone(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    strategy: str | Strategy = "mean",
    *,
    max_length: int | None = 512,
    layer: int = -1,
    padding_side: str | None = None,
    add_special_tokens: bool = True,
    normalize: bool = False,
    deterministic: bool = False,
    **strategy_options: Any,
) -> SentenceTransformer:
    """Wrap an already loaded base model and tokenizer (shared, not copied) with a strategy."""
    spec = strategy if isinstance(strategy, Strategy) else build_strategy(strategy, **strategy_options)
    if isinstance(strategy, Strategy) and strategy_options:
        raise ValueError("pass options either in the Strategy object or as keywords, not both")
    embedder = DecembEmbedder(
        model,
        tokenizer,
        spec,
        max_length=max_length,
        layer=layer,
        padding_side=padding_side,
        add_special_tokens=add_special_tokens,
        deterministic=deterministic,
    )
    modules: list[torch.nn.Module] = [embedder, DecembPooling(spec.pooling_name, embedder.get_embedding_dimension())]
    if normalize:
        modules.append(Normalize())
    device = model.get_input_embeddings().weight.device
    return DecembModel(modules=modules, device=str(device))


def load(
    source: str | os.PathLike[str] = "smollm2-135m",
    strategy: str | Strategy | None = None,
    *,
    max_length: int | None = 512,
    layer: int = -1,
    padding_side: str | None = None,
    add_special_tokens: bool = True,
    normalize: bool = False,
    deterministic: bool = False,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    device_map: Any = None,
    attn_implementation: str | None = None,
    revision: str | None = None,
    adapter: str | None = None,
    **strategy_options: Any,
) -> SentenceTransformer:
    """Load a decoder-only model as a SentenceTransformer that embeds with ``strategy``.

    ``source``: a Hub id, a local model folder, a ``.gguf`` file or a built-in alias
    (``smollm2-135m``, ``gemma3-270m``). Extra keywords are the strategy's options, e.g.
    ``load("smollm2-135m", "echo", pooling="last")``; they are validated before the model loads.
    A folder saved by a decemb model's ``save`` reloads as saved when no strategy is given (the
    default strategy for any other source is ``mean``). ``deterministic=True`` makes every vector
    bit-identical whatever batch it is computed in (see :func:`decemb.forward.hidden_states_batch_independent`).
    """
    if strategy is None and not strategy_options and is_saved_model(source):
        model_kwargs = {
            "dtype": parse_dtype(dtype),
            "attn_implementation": attn_implementation,
            "device_map": device_map,
        }
        return DecembModel(
            os.fspath(source),
            device=None if device is None else str(device),
            trust_remote_code=True,
            model_kwargs={key: value for key, value in model_kwargs.items() if value is not None},
        )
    strategy = "mean" if strategy is None else strategy
    spec = strategy if isinstance(strategy, Strategy) else build_strategy(strategy, **strategy_options)
    model, tokenizer = load_backbone(
        source,
        dtype=dtype,
        device=device,
        device_map=device_map,
        attn_implementation=attn_implementation,
        revision=revision,
        adapter=adapter,
    )
    return from_backbone(
        model,
        tokenizer,
        spec,
        max_length=max_length,
        layer=layer,
        padding_side=padding_side,
        add_special_tokens=add_special_tokens,
        normalize=normalize,
        deterministic=deterministic,
    )


def explain(model: SentenceTransformer, text: str, task: str | None = None) -> str:
    """The rendered input for ``text`` as the model reads it, pooled tokens wrapped in ⟦ ⟧.

    ``task``: ``None``/"query" or "document" (the side that ``encode_query``/``encode_document`` render).
    """
    embedder = model[0]
    if not isinstance(embedder, DecembEmbedder):
        raise TypeError("explain() needs a decemb model (its first module is a DecembEmbedder)")
    features = embedder.preprocess([text], task=task)
    ids = features["input_ids"][0].tolist()
    pooled = features["pool_mask"][0].tolist()
    out, inside = [], False
    for token_id, flag in zip(ids, pooled):
        if flag != inside:
            out.append("⟦" if flag else "⟧")
            inside = flag
        out.append(embedder.tokenizer.decode([token_id]))
    if inside:
        out.append("⟧")
    return "".join(out)
