"""A persistent vector index of a corpus, embedded by a decemb bi-encoder (faiss on CPU).

    index = SearchIndex.build("runs/scifact-index", ids, texts, model, source="smollm2-135m")
    index.search_texts(["what is rlhf?"], model, top_k=20)     # [[Hit(doc_id, text, score, position)]]
    index.add(new_ids, new_texts, model)                        # incremental; committed atomically
    SearchIndex.open("runs/scifact-index", model)               # refuses another model/strategy/settings

Vectors are L2-normalised, so scores are cosine similarities. ``kind="exact"`` is a flat inner-product
index (BLAS; exact), ``"hnsw"`` an HNSW graph (approximate, sub-linear), ``"auto"`` picks exact up to
:data:`AUTO_EXACT_MAX` documents. The folder layout and atomic commits are in :mod:`decemb.search.store`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from sentence_transformers import SentenceTransformer

import decemb.search.store as store
from decemb.search.corpus import check_corpus
from decemb.search.errors import CorruptIndexError, IndexExistsError, SearchError
from decemb.search.identity import check_identity, model_identity

__all__ = ["AUTO_EXACT_MAX", "Hit", "IndexKind", "SearchIndex", "embed_documents", "embed_queries", "faiss"]

IndexKind = Literal["auto", "exact", "hnsw"]
AUTO_EXACT_MAX = 50_000


def faiss() -> Any:
    try:
        import faiss as module
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("decemb search needs faiss: pip install 'decemb[search]'") from error
    return module


@dataclass(frozen=True)
class Hit:
    doc_id: str
    text: str
    score: float  # cosine similarity
    position: int  # row in the index


def _normalized(vectors: Any) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("the model produced NaN or infinite vectors")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.ascontiguousarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


def embed_documents(
    model: SentenceTransformer, texts: Sequence[str], batch_size: int, show_progress: bool
) -> np.ndarray:
    vectors = model.encode_document(list(texts), batch_size=batch_size, show_progress_bar=show_progress)
    return _normalized(vectors)


def embed_queries(model: SentenceTransformer, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    return _normalized(model.encode_query(list(texts), batch_size=batch_size, show_progress_bar=False))


class SearchIndex:
    """A corpus index folder opened in memory (build with :meth:`build`, open with :meth:`open`)."""

    def __init__(self, folder: Path, manifest: dict[str, Any], index: Any, ids: list[str], texts: list[str]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.index = index
        self.ids = ids
        self.texts = texts
        self._positions = {doc_id: position for position, doc_id in enumerate(ids)}

    # -- properties ----------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def identity(self) -> dict[str, Any]:
        return dict(self.manifest["model"])

    def __len__(self) -> int:
        return self.count

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._positions

    def check_model(self, model: SentenceTransformer) -> None:
        """:class:`~decemb.search.errors.IndexMismatchError` unless ``model`` is the one that built the index."""
        check_identity(self.manifest["model"], model_identity(model), self.folder)

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        folder: str | Path,
        ids: Sequence[str],
        texts: Sequence[str],
        model: SentenceTransformer,
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
    ) -> SearchIndex:
        """Embed ``texts`` (document side) and write a new index; nothing is written unless all succeeds.

        ``vectors``: the documents' vectors when the caller already has them (from ``model``'s
        ``encode_document``, e.g. the comparison runner's cache); they are not recomputed."""
        folder = Path(folder).expanduser()
        if kind not in ("auto", "exact", "hnsw"):
            raise SearchError(f"unknown index kind {kind!r}; expected auto, exact or hnsw", key="kind")
        if (folder / store.MANIFEST).exists() and not overwrite:
            raise IndexExistsError("an index exists here; add documents to it, or overwrite it", file=folder)
        if folder.is_dir() and any(folder.iterdir()) and not (folder / store.MANIFEST).exists():
            raise SearchError("the folder is not empty and holds no index; choose a new folder", file=folder)
        for name, value in (("hnsw_m", hnsw_m), ("ef_construction", ef_construction), ("ef_search", ef_search)):
            if value < 1:
                raise SearchError(f"must be > 0, got {value}", key=name)
        ids, texts = check_corpus(ids, texts)
        resolved = ("exact" if len(ids) <= AUTO_EXACT_MAX else "hnsw") if kind == "auto" else kind
        started = time.perf_counter()
        vectors = (
            _given(vectors, len(ids))
            if vectors is not None
            else embed_documents(model, texts, batch_size, show_progress)
        )
        lib = faiss()
        if resolved == "exact":
            index = lib.IndexFlatIP(vectors.shape[1])
        else:
            index = lib.IndexHNSWFlat(vectors.shape[1], hnsw_m, lib.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
        index.add(vectors)
        previous = store.read_manifest(folder) if (folder / store.MANIFEST).exists() else {}
        manifest = {
            "format": store.FORMAT,
            "version": store.VERSION,
            "generation": previous.get("generation", 0),
            "kind": resolved,
            "metric": "cosine",
            "dim": int(vectors.shape[1]),
            "count": len(ids),
            "hnsw": {"m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search},
            "model": model_identity(model, source),
            "build_seconds": round(time.perf_counter() - started, 3),
            "faiss": getattr(lib, "__version__", None),
        }
        built = cls(folder, manifest, index, ids, texts)
        built._commit()
        return built

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        model: SentenceTransformer,
        *,
        batch_size: int = 32,
        show_progress: bool = False,
        vectors: Any = None,
    ) -> int:
        """Embed and add documents (ids new to the index), committed as a new generation; returns how many.
        ``vectors``: their vectors, when already computed with ``model``."""
        self.check_model(model)
        ids, texts = check_corpus(ids, texts, existing=set(self._positions), where=self.folder)
        vectors = (
            _given(vectors, len(ids))
            if vectors is not None
            else embed_documents(model, texts, batch_size, show_progress)
        )
        if vectors.shape[1] != self.dim:
            raise CorruptIndexError(f"the model gives {vectors.shape[1]}-d vectors, the index holds {self.dim}-d")
        self.index.add(vectors)
        self.ids, self.texts = [*self.ids, *ids], [*self.texts, *texts]
        self.manifest = {**self.manifest, "count": len(self.ids)}
        try:
            self._commit()
        except BaseException:
            reopened = SearchIndex.open(self.folder)  # back to what is on disk
            self.__dict__.update(reopened.__dict__)
            raise
        self._positions.update({doc_id: self.count - len(ids) + i for i, doc_id in enumerate(ids)})
        return len(ids)

    def _commit(self) -> None:
        def write_docs(handle: IO[Any]) -> None:
            for doc_id, text in zip(self.ids, self.texts):
                handle.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")

        data = faiss().serialize_index(self.index).tobytes()
        self.manifest = store.commit(self.folder, self.manifest, data, write_docs)

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path, model: SentenceTransformer | None = None, *, check: bool = True) -> SearchIndex:
        """Open an index folder, verifying its files (``check``: sizes and sha256); given ``model``, refuse
        it unless it is the model (weights, strategy, encode settings) that built the index."""
        folder = Path(folder).expanduser()
        manifest = store.read_manifest(folder)
        if model is not None:
            check_identity(manifest.get("model") or {}, model_identity(model), folder)
        if check:
            store.verify(folder, manifest)
        ids, texts = _read_docs(folder, store.data_path(folder, manifest, "docs"))
        try:
            index = faiss().read_index(str(store.data_path(folder, manifest, "vectors")))
        except (RuntimeError, OSError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CorruptIndexError(
                f"the vector index cannot be read ({first}); rebuild the index", file=folder
            ) from None
        if index.ntotal != len(ids) or index.d != manifest.get("dim") or len(ids) != manifest.get("count"):
            raise CorruptIndexError(
                f"the vector index holds {index.ntotal} vectors of dimension {index.d}, the manifest "
                f"{manifest.get('count')} of dimension {manifest.get('dim')} and the documents file {len(ids)}",
                file=folder,
            )
        return cls(folder, manifest, index, ids, texts)

    # -- searching -----------------------------------------------------------------------------
    def search(self, vectors: Any, top_k: int = 10, *, ef_search: int | None = None) -> list[list[Hit]]:
        """Top-k hits per query vector (normalised here), best first."""
        if top_k < 1:
            raise ValueError(f"top_k must be > 0, got {top_k}")
        queries = _normalized(vectors)
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

    def search_texts(self, queries: Sequence[str], model: SentenceTransformer, top_k: int = 10) -> list[list[Hit]]:
        """Embed ``queries`` (query side) with ``model`` and search; the model is not re-checked here."""
        return self.search(embed_queries(model, queries), top_k)


def _given(vectors: Any, count: int) -> np.ndarray:
    array = _normalized(vectors)
    if array.shape[0] != count:
        raise ValueError(f"{array.shape[0]} vectors given for {count} documents")
    return array


def _read_docs(folder: Path, path: Path) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    texts: list[str] = []
    number = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                number += 1
                record = json.loads(line)
                ids.append(str(record["id"]))
                texts.append(str(record["text"]))
    except FileNotFoundError:
        raise CorruptIndexError(f"index file {path.name} is missing; rebuild the index", file=folder) from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise CorruptIndexError(
            f"index file {path.name} is corrupted at line {number} ({type(error).__name__}); rebuild the index",
            file=folder,
        ) from None
    return ids, texts
