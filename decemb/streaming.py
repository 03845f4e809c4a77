"""Streaming encode: embed a large text list chunk by chunk straight into a ``.npy`` or ``.npz`` file on disk.

Memory stays flat whatever the number of texts: only one chunk of inputs and vectors is held at a
time, and each chunk is appended to the file as soon as it is embedded. ``.npz`` (what ``np.savez``
writes: an uncompressed zip of ``.npy`` members) is written the same way: the rows go straight into the
archive's ``embeddings.npy`` member, then the ids (if any) into ``ids.npy``; no temporary ``.npy`` and
no second pass. The file is written under a temporary name next to the target and renamed when
complete (:func:`decemb.files.atomic_file`), so an interrupted run never leaves a half-written file
behind.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from sentence_transformers import SentenceTransformer
from tqdm.auto import tqdm

from decemb.engine import EmbeddingJob, Engine
from decemb.files import atomic_file
from decemb.normalize import l2_normalize
from decemb.strategies import Kind, Strategy

__all__ = ["encode_to_npy", "encode_to_npz"]


def _embed_chunk(
    encoder: Engine | SentenceTransformer,
    texts: list[str],
    kind: Kind,
    strategy: Strategy | None,
    layer: int | None,
    instruction: str | None,
    batch_size: int,
) -> np.ndarray:
    if isinstance(encoder, Engine):
        if strategy is None:
            raise ValueError("encoding with an Engine needs a strategy")
        return encoder.embed([EmbeddingJob(strategy, kind, texts, layer=layer, instruction=instruction)])[0]
    if strategy is not None or layer is not None:
        raise ValueError("a SentenceTransformer carries its own strategy and layer; pass neither")
    encode = encoder.encode_query if kind == "query" else encoder.encode_document
    prompt = {"prompt": instruction} if instruction is not None else {}
    return encode(texts, batch_size=batch_size, convert_to_numpy=True, **prompt)


@dataclass
class _Rows:
    """The float32 ``.npy`` bytes of the embeddings of ``texts``, written to a handle chunk by chunk."""

    encoder: Engine | SentenceTransformer
    texts: Sequence[str]
    kind: Kind = "query"
    strategy: Strategy | None = None
    layer: int | None = None
    instruction: str | None = None
    chunk_size: int = 4096
    batch_size: int = 32
    normalize: bool = False
    show_progress: bool = False

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if not self.texts:
            raise ValueError("no texts to encode")

    def write(self, handle: IO[bytes]) -> None:
        texts, size = self.texts, self.chunk_size
        with tqdm(total=len(texts), desc="Encoding", unit="text", disable=not self.show_progress) as bar:
            for start in range(0, len(texts), size):
                chunk = list(texts[start : start + size])
                vectors = _embed_chunk(
                    self.encoder, chunk, self.kind, self.strategy, self.layer, self.instruction, self.batch_size
                )
                vectors = np.asarray(vectors, dtype="<f4")
                if self.normalize:
                    vectors = l2_normalize(vectors)
                if start == 0:  # the header needs the width, known once the first chunk is embedded
                    header = {"descr": "<f4", "fortran_order": False, "shape": (len(texts), vectors.shape[1])}
                    np.lib.format.write_array_header_2_0(handle, header)
                # Plain sequential writes: written pages do not stay in this process's memory (a memmap's do).
                handle.write(np.ascontiguousarray(vectors).tobytes())
                bar.update(len(chunk))


def encode_to_npy(
    encoder: Engine | SentenceTransformer,
    texts: Sequence[str],
    path: str | os.PathLike[str],
    *,
    kind: Kind = "query",
    strategy: Strategy | None = None,
    layer: int | None = None,
    instruction: str | None = None,
    chunk_size: int = 4096,
    batch_size: int = 32,
    normalize: bool = False,
    show_progress: bool = False,
) -> Path:
    """Embed ``texts`` into the float32 array file ``path`` (shape ``(len(texts), dim)``), chunk by chunk.

    ``encoder``: an :class:`~decemb.engine.Engine` (then ``strategy`` is required; ``layer`` defaults to the
    engine's settings) or a decemb ``SentenceTransformer`` (its own strategy and layer; ``batch_size`` is
    its batch). ``normalize``: L2-normalise every row."""
    rows = _Rows(encoder, texts, kind, strategy, layer, instruction, chunk_size, batch_size, normalize, show_progress)
    with atomic_file(path, binary=True) as handle:
        rows.write(handle)
    return Path(path)


def encode_to_npz(
    encoder: Engine | SentenceTransformer,
    texts: Sequence[str],
    path: str | os.PathLike[str],
    *,
    ids: Sequence[str] | None = None,
    **options: Any,
) -> Path:
    """:func:`encode_to_npy` (same ``options``) into the ``embeddings`` member of an ``.npz`` archive, plus
    ``ids`` (one per text) when given; ``np.load(path)`` reads it like one written by ``np.savez``."""
    rows = _Rows(encoder, texts, **options)
    if ids is not None and len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
    with atomic_file(path, binary=True) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        with archive.open("embeddings.npy", "w", force_zip64=True) as member:
            rows.write(member)
        if ids is not None:
            with archive.open("ids.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(list(ids), dtype=str), allow_pickle=False)
    return Path(path)
