"""A decemb embedder behind the server: request checks (before any queueing) and the batch runner.

The runner embeds a whole batch of requests in one :meth:`decemb.engine.Engine.embed` call over the model's
own :class:`~decemb.core.EncodingCore` settings (one job per request, on its side), so each vector is the one
the model's ``encode_query`` / ``encode_document`` gives. Checks run on a private copy of the tokenizer
(the worker thread uses the original), with an untruncated renderer: what they count is what the strategy
feeds the model, template and special tokens included.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize

from decemb.engine import EmbeddingJob, Engine
from decemb.errors import ConfigError
from decemb.normalize import l2_normalize
from decemb.rendering import Renderer, check_text
from decemb.serve.errors import APIError
from decemb.st.embedder import DecembEmbedder
from decemb.st.pooling import DecembPooling
from decemb.strategies import Kind


@dataclass(frozen=True)
class EmbedWork:
    """One checked request: its texts, their side, and their rendered token counts."""

    texts: list[str]
    kind: Kind
    tokens: list[int]


def text_problem(value: object) -> str | None:
    """Why ``value`` cannot be embedded (decemb's own text check, without its "input 0" prefix), or ``None``."""
    try:
        check_text(0, value)
    except (TypeError, ValueError) as error:
        return str(error).removeprefix("input 0 ")
    return None


class ServedEmbedder:
    """A decemb SentenceTransformer (``DecembEmbedder`` + ``DecembPooling`` [+ ``Normalize``]) served as ``name``."""

    def __init__(self, model: SentenceTransformer, name: str, max_tokens_per_input: int | None = None) -> None:
        modules = list(model)
        if not modules or not isinstance(modules[0], DecembEmbedder):
            raise ConfigError("not a decemb embedder (its first module is not a DecembEmbedder)", key="MODEL")
        rest = [type(m).__name__ for m in modules[1:] if not isinstance(m, DecembPooling | Normalize)]
        if rest:
            raise ConfigError(f"decemb serve cannot run the model's module(s) {', '.join(rest)}", key="MODEL")
        embedder: DecembEmbedder = modules[0]
        core = embedder.core
        self.name = name
        self.strategy = embedder.strategy_spec
        self.normalize = any(isinstance(m, Normalize) for m in modules)
        self.dimension = core.hidden_size
        self.max_length = core.settings.max_length
        limit = max_tokens_per_input if max_tokens_per_input is not None else self.max_length
        if limit is None:
            raise ConfigError("the model has no max_length: give a limit", key="--max-tokens-per-input")
        if self.max_length is not None and limit > self.max_length:
            raise ConfigError(
                f"{limit} is above the model's max_length ({self.max_length}): longer inputs would be cut",
                key="--max-tokens-per-input",
            )
        self.token_limit = limit
        self.engine = Engine(core.model, core.tokenizer, core.settings)
        self._tokenizer = copy.deepcopy(core.tokenizer)
        self._add_special_tokens = core.settings.add_special_tokens
        self._renderers: dict[Kind, Renderer] = {}
        self._lock = threading.Lock()

    def _renderer(self, kind: Kind) -> Renderer:
        if kind not in self._renderers:
            self._renderers[kind] = self.strategy.renderer(
                self._tokenizer, kind, None, max_length=None, add_special_tokens=self._add_special_tokens
            )
        return self._renderers[kind]

    def check(self, texts: Sequence[str], kind: Kind, max_inputs: int) -> EmbedWork:
        """The request as work for the batcher, or an :class:`APIError` naming the first bad input."""
        if len(texts) > max_inputs:
            raise APIError(400, f"{len(texts)} inputs; this server takes at most {max_inputs}", param="input")
        for index, text in enumerate(texts):
            problem = text_problem(text)
            if problem:
                raise APIError(400, problem, param=f"input[{index}]")
        with self._lock:
            counts = self._count(list(texts), kind)
        for index, count in enumerate(counts):
            if count > self.token_limit:
                raise APIError(
                    400,
                    f"{count} tokens as the strategy renders it; this server takes at most {self.token_limit}",
                    param=f"input[{index}]",
                    code="context_length_exceeded",
                )
        return EmbedWork(list(texts), kind, counts)

    def _count(self, texts: list[str], kind: Kind) -> list[int]:
        renderer = self._renderer(kind)
        try:
            return [len(rendered) for rendered in renderer.render(texts)]
        except ValueError:  # e.g. a text that tokenizes to nothing: find which one
            for index, text in enumerate(texts):
                try:
                    renderer.render([text])
                except ValueError as error:
                    raise APIError(400, str(error).removeprefix("input 0 "), param=f"input[{index}]") from None
            raise

    def embed(self, works: Sequence[EmbedWork]) -> list[np.ndarray]:
        """One engine call for the whole batch; one float32 array per request, rows in input order."""
        jobs = [EmbeddingJob(strategy=self.strategy, kind=work.kind, texts=work.texts) for work in works]
        vectors = self.engine.embed(jobs)
        if self.normalize:  # as sentence-transformers' Normalize module
            vectors = [l2_normalize(v) for v in vectors]
        return vectors
