"""Streaming encode: embed a large text list chunk by chunk straight into a ``.npy`` file on disk.

Memory stays flat whatever the number of texts: only one chunk of inputs and vectors is held at a
time, and each chunk is appended to the file as soon as it is embedded. The file is written under a
temporary name and renamed when complete, so an interrupted run never leaves a half-written ``.npy`` behind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer
from tqdm.auto import tqdm

from decemb.engine import EmbeddingJob, Engine
from decemb.strategies import Kind, Strategy


def _embed_chunk(
    encoder: Engine | SentenceTransformer,
    texts: list[str],
    kind: Kind,
    strategy: Strategy | None,
    layer: int,
    instruction: str | None,
    batch_size: int,
) -> np.ndarray:
    if isinstance(encoder, Engine):
        if strategy is None:
            raise ValueError("encoding with an Engine needs a strategy")
        return encoder.embed([EmbeddingJob(strategy, kind, texts, layer=layer, instruction=instruction)])[0]
    if strategy is not None or layer != -1:
        raise ValueError("a SentenceTransformer carries its own strategy and layer; pass neither")
    encode = encoder.encode_query if kind == "query" else encoder.encode_document
    prompt = {"prompt": instruction} if instruction is not None else {}
    return encode(texts, batch_size=batch_size, convert_to_numpy=True, **prompt)


def encode_to_npy(
    encoder: Engine | SentenceTransformer,
    texts: Sequence[str],
    path: str | os.PathLike[str],
    *,
    kind: Kind = "query",
    strategy: Strategy | None = None,
    layer: int = -1,
    instruction: str | None = None,
    chunk_size: int = 4096,
    batch_size: int = 32,
    show_progress: bool = False,
) -> Path:
    """Embed ``texts`` into the float32 array file ``path`` (shape ``(len(texts), dim)``), chunk by chunk."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with (
            partial.open("wb") as handle,
            tqdm(total=len(texts), desc="Encoding", unit="text", disable=not show_progress) as bar,
        ):
            for start in range(0, len(texts), chunk_size):
                chunk = list(texts[start : start + chunk_size])
                vectors = _embed_chunk(encoder, chunk, kind, strategy, layer, instruction, batch_size)
                if start == 0:  # the header needs the width, known once the first chunk is embedded
                    header = {"descr": "<f4", "fortran_order": False, "shape": (len(texts), vectors.shape[1])}
                    np.lib.format.write_array_header_2_0(handle, header)
                # Plain sequential writes: written pages do not stay in this process's memory (a memmap's do).
                handle.write(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
                bar.update(len(chunk))
        if not texts:
            raise ValueError("no texts to encode")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
