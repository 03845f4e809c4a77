"""Reading a saved decemb input module back (shared by the embedder and the reranker's pair encoder)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from decemb.errors import ModelSourceError

# What ``model_kwargs`` may hold when sentence-transformers reloads a saved folder.
LOAD_KWARGS = ("dtype", "torch_dtype", "attn_implementation", "device_map")


def read_saved_module(
    module_class: Any,
    model_name_or_path: str,
    loader: Callable[..., tuple[Any, Any]],
    *,
    subfolder: str = "",
    token: bool | str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    model_kwargs: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Any, Any]:
    """``(config, model, tokenizer)`` of a module saved in a folder or Hub repo: its config file (a damaged one
    is a one-line error naming it) and the weights loaded by ``loader`` (decemb's loader for the module's
    kind). ``model_kwargs`` other than :data:`LOAD_KWARGS` are refused rather than silently dropped."""
    options = dict(model_kwargs or {})
    unknown = sorted(set(options) - set(LOAD_KWARGS))
    if unknown:
        raise ValueError(f"model_kwargs {unknown} are not supported by decemb; supported: {', '.join(LOAD_KWARGS)}")
    where = {"subfolder": subfolder, "local_files_only": local_files_only}
    hub = {"token": token, "cache_folder": cache_folder, "revision": revision, **where}
    try:
        config = module_class.load_config(model_name_or_path, **hub)
    except json.JSONDecodeError as error:
        path = os.path.join(model_name_or_path, subfolder, module_class.config_file_name)
        raise ModelSourceError(f"{path} is not valid JSON ({error.msg} at line {error.lineno})") from None
    folder = module_class.load_dir_path(model_name_or_path, **hub)
    model, tokenizer = loader(
        folder or os.path.join(model_name_or_path, subfolder),
        dtype=options.get("dtype") or options.get("torch_dtype"),
        attn_implementation=options.get("attn_implementation"),
        device_map=options.get("device_map"),
    )
    return config, model, tokenizer
