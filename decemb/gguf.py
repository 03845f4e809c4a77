"""GGUF files: dequantized once into a safetensors folder cached under ``$DECEMB_CACHE``, keyed by sha256."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from decemb.errors import ModelSourceError
from decemb.files import process_alive, sha256_of

if TYPE_CHECKING:
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)


def cache_root() -> Path:
    """``$DECEMB_CACHE`` (default ``~/.cache/decemb``)."""
    return Path(os.environ.get("DECEMB_CACHE", Path.home() / ".cache" / "decemb"))


def cache_dir(*parts: str) -> Path:
    """A folder under :func:`cache_root`, created if needed; a cache root that is a file, or a folder that
    cannot be created, is a one-line :class:`ModelSourceError` naming it."""
    folder = cache_root().joinpath(*parts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ModelSourceError(
            f"the decemb cache {cache_root()} (DECEMB_CACHE) is not a usable folder: {error.strerror} "
            f"({error.filename})"
        ) from None
    return folder


def is_gguf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"GGUF"


def gguf_digest(gguf: Path) -> str:
    """The file's sha256, remembered per (path, size, mtime) so that a warm load does not re-read it."""
    stat = gguf.stat()
    memo = cache_dir("gguf") / "digests.json"
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = sha256_of(gguf)
        memo.parent.mkdir(parents=True, exist_ok=True)
        staging = memo.with_name(f".digests-{os.getpid()}.json")
        staging.write_text(json.dumps(known, indent=1))
        os.replace(staging, memo)
    return known[key]


MANIFEST = "decemb-dequantized.json"  # written last: file sizes of a complete entry


def safetensors_intact(path: Path) -> bool:
    """Whether a safetensors file is whole: its header parses and its size is header + all tensor bytes."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
        return path.stat().st_size == 8 + length + end
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
        return False


def _complete(target: Path) -> bool:
    """Whether ``target`` is a complete entry: every file of its manifest at its recorded size (entries from
    before manifests: config present and the weights file whole)."""
    if not (target / MANIFEST).exists():
        return (target / "config.json").is_file() and safetensors_intact(target / "model.safetensors")
    try:
        sizes = json.loads((target / MANIFEST).read_text())["sizes"]
        whole = all((target / name).stat().st_size == size for name, size in sizes.items())
        return bool(sizes) and whole and safetensors_intact(target / "model.safetensors")
    except (OSError, ValueError, KeyError, TypeError):
        return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (other processes converting the same file wait here)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _clean_stale_staging(folder: Path) -> None:
    """Remove staging folders left by processes that no longer run (e.g. killed mid-conversion)."""
    for staging in folder.glob(".staging-*"):
        pid = staging.name.split("-")[1]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)


def dequantized_gguf(gguf: Path) -> Path:
    """Folder with the GGUF's dequantized base model and tokenizer, created once.

    Safe under concurrent processes: one converts under a file lock while the others wait, the result
    appears by an atomic rename, and a folder is never deleted in place (a damaged entry, detected by its
    manifest of file sizes, is renamed aside first, so a reader that has it open keeps working)."""
    target = cache_dir("gguf") / gguf_digest(gguf)
    if _complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if _complete(target):  # another process finished it while we waited
            return target
        _clean_stale_staging(target.parent)
        logger.warning(
            "Converting %s to float32 safetensors once (cache: %s; set DECEMB_CACHE to move it); "
            "later loads take about a second",
            gguf.name,
            target,
        )
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{os.getpid()}-", dir=target.parent))
        try:
            _convert(gguf, staging)
            if target.exists():  # damaged or incomplete: out of the way, never removed in place
                aside = target.with_name(f".damaged-{os.getpid()}-{target.name}")
                os.replace(target, aside)
                shutil.rmtree(aside, ignore_errors=True)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(gguf: Path, staging: Path) -> None:
    """Tokenizer and float32 weights out of the GGUF file into ``staging``, under ONE progress bar (the
    libraries' own bars are held back; on a non-terminal, e.g. a log file, no bar is drawn at all)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer

    from decemb.progress import transformers_progress

    steps = ["tokenizer", "weights", "writing"]
    with transformers_progress(False), tqdm(total=len(steps), desc=f"Converting {gguf.name}", disable=None) as bar:
        try:
            bar.set_postfix_str(steps[0])
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            bar.update()
            bar.set_postfix_str(steps[1])
            model = AutoModel.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
            bar.update()
        except (ValueError, struct.error, KeyError, IndexError, EOFError, OSError) as error:
            size = gguf.stat().st_size
            raise ModelSourceError(
                f"{gguf} is a truncated or malformed GGUF file ({size} bytes; {type(error).__name__}: "
                f"{str(error)[:120]})"
            ) from None
        bar.set_postfix_str(steps[2])
        _drop_gguf_quantizer(model)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        bar.update()
    (staging / "SOURCE").write_text(f"{gguf}\n")
    sizes = {p.name: p.stat().st_size for p in staging.iterdir() if p.is_file()}
    (staging / MANIFEST).write_text(json.dumps({"source": str(gguf), "sizes": sizes}, indent=1))


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
