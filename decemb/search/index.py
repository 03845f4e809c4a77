"""A persistent vector index of a corpus, embedded by a decemb bi-encoder (faiss on CPU).

    index = SearchIndex.build("runs/scifact-index", ids, texts, model, source="smollm2-135m")
    index.search_texts(["what is rlhf?"], model, top_k=20)     # [[Hit(doc_id, text, score, position)]]
    index.search_lexical(["what is rlhf?"], top_k=20)          # BM25 over the same documents
    index.add(new_ids, new_texts, model)                        # incremental; committed atomically
    SearchIndex.open("runs/scifact-index", model)               # refuses another model/strategy/settings
    SearchIndex.build("runs/bm25-index", ids, texts, None)      # BM25 only: no model, no vectors

Vectors are L2-normalised, so scores are cosine similarities. ``kind="exact"`` is a flat inner-product
index (BLAS; exact), ``"hnsw"`` an HNSW graph (approximate, sub-linear), ``"auto"`` picks exact up to
:data:`AUTO_EXACT_MAX` documents. A BM25 index of the same documents (:mod:`decemb.search.lexical`) is
stored in the same generation, so the two sides always come from one commit. The folder layout and atomic
commits are in :mod:`decemb.search.store`. Built with ``model=None``, an index holds the documents and
their BM25 index only (manifest ``kind`` ``"bm25"``): searched lexically, it refuses any vector search with
:class:`~decemb.search.errors.NoVectorsError`, one line saying how to add vectors.

One writer at a time: build and add embed, then take the folder's lock (waiting ``lock_wait`` seconds at
most), reload what another writer committed meanwhile and commit on top (:mod:`decemb.search.writing`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sentence_transformers import SentenceTransformer

import decemb.search.store as store
from decemb.search.corpus import check_corpus
from decemb.search.errors import CorruptIndexError, NoVectorsError, SearchError, check_count
from decemb.search.identity import check_identity, model_identity
from decemb.search.lexical import Bm25Settings, LexicalIndex
from decemb.search.reading import read_generation
from decemb.search.vectors import Hit, embed_documents, embed_queries, faiss, normalized, vector_index
from decemb.search.writing import DEFAULT_LOCK_WAIT, build_target, check_build, check_lock_wait, writer_lock

__all__ = ["AUTO_EXACT_MAX", "Hit", "IndexKind", "SearchIndex", "embed_documents", "embed_queries", "faiss"]

IndexKind = Literal["auto", "exact", "hnsw"]
AUTO_EXACT_MAX = 50_000
_OPEN_ATTEMPTS = 5  # a reader re-reads the manifest this many times when commits remove its files


class SearchIndex:
    """A corpus index folder opened in memory (build with :meth:`build`, open with :meth:`open`)."""

    def __init__(
        self,
        folder: Path,
        manifest: dict[str, Any],
        index: Any,
        ids: list[str],
        texts: list[str],
        lexical: LexicalIndex | None = None,
    ) -> None:
        self.folder, self.manifest, self.index, self.ids, self.texts = folder, manifest, index, ids, texts
        self._lexical = lexical
        self._positions = {doc_id: position for position, doc_id in enumerate(ids)}

    # -- properties ----------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int | None:
        """Width of the vectors; ``None`` for a BM25-only index."""
        return None if self.manifest.get("dim") is None else int(self.manifest["dim"])

    @property
    def has_vectors(self) -> bool:
        """``False`` for an index built BM25 only (no model)."""
        return self.kind != store.LEXICAL_ONLY

    @property
    def identity(self) -> dict[str, Any]:
        return dict(self.manifest.get("model") or {})

    def require_vectors(self, asked: str) -> None:
        """:class:`~decemb.search.errors.NoVectorsError` (saying how to add them) unless the index has vectors."""
        if not self.has_vectors:
            raise NoVectorsError(self.folder, asked)

    @property
    def lexical(self) -> LexicalIndex:
        """The BM25 index of the documents (stored with the vectors; built here for an index written before)."""
        if self._lexical is None:
            self._lexical = LexicalIndex.build(self.texts, Bm25Settings(**self.manifest.get("bm25", {})))
        return self._lexical

    def __len__(self) -> int:
        return self.count

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._positions

    def check_model(self, model: SentenceTransformer) -> None:
        """:class:`~decemb.search.errors.IndexMismatchError` unless ``model`` is the one that built the index."""
        self.require_vectors("be checked against a bi-encoder")
        check_identity(self.manifest["model"], model_identity(model), self.folder)

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        folder: str | Path,
        ids: Sequence[str],
        texts: Sequence[str],
        model: SentenceTransformer | None,
        *,
        source: str | None = None,
        kind: IndexKind = "auto",
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        batch_size: int = 32,
        show_progress: bool = False,
        overwrite: bool = False,
        vectors: Any = None,
        lock_wait: float = DEFAULT_LOCK_WAIT,
    ) -> SearchIndex:
        """Embed ``texts`` (document side) and write a new index; nothing is written unless all succeeds.
        ``model`` ``None`` (and no ``vectors``): a BM25-only index, built without any model.

        ``vectors``: the documents' vectors when the caller already has them (from ``model``'s
        ``encode_document``, e.g. the comparison runner's cache); they are not recomputed. ``lock_wait``:
        seconds to wait for another writer of ``folder`` (see :mod:`decemb.search.writing`)."""
        folder = Path(folder).expanduser()
        counts = dict(hnsw_m=hnsw_m, ef_construction=ef_construction, ef_search=ef_search, batch_size=batch_size)
        check_build(folder, overwrite, kind, lock_wait, counts)
        ids, texts = check_corpus(ids, texts)
        if model is None and vectors is not None:
            raise SearchError("vectors need the model that embedded them (model=None builds BM25 only)", key="vectors")
        resolved = ("exact" if len(ids) <= AUTO_EXACT_MAX else "hnsw") if kind == "auto" else kind
        started = time.perf_counter()
        if model is not None:
            vectors = _given(vectors, len(ids)) if vectors is not None else embed_documents(
                model, texts, batch_size, show_progress
            )  # fmt: skip
        index = None if model is None else vector_index(vectors, resolved, hnsw_m, ef_construction)
        manifest = {
            "format": store.FORMAT,
            "version": store.VERSION,
            "generation": 0,
            "kind": resolved if model is not None else store.LEXICAL_ONLY,
            "metric": "cosine" if model is not None else "bm25",
            "dim": None if index is None else int(index.d),
            "count": len(ids),
            "hnsw": {"m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search},
            "model": None if model is None else model_identity(model, source),
            "bm25": Bm25Settings().model_dump(),
            "build_seconds": round(time.perf_counter() - started, 3),
            "faiss": None if index is None else getattr(faiss(), "__version__", None),
        }
        built = cls(folder, manifest, index, ids, texts, LexicalIndex.build(texts))
        with writer_lock(folder, lock_wait):
            built.manifest["generation"] = build_target(folder, overwrite)  # another writer may have built
            built._commit()
        return built

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        model: SentenceTransformer | None,
        *,
        batch_size: int = 32,
        show_progress: bool = False,
        vectors: Any = None,
        lock_wait: float = DEFAULT_LOCK_WAIT,
    ) -> int:
        """Embed and add documents (ids new to the index), committed as a new generation; returns how many.
        ``vectors``: their vectors, when already computed with ``model``. ``lock_wait``: seconds to wait
        for another writer; documents another writer committed meanwhile are kept (they are read first).
        ``model`` ``None``: for a BM25-only index (which refuses a model: it has no vectors to extend)."""
        self._check_writer(model)
        check_count("batch_size", batch_size)
        check_lock_wait(lock_wait)
        ids, texts = check_corpus(ids, texts, existing=set(self._positions), where=self.folder)
        if model is not None:
            vectors = _given(vectors, len(ids)) if vectors is not None else embed_documents(
                model, texts, batch_size, show_progress
            )  # fmt: skip
        with writer_lock(self.folder, lock_wait):
            if self._refresh():
                self._check_writer(model)  # another writer may have rebuilt it with another model
            ids, texts = check_corpus(ids, texts, existing=set(self._positions), where=self.folder)
            if model is not None and vectors.shape[1] != self.dim:
                raise CorruptIndexError(f"the model gives {vectors.shape[1]}-d vectors, the index {self.dim}-d")
            if model is not None:
                self.index.add(vectors)
            self.ids, self.texts = [*self.ids, *ids], [*self.texts, *texts]
            self.manifest = {**self.manifest, "count": len(self.ids), "bm25": self.lexical.settings.model_dump()}
            self._lexical = LexicalIndex.build(self.texts, self.lexical.settings)  # document frequencies change
            try:
                self._commit()
            except BaseException:
                with contextlib.suppress(SearchError):  # back to what is on disk (the previous generation)
                    self._refresh(force=True)
                raise
        self._positions.update({doc_id: self.count - len(ids) + i for i, doc_id in enumerate(ids)})
        return len(ids)

    def _check_writer(self, model: SentenceTransformer | None) -> None:
        if model is not None or self.has_vectors:
            if model is None:
                raise SearchError("this index holds vectors: adding documents needs its model", key="model")
            self.check_model(model)

    def _refresh(self, force: bool = False) -> bool:
        """Reload from disk when another writer committed since this index was read; returns whether."""
        if not force and store.read_manifest(self.folder).get("files") == self.manifest.get("files"):
            return False
        self.__dict__.update(SearchIndex.open(self.folder).__dict__)
        return True

    def _commit(self) -> None:
        data = None if self.index is None else faiss().serialize_index(self.index).tobytes()
        docs, bm25 = store.docs_writer(self.ids, self.texts), self.lexical.write
        self.manifest = store.commit(self.folder, self.manifest, data, docs, bm25)

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path, model: SentenceTransformer | None = None, *, check: bool = True) -> SearchIndex:
        """Open an index folder, verifying its files (``check``: sizes and sha256); given ``model``, refuse
        it unless it is the model (weights, strategy, encode settings) that built the index."""
        folder = Path(folder).expanduser()
        identity = None if model is None else model_identity(model)
        manifest = store.read_manifest(folder)
        for attempt in range(_OPEN_ATTEMPTS):
            if identity is not None:
                if manifest.get("kind") == store.LEXICAL_ONLY:
                    raise NoVectorsError(folder, "be checked against a bi-encoder")
                check_identity(manifest.get("model") or {}, identity, folder)
            try:
                return cls._read(folder, manifest, check)
            except CorruptIndexError:
                current = store.read_manifest(folder)  # did a commit remove the files of ``manifest``?
                if current == manifest or attempt == _OPEN_ATTEMPTS - 1:
                    raise
                manifest = current
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _read(cls, folder: Path, manifest: dict[str, Any], check: bool) -> SearchIndex:
        index, ids, texts, lexical = read_generation(folder, manifest, check)
        return cls(folder, manifest, index, ids, texts, lexical)

    # -- searching -----------------------------------------------------------------------------
    def search(self, vectors: Any, top_k: int = 10, *, ef_search: int | None = None) -> list[list[Hit]]:
        """Top-k hits per query vector (normalised here), best first."""
        self.require_vectors("search by vectors")
        top_k = check_count("top_k", top_k)
        if ef_search is not None:
            ef_search = check_count("ef_search", ef_search)
        queries = normalized(vectors)
        if queries.shape[1] != self.dim:
            raise ValueError(f"query vectors have dimension {queries.shape[1]}, the index {self.dim}")
        k = min(top_k, self.count)
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(ef_search or self.manifest["hnsw"]["ef_search"], k)
        scores, rows = self.index.search(queries, k)
        return [
            [Hit(self.ids[r], self.texts[r], float(s), int(r)) for s, r in zip(row_scores, row_ids) if r >= 0]
            for row_scores, row_ids in zip(scores, rows)
        ]

    def search_lexical(self, queries: Sequence[str], top_k: int = 10) -> list[list[Hit]]:
        """BM25 top-k hits per query text, best first (a query with no corpus term gets none)."""
        found = self.lexical.search(list(queries), check_count("top_k", top_k))
        return [[Hit(self.ids[p], self.texts[p], score, p) for p, score in row] for row in found]

    def search_texts(self, queries: Sequence[str], model: SentenceTransformer, top_k: int = 10) -> list[list[Hit]]:
        """Embed ``queries`` (query side) with ``model`` and search; the model is not re-checked here."""
        check_count("top_k", top_k)
        return self.search(embed_queries(model, queries), top_k)


def _given(vectors: Any, count: int) -> np.ndarray:
    array = normalized(vectors)
    if array.shape[0] != count:
        raise ValueError(f"{array.shape[0]} vectors given for {count} documents")
    return array
