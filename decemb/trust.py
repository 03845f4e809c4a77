"""Opening a folder someone else saved never runs code from it (unless the caller says ``trust_remote_code``).

Two ways a model folder can carry code, and what decemb does about each:

* **Module classes** (``modules.json``): every ``type`` must resolve to a ``torch.nn.Module`` class *defined in
  the installed* decemb or sentence-transformers package — the resolved class's source file is checked to lie
  inside that package's folder, not the name's prefix, so a ``decemb.py`` planted in the folder is never
  imported (:func:`installed_module_class`).
* **``auto_map``** (transformers' pointer to a ``modeling_*.py`` / ``tokenization_*.py`` file shipped with the
  model): any such key in a config file of the folder or of one of its modules is refused in one line naming
  the file and key path (:func:`refuse_code_configs`). transformers is also always called with an explicit
  ``trust_remote_code`` (``False`` by default), so it never shows its interactive "run the custom code?" prompt.

With ``trust_remote_code=True`` none of this is checked: running the folder's code is then the caller's choice.
This module is a leaf: it imports nothing from decemb but the error type.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from decemb.errors import ModelSourceError

__all__ = [
    "TRUSTED_PACKAGES",
    "UnsafeModelError",
    "check_saved_folder",
    "installed_module_class",
    "refuse_code_configs",
]

TRUSTED_PACKAGES = ("decemb", "sentence_transformers")
# JSON files transformers never reads an ``auto_map`` from (and that can be large): not scanned.
_NOT_CONFIGS = frozenset({"tokenizer.json", "vocab.json", "merges.json", "modules.json"})
_HINT = "pass trust_remote_code=True only if you have read and trust that code"


class UnsafeModelError(ModelSourceError):
    """A folder that would run its own code when loaded."""


def installed_module_class(class_ref: str, where: str | os.PathLike[str] = "modules.json") -> type:
    """The ``torch.nn.Module`` class ``class_ref`` names, defined in the installed decemb or
    sentence-transformers; anything else is an :class:`UnsafeModelError` naming ``where`` and the type."""
    import torch

    module_name, _, class_name = str(class_ref).rpartition(".")
    top = module_name.split(".", 1)[0]

    def refuse(why: str) -> UnsafeModelError:
        return UnsafeModelError(
            f"{os.fspath(where)}: module type {class_ref!r} {why}; decemb loads only classes of the installed "
            f"decemb and sentence-transformers packages ({_HINT})"
        )

    if top not in TRUSTED_PACKAGES or not class_name:
        raise refuse("is outside decemb and sentence-transformers")
    try:
        if top == "sentence_transformers":  # its own resolver knows the renamed legacy paths
            from sentence_transformers.util import import_from_string

            found: Any = import_from_string(class_ref)
        else:
            found = getattr(importlib.import_module(module_name), class_name, None)
    except (ImportError, AttributeError):
        found = None
    if not (isinstance(found, type) and issubclass(found, torch.nn.Module)):
        raise refuse("is not a module class of the installed packages")
    package = Path(importlib.import_module(top).__file__ or "").resolve().parent
    try:
        source = Path(inspect.getfile(found)).resolve()
    except TypeError:  # a class without a file (built at run time) is not the installed package's
        raise refuse("has no source file in the installed packages") from None
    if package not in source.parents:
        raise refuse(f"resolves to {source}, outside the installed {top} ({package})")
    return found


def _auto_map_keys(data: Any, path: str = "") -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "auto_map":
                yield where
            else:
                yield from _auto_map_keys(value, where)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _auto_map_keys(value, f"{path}[{index}]")


def refuse_code_configs(folder: str | os.PathLike[str], subfolders: Iterable[str] = ("",)) -> None:
    """Refuse, in one line naming the file and key, any ``auto_map`` in the JSON config files of ``folder``'s
    ``subfolders`` (``""`` is the folder itself). Files that are not valid JSON are left to their readers."""
    root = Path(os.fspath(folder)).expanduser()
    for sub in dict.fromkeys(subfolders):
        place = root / sub if sub else root
        if not place.is_dir():
            continue
        for file in sorted(place.glob("*.json")):
            if file.name in _NOT_CONFIGS or not file.is_file():
                continue
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            keys = list(_auto_map_keys(data))
            if keys:
                raise UnsafeModelError(
                    f"{file}: key {keys[0]!r} points transformers at code shipped in the folder, which decemb "
                    f"does not run ({_HINT})"
                )


def check_saved_folder(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Check a saved sentence-transformers folder before anything in it is loaded: every module class is an
    installed one and no config of the folder or of a module carries an ``auto_map``. Returns the module list."""
    root = Path(os.fspath(folder)).expanduser()
    modules_file = root / "modules.json"
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        entries = [(str(module.get("type", "")), str(module.get("path", ""))) for module in modules]
    except (ValueError, AttributeError, TypeError) as error:
        raise ModelSourceError(f"{modules_file} is not a valid module list ({error})") from None
    for class_ref, _ in entries:
        installed_module_class(class_ref, modules_file)
    refuse_code_configs(root, ["", *(path for _, path in entries)])
    return modules
