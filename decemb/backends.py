"""Compute backends of a loaded model: ``torch`` (the float reference: whatever ``dtype`` the model has) and
``int8`` (every ``Linear`` of the base model as :class:`~decemb.int8.RowInt8Linear`, CPU only).

A backend is chosen per load (``decemb.load(..., backend="int8")``, :class:`~decemb.load_options.LoadOptions`)
and applied to the freshly loaded model, or to a copy of a model the caller passes in
(:func:`with_backend`): a model someone else holds is never changed in place. The backend is recorded on the
model (:func:`backend_of`) and enters its fingerprint (:func:`decemb.engine.fingerprint`), so the embedding
cache, indexes and shard manifests never mix float32 and int8 vectors. An int8 model is for inference: its
``save_pretrained`` refuses in one line (save the float model; int8 is a load option). Measurements and the
candidates that were not kept: ``docs/performance.md``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from decemb.registry import Registry

if TYPE_CHECKING:
    import torch

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "apply_backend", "backend_of", "check_backend", "with_backend"]

DEFAULT_BACKEND = "torch"
_ATTRIBUTE = "decemb_backend"

BACKENDS: Registry[Callable[[Any], Any]] = Registry("backend")


def check_backend(name: str) -> str:
    """``name`` if it is a registered backend, else an ``UnknownNameError`` with a near-match suggestion."""
    BACKENDS.get(name)
    return name


def backend_of(model: torch.nn.Module) -> str:
    """The backend a model runs on (``torch`` unless a backend was applied)."""
    return str(getattr(model, _ATTRIBUTE, DEFAULT_BACKEND))


def apply_backend(model: Any, name: str) -> Any:
    """Put ``model`` (freshly loaded, owned by the caller) on backend ``name``, in place; returns it."""
    convert = BACKENDS.get(name)
    if name == backend_of(model):
        return model
    if backend_of(model) != DEFAULT_BACKEND:
        raise ValueError(f"the model already runs on backend {backend_of(model)!r}; load the float model again")
    return convert(model)


def with_backend(model: Any, name: str) -> Any:
    """``model`` itself for its own backend, else a converted copy (the caller's model stays as it is)."""
    check_backend(name)
    return model if name == backend_of(model) else apply_backend(copy.deepcopy(model), name)


@BACKENDS.register("torch")
def _torch(model: Any) -> Any:
    return model


@BACKENDS.register("int8")
def _int8(model: Any) -> Any:
    import torch

    from decemb.int8 import RowInt8Linear

    if model.get_input_embeddings().weight.device.type != "cpu":
        raise ValueError("backend 'int8' runs on CPU only; use backend 'torch' (e.g. with dtype bfloat16) on a GPU")
    model.float()
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear) and child is not head:  # a reranker's head stays float
                setattr(parent, name, RowInt8Linear(child))
    setattr(model, _ATTRIBUTE, "int8")
    model.save_pretrained = _refuse_save
    return model


def _refuse_save(*args: Any, **kwargs: Any) -> None:
    raise ValueError("an int8 model cannot be saved: save the float32 model and load it with backend='int8'")
