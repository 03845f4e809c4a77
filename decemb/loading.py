"""The one model loader: a Hub id, a local folder, a GGUF file or a built-in alias → base model + tokenizer.

Only the base model is loaded (``AutoModel``: no LM head). A GGUF file is dequantized once and
cached as safetensors under ``$DECEMB_CACHE`` (default ``~/.cache/decemb``) keyed by the file's
sha256, so later loads are fast.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decemb.backends import apply_backend
from decemb.errors import ModelSourceError
from decemb.gguf import cache_root, dequantized_gguf, is_gguf, safetensors_intact
from decemb.load_options import DTYPES, LoadOptions, dtype_name, load_options
from decemb.models import MODEL_ALIASES
from decemb.registry import suggest
from decemb.trust import UnsafeModelError, refuse_code_configs

__all__ = [
    "DTYPES",
    "LoadOptions",
    "ModelSourceError",
    "cache_root",
    "dequantized_gguf",
    "dtype_name",
    "load_backbone",
    "parse_dtype",
    "resolve_source",
]

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # torch and transformers load with the first model, not with this module
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

@dataclass(frozen=True)
class ResolvedSource:
    kind: str  # "alias" | "gguf" | "folder" | "hub"
    location: str  # folder path or Hub id to hand to from_pretrained
    gguf_file: Path | None = None


def resolve_source(source: str | os.PathLike[str]) -> ResolvedSource:
    """Work out what ``source`` names, without loading anything."""
    text = os.fspath(source)
    if text in MODEL_ALIASES:
        return ResolvedSource("alias", text, MODEL_ALIASES.get(text)())
    path = Path(text).expanduser()
    try:
        return _resolve_path(text, path)
    except OSError as error:  # e.g. a name longer than the file system allows
        raise ModelSourceError(f"model source {text[:80]!r}… cannot be a file or folder ({error.strerror})") from None


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")


def _resolve_path(text: str, path: Path) -> ResolvedSource:
    if path.is_file():
        if not is_gguf(path):
            raise ModelSourceError(f"{path} is a file but not a GGUF model (no 'GGUF' magic bytes)")
        return ResolvedSource("gguf", str(path.parent), path)
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").exists() and len(ggufs) == 1:
            return ResolvedSource("gguf", str(path), ggufs[0])
        if not (path / "config.json").exists():
            raise ModelSourceError(f"{path} is a folder without config.json (nor a single .gguf file)")
        if not any((path / name).exists() for name in TOKENIZER_FILES):
            raise ModelSourceError(f"{path} has no tokenizer files (none of {', '.join(TOKENIZER_FILES)})")
        damaged = [weights.name for weights in sorted(path.glob("*.safetensors")) if not safetensors_intact(weights)]
        if damaged:
            raise ModelSourceError(f"{path}: {', '.join(damaged)} is truncated or malformed (safetensors)")
        return ResolvedSource("folder", str(path))
    if text.endswith(".gguf") or text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise ModelSourceError(f"model source {text!r} does not exist (no such file or folder)")
    if "/" not in text:
        close = suggest(text, MODEL_ALIASES.names(), n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise ModelSourceError(
            f"model source {text!r} is not a file, a folder, a Hub id (owner/name) or a built-in alias. "
            f"{hint}Aliases: {', '.join(MODEL_ALIASES.names())}."
        )
    return ResolvedSource("hub", text)


def default_dtype(device: str | torch.device | None, device_map: Any) -> torch.dtype:
    import torch

    on_cuda = device_map is not None or (device is not None and torch.device(device).type == "cuda")
    return torch.bfloat16 if on_cuda and torch.cuda.is_available() else torch.float32


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or not isinstance(dtype, str):
        return dtype
    name = dtype_name(dtype)
    import torch

    return getattr(torch, name)


def load_backbone(
    source: str | os.PathLike[str],
    options: LoadOptions | None = None,
    *,
    local_files_only: bool | None = None,
    head: bool = False,
    **keys: Any,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load the base model (eval mode) and its tokenizer (with a pad token).

    ``head=True`` loads the causal LM with its LM head instead (a reranker reads vocabulary logits). The GGUF
    cache holds the base model: a head tied to the input embeddings (SmolLM2, Gemma) comes back from them, a
    separate one is read from the GGUF file itself; a folder or Hub model without head weights is refused.

    ``options`` / ``keys``: :class:`~decemb.load_options.LoadOptions` (``dtype``, ``device``, ``device_map``,
    ``attn_implementation``, ``revision``, ``adapter``, ``trust_remote_code``, ``backend``), validated before
    anything loads. ``backend="int8"`` quantizes the freshly loaded model (:mod:`decemb.backends`).

    Code shipped with the model never runs unless ``trust_remote_code=True``: a local folder whose configs
    carry an ``auto_map`` is refused in one line (:func:`decemb.trust.refuse_code_configs`), and transformers
    is always told ``trust_remote_code`` explicitly, so it never prompts.
    """
    loading = load_options(options, **keys)
    dtype, device, device_map, revision = loading.dtype, loading.device, loading.device_map, loading.revision
    trust_remote_code, attn_implementation = loading.trust_remote_code, loading.attn_implementation
    resolved = resolve_source(source)
    if resolved.kind == "folder" and not trust_remote_code:
        refuse_code_configs(resolved.location)
    location = str(dequantized_gguf(resolved.gguf_file)) if resolved.gguf_file else resolved.location
    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    if resolved.kind == "hub" and not _hub_cached(resolved.location, revision):
        _fail_if_offline(resolved.location, local_files_only)
    hub = {"revision": revision, "local_files_only": local_files_only} if resolved.kind == "hub" else {}
    from transformers import AutoTokenizer

    torch_dtype = parse_dtype(dtype) or default_dtype(device, device_map)
    model_kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code, **hub}
    if attn_implementation:
        model_kwargs["attn_implementation"] = attn_implementation
    if device_map is not None:
        model_kwargs["device_map"] = device_map
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code, **hub)
        model = _from_pretrained(resolved, location, model_kwargs, head=head)
    except ValueError as error:
        if trust_remote_code or "trust_remote_code" not in str(error):
            raise
        raise UnsafeModelError(
            f"model {os.fspath(source)!r} needs code shipped with it (transformers: custom code), which decemb "
            "does not run; pass trust_remote_code=True only if you have read and trust that code"
        ) from None
    except OSError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelSourceError(f"cannot load model {os.fspath(source)!r}: {first}") from error
    if loading.adapter:
        model = apply_adapter(model, loading.adapter)
    if device is not None and device_map is None:
        model = model.to(device)
    ensure_pad_token(tokenizer)
    return apply_backend(model.eval(), loading.backend), tokenizer


