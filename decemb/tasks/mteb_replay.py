"""Run an mteb task's own evaluation on vectors that decemb's engine computed: record, then replay.

mteb decides which texts a task embeds, and on which side; ``decemb compare`` wants a task's texts up front,
so that every strategy × layer shares one engine pass and the embedding cache. So an mteb task runs twice.
First with :class:`RecordingEncoder`, which notes every (side, text) the evaluation asks for and answers
with stand-in vectors (seeded by the text, so the evaluation runs to its end, and cheap). Then, once the
runner has embedded those texts, with :class:`ReplayEncoder`, which answers from the runner's vectors.
The texts an mteb evaluator asks for follow from its data and seeds, never from the vectors, so the
second pass asks only for texts the first recorded; any other text is an error, never a silent re-encode.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from mteb.models.abs_encoder import AbsEncoder
from mteb.types import PromptType

from decemb.mteb import side_of, stand_in_meta
from decemb.tasks.base import TaskDataError

__all__ = ["STAND_IN_DIM", "RecordingEncoder", "ReplayEncoder", "evaluate_subsets"]

STAND_IN_DIM = 16


def _stand_in(text: str) -> np.ndarray:
    seed = zlib.crc32(text.encode("utf-8", "surrogatepass"))
    return np.random.default_rng(seed).standard_normal(STAND_IN_DIM).astype(np.float32)


class _SideEncoder(AbsEncoder):
    """mteb's encode call reduced to ``answer(side, texts)``: the side from the prompt type
    (:func:`decemb.mteb.side_of`), the texts from mteb's batches."""

    def encode(
        self,
        inputs: Iterable[dict[str, Any]],
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        return self.answer(side_of(prompt_type), [text for batch in inputs for text in batch["text"]])

    def answer(self, side: str, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class RecordingEncoder(_SideEncoder):
    """Notes each distinct text per side (``texts[side]``: text → row, in first-asked order)."""

    def __init__(self) -> None:
        self.texts: dict[str, dict[str, int]] = {"query": {}, "document": {}}
        self.mteb_model_meta = stand_in_meta(STAND_IN_DIM)

    def answer(self, side: str, texts: list[str]) -> np.ndarray:
        seen = self.texts[side]
        for text in texts:
            seen.setdefault(text, len(seen))
        if not texts:
            return np.zeros((0, STAND_IN_DIM), dtype=np.float32)
        return np.stack([_stand_in(text) for text in texts])


class ReplayEncoder(_SideEncoder):
    """Answers each text with its row of ``embeddings[side]`` (rows as :class:`RecordingEncoder` noted them)."""

    def __init__(self, task: str, rows: Mapping[str, Mapping[str, int]], embeddings: Mapping[str, np.ndarray]) -> None:
        self.task = task
        self.rows = rows
        self.embeddings = {side: np.asarray(array, dtype=np.float32) for side, array in embeddings.items()}
        dims = {array.shape[1] for array in self.embeddings.values()}
        self.mteb_model_meta = stand_in_meta(dims.pop() if dims else STAND_IN_DIM)

    def answer(self, side: str, texts: list[str]) -> np.ndarray:
        index = self.rows.get(side, {})
        rows = []
        for text in texts:
            row = index.get(text)
            if row is None:
                raise TaskDataError(
                    f"task {self.task!r}: mteb asked for a {side} text it did not ask for while its texts were "
                    f"collected ({text[:60]!r}); its evaluation is not deterministic, so decemb compare cannot "
                    "run it (use decemb.mteb.as_mteb_model with mteb.evaluate instead)"
                )
            rows.append(row)
        return self.embeddings[side][np.asarray(rows, dtype=np.int64)]


def evaluate_subsets(task: Any, encoder: AbsEncoder, split: str, subsets: list[str] | None) -> dict[str, dict]:
    """``task.evaluate`` on one split (and the given subsets, default all), mteb's scores per subset."""
    return dict(task.evaluate(encoder, split, subsets, encode_kwargs={"batch_size": 64, "show_progress_bar": False}))
