"""What an index remembers of the model that embedded it, and the check that a model at hand is that one."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer

from decemb.search.errors import IndexMismatchError

__all__ = ["check_identity", "model_identity"]

# The encode settings that change a vector (padding side and batching do not).
VECTOR_SETTINGS = ("max_length", "layer", "add_special_tokens")


def _fingerprint(module: torch.nn.Module) -> str:
    if hasattr(module, "config") and hasattr(module, "dtype"):
        from decemb.engine import fingerprint

        return fingerprint(module)
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_identity(model: SentenceTransformer, source: str | None = None) -> dict[str, Any]:
    """``{source, fingerprint, strategy: {name, options}, settings, modules}`` of an embedding model.

    The fingerprint is :func:`decemb.engine.fingerprint` of the backbone (config, dtype and every weight);
    ``source`` (where to load the model from again) is informative and never compared."""
    first = model[0]
    backbone = getattr(first, "auto_model", None)
    spec = getattr(first, "strategy_spec", None)
    settings = getattr(first, "settings", None)
    return {
        "source": source,
        "fingerprint": _fingerprint(backbone if isinstance(backbone, torch.nn.Module) else model),
        "strategy": {"name": spec.name, "options": spec.options()} if spec is not None else None,
        "settings": (
            {key: getattr(settings, key) for key in VECTOR_SETTINGS}
            if settings is not None
            else {"max_seq_length": getattr(model, "max_seq_length", None)}
        ),
        "modules": [f"{type(module).__module__}.{type(module).__name__}" for module in model],
    }


def _describe(identity: dict[str, Any]) -> str:
    strategy = identity.get("strategy") or {}
    options = ", ".join(f"{k}={v}" for k, v in sorted((strategy.get("options") or {}).items()) if v is not None)
    name = strategy.get("name", "?")
    return f"{name}({options})" if options else str(name)


def check_identity(expected: dict[str, Any], actual: dict[str, Any], folder: str | Path) -> None:
    """Raise :class:`IndexMismatchError` naming the first difference (model weights, strategy, settings)."""
    if expected.get("fingerprint") != actual.get("fingerprint"):
        raise IndexMismatchError(
            f"the index was built with another model (fingerprint {str(expected.get('fingerprint'))[:12]}, "
            f"source {expected.get('source')!r}) than this one (fingerprint {str(actual.get('fingerprint'))[:12]}); "
            "rebuild the index or use the model it was built with",
            file=folder,
        )
    if expected.get("strategy") != actual.get("strategy"):
        raise IndexMismatchError(
            f"the index was built with strategy {_describe(expected)}, this model embeds with {_describe(actual)}",
            file=folder,
        )
    if expected.get("settings") != actual.get("settings"):
        differ = sorted(
            key
            for key in set(expected.get("settings") or {}) | set(actual.get("settings") or {})
            if (expected.get("settings") or {}).get(key) != (actual.get("settings") or {}).get(key)
        )
        shown = ", ".join(
            f"{key}={(expected['settings'] or {}).get(key)!r} (this model: {(actual['settings'] or {}).get(key)!r})"
            for key in differ
        )
        raise IndexMismatchError(f"the index was built with other encode settings: {shown}", file=folder)
    if expected.get("modules") != actual.get("modules"):
        raise IndexMismatchError(
            f"the index was built with modules {expected.get('modules')}, this model has {actual.get('modules')}",
            file=folder,
        )
