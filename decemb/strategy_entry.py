"""A strategy as a user writes it (a config entry, ``decemb encode --strategy/--option``): name + options →
the built strategy (:func:`decemb.strategies.build_strategy`), or a ``ConfigError`` naming the offending key,
and the strategy's display label."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from decemb.errors import ConfigError
from decemb.registry import UnknownNameError
from decemb.strategies import Strategy, StrategyOptionError, build_strategy

__all__ = ["build_checked_strategy", "build_strategy_entry", "default_label"]

_RESERVED = ("name", "nearby_keys")  # an entry's name, and build_strategy's own keyword: never strategy options


def _same(key: str | None) -> str | None:
    return key


def build_strategy_entry(
    name: Any,
    options: Mapping[str, Any],
    *,
    entry_keys: Sequence[str] = (),
    where: Callable[[str | None], str | None] = _same,
) -> Strategy:
    """:func:`build_strategy` ``(name, **options)``, every problem a ``ConfigError`` whose key is
    ``where(subkey)``: ``subkey`` is ``"name"`` for an unknown strategy (the message with did-you-mean), the
    option's key for a bad option, ``None`` when the problem is not about one key. ``entry_keys``: keys that sit
    next to the options where they were written (a config entry's ``name``/``label``), also offered as
    did-you-mean suggestions for an unknown option."""
    reserved = next((key for key in _RESERVED if key in options), None)
    if reserved is not None:
        raise ConfigError(f"unknown option for strategy {name!r}", key=where(reserved))
    try:
        return build_strategy(name, nearby_keys=tuple(entry_keys), **options)
    except UnknownNameError as error:
        raise ConfigError(error.message, key=where("name")) from None
    except StrategyOptionError as error:
        message = error.reason if error.unknown else f"strategy {name!r}: {error.reason}"
        raise ConfigError(message, key=where(error.key)) from None
    except (ValueError, KeyError) as error:
        raise ConfigError(str(error), key=where(None)) from None


def build_checked_strategy(name: str, options: Mapping[str, Any]) -> Strategy:
    """:func:`build_strategy_entry` for the command line: the error names ``--strategy`` or ``--option KEY``."""

    def where(key: str | None) -> str:
        if key == "name" and "name" not in options:
            return "--strategy"
        return f"--option {key}" if key else "--option"

    return build_strategy_entry(name, options, where=where)


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split()) if isinstance(value, str) else text
    return text if len(text) <= width else text[: width - 1] + "…"


def default_label(strategy: Strategy) -> str:
    """The strategy's name plus its non-default options: ``mean``, ``echo(pooling=last)``."""
    changed = strategy.model_dump(mode="json", exclude_defaults=True)
    if not changed:
        return strategy.name
    return f"{strategy.name}({', '.join(f'{key}={_short(value)}' for key, value in changed.items())})"
