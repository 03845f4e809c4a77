"""Masked next-token prediction (LLM2Vec step 2): bidirectional attention, masked tokens, token i predicted
from the hidden state at i−1, cross-entropy on the masked positions only.

The forward is the decemb model's own (``st(features)``, i.e. the ``llm2vec`` strategy's bidirectional
attention); the LM head is used here only: the input embeddings when they are tied to the output
(SmolLM2, Gemma), else the ``lm_head`` weight read from the source's causal-LM checkpoint, frozen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from torch import Tensor, nn

from decemb.errors import ConfigError

__all__ = [
    "MNTPLoss",
    "lm_head_weight",
    "mask_token_id",
    "mask_tokens",
    "maskable_positions",
    "mntp_loss",
    "mntp_options",
]

IGNORE = -100


def maskable_positions(input_ids: Tensor, attention_mask: Tensor, special_ids: Iterable[int]) -> Tensor:
    """Real, non-special tokens that have a token before them (position ≥ 1): what MNTP may mask."""
    special = torch.tensor(sorted(set(special_ids)), dtype=input_ids.dtype, device=input_ids.device)
    allowed = attention_mask.bool() & ~torch.isin(input_ids, special)
    allowed[:, 0] = False
    return allowed


def mask_tokens(
    input_ids: Tensor,
    maskable: Tensor,
    mask_id: int,
    probability: float,
    vocab_size: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT-style masking of ``maskable`` positions with ``probability`` (80% → ``mask_id``, 10% → a random
    token, 10% unchanged); every row with a maskable token gets at least one. Returns ``(masked ids,
    targets)``: targets hold the original id at chosen positions and ``-100`` everywhere else."""
    device = input_ids.device
    draw = torch.rand(input_ids.shape, generator=generator, device=device)
    chosen = (draw < probability) & maskable
    # Rows where chance chose nothing: take their maskable position with the smallest draw.
    empty = ~chosen.any(dim=1) & maskable.any(dim=1)
    if empty.any():
        forced = torch.where(maskable, draw, torch.full_like(draw, 2.0)).argmin(dim=1)
        rows = empty.nonzero().flatten()
        chosen[rows, forced[rows]] = True
    targets = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    action = torch.rand(input_ids.shape, generator=generator, device=device)
    masked = input_ids.clone()
    masked[chosen & (action < 0.8)] = mask_id
    random_slots = chosen & (action >= 0.8) & (action < 0.9)
    masked[random_slots] = torch.randint(
        vocab_size, (int(random_slots.sum()),), generator=generator, device=device, dtype=input_ids.dtype
    )
    return masked, targets


def mntp_loss(hidden: Tensor, lm_weight: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of predicting each masked token i from the hidden state at i−1 (logits =
    ``hidden[i-1] @ lm_weight.T``); only positions with a target count."""
    shifted = targets[:, 1:]
    rows, cols = (shifted != IGNORE).nonzero(as_tuple=True)
    if rows.numel() == 0:
        return hidden.sum() * 0.0
    states = hidden[rows, cols]  # the state at i−1 for each masked i = cols + 1
    logits = states.float() @ lm_weight.to(states.device).float().T
    return nn.functional.cross_entropy(logits, shifted[rows, cols])


def mask_token_id(tokenizer: Any, mask_token: str | None) -> int:
    """The id used for ``[MASK]``: the configured token, else the tokenizer's mask token, else ``_``
    (LLM2Vec's choice for Llama and Mistral). It must be exactly one token."""
    token = mask_token or getattr(tokenizer, "mask_token", None) or "_"
    ids = tokenizer(token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ConfigError(
            f"mask token {token!r} is {len(ids)} tokens for this tokenizer; give one token", key="loss.mask_token"
        )
    return int(ids[0])


def lm_head_weight(base: nn.Module, source: str) -> Tensor:
    """The output projection for MNTP: the tied input embeddings, or the source's frozen ``lm_head``."""
    config = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    if getattr(config, "tie_word_embeddings", False) or getattr(base.config, "tie_word_embeddings", False):
        return base.get_input_embeddings().weight
    from transformers import AutoModelForCausalLM

    from decemb.loading import dequantized_gguf, resolve_source

    why = "its embeddings are not tied to the output and the source has no lm_head weights"
    try:
        resolved = resolve_source(source)
        location = str(dequantized_gguf(resolved.gguf_file)) if resolved.gguf_file else resolved.location
        causal, info = AutoModelForCausalLM.from_pretrained(location, output_loading_info=True, dtype=torch.float32)
    except (OSError, ValueError) as error:
        raise ConfigError(f"mntp needs the model's LM head: {why} ({error})", key="loss.name") from None
    if any("lm_head" in key for key in info.get("missing_keys", ())):
        raise ConfigError(f"mntp needs the model's LM head: {why}", key="loss.name")
    weight = causal.get_output_embeddings().weight.detach().clone()
    return weight.to(base.get_input_embeddings().weight.device)


class MNTPLoss(nn.Module):
    """A sentence-transformers-style loss over one ``text`` column: masks, runs the decemb model (bidirectional
    attention for ``llm2vec``) and scores the masked tokens from the states one position earlier."""

    def __init__(
        self,
        model: SentenceTransformer,
        lm_weight: Tensor,
        mask_id: int,
        probability: float = 0.2,
        special_ids: Iterable[int] = (),
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.lm_weight = lm_weight  # not registered: the trainer optimises the model's parameters only
        self.mask_id = mask_id
        self.probability = probability
        self.special_ids = sorted(set(special_ids))
        self.vocab_size = int(lm_weight.shape[0])
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        features = next(iter(sentence_features))
        ids = features["input_ids"]
        maskable = maskable_positions(ids, features["attention_mask"], self.special_ids)
        masked, targets = mask_tokens(
            ids.cpu(), maskable.cpu(), self.mask_id, self.probability, self.vocab_size, self.generator
        )
        output = self.model({**features, "input_ids": masked.to(ids.device)})
        return mntp_loss(output["token_embeddings"], self.lm_weight, targets.to(ids.device))

    @property
    def citation(self) -> str:
        return "BehnamGhader et al. 2024, LLM2Vec, arXiv:2404.05961"


def mntp_options(st: SentenceTransformer, config: Any, loss: Any) -> dict[str, Any]:
    """:class:`MNTPLoss`'s keyword arguments for a training config and its (source's) ``loss`` section."""
    tokenizer = st[0].tokenizer
    return {
        "lm_weight": lm_head_weight(st[0].auto_model, config.model.source),
        "mask_id": mask_token_id(tokenizer, loss.mask_token),
        "probability": loss.mask_probability,
        "special_ids": tokenizer.all_special_ids,
        "seed": config.training.seed,
    }
