"""Argument types, options and the user-error list shared by every ``decemb`` subcommand (no heavy imports)."""

from __future__ import annotations

import argparse
import re
import typing
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decemb.load_options import LoadOptions


def positive_int(text: str) -> int:
    """An argparse type: an integer > 0, with a one-line error."""
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def integer(text: str) -> int:
    """An argparse type: any integer, with a one-line error."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def non_negative(unit: str) -> Callable[[str], float]:
    """An argparse type for a finite number of ``unit`` >= 0 (e.g. ``non_negative("milliseconds")``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a number of {unit} >= 0, got {text!r}")
        return value

    return parse


seconds = non_negative("seconds")


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` for every command that runs a model (see :mod:`decemb.threads` for the default)."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="torch CPU threads (default: $OMP_NUM_THREADS, else the cores not busy: cores minus the load average)",
    )


def load_flag(key: str) -> str:
    """The command-line flag of a :class:`~decemb.load_options.LoadOptions` key (``attn_implementation`` →
    ``--attn-implementation``)."""
    return "--" + key.replace("_", "-")


def literal_choices(annotation: Any) -> list[Any] | None:
    """The values of a ``Literal`` annotation (also inside ``Optional``); ``None`` for any other type."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    for arg in typing.get_args(annotation):
        if (found := literal_choices(arg)) is not None:
            return found
    return None


def _help(description: str) -> str:
    """A field description as argparse help: reStructuredText literals plain, ``%`` escaped."""
    return re.sub(r"``(.+?)``", r"\1", description).replace("%", "%%")


def add_load_options(parser: Any, exclude: Sequence[str] = ()) -> None:
    """One flag per :class:`~decemb.load_options.LoadOptions` field (``--dtype``, ``--device``, ``--device-map``,
    ``--attn-implementation``, ``--revision``, ``--adapter``, ``--trust-remote-code``, ``--backend``, less
    ``exclude``), its description as help, a ``Literal``'s values as choices. Every flag defaults to ``None``
    (not given), so :func:`load_options_from_args` leaves LoadOptions' own defaults in place."""
    from decemb.load_options import LoadOptions

    for key, field in LoadOptions.model_fields.items():
        if key in exclude:
            continue
        help_text = _help(field.description or "")
        if field.annotation is bool:
            parser.add_argument(load_flag(key), action="store_true", default=None, help=help_text)
            continue
        choices = literal_choices(field.annotation)
        metavar = None if choices else key.rsplit("_", 1)[-1].upper()
        parser.add_argument(load_flag(key), choices=choices, metavar=metavar, default=None, help=help_text)


def load_options_from_args(args: argparse.Namespace, **changes: Any) -> LoadOptions:
    """The :class:`~decemb.load_options.LoadOptions` of the flags given (then ``changes``), validated; a bad
    value is a ``ConfigError`` naming its flag (``--dtype: unknown dtype 'fp8'; ...``)."""
    from pydantic import ValidationError

    from decemb.errors import ConfigError, pydantic_message
    from decemb.load_options import LOAD_KEYS, LoadOptions

    given = {key: getattr(args, key) for key in LOAD_KEYS if getattr(args, key, None) is not None}
    try:
        return LoadOptions.model_validate({**given, **changes})
    except ValidationError as error:
        first = error.errors()[0]
        raise ConfigError(pydantic_message(first), key=load_flag(str(first["loc"][0]))) from None


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions every command reports as one line with exit status 2 (no traceback)."""
    from decemb.attention import UnsupportedArchitectureError
    from decemb.errors import ConfigError, ModelSourceError
    from decemb.registry import UnknownNameError
    from decemb.tasks import TaskDataError
    from decemb.templates import TemplateError

    return ConfigError, TaskDataError, ModelSourceError, UnknownNameError, UnsupportedArchitectureError, TemplateError
