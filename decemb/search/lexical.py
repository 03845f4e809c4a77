"""Lexical retrieval: BM25 over a corpus, by ``bm25s`` (Lucene's BM25 variant; English stopwords and the
Snowball stemmer from ``PyStemmer`` by default, BEIR's and Pyserini's setup).

    bm25 = LexicalIndex.build(texts)
    bm25.search(["what is rlhf?"], top_k=100)     # [[(corpus position, score), ...]] best first
    bm25.save(folder); LexicalIndex.load(folder)  # the same rankings
    bm25.write(handle); LexicalIndex.read(path)   # the same, as one file (a search index's ``bm25-N.npz``)

A query with no term in the corpus's vocabulary gets an empty list (never arbitrary documents at score 0).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from pydantic import Field

from decemb.config_base import StrictModel

__all__ = ["Bm25Settings", "LexicalIndex", "bm25s"]

SETTINGS_FILE = "decemb_bm25.json"


def bm25s() -> Any:
    try:
        import bm25s as module
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("BM25 retrieval needs bm25s and PyStemmer: pip install 'decemb[search]'") from error
    return module


class Bm25Settings(StrictModel, frozen=True):
    """How texts become terms and terms become scores (``k1``, ``b``, bm25s' ``method``, ``stopwords``: a
    language code or none, ``stemmer``: a Snowball language or none); recorded with a saved index, since a
    query must be read the way the corpus was."""

    k1: float = Field(1.5, ge=0)
    b: float = Field(0.75, ge=0, le=1)
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"  # bm25s' variants
    stopwords: str | None = "en"
    stemmer: str | None = "english"

    def tokenize(self, texts: Sequence[str]) -> Any:
        stemmer = None
        if self.stemmer:
            import Stemmer

            stemmer = Stemmer.Stemmer(self.stemmer)
        return bm25s().tokenize(list(texts), stopwords=self.stopwords, stemmer=stemmer, show_progress=False)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores, best first, ties by ascending position."""
    if k < len(scores):
        threshold = np.partition(scores, len(scores) - k)[len(scores) - k]
        candidates = np.flatnonzero(scores >= threshold)
    else:
        candidates = np.arange(len(scores))
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]


class LexicalIndex:
    """A BM25 index of ``count`` documents, addressed by position (the caller keeps the ids)."""

    def __init__(self, retriever: Any, settings: Bm25Settings, count: int) -> None:
        self.retriever, self.settings, self.count = retriever, settings, count

    @classmethod
    def build(cls, texts: Sequence[str], settings: Bm25Settings | None = None) -> LexicalIndex:
        settings = settings or Bm25Settings()
        if not texts:
            raise ValueError("a BM25 index needs at least one document")
        retriever = bm25s().BM25(k1=settings.k1, b=settings.b, method=settings.method)
        retriever.index(settings.tokenize(texts), show_progress=False)
        return cls(retriever, settings, len(texts))

    def search(self, queries: Sequence[str], top_k: int = 100) -> list[list[tuple[int, float]]]:
        """Each query's best ``top_k`` documents as ``(position, score)``, best first; ties by position."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int (got {top_k!r})")
        if not queries:
            return []
        k = min(top_k, self.count)
        tokens = self.settings.tokenize(queries)
        vocabulary = self.retriever.vocab_dict
        inverse = {index: term for term, index in tokens.vocab.items()}
        terms = [[inverse[i] for i in ids if inverse[i] in vocabulary] for ids in tokens.ids]
        out: list[list[tuple[int, float]]] = [[] for _ in queries]
        asked = [i for i, query_terms in enumerate(terms) if query_terms]
        if not asked:
            return out
        for query in asked:
            scores = np.asarray(self.retriever.get_scores(terms[query]), dtype=np.float64)
            out[query] = [(int(p), float(scores[p])) for p in _top(scores, k) if scores[p] > 0]
        return out

    def save(self, folder: str | os.PathLike[str]) -> None:
        """Write the index into ``folder`` (bm25s' own files plus the settings)."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(target), show_progress=False)
        record = {"settings": self.settings.model_dump(), "count": self.count}
        (target / SETTINGS_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")

    def write(self, handle: IO[bytes]) -> None:
        """The index as one ``.npz`` file: each file :meth:`save` writes, as bytes (nothing pickled)."""
        with tempfile.TemporaryDirectory(prefix="decemb-bm25-") as staging:
            self.save(staging)
            files = {path.name: np.frombuffer(path.read_bytes(), dtype=np.uint8) for path in Path(staging).iterdir()}
        np.savez(handle, **files)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> LexicalIndex:
        """An index :meth:`write` wrote; a damaged file is a ``ValueError`` naming it."""
        try:
            with np.load(path, allow_pickle=False) as packed, tempfile.TemporaryDirectory() as staging:
                for name in packed.files:
                    (Path(staging) / Path(name).name).write_bytes(packed[name].tobytes())
                return cls.load(staging)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise ValueError(f"{os.fspath(path)} is not a readable BM25 index ({error})") from None

    @classmethod
    def load(cls, folder: str | os.PathLike[str], *, mmap: bool = False) -> LexicalIndex:
        source = Path(folder)
        try:
            record = json.loads((source / SETTINGS_FILE).read_text(encoding="utf-8"))
            settings = Bm25Settings(**record["settings"])
            count = int(record["count"])
        except (OSError, ValueError, KeyError, TypeError) as error:  # pydantic's ValidationError is a ValueError
            raise ValueError(f"{source / SETTINGS_FILE} is missing or damaged ({error})") from None
        retriever = bm25s().BM25.load(str(source), mmap=mmap, show_progress=False, verbosity=0)
        return cls(retriever, settings, count)
