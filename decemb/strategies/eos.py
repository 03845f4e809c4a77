"""EOS pooling (cpt-text, RepLLaMA, UDEVER): append the EOS token, take its last-layer state."""

from __future__ import annotations

from typing import Literal

from decemb.strategies.base import Kind, Strategy, register
from decemb.templates import Template, literal, special, text

# (query prefix, query suffix, document prefix, document suffix) of the published recipes.
STYLES: dict[str, tuple[str, str, str, str]] = {
    "plain": ("", "", "", ""),
    "cpt-text": ("[", "]", "{", "}"),
    "repllama": ("query: ", "", "passage: ", ""),
}


@register
class EOSStrategy(Strategy):
    name = "eos"
    summary = "Append the EOS token (optionally inside per-type delimiters) and take its state."
    reference = (
        "Neelakantan et al. 2022 (cpt-text, arXiv:2201.10005); Ma et al. 2023 (RepLLaMA, arXiv:2310.08319); "
        "Zhang et al. 2023 (UDEVER, arXiv:2310.08232)"
    )

    style: Literal["plain", "cpt-text", "repllama"] = "plain"
    query_prefix: str | None = None
    query_suffix: str | None = None
    document_prefix: str | None = None
    document_suffix: str | None = None
    append_eos: bool = True

    def delimiters(self, kind: Kind) -> tuple[str, str]:
        q_prefix, q_suffix, d_prefix, d_suffix = STYLES[self.style]
        if kind == "query":
            return self._pick(self.query_prefix, q_prefix), self._pick(self.query_suffix, q_suffix)
        return self._pick(self.document_prefix, d_prefix), self._pick(self.document_suffix, d_suffix)

    @staticmethod
    def _pick(explicit: str | None, default: str) -> str:
        return default if explicit is None else explicit

    def template_for(self, kind: Kind) -> Template:
        prefix, suffix = self.delimiters(kind)
        tail = [special("eos")] if self.append_eos else []
        return Template.of(literal(prefix), text(), literal(suffix, pooled=True), *tail)

    @property
    def pooling_name(self) -> str:
        return "last"
