"""The strategy contract: how to render the text (and the span to pool), which attention, how to pool."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ValidationError

from decemb.attention import CAUSAL, AttentionMode
from decemb.config_base import StrictModel
from decemb.errors import pydantic_message
from decemb.registry import Registry, did_you_mean
from decemb.rendering import Renderer
from decemb.settings import DEFAULT_MAX_LENGTH, SETTING_KEYS
from decemb.templates import Template

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Kind = Literal["query", "document"]
KINDS: tuple[Kind, ...] = ("query", "document")


class Strategy(StrictModel, frozen=True):
    """Base class: subclasses are frozen pydantic models whose fields are the strategy's options."""

    name: ClassVar[str]
    summary: ClassVar[str]
    reference: ClassVar[str]
    attention: ClassVar[AttentionMode] = CAUSAL
    takes_instruction: ClassVar[bool] = False

    def template_for(self, kind: Kind) -> Template:
        """The template for a query or a document (symmetric strategies ignore ``kind``)."""
        raise NotImplementedError

    @property
    def pooling_name(self) -> str:
        raise NotImplementedError

    def variables(self, kind: Kind, instruction: str | None = None) -> dict[str, str]:
        """Values of the template's ``%%name%%`` variables (``instruction`` overrides per call)."""
        return {}

    def task_instruction(self, task_name: str, task_type: str) -> str | None:
        """The per-call instruction this strategy wants for an evaluation task (``None``: its own setting).

        Only strategies that read a task's instruction override this (``instruct``: the E5 table)."""
        return None

    def preprocess(self, text: str) -> str:
        """Optional per-text normalisation applied before rendering (identity by default)."""
        return text

    def options(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def renderer(
        self,
        tokenizer: PreTrainedTokenizerBase,
        kind: Kind,
        instruction: str | None = None,
        *,
        max_length: int | None = DEFAULT_MAX_LENGTH,
        add_special_tokens: bool = True,
    ) -> Renderer:
        """The renderer for one side (query/document) and one instruction of this strategy."""
        return Renderer(
            tokenizer,
            self.template_for(kind),
            self.variables(kind, instruction),
            max_length=max_length,
            add_special_tokens=add_special_tokens,
            preprocess=self.preprocess,
        )


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def register(cls: type[Strategy]) -> type[Strategy]:
    """Register a strategy class; its options may not share a name with an encode setting (``decemb.load``
    tells them apart by name)."""
    clash = set(cls.model_fields) & SETTING_KEYS
    if clash:
        raise ValueError(f"strategy {cls.name!r}: option(s) {sorted(clash)} clash with encode settings")
    return STRATEGIES.add(cls.name, cls)


class StrategyOptionError(ValueError):
    """A bad strategy option: ``key`` is the option's path (``None`` when not about one key), ``reason``
    the message without the key, ``unknown`` whether the key is not an option at all."""

    def __init__(self, name: str, key: str | None, reason: str, unknown: bool) -> None:
        self.name, self.key, self.reason, self.unknown = name, key, reason, unknown
        super().__init__(f"strategy {name!r}, option {key or '<options>'!r}: {reason}")


def _option_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def build_strategy(
    spec: str | Mapping[str, Any] | Strategy, /, *, nearby_keys: tuple[str, ...] = (), **options: Any
) -> Strategy:
    """The one way to build a strategy, from a registered name plus ``options``, a ``{name: ..., option: value}``
    mapping (the form configs use) plus ``options``, or a built :class:`Strategy` (which takes no further
    options). Every problem raises, in one line: an unknown name an ``UnknownNameError`` with near-match
    suggestions; a bad option a :class:`StrategyOptionError` naming it (an unknown one with a did-you-mean over
    the options and ``nearby_keys``, keys written next to the options, e.g. a config entry's ``label``); a
    mapping without a ``name``, or an option given twice, a ``ValueError``."""
    if isinstance(spec, Strategy):
        if options:
            raise ValueError(
                f"strategy {spec.name!r} is already built; option(s) {sorted(options)} go in the Strategy object "
                "or with its name, not both"
            )
        return spec
    if isinstance(spec, Mapping):
        values = dict(spec)
        name = values.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(f"strategy mapping {dict(spec)!r} needs a 'name' key naming a registered strategy")
        twice = sorted(set(values) & set(options))
        if twice:
            raise ValueError(f"strategy {name!r}: option {twice[0]!r} given both in the mapping and as a keyword")
        options = {**values, **options}
    else:
        name = spec
    cls = STRATEGIES.get(name)
    try:
        return cls(**options)
    except ValidationError as error:
        first = error.errors()[0]
        key = _option_path(first["loc"]) or None
        if first["type"] == "extra_forbidden":
            known = list(cls.model_fields)
            hint = did_you_mean(key, [*known, *nearby_keys]) or f" (known options: {', '.join(known) or 'none'})"
            raise StrategyOptionError(name, key, f"unknown option for strategy {name!r}{hint}", True) from None
        raise StrategyOptionError(name, key, pydantic_message(first), False) from None


strategy_of = build_strategy  # its former name (decemb.api, decemb.st.embedder and decemb.train.model use it)
