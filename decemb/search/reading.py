"""Reading one committed generation of an index folder back into memory: the documents, the BM25 index and
(unless the index is BM25 only) the faiss vector index, each checked against the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import decemb.search.store as store
from decemb.search.errors import CorruptIndexError
from decemb.search.lexical import LexicalIndex
from decemb.search.vectors import faiss

__all__ = ["read_generation"]


def read_generation(
    folder: Path, manifest: dict[str, Any], check: bool
) -> tuple[Any, list[str], list[str], LexicalIndex | None]:
    """``(vector index or None, ids, texts, BM25 index or None)`` of the generation ``manifest`` names
    (``check``: sizes and sha256 first). ``None`` BM25: an index written before decemb stored it."""
    if check:
        store.verify(folder, manifest)
    ids, texts = store.read_docs(folder, store.data_path(folder, manifest, "docs"))  # type: ignore[arg-type]
    lexical_file = store.data_path(folder, manifest, "bm25")
    try:
        lexical = None if lexical_file is None else LexicalIndex.read(lexical_file)
    except ValueError as error:
        raise CorruptIndexError(f"{error}; rebuild the index", file=folder) from None
    if lexical is not None and lexical.count != len(ids):
        raise CorruptIndexError(f"the BM25 index holds {lexical.count} documents, the documents file {len(ids)}")
    if len(ids) != manifest.get("count"):
        raise CorruptIndexError(
            f"the manifest records {manifest.get('count')} documents, the documents file holds {len(ids)}",
            file=folder,
        )
    vectors_file = store.data_path(folder, manifest, "vectors")
    if vectors_file is None:  # a BM25-only index (read_manifest checked that it says so)
        return None, ids, texts, lexical
    try:
        index = faiss().read_index(str(vectors_file))
    except (RuntimeError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CorruptIndexError(f"the vector index cannot be read ({first}); rebuild the index", file=folder) from None
    if index.ntotal != len(ids) or index.d != manifest.get("dim"):
        raise CorruptIndexError(
            f"the vector index holds {index.ntotal} vectors of dimension {index.d}, the manifest "
            f"{manifest.get('count')} of dimension {manifest.get('dim')} and the documents file {len(ids)}",
            file=folder,
        )
    return index, ids, texts, lexical
