"""LoRA training of a decoder reranker with sentence-transformers' ``CrossEncoderTrainer``.

    examples = mine_examples(embedder, train_queries, train_qrels, corpus, num_negatives=3)
    result = train_reranker("smollm2-135m", examples, "runs/reranker", loss="bce", pos_weight=3.0)
    result.reranker.rank(query, documents)          # merged, in memory; also saved to runs/reranker/model

Losses (:mod:`decemb.rerank.losses`): ``bce`` (``BinaryCrossEntropyLoss``, optional ``pos_weight``) on
(query, positive / hard negative) pairs; ``listnet`` (``ListNetLoss``) and ``lambda`` (``LambdaLoss``) over
(query, [positive, negatives...]) lists. ``head`` (:mod:`decemb.rerank.head`): ``logit`` trains the
zero-shot score ``logit(yes) - logit(no)``; ``linear`` a linear layer over the last token's hidden state
(RankLLaMA), which starts as that same score. Either way training starts from the zero-shot ranking. LoRA
(``peft.get_peft_model`` on the causal LM, all linear layers but the head by default) is merged at the
end; ``DIR/adapter`` keeps the adapter alone (``load_reranker(source, adapter=DIR/adapter)``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import CrossEncoder

from decemb.files import write_text
from decemb.rerank.head import ScoreHead, score_head_of, with_score_head
from decemb.rerank.losses import RERANK_LOSSES, RerankLoss, check_loss, training_dataset, training_loss
from decemb.rerank.train_data import RerankExample

__all__ = ["LOSSES", "RerankerTrainResult", "train_reranker"]

logger = logging.getLogger(__name__)

LOSSES = RERANK_LOSSES


@dataclass
class RerankerTrainResult:
    reranker: CrossEncoder
    output_dir: Path | None
    loss: str
    head: str
    pos_weight: float | None
    examples: int
    rows: int
    steps: int
    train_loss: float | None
    seconds: float

    def summary(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("reranker")
        record["output_dir"] = None if self.output_dir is None else str(self.output_dir)
        return record


def _lora(model: torch.nn.Module, r: int, alpha: int, dropout: float, target_modules: Any) -> torch.nn.Module:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("training a reranker needs peft: pip install 'decemb[train]'") from error
    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM"
    )
    return get_peft_model(model, config)


def train_reranker(
    reranker: CrossEncoder | str,
    examples: Sequence[RerankExample],
    output_dir: str | Path | None = None,
    *,
    loss: RerankLoss = "bce",
    pos_weight: float | None = None,
    head: ScoreHead | None = None,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    target_modules: Any = "all-linear",
    epochs: float = 1.0,
    batch_size: int = 16,
    learning_rate: float = 2e-4,
    warmup_ratio: float = 0.1,
    max_steps: int = -1,
    max_length: int | None = None,
    seed: int = 0,
    logging_steps: int = 10,
    bf16: bool | None = None,
    show_progress: bool = True,
    **load_options: Any,
) -> RerankerTrainResult:
    """Train ``reranker`` (a decemb reranker, or a source for :func:`decemb.rerank.load_reranker` loaded with
    ``load_options``) on ``examples`` with LoRA; merge the adapter and return the trained reranker.

    ``batch_size``: pairs per step for ``bce``; lists (one query, its positive and negatives) per step for
    ``listnet`` / ``lambda``, whose pairs are scored one list at a time. ``head``: the score head to train
    (``None``: the reranker's own; ``"linear"`` on a ``logit`` reranker adds a linear head, see
    :mod:`decemb.rerank.head`), so ``result.reranker`` may be a new object over the same causal LM.
    ``output_dir``: where ``model/`` (the merged
    reranker), ``adapter/`` and ``train.json`` are written (``None``: nothing is written)."""
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments

    from decemb.rerank.model import load_reranker
    from decemb.rerank.module import DecembPairEncoder

    check_loss(loss, pos_weight)
    if not examples:
        raise ValueError("no training examples")
    if isinstance(reranker, str):
        reranker = load_reranker(reranker, **load_options)
    if head is not None:
        reranker = with_score_head(reranker, head)
    encoder = reranker[0]
    if not isinstance(encoder, DecembPairEncoder):
        raise TypeError(f"train_reranker trains a decemb reranker; its first module is {type(encoder).__name__}")
    if max_length is not None:
        encoder.max_seq_length = max_length
    torch.manual_seed(seed)
    dataset = training_dataset(loss, examples, seed)
    per_list = 1 + max(len(e.negatives) for e in examples)
    started = time.perf_counter()
    peft_model = _lora(encoder.auto_model, lora_r, lora_alpha, lora_dropout, target_modules)
    encoder.auto_model = peft_model
    objective = training_loss(loss, reranker, list_size=per_list, pos_weight=pos_weight)
    on_cuda = reranker.device.type == "cuda"
    with tempfile.TemporaryDirectory(prefix="decemb-rerank-train-") as scratch:
        args = CrossEncoderTrainingArguments(
            output_dir=scratch,
            num_train_epochs=epochs,
            max_steps=max_steps,
            per_device_train_batch_size=batch_size,
            learning_rate=learning_rate,
            warmup_steps=warmup_ratio,  # a float below 1 is a ratio of the total steps (transformers 5)
            logging_steps=logging_steps,
            save_strategy="no",
            report_to="none",
            seed=seed,
            bf16=on_cuda and torch.cuda.is_bf16_supported() if bf16 is None else bf16,
            disable_tqdm=not show_progress,
            dataloader_num_workers=0,
            dataloader_pin_memory=on_cuda,  # pinning needs an accelerator (else a warning per run)
        )
        trainer = CrossEncoderTrainer(model=reranker, args=args, train_dataset=dataset, loss=objective)
        try:
            outcome = trainer.train()
            if output_dir is not None:  # the adapter alone, before it is merged away
                peft_model.save_pretrained(str(Path(output_dir) / "adapter"))
        finally:
            encoder.auto_model = peft_model.merge_and_unload()
            encoder.auto_model.eval()
            reranker.eval()
    result = RerankerTrainResult(
        reranker=reranker,
        output_dir=None if output_dir is None else Path(output_dir),
        loss=loss,
        head=score_head_of(reranker),
        pos_weight=pos_weight,
        examples=len(examples),
        rows=len(dataset),
        steps=int(outcome.global_step),
        train_loss=float(outcome.training_loss) if outcome.training_loss is not None else None,
        seconds=round(time.perf_counter() - started, 2),
    )
    if output_dir is not None:
        folder = Path(output_dir)
        reranker.save(str(folder / "model"))
        write_text(folder / "train.json", json.dumps(result.summary(), indent=1) + "\n")
    return result
