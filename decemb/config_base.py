"""The base of every decemb config: the strict pydantic model, the data root, and the one formatter of a
config's ``ValidationError`` as one ``(key path, message)`` line.

* :class:`StrictModel`: ``extra="forbid"``, so a misspelt key is an error naming it (with a did-you-mean).
* :func:`data_root`: where relative data paths resolve, with one precedence everywhere (comparison, training,
  diagnostics, benchmarks): the explicit value (a command-line option, a function argument, else the
  config's ``data_root``), then ``$DECEMB_DATA``, then ``../shared/data`` next to the repository.
* :func:`format_validation_error` and :func:`config_error` (a validator's own one-line message).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from decemb.errors import pydantic_message
from decemb.registry import did_you_mean, suggest

__all__ = ["DATA_ENV", "StrictModel", "config_error", "data_root", "format_validation_error"]

DATA_ENV = "DECEMB_DATA"


class StrictModel(BaseModel):
    """A config model that forbids unknown keys (``extra="forbid"``); subclasses add ``frozen=True`` etc. as
    class keywords."""

    model_config = ConfigDict(extra="forbid")


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit`` (an option or the config's ``data_root``), else ``$DECEMB_DATA``, else ``../shared/data``
    next to the repository that holds this package."""
    if explicit is not None and os.fspath(explicit) != "":
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def config_error(message: str) -> PydanticCustomError:
    """A validator's error that :func:`format_validation_error` reports as ``message`` alone (it names its keys)."""
    return PydanticCustomError("decemb_config", "{message}", {"message": message})


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic model classes inside an annotation (through lists, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += [model for model in _models_in(arg) if model not in found]
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and not found and isinstance(origin, type) and issubclass(origin, BaseModel):
        found.append(origin)
    return found


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    return None if field is None else field.default


# The label pydantic gives a union member in ``loc``: ``literal['all-linear']``, ``list[str]``, ``function-after[...]``.
_MEMBER_LABEL = re.compile(r"[a-z][a-z-]*\[.*\]", re.DOTALL)


def _walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, list[type[BaseModel]]]:
    """Display path for ``loc`` (``tasks[0].limit``; union tags and member labels dropped) and the models
    owning its last key."""
    models: list[type[BaseModel]] = [root]
    parent = models
    path = ""
    for part in loc:
        parent = models
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        tagged = [model for model in models if _tag(model) == part]
        if len(models) > 1 and tagged:
            models = tagged
            continue
        if isinstance(part, str) and _MEMBER_LABEL.fullmatch(part):
            continue
        path += f".{part}" if path else str(part)
        fields = {name: field for model in models for name, field in model.model_fields.items()}
        models = _models_in(fields[part].annotation) if part in fields else []
    return path, parent


def _typo_behind(errors: list[Any]) -> Any:
    """When the first error is a missing key and a sibling unknown key is a near miss of it (``modles``
    for ``models``), that unknown key: the typo is the cause and the one to report."""
    first = errors[0]
    if first["type"] != "missing":
        return None
    parent, wanted = tuple(first["loc"][:-1]), str(first["loc"][-1])
    for other in errors[1:]:
        loc = tuple(other["loc"])
        if other["type"] == "extra_forbidden" and loc[:-1] == parent and suggest(loc[-1], [wanted]):
            return other
    return None


def format_validation_error(
    error: ValidationError, root: type[BaseModel], aliases: Mapping[str, str] | None = None
) -> tuple[str | None, str]:
    """``(key path, message)`` for the first error of a ``ValidationError`` of the config model ``root``
    (plus a count of the others). ``aliases``: other programs' names for keys (``learning_rate`` → ``lr``),
    suggested for an unknown key when the alias is a key there."""
    errors = error.errors()
    first = _typo_behind(errors) or errors[0]
    key, parent = _walk(root, tuple(first["loc"]))
    kind = first["type"]
    if kind == "decemb_config":
        key, message = None, str(first["ctx"]["message"])
    elif kind == "extra_forbidden":
        known = sorted({name for model in parent for name in model.model_fields})
        unknown = first["loc"][-1]
        alias = (aliases or {}).get(str(unknown))
        hint = did_you_mean(alias if alias in known else unknown, known)
        message = "unknown key" + (hint or f" (known keys: {', '.join(known)})")
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = [str(tag) for tag in (_tag(model) for model in parent) if tag is not None]
        field = str(first["ctx"]["discriminator"]).strip("'")
        key = f"{key}.{field}"
        if kind == "union_tag_invalid":
            tag = first["ctx"]["tag"]
            noun = "task type" if field == "type" else field
            message = f"unknown {noun} {tag!r}{did_you_mean(tag, tags)}; known: {', '.join(tags)}"
        else:
            message = f"required key missing (one of {', '.join(tags)})"
    else:
        message = pydantic_message(first)
        given = first.get("input")
        if kind == "literal_error" and isinstance(given, str):
            message += did_you_mean(given, re.findall(r"'([^']*)'", str(first["ctx"]["expected"])))
    others = len(errors) - 1
    if others:
        message += f" (and {others} more error{'s' if others > 1 else ''})"
    return key or None, message
