"""Running a reranker training recipe (:mod:`decemb.rerank.recipe_config`): candidates from the recipe's
first stage on the *train* split, then :func:`decemb.rerank.train_reranker` with its loss, head and LoRA.

    recipe = read_recipe("configs/train-reranker-bm25.yaml")
    result = run_recipe(recipe, "runs/reranker-bm25-bce")

Writes what :func:`~decemb.rerank.train_reranker` writes (``DIR/model``: the merged reranker, loaded with
``load_reranker(DIR/model)`` or as a comparison config's ``rerank: {source: DIR/model}``; ``DIR/adapter``:
the LoRA alone, which does not hold a ``linear`` head) and ``DIR/recipe.json``: the recipe, the number of
training queries, pairs and steps, and the seconds of mining, training and per step.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from decemb.files import write_text
from decemb.rerank.recipe_config import RerankerRecipe
from decemb.rerank.train import RerankerTrainResult

__all__ = ["recipe_examples", "run_recipe"]


def _embeddings(recipe: RerankerRecipe, task: Any, show_progress: bool) -> dict[str, Any]:
    """The task's query and corpus vectors from the recipe's bi-encoder (``dense`` / ``hybrid`` only)."""
    encoder = recipe.candidates.bi_encoder
    if recipe.candidates.retriever == "bm25" or encoder is None:
        return {}
    import decemb

    model = decemb.load(encoder.source, encoder.strategy, max_length=encoder.max_length, **encoder.options)
    options = {"batch_size": encoder.batch_size, "show_progress_bar": show_progress}
    return {
        "queries": model.encode_query(task.queries, **options),
        "corpus": model.encode_document(task.docs, **options),
    }


def recipe_examples(
    recipe: RerankerRecipe, data_root: str | os.PathLike[str] | None = None, *, show_progress: bool = False
) -> list[Any]:
    """The recipe's training examples: each sampled train query's positives and ``num_negatives`` drawn from
    its first stage's top ``range_max`` (never a relevant document)."""
    from decemb.rerank.train_data import examples_from_task
    from decemb.tasks import load_task

    task = load_task(recipe.task_config(), data_root)
    candidates = recipe.candidates
    return examples_from_task(
        task,
        _embeddings(recipe, task, show_progress),
        num_negatives=candidates.num_negatives,
        range_min=candidates.range_min,
        range_max=candidates.range_max,
        seed=candidates.seed,
    )


def run_recipe(
    recipe: RerankerRecipe,
    output_dir: str | os.PathLike[str],
    *,
    data_root: str | os.PathLike[str] | None = None,
    show_progress: bool = True,
) -> RerankerTrainResult:
    """Mine the recipe's candidates, train, and write ``output_dir`` (see the module docstring)."""
    from decemb.rerank.model import load_reranker
    from decemb.rerank.train import train_reranker

    started = time.perf_counter()
    examples = recipe_examples(recipe, data_root, show_progress=show_progress)
    if not examples:
        raise ValueError("the recipe's first stage left no training query with a positive and a negative")
    mined = time.perf_counter() - started
    model, lora, training = recipe.model, recipe.lora, recipe.training
    reranker = load_reranker(
        model.source, max_length=model.max_length, dtype=model.dtype, template=model.template, question=model.question
    )
    result = train_reranker(
        reranker,
        examples,
        output_dir,
        loss=recipe.loss.name,
        pos_weight=recipe.loss.pos_weight,
        head=recipe.head,
        lora_r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        epochs=training.epochs,
        batch_size=training.batch_size,
        learning_rate=training.lr,
        warmup_ratio=training.warmup_ratio,
        max_steps=training.max_steps,
        seed=training.seed,
        logging_steps=training.logging_steps,
        show_progress=show_progress,
    )
    record = {
        "recipe": recipe.model_dump(mode="json"),
        "train_queries": len(examples),
        "training": result.summary(),
        "seconds": {
            "mining": round(mined, 2),
            "training": result.seconds,
            "per_step": round(result.seconds / max(result.steps, 1), 2),
        },
    }
    write_text(Path(output_dir) / "recipe.json", json.dumps(record, indent=1) + "\n")
    return result
