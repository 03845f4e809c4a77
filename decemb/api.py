"""Public entry points: ``decemb.load``, ``from_backbone`` and ``export_plain`` (``explain``: decemb.st.explain)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from decemb.backends import apply_backend, with_backend
from decemb.load_options import LOAD_KEYS, LoadOptions, load_options
from decemb.loading import load_backbone
from decemb.settings import SETTING_KEYS, EncodeSettings, settings_from
from decemb.st import DecembEmbedder, DecembModel, DecembPooling
from decemb.st.card import base_model_of
from decemb.st.saved import is_saved_folder, open_saved_folder
from decemb.strategies import Strategy, strategy_of


def is_saved_model(source: str | os.PathLike[str], *, trust_remote_code: bool = False) -> bool:
    """Whether ``source`` is a folder saved from a decemb SentenceTransformer (see
    :func:`decemb.st.saved.is_saved_folder`)."""
    return is_saved_folder(source, DecembEmbedder.config_file_name, trust_remote_code=trust_remote_code)


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keywords → (encode settings, strategy options): strategies may not name an option like a setting."""
    settings = {key: value for key, value in options.items() if key in SETTING_KEYS}
    return settings, {key: value for key, value in options.items() if key not in SETTING_KEYS}


def from_backbone(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    strategy: str | Mapping[str, Any] | Strategy = "mean",
    *,
    settings: EncodeSettings | None = None,
    normalize: bool = False,
    base_model: str | None = None,
    backend: str | None = None,
    **options: Any,
) -> SentenceTransformer:
    """Wrap an already loaded base model and tokenizer (shared, not copied) with a strategy.

    ``backend``: run on another compute backend (:mod:`decemb.backends`, e.g. ``int8``): the model is then
    converted as a copy, never in place.
    ``options``: :class:`~decemb.settings.EncodeSettings` fields (``max_length``, ``layer``, ``padding_side``,
    ``add_special_tokens``, ``deterministic``; they override ``settings``) and the strategy's own options.
    ``base_model``: the name the saved model card gives the base model (default: the model's Hub id, if any).
    """
    setting_values, strategy_options = split_options(options)
    spec = strategy_of(strategy, **strategy_options)
    encode_settings = settings_from(settings, **setting_values)
    name = base_model or base_model_of(None, model)
    if backend is not None:
        model = with_backend(model, load_options(backend=backend).backend)
    embedder = DecembEmbedder(model, tokenizer, spec, settings=encode_settings, base_model=name)
    modules: list[torch.nn.Module] = [embedder, DecembPooling(embedder.get_embedding_dimension())]
    if normalize:
        modules.append(Normalize())
    return DecembModel(modules=modules, device=str(embedder.core.device))


def load(
    source: str | os.PathLike[str] = "smollm2-135m",
    strategy: str | Mapping[str, Any] | Strategy | None = None,
    *,
    settings: EncodeSettings | None = None,
    normalize: bool = False,
    loading: LoadOptions | None = None,
    **options: Any,
) -> SentenceTransformer:
    """Load a decoder-only model as a SentenceTransformer that embeds with ``strategy``.

    ``source``: a Hub id, a local model folder, a ``.gguf`` file or a built-in alias
    (``smollm2-135m``, ``gemma3-270m``). Keywords are loading options (:class:`~decemb.load_options.LoadOptions`:
    ``dtype``, ``device``, ``device_map``, ``attn_implementation``, ``revision``, ``adapter``,
    ``trust_remote_code``, ``backend``; or one ``loading=LoadOptions(...)``), encode settings (``max_length``,
    ``layer``, ``padding_side``, ``add_special_tokens``, ``deterministic``) or the strategy's options, e.g.
    ``load("smollm2-135m", "echo", pooling="last", backend="int8")``; all are validated before the model loads.
    A folder saved by a decemb model's ``save`` reloads as saved when no strategy is given (the
    default strategy for any other source is ``mean``). ``deterministic=True`` makes every vector
    bit-identical whatever batch it is computed in (see :func:`decemb.forward.hidden_states_batch_independent`).
    Code shipped in a folder (a planted module class, an ``auto_map``) never runs and is refused in one line,
    unless ``trust_remote_code=True`` (see :mod:`decemb.trust`).
    """
    keys = {key: options.pop(key) for key in LOAD_KEYS if key in options}
    opts = load_options(loading, **keys)
    trust = {"trust_remote_code": opts.trust_remote_code}
    if strategy is None and not options and settings is None and is_saved_model(source, **trust):
        model = open_saved_folder(
            DecembModel, source, device=opts.device, dtype=opts.dtype, attn_implementation=opts.attn_implementation,
            device_map=opts.device_map, **trust,
        )  # fmt: skip
        if opts.backend != "torch":
            model[0].auto_model = apply_backend(model[0].auto_model, opts.backend)  # freshly loaded: ours
        return model
    setting_values, strategy_options = split_options(options)
    encode_settings = settings_from(settings, **setting_values)
    strategy = "mean" if strategy is None else strategy
    spec = strategy_of(strategy, **strategy_options)
    model, tokenizer = load_backbone(source, opts)
    return from_backbone(
        model, tokenizer, spec, settings=encode_settings, normalize=normalize, base_model=base_model_of(source)
    )


def export_plain(model: SentenceTransformer, path: str | os.PathLike[str]) -> Path:
    """Write a ``mean``/``last``/``sgpt`` decemb model as sentence-transformers' own ``Transformer`` + ``Pooling``
    (+ ``Normalize``): ``SentenceTransformer(path)`` loads it without decemb or ``trust_remote_code`` and gives
    the same vectors. Anything that cannot be exact is refused in one line (see :mod:`decemb.st.export`)."""
    from decemb.st.export import export_plain as export

    return export(model, path)
