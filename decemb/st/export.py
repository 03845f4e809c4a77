"""Export a decemb model as a plain sentence-transformers folder (ST's own ``Transformer`` + ``Pooling``).

sentence-transformers 6 imports a module class from outside its own package only with
``trust_remote_code=True``, local folders included (``sentence_transformers.util.misc.import_module_class``);
it has no public registry or entry point for third-party modules. So the only way a folder loads with a
bare ``SentenceTransformer(path)`` is to list built-in modules alone. That is exact for the strategies
whose input is the text itself under causal attention and whose pooling ST's ``Pooling`` computes over
the same tokens:

* ``mean`` → ``Pooling("mean")``, ``last`` → ``Pooling("lasttoken")``, ``sgpt`` → ``Pooling("weightedmean")``;
* at the final layer (ST's module returns ``last_hidden_state``), with the text read as text (no chat
  template: the module's modality is pinned to ``text``), special-token strings inside a text read as
  characters (``split_special_tokens``, as decemb does) and right padding (positions from 0).

It is refused, in one line, where ST would pool a token decemb does not: a tokenizer that adds BOS
(``mean``/``sgpt``: ST's mean and position weights include it; ``last`` is exact) or EOS (all three).
Every other strategy renders a template around the text or pools a span ST cannot express.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# decemb strategy → sentence-transformers Pooling mode (exact over the same tokens).
POOLING_MODES = {"mean": "mean", "last": "lasttoken", "sgpt": "weightedmean"}


class NotExportableError(ValueError):
    """The model cannot be written as plain sentence-transformers modules with identical vectors."""


def plain_pooling_mode(model: SentenceTransformer) -> str:
    """The ST pooling mode that reproduces ``model`` exactly, or :class:`NotExportableError` saying why."""
    from decemb.rendering import special_affixes
    from decemb.st.embedder import DecembEmbedder

    embedder = model[0]
    if not isinstance(embedder, DecembEmbedder):
        raise NotExportableError("export_plain() needs a decemb model (its first module is a DecembEmbedder)")
    name = embedder.strategy
    if name not in POOLING_MODES:
        raise NotExportableError(
            f"strategy {name!r} renders a template or pools a span that sentence-transformers' own modules cannot "
            f"express; only {', '.join(POOLING_MODES)} export to a plain folder (save() keeps decemb's modules)"
        )
    from decemb.forward import num_layers

    if embedder.core.resolve_layer() != num_layers(embedder.auto_model):
        raise NotExportableError(
            f"layer {embedder.settings.layer} is not the final layer: sentence-transformers' Transformer module "
            "returns the final (normed) output only"
        )
    if type(embedder.auto_model).__module__.startswith("peft"):
        raise NotExportableError("the base model is wrapped by peft: merge the adapter first (merge_and_unload)")
    prefix, suffix = special_affixes(embedder.tokenizer)
    if not embedder.settings.add_special_tokens and (prefix or suffix):
        raise NotExportableError(
            "add_special_tokens=False, but sentence-transformers always adds the tokenizer's special tokens"
        )
    if suffix:
        raise NotExportableError(
            f"the tokenizer appends {embedder.tokenizer.convert_ids_to_tokens(suffix)} to every text; "
            f"sentence-transformers' {POOLING_MODES[name]!r} pooling would read it and decemb's {name!r} does not"
        )
    if prefix and name != "last":
        raise NotExportableError(
            f"the tokenizer adds {embedder.tokenizer.convert_ids_to_tokens(prefix)} before every text; "
            f"sentence-transformers' {POOLING_MODES[name]!r} pooling includes it and decemb's {name!r} does not "
            "(strategy 'last' exports exactly with such a tokenizer)"
        )
    return POOLING_MODES[name]


def export_plain(model: SentenceTransformer, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` as sentence-transformers' own ``Transformer`` + ``Pooling`` (+ ``Normalize``),
    loadable with ``SentenceTransformer(path)`` without decemb and without ``trust_remote_code``, giving the
    same vectors. Refused (:class:`NotExportableError`, one line) where that cannot be exact."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    mode = plain_pooling_mode(model)
    embedder = model[0]
    extra = list(model)[2:]
    if any(not isinstance(module, Normalize) for module in extra):
        names = [type(module).__name__ for module in extra]
        raise NotExportableError(f"modules after the pooling ({names}) are not sentence-transformers' Normalize")
    folder = Path(os.fspath(path)).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    backbone = embedder.auto_model
    backbone.save_pretrained(folder)
    tokenizer = copy.deepcopy(embedder.tokenizer)
    tokenizer.padding_side = "right"  # positions from 0 for every row, as decemb counts them
    tokenizer.save_pretrained(folder)
    max_length = embedder.settings.max_length or getattr(backbone.config, "max_position_embeddings", None)
    transformer = Transformer(
        str(folder),
        transformer_task="feature-extraction",
        modality_config={"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
        module_output_name="token_embeddings",
        processing_kwargs={"text": {"split_special_tokens": True}},
        model_kwargs={"dtype": backbone.dtype},
        max_seq_length=max_length,
    )
    modules: list[Any] = [transformer, Pooling(embedder.get_embedding_dimension(), pooling_mode=mode)]
    modules += [Normalize() for _ in extra]
    plain = SentenceTransformer(
        modules=modules, device=str(embedder.core.device), similarity_fn_name=model.similarity_fn_name
    )
    from decemb.st.card import describe_for_card, prepare_card_data, save_with_card

    prepare_card_data(plain, embedder.base_model, tags=["decemb", embedder.strategy, "decemb-export"])
    save_with_card(plain, folder, describe_for_card(model, folder, plain_export=True))
    return folder
