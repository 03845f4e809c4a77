"""The SentenceTransformer that ``decemb.load`` returns: checks its inputs before any work."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sentence_transformers import SentenceTransformer

from decemb.rendering import check_text
from decemb.st.installed import InstalledModulesOnly

logger = logging.getLogger(__name__)


def validate_texts(inputs: Any) -> list[str] | str:
    """A str, or a list/tuple/1-D numpy array of non-empty str (returned as a list); anything else is an
    error naming the offending index (see :func:`decemb.rendering.check_text`)."""
    if isinstance(inputs, str):
        check_text(0, inputs)
        return inputs
    if isinstance(inputs, np.ndarray) and inputs.ndim == 1 and inputs.dtype.kind in ("U", "O"):
        inputs = [str(item) if isinstance(item, np.str_) else item for item in inputs.tolist()]
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"expected a str or a list of str, got {type(inputs).__name__}")
    for index, item in enumerate(inputs):
        check_text(index, item)
    return list(inputs)


class DecembModel(InstalledModulesOnly, SentenceTransformer):
    """A plain SentenceTransformer whose ``encode`` (and so ``encode_query``/``encode_document``) rejects
    bad inputs up front, naming their index in the caller's list (the batches it builds are sorted), and
    sorts its batches by token count rather than character count (less padding: ~19% faster on STS-B).
    Reloading a folder resolves its module classes from the installed packages only (no folder code)."""

    _token_lengths: dict[str, int] | None = None
    # ``decemb train``'s scores ({stage: {task: {metric: value}}}) for the model card, when it made this model.
    card_results: dict[str, Any] | None = None

    def encode(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        inputs = validate_texts(inputs)
        texts = [inputs] if isinstance(inputs, str) else inputs
        tokenizer = getattr(self[0], "tokenizer", None)
        if tokenizer is None or len(texts) < 2:
            return super().encode(inputs, *args, **kwargs)
        unique = list(dict.fromkeys(texts))
        counts = tokenizer(unique, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        self._token_lengths = {text: len(ids) for text, ids in zip(unique, counts)}
        try:
            return super().encode(inputs, *args, **kwargs)
        finally:
            self._token_lengths = None

    def _input_length(self, sample: Any) -> int:
        if self._token_lengths is not None and isinstance(sample, str) and sample in self._token_lengths:
            return self._token_lengths[sample]
        return SentenceTransformer._input_length(sample)

    # -- saving: requirements and model card ------------------------------------------------------
    def _get_model_config(self) -> dict[str, Any]:
        from decemb.st.card import requirements

        return {**super()._get_model_config(), "requirements": requirements()}

    def _create_model_card(self, path: str, model_name: str | None = None, *args: Any, **kwargs: Any) -> None:
        from decemb.st.card import describe_for_card, patch_card, prepare_card_data
        from decemb.st.embedder import DecembEmbedder

        embedder = self[0]
        if not isinstance(embedder, DecembEmbedder):
            super()._create_model_card(path, model_name, *args, **kwargs)
            return
        prepare_card_data(self, embedder.base_model, tags=["decemb", embedder.strategy])
        super()._create_model_card(path, model_name, *args, **kwargs)
        try:
            patch_card(self, path, describe_for_card(self, path), plain_export=False)
        except Exception as error:  # the card is documentation: it never stops a save
            logger.warning("could not add decemb's section to the model card in %s: %s", path, error)