def _hub_cached(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return isinstance(found, str)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's host answers a TCP connection within ``timeout`` (DNS included)."""
    import socket
    import threading
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _fail_if_offline(repo_id: str, local_files_only: bool) -> None:
    """Fail fast, before any download attempt, for a Hub id that is neither cached nor reachable."""
    if local_files_only:
        why = "offline mode is on (HF_HUB_OFFLINE or local_files_only)"
    elif not _hub_reachable():
        why = "the Hugging Face Hub cannot be reached (no network?)"
    else:
        return
    raise ModelSourceError(f"model {repo_id!r} is not in the local Hugging Face cache and {why}")


def _from_pretrained(resolved: ResolvedSource, location: str, kwargs: dict[str, Any], *, head: bool) -> Any:
    from transformers import AutoModel, AutoModelForCausalLM

    if not head:
        return AutoModel.from_pretrained(location, **kwargs)
    model, info = AutoModelForCausalLM.from_pretrained(location, output_loading_info=True, **kwargs)
    if not head_is_missing(model, list(info.get("missing_keys", []))):
        return model
    if resolved.gguf_file is None:
        raise ModelSourceError(
            f"model {resolved.location!r} has no LM head weights (a base-model checkpoint); a causal-LM head is needed"
        )
    gguf = resolved.gguf_file  # an untied head: read it from the GGUF file itself
    plain = {key: value for key, value in kwargs.items() if key not in ("revision", "local_files_only")}
    return AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, **plain)


def head_is_missing(model: PreTrainedModel, missing_keys: list[str]) -> bool:
    """Whether the LM head's weight was not in the checkpoint and is not tied to the input embeddings."""
    output = model.get_output_embeddings()
    if output is None:
        return True
    tied = bool(getattr(model.config.get_text_config(), "tie_word_embeddings", False))
    if tied and output.weight is model.get_input_embeddings().weight:
        return False
    names = [name for name, module in model.named_modules() if module is output]
    return any(f"{name}.weight" in missing_keys for name in names)


def apply_adapter(model: PreTrainedModel, adapter: str | os.PathLike[str]) -> PreTrainedModel:
    """Merge a PEFT (LoRA) adapter into ``model``; a one-line error if it does not fit."""
    try:
        from peft import PeftModel
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("loading an adapter needs peft: pip install 'decemb[peft]'") from error
    try:
        return PeftModel.from_pretrained(model, os.fspath(adapter)).merge_and_unload()
    except (ValueError, RuntimeError, KeyError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelSourceError(f"adapter {os.fspath(adapter)!r} does not fit this base model: {first}") from error


def ensure_pad_token(tokenizer: PreTrainedTokenizerBase) -> None:
    """Give the tokenizer a pad token if it has none (padded positions are masked, never pooled)."""
    if tokenizer.pad_token_id is None:
        for candidate in (tokenizer.eos_token, tokenizer.unk_token, tokenizer.bos_token):
            if candidate is not None:
                tokenizer.pad_token = candidate
                return
