"""The device side of ``gpu_check.py``: which device, its peak bf16 rate, timing with CUDA synchronisation, peak
memory, the overall deadline, and the tiny random models of the ``--tiny`` (CPU) version.
"""

from __future__ import annotations

import contextlib
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# Dense bf16 tensor-core peak (TFLOP/s, no sparsity) from the vendors' datasheets, matched in this order against
# torch.cuda.get_device_name() (the first key found in the name wins, so the more specific names come first).
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("GH200", 989.4),
    ("H200", 989.4),
    ("H100 PCIe", 756.5),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM
    ("H800", 989.4),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.1),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("RTX 4090", 165.2),
    ("RTX 6000 Ada", 364.2),
    ("A6000", 154.8),
)


def datasheet_peak(device_name: str) -> float | None:
    """The datasheet's dense bf16 TFLOP/s of a CUDA device by its name, or ``None`` if it is not in the table."""
    for key, tflops in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return tflops
    return None


@dataclass
class Device:
    """Where the checks run: ``cuda`` or ``cpu``, its name, the dtype of the fast path, and the peak used for MFU."""

    kind: str
    name: str
    fast_dtype: str  # the low-precision path compared with float32 (bfloat16 on both CUDA and CPU)
    run_dtype: str  # what encode / invariance run in: bfloat16 on CUDA, float32 on CPU (CPU bf16 is not fast)
    peak_tflops: float | None
    peak_source: str

    @property
    def cuda(self) -> bool:
        return self.kind == "cuda"


def pick_device(requested: str | None, peak_tflops: float | None) -> Device:
    """``requested`` (``cuda``/``cpu``) or CUDA when there is one; the MFU peak from ``peak_tflops`` or the table."""
    kind = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    if kind == "cuda":
        name = torch.cuda.get_device_name(0)
        sheet = datasheet_peak(name)
        source = "--peak-tflops" if peak_tflops else ("datasheet" if sheet else "unknown device: pass --peak-tflops")
        return Device("cuda", name, "bfloat16", "bfloat16", peak_tflops or sheet, source)
    from _common import cpu_model

    source = "--peak-tflops" if peak_tflops else "none for a CPU: MFU is against the measured GEMM"
    return Device("cpu", cpu_model(), "bfloat16", "float32", peak_tflops, source)


def synchronize(device: Device) -> None:
    if device.cuda:
        torch.cuda.synchronize()


def timed(device: Device, fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """One warm-up call, then ``repeats`` timed calls, each between two device synchronisations."""
    result = fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times, result


def gemm_tflops(device: Device, dtype: torch.dtype, size: int, repeats: int = 10) -> float:
    """Median TFLOP/s of one ``size``³ matrix product in ``dtype`` on ``device`` (the measured ceiling)."""
    a = torch.randn(size, size, device=device.kind, dtype=dtype)
    b = torch.randn(size, size, device=device.kind, dtype=dtype)
    with torch.inference_mode():
        for _ in range(3):
            a @ b
        times, _ = timed(device, lambda: a @ b, repeats)
    return 2 * size**3 / statistics.median(times) / 1e12


def reset_peak_memory(device: Device) -> None:
    if device.cuda:
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mib(device: Device) -> float | None:
    """``torch.cuda.max_memory_allocated`` since the last reset, in MiB (``None`` on CPU)."""
    return torch.cuda.max_memory_allocated() / 2**20 if device.cuda else None


def free_memory(device: Device, *, collect: bool = False) -> None:
    """Hand cached CUDA blocks back (so each row's peak is its own); ``collect``: a full garbage collection first
    (between checks: it frees the models a check dropped; per item it would cost ~0.5 s each)."""
    if collect:
        import gc

        gc.collect()
    if device.cuda:
        torch.cuda.empty_cache()


class OutOfBudget(BaseException):
    """Raised when the overall deadline passes (a BaseException: library code's ``except Exception`` lets it by)."""


class Budget:
    """The hard overall deadline: ``check()`` between items, and ``alarm()`` to interrupt a check that runs past it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self.left() <= 0:
            raise OutOfBudget

    @contextlib.contextmanager
    def alarm(self) -> Iterator[None]:
        """SIGALRM at the deadline raises :class:`OutOfBudget` wherever the main thread is (POSIX, main thread only)."""
        in_main = threading.current_thread() is threading.main_thread()  # only the main thread gets signals
        if not hasattr(signal, "setitimer") or not in_main or self.left() <= 0:  # past it, no check starts anyway
            yield
            return

        def ring(signum: int, frame: Any) -> None:
            raise OutOfBudget

        previous = signal.signal(signal.SIGALRM, ring)
        try:
            signal.setitimer(signal.ITIMER_REAL, max(self.left(), 0.001))
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


# -- the --tiny version's models ---------------------------------------------------------------------------------
def tiny_tokenizer(texts: Sequence[str]) -> Any:
    """A byte-level BPE tokenizer (vocabulary ~400) trained on ``texts``, adding BOS (as tests/helpers.py builds it)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<bos>", "<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(list(texts), trainer=trainer)
    backend.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", padding_side="right"
    )


def tiny_models(folder: Path, texts: Sequence[str]) -> dict[str, str]:
    """Random 2-layer Llama and Gemma-3 models (hidden 32, seed 0) saved under ``folder``, standing in for
    ``smollm2-135m`` (Llama) and ``gemma3-270m`` (Gemma-3): ``{alias: folder}``."""
    from transformers import AutoModel, Gemma3TextConfig, LlamaConfig

    tokenizer = tiny_tokenizer(texts)
    shape = {
        "vocab_size": len(tokenizer), "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 512,
    }  # fmt: skip
    configs = {
        "smollm2-135m": LlamaConfig(**shape),
        "gemma3-270m": Gemma3TextConfig(
            **shape, head_dim=8, sliding_window=64, layer_types=["sliding_attention", "full_attention"]
        ),
    }
    out = {}
    for alias, config in configs.items():
        torch.manual_seed(0)
        path = folder / f"tiny-{alias}"
        AutoModel.from_config(config, attn_implementation="sdpa").save_pretrained(path)
        tokenizer.save_pretrained(path)
        out[alias] = str(path)
    return out
