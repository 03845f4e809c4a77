"""A strategy as a user writes it (a config entry, ``decemb encode --strategy/--option``): name + options →
the built strategy, its display label, or a one-line error naming the offending key."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from decemb.registry import UnknownNameError
from decemb.strategies import Strategy, StrategyOptionError, build_strategy

__all__ = ["check_strategy", "default_label"]

_RESERVED = ("name", "nearby_keys")  # build_strategy's own arguments, never strategy options


def check_strategy(
    name: Any, options: dict[str, Any], entry_keys: Sequence[str] = ()
) -> tuple[Strategy | None, str | None, str | None]:
    """Build a strategy through :func:`build_strategy`; on failure return ``(None, subkey, message)``.

    ``subkey`` is ``"name"`` for an unknown strategy (message with did-you-mean), the option's key for a
    bad option, or ``None`` when the error is not about one key. ``entry_keys``: keys that sit next to
    the options where they were written (a config entry's ``name``/``label``), also offered as
    did-you-mean suggestions for an unknown option.
    """
    reserved = next((key for key in _RESERVED if key in options), None)
    if reserved is not None:
        return None, reserved, f"unknown option for strategy {name!r}"
    try:
        return build_strategy(name, nearby_keys=tuple(entry_keys), **options), None, None
    except UnknownNameError as error:
        return None, "name", error.message
    except StrategyOptionError as error:
        if error.unknown:
            return None, error.key, error.reason
        return None, error.key, f"strategy {name!r}: {error.reason}"
    except (ValueError, KeyError) as error:
        return None, None, str(error)


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
