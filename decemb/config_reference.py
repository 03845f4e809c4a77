"""The reference of every config key, generated from the pydantic models' field descriptions.

``python -m decemb.config_reference > docs/reference.md`` writes it; ``tests/test_config_reference.py`` holds
the file to what this module renders, so the reference cannot drift from the models. Each model is one table
(key, type, default, description) under its class docstring's first paragraph; a model reached from a
section's roots through its fields (a task's ``bm25`` settings, a training config's sections) is rendered
once, in the first section that reaches it.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import types
import typing
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

__all__ = ["SECTIONS", "main", "render"]

# (title, introduction, roots as "module:Class")
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Comparison config (`decemb compare CONFIG.yaml`)",
        "The YAML file of a comparison: `decemb.compare.load_config`.",
        (
            "decemb.compare.config:ComparisonConfig",
            "decemb.compare.config:StrategyConfig",
            "decemb.compare.config:ModelConfig",
            "decemb.compare.tasks:RerankConfig",
        ),
    ),
    (
        "Loading options (`decemb.load`, `load_backbone`, `load_reranker`, a comparison's `models[*]`)",
        "The model-loading keywords, validated once for every entry point.",
        ("decemb.load_options:LoadOptions",),
    ),
    (
        "Task entries (`tasks:` of a comparison, `eval:` of a training config)",
        "One entry per task; `type` selects the table. Paths are relative to the data root unless absolute.",
        (
            "decemb.tasks.config:STSTaskConfig",
            "decemb.tasks.config:RetrievalTaskConfig",
            "decemb.compare.tasks:RetrievalRerankTaskConfig",
            "decemb.tasks.config:ClassificationTaskConfig",
            "decemb.tasks.config:ClusteringTaskConfig",
            "decemb.tasks.mteb_task:MtebTaskConfig",
        ),
    ),
    (
        "Search settings (a retrieval task's `bm25` / `fusion`, `decemb search`)",
        "Recorded with a saved index: a query is read the way the corpus was.",
        ("decemb.search.lexical:Bm25Settings", "decemb.search.fusion:FusionSettings"),
    ),
    (
        "Training config (`decemb train CONFIG.yaml`)",
        "The YAML file of a training run: `decemb.train.parsing`.",
        ("decemb.train.config:TrainConfig",),
    ),
)

_ROLE = re.compile(r":(?:class|func|mod|meth|attr|data):`(~?)([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")


def _model(path: str) -> type[BaseModel]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _plain(text: str) -> str:
    """reStructuredText literals and roles (``:class:`~a.B```: ``B``) as Markdown code spans, on one line, with
    table pipes escaped."""
    text = _ROLE.sub(lambda match: f"`{match.group(2).rsplit('.', 1)[-1] if match.group(1) else match.group(2)}`", text)
    text = _LITERAL.sub(lambda match: f"`{match.group(1)}`", text)
    return " ".join(text.split()).replace("|", "\\|")


def _summary(model: type[BaseModel]) -> str:
    doc = (model.__doc__ or "").strip()
    return _plain(doc.split("\n\n")[0]) if doc else ""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join('...' if arg is Ellipsis else _type_name(arg) for arg in args)}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return f"`{json.dumps(value, default=str)}`"


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _table(model: type[BaseModel]) -> list[str]:
    lines = [f"### {model.__name__}", ""]
    if summary := _summary(model):
        lines += [summary, ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        shown = _plain(_type_name(field.annotation))
        lines.append(f"| `{name}` | {shown} | {_default(field)} | {_plain(field.description or '')} |")
    return [*lines, ""]


def _reached(roots: Sequence[type[BaseModel]], skip: set[type[BaseModel]]) -> list[type[BaseModel]]:
    """``roots`` and the models their fields reach (breadth first), less ``skip``."""
    order: list[type[BaseModel]] = []
    queue = list(roots)
    while queue:
        model = queue.pop(0)
        if model in order or model in skip:
            continue
        order.append(model)
        for field in model.model_fields.values():
            queue += [found for found in _models_in(field.annotation) if found not in order]
    return order


def render() -> str:
    """The whole reference, as Markdown."""
    sections = [(title, intro, [_model(path) for path in roots]) for title, intro, roots in SECTIONS]
    claimed = {model for _, _, roots in sections for model in roots}
    done: set[type[BaseModel]] = set()
    lines = [
        "# Configuration reference",
        "",
        "Generated by `python -m decemb.config_reference > docs/reference.md` from the pydantic models' field",
        "descriptions; do not edit by hand. Every model forbids unknown keys (a misspelt key is an error naming it).",
        "",
    ]
    for title, intro, roots in sections:
        lines += [f"## {title}", "", intro, ""]
        for model in _reached(roots, done | (claimed - set(roots))):
            lines += _table(model)
            done.add(model)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
