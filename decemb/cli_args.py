"""Argument types, options and the user-error list shared by every ``decemb`` subcommand (no heavy imports)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


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


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions every command reports as one line with exit status 2 (no traceback)."""
    from decemb.attention import UnsupportedArchitectureError
    from decemb.errors import ConfigError, ModelSourceError
    from decemb.registry import UnknownNameError
    from decemb.tasks import TaskDataError
    from decemb.templates import TemplateError

    return ConfigError, TaskDataError, ModelSourceError, UnknownNameError, UnsupportedArchitectureError, TemplateError
