"""Name → object registries that suggest near matches for unknown names (in the spirit of mteb)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def suggest(name: object, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to ``name`` (difflib, cutoff 0.5): the one suggestion rule of decemb."""
    return difflib.get_close_matches(str(name), list(known), n=n, cutoff=0.5)


def did_you_mean(name: object, known: Iterable[str], *, list_known: bool = False) -> str:
    """`` (did you mean 'x'?)`` for the closest known name; else `` (known: a, b)`` when ``list_known``, or ''."""
    known = list(known)
    close = suggest(name, known, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(known) or 'none'})" if list_known else ""


class UnknownNameError(KeyError, ValueError):
    """An unknown registry name; the message carries 'did you mean' suggestions."""

    def __init__(self, kind: str, name: object, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        self.suggestions = suggest(name, known)
        hint = f" Did you mean {' or '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else ""
        self.message = f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}."
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Registry(Generic[T]):
    """A small, ordered name → value mapping with a decorator for registration."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(value: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = value
            return value

        return decorator

    def add(self, name: str, value: T) -> T:
        return self.register(name)(value)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
