"""GGUF files: dequantized once into a safetensors folder cached under ``$DECEMB_CACHE``, keyed by sha256."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel

from decemb.errors import ModelSourceError

logger = logging.getLogger(__name__)


def cache_root() -> Path:
    return Path(os.environ.get("DECEMB_CACHE", Path.home() / ".cache" / "decemb"))


def is_gguf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"GGUF"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def gguf_digest(gguf: Path) -> str:
    """The file's sha256, remembered per (path, size, mtime) so that a warm load does not re-read it."""
    stat = gguf.stat()
    memo = cache_root() / "gguf" / "digests.json"
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = sha256_file(gguf)
        memo.parent.mkdir(parents=True, exist_ok=True)
        staging = memo.with_name(f".digests-{os.getpid()}.json")
        staging.write_text(json.dumps(known, indent=1))
        os.replace(staging, memo)
    return known[key]


def dequantized_gguf(gguf: Path) -> Path:
    """Folder with the GGUF's dequantized base model and tokenizer, created once (atomically)."""
    target = cache_root() / "gguf" / gguf_digest(gguf)
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    logger.info("Dequantizing %s once into %s", gguf, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModel.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        _drop_gguf_quantizer(model)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "SOURCE").write_text(f"{gguf}\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _drop_gguf_quantizer(model: PreTrainedModel) -> None:
    """transformers keeps a (non-serializable) GGUF quantizer on a model whose weights it already
    unpacked to plain tensors; check that they are plain, then forget the quantizer so it saves."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return
    packed = [name for name, module in model.named_modules() if "gguf" in type(module).__name__.lower()]
    packed += [name for name, param in model.named_parameters() if not param.dtype.is_floating_point]
    if packed:
        raise ModelSourceError(f"the GGUF weights were kept packed ({packed[:3]}); cannot cache them")
    quantizer.remove_quantization_config(model)
