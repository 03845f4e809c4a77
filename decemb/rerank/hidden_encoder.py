"""The pair encoder of a reranker with a linear score head: :class:`~decemb.rerank.module.DecembPairEncoder`
(same template, rendering, shared-prefix cache and saved layout) that also outputs ``last_hidden``, the
final hidden state at each pair's last token, shape ``(batch, hidden)``.

That state is what the LM head reads (its input is captured with a forward pre-hook, so the state is the
model's own final-normed hidden state in every architecture); a linear layer over it is RankLLaMA's score
(:mod:`decemb.rerank.head`). ``causal_logits`` stay in the output too.
"""

from __future__ import annotations

from typing import Any

import torch

from decemb.rerank.module import DecembPairEncoder, _unwrapped

__all__ = ["DecembPairHiddenEncoder"]


class DecembPairHiddenEncoder(DecembPairEncoder):
    """A :class:`DecembPairEncoder` whose output adds ``last_hidden`` (see the module docstring)."""

    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        head = _unwrapped(self.auto_model).get_output_embeddings()
        seen: list[torch.Tensor] = []
        hook = head.register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
        try:
            output = super().forward(features, **kwargs)
        finally:
            hook.remove()
        output["last_hidden"] = seen[-1][:, -1, :]  # the last call scores the rows (a first one: the prefix)
        return output
