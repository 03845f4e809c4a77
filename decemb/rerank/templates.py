"""Pair templates for a decoder reranker: ``prefix + QUERY + middle + DOCUMENT + suffix``, answered yes/no.

The template is chosen from the tokenizer, never from a model name: a tokenizer with a chat template gets
the pair as one user turn rendered by that chat template (its own role markers and special tokens, the
assistant turn opened, so the next token is the answer); any other tokenizer gets a plain prompt ending
in ``Answer:`` (wrapped in the tokenizer's own special tokens, e.g. BOS). Relevance is
``logit(yes) - logit(no)`` at the last position, where ``yes``/``no`` are the first tokens of the answer
words as they would follow the suffix.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

__all__ = [
    "QUESTION",
    "PairTemplate",
    "TemplateMismatchError",
    "answer_token_ids",
    "chat_pair_template",
    "default_pair_template",
    "plain_pair_template",
]

logger = logging.getLogger(__name__)

QUESTION = 'Is the document relevant to the query? Answer only "yes" or "no".'
_QUERY_SLOT = "\u27e6DECEMB-QUERY\u27e7"
_DOC_SLOT = "\u27e6DECEMB-DOCUMENT\u27e7"


class TemplateMismatchError(ValueError):
    """A pair template that cannot work with this tokenizer (e.g. yes and no share their first token)."""


@dataclass(frozen=True)
class PairTemplate:
    """Literal text around the two slots; ``special_tokens``: wrap the rendering in the tokenizer's own
    special tokens (off for chat templates, which write their own). ``yes``/``no``: the answer words,
    with the leading space they have after ``suffix`` (``" yes"`` after ``Answer:``)."""

    prefix: str
    middle: str
    suffix: str
    yes: str = "yes"
    no: str = "no"
    special_tokens: bool = True
    family: str = "custom"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairTemplate:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown pair template key(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(**data)

    def with_question(self, question: str) -> PairTemplate:
        """The same template with another closing question (``QUESTION`` replaced in the suffix)."""
        if QUESTION not in self.suffix:
            raise ValueError("this template has no default question to replace")
        return PairTemplate(**{**self.to_dict(), "suffix": self.suffix.replace(QUESTION, question)})


def plain_pair_template(question: str = QUESTION) -> PairTemplate:
    """For base models without a chat template."""
    return PairTemplate(
        prefix="Query: ",
        middle="\nDocument: ",
        suffix=f"\n{question}\nAnswer:",
        yes=" yes",
        no=" no",
        special_tokens=True,
        family="plain",
    )


def chat_pair_template(tokenizer: PreTrainedTokenizerBase, question: str = QUESTION) -> PairTemplate | None:
    """The pair as one user turn of the tokenizer's own chat template, assistant turn opened; ``None`` when
    the chat template cannot render it (it rejects the message, or rewrites the content)."""
    content = f"Query: {_QUERY_SLOT}\nDocument: {_DOC_SLOT}\n{question}"
    try:
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
        )
    except Exception as error:  # jinja raises its own exception types; any failure means "not usable"
        logger.warning("the tokenizer's chat template cannot render a reranking turn (%s); using a plain prompt", error)
        return None
    if not isinstance(rendered, str) or rendered.count(_QUERY_SLOT) != 1 or rendered.count(_DOC_SLOT) != 1:
        return None
    prefix, rest = rendered.split(_QUERY_SLOT)
    middle, suffix = rest.split(_DOC_SLOT)
    if not suffix.strip():
        return None
    return PairTemplate(prefix, middle, suffix, yes="yes", no="no", special_tokens=False, family="chat")


def default_pair_template(tokenizer: PreTrainedTokenizerBase, question: str = QUESTION) -> PairTemplate:
    """The tokenizer's chat template when it has a usable one, else the plain prompt."""
    if getattr(tokenizer, "chat_template", None):
        template = chat_pair_template(tokenizer, question)
        if template is not None:
            return template
    return plain_pair_template(question)


def answer_token_ids(tokenizer: PreTrainedTokenizerBase, template: PairTemplate) -> tuple[int, int]:
    """The first token of each answer word as it follows the suffix (``suffix + word`` tokenized minus the
    suffix's own tokens), so that ``" yes"`` after ``Answer:`` and ``yes`` after an assistant marker each
    give the token the model would produce there."""

    def first_token(word: str) -> int:
        if not word:
            raise TemplateMismatchError("an answer word is empty")
        base = tokenizer(template.suffix, add_special_tokens=False)["input_ids"]
        joint = tokenizer(template.suffix + word, add_special_tokens=False)["input_ids"]
        if joint[: len(base)] == base and len(joint) > len(base):
            extra = joint[len(base) :]
        else:  # the word merged with the suffix's last token: read it on its own
            extra = tokenizer(word, add_special_tokens=False)["input_ids"]
        if not extra:
            raise TemplateMismatchError(f"the answer word {word!r} tokenizes to nothing")
        if len(extra) > 1:
            logger.info("answer word %r is %d tokens; scoring its first token", word, len(extra))
        return int(extra[0])

    yes, no = first_token(template.yes), first_token(template.no)
    if yes == no:
        raise TemplateMismatchError(
            f"the answer words {template.yes!r} and {template.no!r} start with the same token ({yes}); choose others"
        )
    return yes, no
