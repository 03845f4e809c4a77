"""A decemb reranker behind the server: request checks (before any queueing) and the batch runner.

A batch of rerank requests is one ``CrossEncoder.predict`` call over all their (query, document) pairs, split
back per request; scores are the reranker's own log-odds. The check renders each query once on a private copy
of the tokenizer, so a query that leaves no room for a document is refused before it reaches the queue.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sentence_transformers import CrossEncoder

from decemb.errors import ConfigError
from decemb.rerank.module import DecembPairEncoder
from decemb.rerank.rendering import PairRenderer
from decemb.serve.embedder import text_problem
from decemb.serve.errors import APIError


@dataclass(frozen=True)
class RerankWork:
    """One checked request: its query and documents."""

    query: str
    documents: list[str]


class ServedReranker:
    """A decemb reranker (``DecembPairEncoder`` + ``LogitScore``) served as ``name``."""

    def __init__(self, reranker: CrossEncoder, name: str, batch_size: int = 32) -> None:
        encoder = reranker[0]
        if not isinstance(encoder, DecembPairEncoder):
            raise ConfigError("not a decemb reranker (its first module is not a DecembPairEncoder)", key="--reranker")
        self.name, self.reranker, self.batch_size = name, reranker, batch_size
        self._renderer = PairRenderer(copy.deepcopy(encoder.tokenizer), encoder.pair_template, encoder.max_length)
        self._lock = threading.Lock()

    def check(self, query: str, documents: Sequence[str], max_inputs: int) -> tuple[RerankWork, int]:
        """(the request as work, its token count for batching), or an :class:`APIError` naming the field."""
        problem = text_problem(query)
        if problem:
            raise APIError(400, problem, param="query")
        if len(documents) > max_inputs:
            raise APIError(
                400, f"{len(documents)} documents; this server takes at most {max_inputs}", param="documents"
            )
        for index, document in enumerate(documents):
            problem = text_problem(document)
            if problem:
                raise APIError(400, problem, param=f"documents[{index}]")
        with self._lock:
            try:
                rows = self._renderer.render([(query, document) for document in documents])
            except ValueError as error:  # the query alone fills max_length
                raise APIError(400, str(error).removeprefix("pair 0: "), param="query") from None
        return RerankWork(query, list(documents)), sum(len(row) for row in rows)

    def rerank(self, works: Sequence[RerankWork]) -> list[np.ndarray]:
        """One ``predict`` over every pair of the batch; one score array per request, in document order."""
        pairs = [(work.query, document) for work in works for document in work.documents]
        scores = np.asarray(
            self.reranker.predict(pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True),
            dtype=np.float32,
        ).reshape(-1)
        out, start = [], 0
        for work in works:
            out.append(scores[start : start + len(work.documents)])
            start += len(work.documents)
        return out
