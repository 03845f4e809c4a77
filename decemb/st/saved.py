"""Reading a saved decemb input module back (shared by the embedder and the reranker's pair encoder)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from decemb.errors import ModelSourceError
from decemb.trust import check_saved_folder

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
    trust_remote_code: bool = False,
) -> tuple[dict[str, Any], Any, Any]:
    """``(config, model, tokenizer)`` of a module saved in a folder or Hub repo: its config file (a damaged one
    is a one-line error naming it) and the weights loaded by ``loader`` (decemb's loader for the module's
    kind, given ``trust_remote_code`` as the model was opened with it). ``model_kwargs`` other than
    :data:`LOAD_KWARGS` are refused rather than silently dropped."""
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
        trust_remote_code=trust_remote_code,
    )
    return config, model, tokenizer


def is_saved_folder(source: str | os.PathLike[str], config_file_name: str, *, trust_remote_code: bool = False) -> bool:
    """Whether ``source`` is a folder saved by a decemb model whose first module writes ``config_file_name``.
    Unless ``trust_remote_code``, the folder must not be able to run code of its own
    (:func:`decemb.trust.check_saved_folder`: installed module classes only, no ``auto_map``); an unreadable
    ``modules.json`` is an error naming it."""
    folder = Path(os.fspath(source)).expanduser()
    if not (folder / "modules.json").is_file() or not (folder / config_file_name).is_file():
        return False
    if not trust_remote_code:
        check_saved_folder(folder)
    return True


def open_saved_folder(
    model_class: Any,
    source: str | os.PathLike[str],
    *,
    device: Any = None,
    trust_remote_code: bool = False,
    **load: Any,
) -> Any:
    """``model_class(source)`` for a folder :func:`is_saved_folder` accepted, with the loading options of
    :data:`LOAD_KWARGS` that are set. ``model_class`` resolves module classes through
    :class:`~decemb.st.installed.InstalledModulesOnly`, so ``trust_remote_code`` stays ``False`` unless the
    caller gives it."""
    from decemb.loading import parse_dtype

    if load.get("dtype") is not None:
        load["dtype"] = parse_dtype(load["dtype"])
    return model_class(
        os.fspath(source),
        device=None if device is None else str(device),
        trust_remote_code=trust_remote_code,
        model_kwargs={key: value for key, value in load.items() if value is not None},
    )


class SavedModuleLoader:
    """Mixin: sentence-transformers' ``load`` for a decemb input module, through :func:`read_saved_module`.
    A subclass names the weights loader (``_weights_loader``) and builds itself from the saved config
    (``_from_saved``)."""

    @classmethod
    def _weights_loader(cls) -> Callable[..., tuple[Any, Any]]:
        raise NotImplementedError

    @classmethod
    def _from_saved(cls, config: dict[str, Any], model: Any, tokenizer: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        hub = {"token": token, "cache_folder": cache_folder, "revision": revision}
        config, model, tokenizer = read_saved_module(
            cls, model_name_or_path, cls._weights_loader(), subfolder=subfolder,
            local_files_only=local_files_only, model_kwargs=model_kwargs,
            trust_remote_code=bool(kwargs.get("trust_remote_code")), **hub,
        )  # fmt: skip
        return cls._from_saved(config, model, tokenizer)
