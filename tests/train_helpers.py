"""Shared by the training tests: a toy set of scored sentence pairs and the csv file holding it."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PAIRS = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("The cat sat on the mat.", "A cat is sitting on a mat.", 4.2),
    ("Dogs run in the park.", "Children play football.", 1.0),
    ("A woman is slicing an onion.", "Someone cuts an onion.", 4.0),
    ("Retrieve semantically similar text.", "The rewritten sentence", 0.5),
    ("what is rlhf?", "RLHF is reinforcement learning from human feedback.", 3.5),
    ("0123456789", "brackets and quotes", 0.2),
    ("Rewrite the following sentence", "This sentence means in one word", 2.0),
]


def write_pairs_csv(path: Path, rows: Sequence[tuple[str, str, float]] = PAIRS) -> Path:
    """``rows`` under a ``query,doc,score`` header."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query", "doc", "score"])
        writer.writerows(rows)
    return path


def interrupt_at(step: int) -> Any:
    """A trainer callback that raises ``KeyboardInterrupt`` (as Ctrl-C would) at the end of optimizer step
    ``step``, before that step is logged or checkpointed: the run stops with its earlier checkpoints only."""
    from transformers import TrainerCallback

    class InterruptAt(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == step:
                raise KeyboardInterrupt

    return InterruptAt()
