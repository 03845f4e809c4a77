"""PromptEOL (Jiang et al. 2023): 'This sentence : "…" means in one word:"', last token."""

from __future__ import annotations

from decemb.config_base import StrictModel
from decemb.strategies.base import Kind, Strategy, register
from decemb.templates import Piece, Template, literal, text

PREFIX, SUFFIX = 'This sentence : "', '" means in one word:"'


class Demonstration(StrictModel, frozen=True):
    """One in-context example: a sentence and the word it 'means'."""

    sentence: str
    word: str


# The demonstration used in the paper's in-context experiments.
PAPER_DEMONSTRATION = Demonstration(sentence="A jockey riding a horse.", word="Equestrian")


def authors_preprocessing(sentence: str) -> str:
    """The authors' normalisation: end with a period, '"' → "'", a final '?' becomes '.'."""
    if sentence and sentence[-1] not in ".?\"'":
        sentence += "."
    sentence = sentence.replace('"', "'")
    if sentence and sentence[-1] == "?":
        sentence = sentence[:-1] + "."
    return sentence


@register
class PromptEOLStrategy(Strategy):
    name = "prompteol"
    summary = 'Prompt "This sentence : "…" means in one word:"" and take the last token.'
    reference = "Jiang et al. 2023, Scaling Sentence Embeddings with Large Language Models, arXiv:2307.16645"

    demonstrations: tuple[Demonstration, ...] = ()
    preprocess_text: bool = False

    def template_for(self, kind: Kind) -> Template:
        demos: list[Piece] = []
        for demo in self.demonstrations:
            demos.append(literal(f'{PREFIX}{demo.sentence}" means in one word:"{demo.word}".\n', pooled=True))
        # The whole prompt is one pooled part so that "last" reads its final token, the closing quote.
        return Template.of(*demos, literal(PREFIX, pooled=True), text(), literal(SUFFIX, pooled=True))

    @property
    def pooling_name(self) -> str:
        return "last"

    def preprocess(self, text: str) -> str:
        return authors_preprocessing(text) if self.preprocess_text else text
